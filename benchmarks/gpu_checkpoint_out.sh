#!/usr/bin/env bash
# Bring back one run's latest checkpoint from a remote GPU machine, in parts its transfers take
# (files of at most 16 MiB, 64 MiB per command): $OUT/checkpoint.part-aa, -ab, ... and
# $OUT/checkpoint.name (the file's name, then its SHA-256), plus $OUT/run.tar.gz (the run
# folder's small files).
# A checkpoint of these models is 35-45 MB, so one command brings back one; benchmarks/gpu_runs.sh
# brings back its queue's first run, and on the machine, while it still holds the run folders,
#
#   OUT=$OUT bash benchmarks/gpu_checkpoint_out.sh NAME        # RUNS (default .gpuruns)/NAME
#
# brings back another, one command each. Here, put the run back together with
#   bash benchmarks/gpu_put_back.sh FOLDER_OF_THE_RETURNED_FILES NAME
set -uo pipefail
name=${1:?usage: OUT=DIR bash benchmarks/gpu_checkpoint_out.sh NAME}
out=${OUT:?set OUT to the folder that comes back}
runs=${RUNS:-.gpuruns}
checkpoints="$runs/$name/checkpoints"
if [ ! -f "$checkpoints/latest" ]; then
  echo "$name: no checkpoint in $checkpoints"
  exit 1
fi
mkdir -p "$out"
latest=$(cat "$checkpoints/latest")
echo "checkpoint of $name: $latest ($(stat -c %s "$checkpoints/$latest") bytes)"
split -b 15M "$checkpoints/$latest" "$out/checkpoint.part-"
{ echo "$latest"; sha256sum < "$checkpoints/$latest" | cut -d' ' -f1; } > "$out/checkpoint.name"
tar --exclude=checkpoints --exclude=lock -czf "$out/run.tar.gz" -C "$runs" "./$name"
