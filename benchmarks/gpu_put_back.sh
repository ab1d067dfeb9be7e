#!/usr/bin/env bash
# Put a run that trained on a GPU machine back together here, from the files a command returned
# (benchmarks/gpu_runs.sh or benchmarks/gpu_checkpoint_out.sh):
#
#   bash benchmarks/gpu_put_back.sh FILES NAME
#
# FILES holds runs.tar.gz (every run of the queue) or run.tar.gz (one run), and, for NAME, the
# checkpoint in parts (checkpoint.part-*, checkpoint.name). Each run folder in the archive is
# unpacked into RUNS (default ../runs) and its small files copied to COPY_TO (default
# docs/runs); NAME's checkpoint is reassembled into RUNS/NAME and into GPU_RUNS/NAME (default
# .gpuruns, sent to the GPU machine next time: send .gpuruns/NAME, one run, since 64 MiB hold
# about one checkpoint beside MNIST and the code) and marked as the latest; the GPU copy keeps no older checkpoint. The parts are
# checked against the checkpoint's SHA-256; a run folder here with more epochs than the archive's is
# left as it is (and if it is NAME's, its checkpoint too: the script stops); a copy in COPY_TO
# with more epochs than the archive's (a run started again after its folder was lost) is kept
# as it is, while the run folder and checkpoint are put back.
set -euo pipefail
files=${1:?usage: bash benchmarks/gpu_put_back.sh FILES NAME}
name=${2:?usage: bash benchmarks/gpu_put_back.sh FILES NAME}
runs=${RUNS:-../runs}
copy_to=${COPY_TO:-docs/runs}
gpu_runs=${GPU_RUNS:-.gpuruns}
archive="$files/runs.tar.gz"
[ -f "$archive" ] || archive="$files/run.tar.gz"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
checkpoint=""
if [ -f "$files/checkpoint.name" ]; then  # checked before anything is unpacked
  checkpoint=$(head -n 1 "$files/checkpoint.name")
  digest=$(sed -n 2p "$files/checkpoint.name")
  cat "$files"/checkpoint.part-* > "$scratch/$checkpoint"
  if [ -n "$digest" ] && [ "$(sha256sum < "$scratch/$checkpoint" | cut -d' ' -f1)" != "$digest" ]; then
    echo "$name: the checkpoint's parts do not match its SHA-256 (a part missing or damaged)"
    exit 1
  fi
fi
rows() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }  # a metrics file's epochs
mkdir "$scratch/runs"
tar xzf "$archive" -C "$scratch/runs"
for folder in "$scratch"/runs/*/; do
  run=$(basename "$folder")
  have=$(rows "$runs/$run/metrics.jsonl") got=$(rows "$folder/metrics.jsonl")
  if [ "$got" -lt "$have" ]; then
    echo "$run: skipped, $got epochs in the archive against $have here"
    [ "$run" = "$name" ] && exit 1  # nor its checkpoint, which is older than this folder
    continue
  fi
  mkdir -p "$runs/$run"
  cp "$folder"/* "$runs/$run/" 2>/dev/null || true
  recorded=$(rows "$copy_to/$run/metrics.jsonl")
  if [ "$got" -lt "$recorded" ]; then
    echo "$run: $got epochs; $copy_to/$run records $recorded, kept until the run passes it"
    continue
  fi
  mkdir -p "$copy_to/$run"
  for small in config.json command.txt metrics.jsonl starts.jsonl; do
    [ -f "$folder/$small" ] && cp "$folder/$small" "$copy_to/$run/"
  done
  echo "$run: $got epochs"
done
if [ -n "$checkpoint" ]; then
  expected=$(stat -c %s "$scratch/$checkpoint")
  for place in "$runs/$name" "$gpu_runs/$name"; do
    mkdir -p "$place/checkpoints"
    cp "$scratch/$checkpoint" "$place/checkpoints/$checkpoint"
    echo "$checkpoint" > "$place/checkpoints/latest"
  done
  # The GPU copy keeps this checkpoint only: what is sent to the GPU machine is limited to
  # 64 MiB, about one checkpoint beside MNIST and the code.
  find "$gpu_runs/$name/checkpoints" -name '*.pt' ! -name "$checkpoint" -delete
  # The GPU copy of the run folder needs its small files too, to be resumed there.
  cp "$runs/$name"/*.json* "$runs/$name"/command.txt "$gpu_runs/$name/" 2>/dev/null || true
  echo "$name: checkpoint $checkpoint ($expected bytes) in $runs/$name and $gpu_runs/$name"
fi
