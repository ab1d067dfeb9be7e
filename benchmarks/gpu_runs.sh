#!/usr/bin/env bash
# 10 MC training runs on a GPU inside a fixed wall-clock budget, with the checks that go with them:
#   1. a 20-step smoke run of a 10 MC ADGM (the script stops there if training fails on the device);
#   2. step times of every model, 1 and 10 MC, fp32 and bf16 (benchmarks/step_time.py), alone;
#   3. the 10 MC runs below, side by side, each stopped as Ctrl-C stops it (a checkpoint at the
#      step it reached) when BUDGET seconds have passed since the script began; beside them, the
#      exact-resume check on the device (benchmarks/resume_check.py, short).
# Writes to $OUT: session.log, step_time.jsonl, runs.tar.gz (each run's folder without its
# checkpoints: config.json, command.txt, metrics.jsonl, starts.jsonl, train.log) and the latest
# checkpoint of the first run, split into 15 MB parts (checkpoint.part-aa, -ab, ...; rejoin with
# `cat checkpoint.part-* > FILE.pt`), so that run can be resumed elsewhere with `--resume`.
# Needs MNIST in $ADGM_DATA_DIR and python3 with torch, numpy and tqdm; adgm is taken from src/.
#
#   OUT=gpu ADGM_DATA_DIR=.mnist BUDGET=500 bash benchmarks/gpu_runs.sh # on the GPU
#   OUT=/tmp/g BUDGET=150 bash benchmarks/gpu_runs.sh cpu 5             # smoke test on a CPU
set -uo pipefail
device=${1:-cuda}
steps=${2:-}  # cut each epoch to this many steps (a smoke test); empty: whole epochs
budget=${BUDGET:-540}
out=${OUT:-gpu-runs}
mkdir -p "$out"
out=$(cd "$out" && pwd)
runs=$(mktemp -d)
began=$SECONDS
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
cut=()
[ -n "$steps" ] && cut=(--max-steps-per-epoch "$steps" --test-subset 500)
# NAME and flags of each run; the first one's checkpoint comes back.
names=(adgm-authors-2015-10mc-bf16 sdgm-10mc-bf16 adgm-10mc-bf16)
flags=("--preset authors-2015" "--model sdgm" "--model adgm")

{
  echo "== machine ($(date -u +%F' '%T) UTC)"
  nvidia-smi -L 2>/dev/null
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  nproc

  echo "== smoke run"
  if ! timeout 120 python3 -m adgm.cli train --model adgm --mc-samples 10 --precision bf16 \
    --epochs 1 --max-steps-per-epoch 20 --test-subset 500 --device "$device" \
    --out "$runs/smoke" > "$runs/smoke.log" 2>&1; then
    tail -n 30 "$runs/smoke.log"
    echo "smoke run failed: stopping"
    exit 1
  fi
  tail -n 2 "$runs/smoke.log"

  echo "== step times (alone on the device)"
  if [ -n "$steps" ]; then timing=(--warmup 1 --repeats 2); else timing=(); fi
  timeout 120 python3 benchmarks/step_time.py --device "$device" "${timing[@]}" --json \
    | tee "$out/step_time.jsonl"

  left=$((budget - (SECONDS - began) - 25))
  echo "== 10 MC runs side by side for ${left} s"
  pids=()
  for i in "${!names[@]}"; do
    name=${names[$i]}
    # shellcheck disable=SC2086  # the flags are words on purpose
    timeout -s INT -k 60 "$left" python3 -m adgm.cli train ${flags[$i]} --mc-samples 10 \
      --precision bf16 --epochs 300 --eval-every 5 --device "$device" "${cut[@]}" \
      --out "$runs/$name" > "$runs/$name.train.log" 2>&1 &
    pids+=($!)
  done
  if [ -n "$steps" ]; then short=(--steps "$steps" --stop-step 2 --test-subset 500); else short=(--steps 30 --stop-step 11); fi
  timeout $((left - 10)) python3 benchmarks/resume_check.py --device "$device" --precision bf16 \
    "${short[@]}" || echo "resume check exited with status $?"
  for pid in "${pids[@]}"; do wait "$pid"; echo "run exited with status $?"; done

  echo "== results"
  for name in "${names[@]}"; do
    cp "$runs/$name.train.log" "$runs/$name/train.log" 2>/dev/null
    python3 - "$runs/$name" "$name" <<'PY'
import json, pathlib, sys
folder, name = sys.argv[1:3]
path = pathlib.Path(folder) / "metrics.jsonl"
rows = [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []
if not rows:
    print(f"{name}: no metrics")
for r in rows:
    test = f", test error {100 * r['test_error']:.2f}% in {r['eval_seconds']:.1f} s" if "test_error" in r else ""
    print(f"{name} epoch {r['epoch']}: {r['seconds']:.2f} s ({r['steps_per_s']:.1f} steps/s){test}")
PY
  done
  (cd "$runs" && tar --exclude=checkpoints -czf "$out/runs.tar.gz" "${names[@]}")
  first="$runs/${names[0]}/checkpoints"
  if [ -f "$first/latest" ]; then
    latest=$(cat "$first/latest")
    echo "checkpoint of ${names[0]}: $latest ($(stat -c %s "$first/$latest") bytes)"
    split -b 15M "$first/$latest" "$out/checkpoint.part-"
    echo "$latest" > "$out/checkpoint.name"
  fi
  echo "== done after $((SECONDS - began)) s"
} 2>&1 | tee "$out/session.log"
rm -rf "$runs"
