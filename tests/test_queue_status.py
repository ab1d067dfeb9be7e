"""scripts/queue_status.py: where each line of a run queue stands, read without touching it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.scripts import ROOT, load_script

SCRIPTS = ROOT / "scripts"

run_queue = load_script("scripts", "run_queue")
queue_status = load_script("scripts", "queue_status")

COMMAND = "adgm train --model m2 --mc-samples 1"


def record(folder: Path, epochs: int, seconds: float = 100.0, eval_seconds: float = 20.0) -> None:
    """A run folder's config and metrics to `epochs`, evaluated every 5th epoch."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    rows = []
    for epoch in range(1, epochs + 1):
        row = {"epoch": epoch, "J": 1.0, "seconds": seconds}
        if epoch % 5 == 0:
            row |= {"test_error": 0.1, "eval_seconds": eval_seconds}
        rows.append(json.dumps(row))
    (folder / "metrics.jsonl").write_text("\n".join(rows) + "\n")


def sleeper(*argv: str) -> subprocess.Popen:
    """A live process whose command line holds `argv`, for a lock file to name."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv])


@pytest.fixture
def queue(tmp_path):
    lines = [
        f"done 10 {COMMAND}",
        f"training 30 {COMMAND}",
        f"paused 30 {COMMAND}",
        f"squatted 30 {COMMAND}",
        f"waiting 30 {COMMAND}",
        f"lost 30 {COMMAND}",
        f"kept 20 {COMMAND}",
        f"held 30 {COMMAND} --precision bf16",
        f"done 40 {COMMAND}",
    ]
    path = tmp_path / "queue.txt"
    path.write_text("# a queue\n" + "\n".join(lines) + "\n")
    return path


def test_each_line_is_read_as_the_queue_would_take_it(queue, tmp_path):
    runs, copies = tmp_path / "runs", tmp_path / "copies"
    record(runs / "done", 10)
    record(runs / "training", 12)
    record(runs / "paused", 7)
    record(runs / "squatted", 3)
    record(copies / "lost", 8)  # its folder gone with a machine, its record short of 30
    record(copies / "kept", 20)  # its folder gone, its record at its target
    live = sleeper("adgm", "train", "--out", str(runs / "training"))
    other = sleeper("something-else")  # a live pid that is no run of this folder
    try:
        time.sleep(0.5)  # both command lines readable
        (runs / "training" / "lock").write_text(f"{live.pid}\n")
        (runs / "squatted" / "lock").write_text(f"{other.pid}\n")
        (runs / "paused" / "lock").write_text("999999999\n")  # a pid that cannot be live
        held = lambda run: "bf16" in run.arguments  # noqa: E731 (this CPU's answer aside)
        statuses = [
            queue_status.line_status(run, runs, copies, held=held)
            for run in run_queue.read_queue(queue)
        ]
    finally:
        for process in (live, other):
            process.kill()
            process.wait()
    got = [(s.name, s.target_epoch, s.epoch, s.state) for s in statuses]
    assert got == [
        ("done", 10, 10, "done"),
        ("training", 30, 12, "training"),
        ("paused", 30, 7, "paused"),
        ("squatted", 30, 3, "paused"),
        ("waiting", 30, 0, "waiting"),
        ("lost", 30, 8, "waiting: trains again from epoch 0"),
        ("kept", 20, 20, "done"),
        ("held", 30, 0, "held: bf16"),
        ("done", 40, 10, "paused"),  # its later line, a higher target, from the same folder
    ]
    training = statuses[1]
    # All 12 of its epochs (fewer than 20): 100 s each, and 20 s more at epochs 5 and 10.
    assert training.seconds_per_epoch == pytest.approx((12 * 100 + 2 * 20) / 12)
    assert training.hours_left == pytest.approx(18 * training.seconds_per_epoch / 3600)
    assert statuses[0].hours_left is None and statuses[5].hours_left is None  # done; not here


def test_the_pace_is_the_mean_of_the_last_twenty_epochs():
    rows = [{"epoch": e, "seconds": 1000.0 if e <= 5 else 60.0} for e in range(1, 31)]
    rows[-1]["eval_seconds"] = 40.0
    assert queue_status.seconds_per_epoch(rows) == pytest.approx((20 * 60 + 40) / 20)
    assert queue_status.seconds_per_epoch([]) is None


def test_the_script_prints_a_table_and_a_bad_queue_is_one_line(queue, tmp_path):
    runs = tmp_path / "runs"
    record(runs / "done", 10)
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "queue_status.py"), str(queue), "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()
    assert rows[0].startswith("| run | target | epoch | state |") and len(rows) == 2 + 9
    assert rows[2].startswith("| done | 10 | 10 | done |")

    queue.write_text("done ten adgm train\n")
    bad = subprocess.run(
        [sys.executable, str(SCRIPTS / "queue_status.py"), str(queue), "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "line 1" in bad.stderr


def test_an_fp32_line_whose_bf16_twin_trains_here_or_reaches_its_target_is_left(tmp_path):
    runs, copies = tmp_path / "runs", tmp_path / "copies"
    path = tmp_path / "queue.txt"
    path.write_text(
        f"full 30 {COMMAND} --device cpu\n"
        f"half 30 {COMMAND} --device cpu --precision bf16\n"
        f"other 30 {COMMAND} --device cpu --seed 3\n"
    )
    lines = run_queue.read_queue(path)

    def states(held):
        return [
            queue_status.line_status(run, runs, copies, held=held, lines=lines).state
            for run in lines
        ]

    never, bf16 = (lambda run: False), (lambda run: "bf16" in run.arguments)
    assert states(never) == ["left to half", "waiting", "waiting"]
    assert states(bf16) == ["waiting", "held: bf16", "waiting"]  # a CPU without bf16 kernels
    record(copies / "half", 30)  # its record reaches the target: answered on any CPU
    assert states(bf16) == ["left to half", "done", "waiting"]
