#!/usr/bin/env bash
# The 10 MC runs on a GPU inside a fixed wall-clock budget, with the checks that go with them:
#   1. a 20-step smoke run of a 10 MC ADGM (the script stops there if training fails on the device);
#   2. step times of every model, 1 and 10 MC, fp32 and bf16 (benchmarks/step_time.py), alone;
#   3. the runs of QUEUE (default docs/runs/queue-gpu.txt), PARALLEL (default 4) at a time, by
#      scripts/run_queue.py in RUNS (default .gpuruns), each line given `--device DEVICE`; when
#      BUDGET seconds (default 500) have passed since the script began, the queue is stopped as
#      Ctrl-C stops it: each run writes a checkpoint at the step it reached. A run folder already
#      in RUNS (carried there with its checkpoint) is resumed. Beside them, the exact-resume check
#      on the device (benchmarks/resume_check.py, short), with torch's own kernels and then with
#      deterministic ones only.
# Writes to $OUT: gpu-runs.log, step_time.jsonl, runs.tar.gz (every run folder without its
# checkpoints: config.json, command.txt, metrics.jsonl, starts.jsonl; and RUNS/NAME.log) and the
# latest checkpoint of the queue's first run, split into 15 MB parts (checkpoint.part-aa, -ab, ...,
# its file name in checkpoint.name): eight files at most, none over 16 MB.
# Needs MNIST in $ADGM_DATA_DIR and python3 with torch, numpy and tqdm; adgm is taken from src/.
#
#   OUT=gpu ADGM_DATA_DIR=.mnist bash benchmarks/gpu_runs.sh              # on the GPU
#   OUT=/tmp/g BUDGET=150 RUNS=/tmp/g-runs bash benchmarks/gpu_runs.sh cpu 5   # smoke test on a CPU
#
# To continue the first run next time, put its folder back, checkpoint and all, in RUNS:
#   mkdir -p .gpuruns && tar xzf gpu/runs.tar.gz -C .gpuruns ./NAME    # members are ./NAME/...
#   mkdir -p .gpuruns/NAME/checkpoints && cat gpu/checkpoint.part-* > .gpuruns/NAME/checkpoints/$(cat gpu/checkpoint.name)
#   cat gpu/checkpoint.name > .gpuruns/NAME/checkpoints/latest
# (.gpuruns/ and .mnist/ ignored by git, carried to the GPU machine with the working tree).
set -uo pipefail
device=${1:-cuda}
steps=${2:-}  # cut each epoch to this many steps (a smoke test); empty: whole epochs
budget=${BUDGET:-500}
queue=${QUEUE:-docs/runs/queue-gpu.txt}
parallel=${PARALLEL:-4}
out=${OUT:-gpu-runs}
runs=${RUNS:-.gpuruns}
mkdir -p "$out" "$runs"
out=$(cd "$out" && pwd)
runs=$(cd "$runs" && pwd)
scratch=$(mktemp -d)
began=$SECONDS
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
extra="--device $device"
[ -n "$steps" ] && extra="$extra --max-steps-per-epoch $steps --test-subset 500"

{
  echo "== machine ($(date -u +%F' '%T) UTC)"
  nvidia-smi -L 2>/dev/null
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  nproc

  echo "== smoke run"
  if ! timeout 120 python3 -m adgm.cli train --model adgm --mc-samples 10 --precision bf16 \
    --epochs 1 --max-steps-per-epoch 20 --test-subset 500 --device "$device" \
    --out "$scratch/smoke" > "$scratch/smoke.log" 2>&1; then
    tail -n 30 "$scratch/smoke.log"
    echo "smoke run failed: stopping"
    exit 1
  fi
  tail -n 2 "$scratch/smoke.log"

  echo "== step times (alone on the device)"
  if [ -n "$steps" ]; then timing=(--warmup 1 --repeats 2); else timing=(); fi
  timeout 120 python3 benchmarks/step_time.py --device "$device" "${timing[@]}" --json \
    | tee "$out/step_time.jsonl"

  # The queue's lines with --device (and a smoke test's cut), comments dropped.
  awk -v extra="$extra" '!/^[[:space:]]*(#|$)/ { print $0, extra }' "$queue" > "$scratch/queue.txt"
  first=$(awk 'NR == 1 { print $1 }' "$scratch/queue.txt")
  left=$((budget - (SECONDS - began) - 30))
  echo "== the queue ($(grep -c . "$scratch/queue.txt") runs, $parallel at a time) for ${left} s"
  timeout -s INT -k 90 "$left" python3 scripts/run_queue.py "$scratch/queue.txt" \
    --runs-dir "$runs" --parallel "$parallel" &
  queue_pid=$!
  if [ -n "$steps" ]; then short=(--steps "$steps" --stop-step 2 --test-subset 500); else short=(--steps 30 --stop-step 11); fi
  for kernels in "" --deterministic; do  # are the device's run-to-run differences torch's kernels?
    timeout $(((left - 10) / 2)) python3 benchmarks/resume_check.py --device "$device" \
      --precision bf16 "${short[@]}" $kernels || echo "resume check exited with status $?"
  done
  wait "$queue_pid"
  echo "queue exited with status $?"

  echo "== results (test error at each evaluation)"
  for folder in "$runs"/*/; do
    python3 - "$folder" <<'PY'
import json, pathlib, sys
folder = pathlib.Path(sys.argv[1])
path = folder / "metrics.jsonl"
rows = [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []
tested = [f"{r['epoch']}: {100 * r['test_error']:.2f}%" for r in rows if "test_error" in r]
seconds = sorted(r["seconds"] for r in rows)
median = f", median {seconds[len(seconds) // 2]:.2f} s an epoch" if seconds else ""
print(f"{folder.name}: {len(rows)} epochs{median}; " + (", ".join(tested) or "no evaluation"))
PY
  done
  (cd "$runs" && tar --exclude=checkpoints --exclude=lock -czf "$out/runs.tar.gz" .)
  checkpoints="$runs/$first/checkpoints"
  if [ -f "$checkpoints/latest" ]; then
    latest=$(cat "$checkpoints/latest")
    echo "checkpoint of $first: $latest ($(stat -c %s "$checkpoints/$latest") bytes)"
    split -b 15M "$checkpoints/$latest" "$out/checkpoint.part-"
    echo "$latest" > "$out/checkpoint.name"
  fi
  echo "== done after $((SECONDS - began)) s"
} 2>&1 | tee "$out/gpu-runs.log"
rm -rf "$scratch"
