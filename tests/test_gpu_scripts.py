"""The shell scripts that carry GPU runs back and forth: a checkpoint split into parts on the
GPU machine (benchmarks/gpu_checkpoint_out.sh) comes back together byte for byte here
(benchmarks/gpu_put_back.sh), and a run folder here that is further along is never replaced."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def make_run(runs: Path, name: str, epochs: int, checkpoint_bytes: bytes) -> None:
    """A run folder as adgm writes one: small files, metrics rows, one checkpoint."""
    folder = runs / name
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "command.txt").write_text(f"adgm train --out {name}\n")
    rows = "".join(json.dumps({"epoch": e}) + "\n" for e in range(1, epochs + 1))
    (folder / "metrics.jsonl").write_text(rows)
    checkpoint = f"epoch-{epochs:05d}-step-00000.pt"
    (folder / "checkpoints" / checkpoint).write_bytes(checkpoint_bytes)
    (folder / "checkpoints" / "latest").write_text(checkpoint + "\n")


def script(name: str, *args: str, **env: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, **{key: str(value) for key, value in env.items()}}
    return subprocess.run(
        ["bash", str(ROOT / "benchmarks" / name), *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def returned(tmp_path):
    """What a call brought back for run 'far': a 20 MB checkpoint in 15 MB parts, and its
    folder's small files (2 epochs). (A real one is 35-45 MB: three parts.)"""
    gpu_runs = tmp_path / "gpu-machine"
    payload = os.urandom(20 * 2**20 + 123)
    make_run(gpu_runs, "far", 2, payload)
    files = tmp_path / "returned"
    out = script("gpu_checkpoint_out.sh", "far", OUT=files, RUNS=gpu_runs)
    assert out.returncode == 0, out.stderr
    parts = sorted(files.glob("checkpoint.part-*"))
    assert len(parts) == 2 and all(p.stat().st_size <= 16 * 2**20 for p in parts)
    return files, payload


def test_a_checkpoint_in_parts_comes_back_whole(returned, tmp_path):
    files, payload = returned
    here = {"RUNS": tmp_path / "runs", "COPY_TO": tmp_path / "docs", "GPU_RUNS": tmp_path / "g"}
    make_run(here["GPU_RUNS"], "far", 1, b"the checkpoint carried there last time")
    done = script("gpu_put_back.sh", str(files), "far", **here)
    assert done.returncode == 0, done.stderr
    for place in (here["RUNS"], here["GPU_RUNS"]):
        checkpoints = place / "far" / "checkpoints"
        latest = (checkpoints / "latest").read_text().strip()
        assert latest == "epoch-00002-step-00000.pt"
        assert (checkpoints / latest).read_bytes() == payload
    older = here["GPU_RUNS"] / "far" / "checkpoints" / "epoch-00001-step-00000.pt"
    assert not older.exists()  # one checkpoint a run travels to the GPU machine
    assert (here["COPY_TO"] / "far" / "metrics.jsonl").read_text().count("\n") == 2
    assert not (here["COPY_TO"] / "far" / "checkpoints").exists()  # small files only


def test_a_run_folder_here_that_is_further_along_is_left_alone(returned, tmp_path):
    files, _ = returned
    runs = tmp_path / "runs"
    make_run(runs, "far", 3, b"the newer checkpoint")  # trained on here after the GPU call
    here = {"RUNS": runs, "COPY_TO": tmp_path / "docs", "GPU_RUNS": tmp_path / "g"}
    done = script("gpu_put_back.sh", str(files), "far", **here)
    assert done.returncode == 1
    assert "far: skipped, 2 epochs in the archive against 3 here" in done.stdout
    assert (runs / "far" / "metrics.jsonl").read_text().count("\n") == 3
    assert (runs / "far" / "checkpoints" / "latest").read_text().strip().startswith("epoch-00003")


def test_a_longer_record_in_docs_is_kept_while_the_run_comes_back(returned, tmp_path):
    """The run was started again after its folder was lost: its record stays until it passes."""
    files, payload = returned
    here = {"RUNS": tmp_path / "runs", "COPY_TO": tmp_path / "docs", "GPU_RUNS": tmp_path / "g"}
    record = here["COPY_TO"] / "far" / "metrics.jsonl"
    record.parent.mkdir(parents=True)
    record.write_text("".join(json.dumps({"epoch": e}) + "\n" for e in range(1, 6)))
    done = script("gpu_put_back.sh", str(files), "far", **here)
    assert done.returncode == 0, done.stderr
    assert f"far: 2 epochs; {here['COPY_TO'] / 'far'} records 5, kept" in done.stdout
    assert record.read_text().count("\n") == 5
    assert (here["RUNS"] / "far" / "metrics.jsonl").read_text().count("\n") == 2
    checkpoints = here["GPU_RUNS"] / "far" / "checkpoints"
    assert (checkpoints / (checkpoints / "latest").read_text().strip()).read_bytes() == payload


def test_a_missing_part_is_refused(returned, tmp_path):
    files, _ = returned
    (files / "checkpoint.part-ab").unlink()
    here = {"RUNS": tmp_path / "runs", "COPY_TO": tmp_path / "docs", "GPU_RUNS": tmp_path / "g"}
    done = script("gpu_put_back.sh", str(files), "far", **here)
    assert done.returncode != 0
    assert not (tmp_path / "runs" / "far" / "checkpoints").exists()
