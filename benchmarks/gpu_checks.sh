#!/usr/bin/env bash
# The checks a GPU is needed for, as one script (about 5 minutes on an H100):
#   1. step times of every model, 1 and 10 MC, fp32 and bf16 (benchmarks/step_time.py);
#   2. 10 MC training epochs of the ADGM and the SDGM in fp32 and bf16 (seconds an epoch,
#      evaluation seconds, test error; the goal is 1 s or less an ADGM 10 MC epoch on an H100);
#   3. exact resume on the device, mid-epoch (benchmarks/resume_check.py).
# Writes $OUT/gpu-checks.log, $OUT/step_time.jsonl and $OUT/runs.jsonl (every metrics row, with
# the run's name). Needs MNIST in $ADGM_DATA_DIR, python3 with torch, tqdm and numpy; adgm is
# taken from src/ (no install).
#
#   OUT=gpu ADGM_DATA_DIR=.mnist bash benchmarks/gpu_checks.sh   # on the GPU machine
#   OUT=/tmp/g bash benchmarks/gpu_checks.sh cpu 5                 # smoke test: 5-step epochs
#
# A machine that has no MNIST of its own gets it from a copy beside the code: e.g.
# `mkdir -p .mnist && cp ../shared/data/mnist/*.gz .mnist/` with `.mnist/` ignored by git.
set -uo pipefail
device=${1:-cuda}
steps=${2:-}  # cut each epoch to this many steps (a smoke test); empty: whole epochs
out=${OUT:-gpu-checks}
mkdir -p "$out"
runs=$(mktemp -d)
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
cut=()
[ -n "$steps" ] && cut=(--max-steps-per-epoch "$steps" --test-subset 500)

{
  echo "== machine ($(date -u +%F))"
  nvidia-smi -L 2>/dev/null
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

  echo "== step times"
  if [ -n "$steps" ]; then timing=(--warmup 1 --repeats 2); else timing=(); fi
  timeout 240 python3 benchmarks/step_time.py --device "$device" "${timing[@]}" --json \
    | tee "$out/step_time.jsonl"

  echo "== 10 MC epochs"
  for model in adgm sdgm; do
    for precision in fp32 bf16; do
      name=$model-10mc-$precision
      timeout 240 python3 -m adgm.cli train --model "$model" --mc-samples 10 \
        --precision "$precision" --epochs 3 --eval-every 3 --device "$device" "${cut[@]}" \
        --out "$runs/$name" > "$runs/$name.log" 2>&1 || echo "$name failed: $(tail -n 1 "$runs/$name.log")"
      python3 - "$runs/$name" "$name" "$out/runs.jsonl" <<'PY'
import json, pathlib, sys
folder, name, collected = sys.argv[1:4]
rows = [json.loads(l) for l in (pathlib.Path(folder) / "metrics.jsonl").read_text().splitlines()]
with open(collected, "a") as out:
    for r in rows:
        out.write(json.dumps({"run": name, **r}) + "\n")
        test = f", test error {100 * r['test_error']:.2f}% in {r['eval_seconds']:.1f} s" if "test_error" in r else ""
        print(f"{name} epoch {r['epoch']}: {r['seconds']:.2f} s ({r['steps_per_s']:.1f} steps/s){test}")
PY
    done
  done

  echo "== exact resume"
  if [ -n "$steps" ]; then short=(--steps "$steps" --stop-step 2 --test-subset 500); else short=(); fi
  for precision in fp32 bf16; do
    timeout 240 python3 benchmarks/resume_check.py --device "$device" --precision "$precision" \
      "${short[@]}"
  done
} 2>&1 | tee "$out/gpu-checks.log"
rm -rf "$runs"
