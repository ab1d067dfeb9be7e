#!/usr/bin/env bash
# The 10 MC runs on a GPU inside a fixed wall-clock budget, with the checks that go with them:
#   1. a 20-step smoke run of a 10 MC ADGM, eager and with --cuda-graphs (the script stops if
#      the eager one fails; the queue trains with --cuda-graphs only if that one trained and
#      every check of 2 passed: fresh noise at each replay, replayed steps tracking eager ones);
#   2. CUDA-graph replays against eager steps (benchmarks/cuda_graph_check.py: ms per step and
#      agreement); with STEP_TIMES=1 also the step times of every model, 1 and 10 MC, fp32 and
#      bf16 (step_time.py; measured on an H100 on 2026-11-26, README);
#   3. the runs of QUEUE (default docs/runs/queue-gpu.txt), PARALLEL (default 4) at a time, by
#      scripts/run_queue.py in RUNS (default .gpuruns), each line given `--device DEVICE` (and
#      `--cuda-graphs`, see 1; GRAPHS=0 leaves it out); when BUDGET seconds (default 500) have
#      passed since the script began, the queue is stopped as Ctrl-C stops it: each run writes
#      a checkpoint at the step it reached. A run folder already in RUNS (sent there with its
#      checkpoint) is resumed. Beside them, the exact-resume check on the device
#      (benchmarks/resume_check.py, short), with torch's own kernels and then deterministic ones.
# CHECKS=0 leaves out 1, 2 and the resume check (about a minute on an H200) and trains at once,
# with --cuda-graphs unless GRAPHS=0: for a second call on a machine the checks passed on.
# Writes to $OUT: gpu-runs.log, benchmarks.jsonl (the two benchmarks' rows), runs.tar.gz (every
# run folder without its checkpoints: config.json, command.txt, metrics.jsonl, starts.jsonl; and
# RUNS/NAME.log) and the latest checkpoint of the queue's first run in 15 MB parts
# (benchmarks/gpu_checkpoint_out.sh): seven files at most, none over 16 MB.
# Needs MNIST in $ADGM_DATA_DIR and python3 with torch, numpy and tqdm; adgm is taken from src/.
#
#   OUT=gpu ADGM_DATA_DIR=.mnist bash benchmarks/gpu_runs.sh              # on the GPU
#   OUT=/tmp/g BUDGET=150 RUNS=/tmp/g-runs bash benchmarks/gpu_runs.sh cpu 5   # smoke test on a CPU
#
# It is written for a remote GPU machine whose transfers are limited (files of 16 MiB, 64 MiB
# each way per command) and which keeps its files only briefly after a command ends. The other
# runs' checkpoints stay in RUNS there: straight after, one command each,
# `OUT=DIR bash benchmarks/gpu_checkpoint_out.sh NAME` brings one back (about 40 MB: one per
# command). Here, `bash benchmarks/gpu_put_back.sh FILES NAME` unpacks the returned
# files into ../runs and docs/runs and reassembles NAME's checkpoint into ../runs/NAME and
# .gpuruns/NAME (.gpuruns/ and .mnist/ are ignored by git). Send .mnist and .gpuruns/NAME with
# the code: 64 MiB hold about one checkpoint beside MNIST and the code. A queue line whose run
# has a folder here that is not sent starts afresh there (and gpu_put_back.sh then leaves the
# folder here alone): put the run that is sent first and leave such lines out.
set -uo pipefail
device=${1:-cuda}
steps=${2:-}  # cut each epoch to this many steps (a smoke test); empty: whole epochs
budget=${BUDGET:-500}
queue=${QUEUE:-docs/runs/queue-gpu.txt}
parallel=${PARALLEL:-4}
graphs=${GRAPHS:-1}
step_times=${STEP_TIMES:-0}
checks=${CHECKS:-1}
out=${OUT:-gpu-runs}
runs=${RUNS:-.gpuruns}
mkdir -p "$out" "$runs"
out=$(cd "$out" && pwd)
# RUNS stays as given (relative to the repository root by default): each run's command.txt and
# starts.jsonl record its --out, and those files are committed under docs/runs.
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

  if [ "$checks" = 1 ]; then
    echo "== smoke runs"
    smoke() {  # smoke NAME [FLAGS]: 20 steps of a 10 MC ADGM; its last lines, or 30 on failure
      if timeout 120 python3 -m adgm.cli train --model adgm --mc-samples 10 --precision bf16 \
        --epochs 1 --max-steps-per-epoch 20 --test-subset 500 --device "$device" "${@:2}" \
        --out "$scratch/$1" > "$scratch/$1.log" 2>&1 && ! grep -q "capture failed" "$scratch/$1.log"; then
        tail -n 2 "$scratch/$1.log"
      else
        tail -n 30 "$scratch/$1.log"
        return 1
      fi
    }
    if ! smoke smoke; then
      echo "smoke run failed: stopping"
      exit 1
    fi
    graphs_ok=0
    if [ "$graphs" = 1 ] && [ "$device" != cpu ]; then
      if smoke smoke-graphs --cuda-graphs; then
        graphs_ok=1
      else
        echo "the smoke run with --cuda-graphs failed"
      fi
    fi

    echo "== CUDA graphs against eager steps (alone on the device)"
    if [ -n "$steps" ]; then check=(--steps 20 --cases adgm:1); else check=(); fi
    timeout 150 python3 benchmarks/cuda_graph_check.py --device "$device" "${check[@]}" --json \
      | tee "$out/benchmarks.jsonl"
    # The queue replays graphs only if every check passed: fresh noise at each replay, no failed
    # capture, and replayed steps that track eager ones over their first 10 steps (same seeds).
    if [ "$graphs_ok" = 1 ] && python3 - "$out/benchmarks.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
checks = [r for r in rows if "check" in r]
cases = [r for r in rows if "case" in r]
good = bool(checks) and all(r["ok"] for r in checks) and bool(cases) and all(
    r["capture_failed"] is None and r["replays"] > 0 and r["first_loss_gap"] < 1e-3 for r in cases
)
sys.exit(0 if good else 1)
PY
    then
      extra="$extra --cuda-graphs"
      echo "the queue trains with --cuda-graphs"
    else
      echo "the queue trains without CUDA graphs"
    fi
  else  # CHECKS=0: measured already (an earlier call on the same machine); train at once
    echo "== checks left out (CHECKS=0)"
    if [ "$graphs" = 1 ] && [ "$device" != cpu ]; then
      extra="$extra --cuda-graphs"
      echo "the queue trains with --cuda-graphs"
    fi
  fi
  if [ "$step_times" = 1 ]; then
    if [ -n "$steps" ]; then timing=(--warmup 1 --repeats 2); else timing=(); fi
    timeout 120 python3 benchmarks/step_time.py --device "$device" "${timing[@]}" --json \
      | tee -a "$out/benchmarks.jsonl"
  fi

  # The queue's lines with --device (and a smoke test's cut), comments dropped.
  awk -v extra="$extra" '!/^[[:space:]]*(#|$)/ { print $0, extra }' "$queue" > "$scratch/queue.txt"
  first=$(awk 'NR == 1 { print $1 }' "$scratch/queue.txt")
  left=$((budget - (SECONDS - began) - 30))
  echo "== the queue ($(grep -c . "$scratch/queue.txt") runs, $parallel at a time) for ${left} s"
  timeout -s INT -k 90 "$left" python3 scripts/run_queue.py "$scratch/queue.txt" \
    --runs-dir "$runs" --parallel "$parallel" --bf16-on-any-cpu &
  queue_pid=$!
  if [ -n "$steps" ]; then short=(--steps "$steps" --stop-step 2 --test-subset 500); else short=(--steps 30 --stop-step 11); fi
  if [ "$checks" = 1 ]; then
    for kernels in "" --deterministic; do  # are the device's run-to-run differences torch's kernels?
      timeout $(((left - 10) / 2)) python3 benchmarks/resume_check.py --device "$device" \
        --precision bf16 "${short[@]}" $kernels || echo "resume check exited with status $?"
    done
  fi
  wait "$queue_pid"
  echo "queue exited with status $?"

  echo "== results"
  python3 -m adgm.cli summary "$runs"/*/ --at 5 10 20 50 70 100 150 170 200 250 300
  (cd "$runs" && tar --exclude=checkpoints --exclude=lock -czf "$out/runs.tar.gz" .)
  OUT="$out" RUNS="$runs" bash benchmarks/gpu_checkpoint_out.sh "$first" && rm -f "$out/run.tar.gz"
  echo "== done after $((SECONDS - began)) s"
} 2>&1 | tee "$out/gpu-runs.log"
rm -rf "$scratch"
