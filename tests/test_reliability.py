"""No lost work: runs killed (SIGKILL) or interrupted (Ctrl-C) at any moment resume exactly."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from adgm.machine import cpu_model
from adgm.run_folder import read_starts, without_timings

# 6 epochs of 20 steps, ~0.15 s each here: a kill after at most 3 epochs and 0.3 s always
# finds the run alive (with 4 epochs of 10 steps it sometimes had finished).
RUN = [
    "--subset",
    "2000",
    "--test-subset",
    "200",
    "--hidden",
    "24",
    "--z-dim",
    "4",
    "--a-dim",
    "4",
    "--eval-samples",
    "2",
    "--epochs",
    "6",
]
# Runs `adgm` with torch.save patched to die (SIGKILL) halfway through its n-th checkpoint.
KILL_DURING_WRITE = """
import os, signal, sys, torch
import adgm.checkpoint as checkpoint
calls = {"n": 0}
real_save = torch.save
def dying_save(state, out):
    calls["n"] += 1
    if calls["n"] == int(os.environ["ADGM_TEST_DIE_AT_SAVE"]):
        out.write(b"half a checkpoint")
        out.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real_save(state, out)
checkpoint.torch.save = dying_save
from adgm.cli import main
sys.exit(main(sys.argv[1:]))
"""


def adgm_process(*args, log, script=None, env=None):
    """Start `adgm ARGS` (or `python -c script ARGS`) with stdout and stderr going to `log`."""
    command = (
        [sys.executable, "-c", script, *args]
        if script
        else [sys.executable, "-m", "adgm.cli", *args]
    )
    with open(log, "w") as out:
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )


def finish(run_dir):
    result = subprocess.run(
        [sys.executable, "-m", "adgm.cli", "train", "--resume", "--out", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return result


def comparable_metrics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return list(map(without_timings, rows))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The metrics of an uninterrupted run, made once for every test of this module."""
    if not os.environ.get("ADGM_DATA_DIR"):
        pytest.skip("ADGM_DATA_DIR is not set (CI sets it to ../shared/data/mnist)")
    folder = tmp_path_factory.mktemp("reference")
    run_dir, log = folder / "run", folder / "reference.log"
    process = adgm_process("train", *RUN, "--out", str(run_dir), log=log)
    assert process.wait(timeout=600) == 0, log.read_text()
    return comparable_metrics(run_dir)


def wait_for_epochs(run_dir, n, process, log):
    """Poll until metrics.jsonl holds n complete epochs."""
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text().count("\n") >= n):
        assert time.monotonic() < deadline and process.poll() is None, log.read_text()
        time.sleep(0.01)


def test_sigkill_at_random_moments_always_resumes_to_the_same_run(reference, tmp_path):
    rng = random.Random(0)
    for trial in range(3):
        run_dir, log = tmp_path / f"killed{trial}", tmp_path / f"killed{trial}.log"
        process = adgm_process("train", *RUN, "--out", str(run_dir), log=log)
        wait_for_epochs(run_dir, rng.randint(1, 3), process, log)
        time.sleep(rng.uniform(0.0, 0.3))  # somewhere in the next epoch or its checkpoint
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
        finish(run_dir)
        assert comparable_metrics(run_dir) == reference


def test_sigkill_during_a_checkpoint_write_loses_nothing(reference, tmp_path):
    run_dir = tmp_path / "torn"
    process = adgm_process(
        "train",
        *RUN,
        "--out",
        str(run_dir),
        script=KILL_DURING_WRITE,
        env={"ADGM_TEST_DIE_AT_SAVE": "3"},
        log=tmp_path / "log",
    )
    assert process.wait(timeout=600) == -signal.SIGKILL
    folder = run_dir / "checkpoints"
    assert (folder / "latest").read_text().strip() == "epoch-00002-step-00000.pt"
    assert not list(folder.glob("epoch-00003*")), "a torn checkpoint was left under its name"
    finish(run_dir)
    assert comparable_metrics(run_dir) == reference


def test_ctrl_c_writes_a_checkpoint_exits_130_and_resumes_exactly(reference, tmp_path):
    run_dir = tmp_path / "interrupted"
    log = tmp_path / "log"
    process = adgm_process("train", *RUN, "--out", str(run_dir), log=log)
    wait_for_epochs(run_dir, 1, process, log)  # then interrupt the second epoch
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130, log.read_text()
    assert "adgm: interrupted: stopped at epoch 2, step" in log.read_text()
    finish(run_dir)
    assert comparable_metrics(run_dir) == reference
    # starts.jsonl: the start and the resume, each with where it began and on what machine.
    first, resumed = read_starts(run_dir)
    assert (first["epoch"], first["step"]) == (0, 0)
    assert first["command"].startswith("adgm train --subset 2000")
    assert resumed["epoch"] == 1 and resumed["step"] > 0  # mid-epoch 2, from its checkpoint
    assert resumed["command"] == f"adgm train --resume --out {run_dir}"
    for start in (first, resumed):
        assert start["torch"] == torch.__version__ and start["device"] == "cpu"
        assert start["cpu"] == cpu_model() and start["cores"] >= 1 and start["target_epochs"] == 6


def test_sigterm_writes_a_checkpoint_exits_143_and_resumes_exactly(reference, tmp_path):
    """A scheduler's stop (SIGTERM, then SIGKILL after a grace period): the step finishes, a
    checkpoint is written at once, and the run resumes to the uninterrupted metrics."""
    run_dir, log = tmp_path / "terminated", tmp_path / "log"
    process = adgm_process("train", *RUN, "--out", str(run_dir), log=log)
    wait_for_epochs(run_dir, 1, process, log)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 143, log.read_text()
    text = log.read_text()
    assert "adgm: SIGTERM: stopping after this step" in text
    assert "adgm: interrupted: stopped at epoch 2, step" in text
    finish(run_dir)
    assert comparable_metrics(run_dir) == reference


def test_a_second_process_on_the_same_run_is_refused_at_once(mnist_dir, tmp_path):
    run_dir, log = tmp_path / "shared", tmp_path / "first.log"
    long_run = [*RUN[:-1], "1000"]  # still training whatever this machine's speed
    first = adgm_process("train", *long_run, "--out", str(run_dir), log=log)
    try:
        wait_for_epochs(run_dir, 1, first, log)
        second = subprocess.run(
            [sys.executable, "-m", "adgm.cli", "train", "--resume", "--out", str(run_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert first.poll() is None, "the first run ended before the second one started"
        assert second.returncode == 2, second.stderr
        line = second.stderr.strip()
        assert line.startswith("adgm: error: ") and "\n" not in line, second.stderr
        assert f"in use by another adgm process (pid {first.pid})" in line
        first.send_signal(signal.SIGINT)  # the first run goes on undisturbed until stopped
        assert first.wait(timeout=120) == 130, log.read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    epochs = [row["epoch"] for row in comparable_metrics(run_dir)]
    assert epochs == list(range(1, len(epochs) + 1))  # every epoch once, by one process


def test_a_killed_runs_lock_does_not_block_its_resume(reference, tmp_path):
    run_dir, log = tmp_path / "stale", tmp_path / "log"
    process = adgm_process("train", *RUN, "--out", str(run_dir), log=log)
    wait_for_epochs(run_dir, 1, process, log)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert (run_dir / "lock").read_text().strip() == str(process.pid)  # left behind
    finish(run_dir)
    assert comparable_metrics(run_dir) == reference


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it_afresh(reference, tmp_path):
    run_dir, log = tmp_path / "early", tmp_path / "log"
    process = adgm_process("train", *RUN, "--out", str(run_dir), log=log)
    deadline = time.monotonic() + 300
    while not (run_dir / "config.json").exists():  # the run has started, no epoch is done
        assert time.monotonic() < deadline and process.poll() is None, log.read_text()
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert not list((run_dir / "checkpoints").glob("epoch-*.pt"))
    result = finish(run_dir)
    assert "has no checkpoint yet: starting it from the beginning" in result.stdout
    assert comparable_metrics(run_dir) == reference


def test_a_full_disk_stops_the_run_with_one_line_and_its_resume_loses_nothing(reference, tmp_path):
    """A real full disk: a 1.5 MB tmpfs holds the first checkpoint (about 1 MB), not a second."""
    import shutil

    small, log = tmp_path / "small", tmp_path / "log"
    small.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(small)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        process = adgm_process("train", *RUN, "--out", str(small / "run"), log=log)
        assert process.wait(timeout=600) == 2, log.read_text()
        text = log.read_text()
        errors = [line for line in text.splitlines() if line.startswith("adgm: error: ")]
        assert len(errors) == 1 and "Traceback" not in text, text
        assert "No space left on device" in errors[0] or "enforce fail" in errors[0], errors
        assert "the newest intact checkpoint is epoch-00001-step-00000.pt" in errors[0]
        shutil.copytree(small / "run", tmp_path / "moved")  # the user makes room elsewhere
    finally:
        subprocess.run(["umount", str(small)], check=True)
    finish(tmp_path / "moved")
    assert comparable_metrics(tmp_path / "moved") == reference
