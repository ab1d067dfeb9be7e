"""Where each line of a run queue stands, and when the runs that train should reach their targets.

    python scripts/queue_status.py QUEUE [--runs-dir ../runs] [--copy-to docs/runs]

QUEUE is scripts/run_queue.py's file. One row per line, in the queue's order:

- epoch: the last epoch with a metrics row in RUNS_DIR/NAME, or, where that folder is gone, in
  the copy --copy-to keeps (DIR/NAME);
- state: "done" (the run or its copy reaches the line's target); "training" (a live adgm
  process holds the run folder's lock, its pid in RUN_DIR/lock); "paused" (a folder short of the
  target that no process holds: the queue resumes it from its last checkpoint); "waiting" (no
  folder: the queue starts it; "trains again from epoch 0" where only its copy records part of
  it); "held: bf16" (a bf16 line on a CPU without bf16 kernels, which run_queue holds); "left
  to NAME" (an fp32 line whose bf16 twin NAME trains here or reaches its target: run_queue
  leaves it);
- pace: the mean wall time of the last 20 epochs recorded (training and evaluation), and, for a
  run training or paused here, the hours left to the target at that pace.

Nothing is written and no lock is taken, so it is safe beside a running queue.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_queue import QueuedRun, answering_bf16_twin, held_for_bf16, read_queue  # noqa: E402

from adgm.run_folder import CONFIG, read_metrics  # noqa: E402
from adgm.run_lock import LOCK_FILE  # noqa: E402

PACE_EPOCHS = 20  # the recent epochs whose wall time gives a run's pace


@dataclass(frozen=True)
class LineStatus:
    name: str
    target_epoch: int
    epoch: int  # the last epoch recorded (run folder, or its copy where the folder is gone)
    state: str
    seconds_per_epoch: float | None  # mean wall time of the last PACE_EPOCHS epochs

    @property
    def hours_left(self) -> float | None:
        """Hours to the target at the recent pace, for a run that trains or is paused here (None
        for the others: done, held, or not started on this machine)."""
        if self.state not in ("training", "paused") or self.seconds_per_epoch is None:
            return None
        return (self.target_epoch - self.epoch) * self.seconds_per_epoch / 3600


def held_by_a_live_process(run_dir: Path) -> bool:
    """Whether the pid in the run folder's lock file is a live adgm process that names this run
    folder (on Linux, from /proc/PID/cmdline; elsewhere, whether that pid is alive at all). The
    lock itself is not tried: taking it, however briefly, could refuse a run the queue starts."""
    try:
        pid = int((run_dir / LOCK_FILE).read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return True  # no /proc here: a live pid is the best evidence there is
    return "adgm" in command and run_dir.name in command


def seconds_per_epoch(rows: list[dict]) -> float | None:
    """Mean wall seconds (training plus evaluation) over the last PACE_EPOCHS rows."""
    recent = rows[-PACE_EPOCHS:]
    if not recent:
        return None
    return math.fsum(row.get("seconds", 0.0) + row.get("eval_seconds", 0.0) for row in recent) / (
        len(recent)
    )


def recorded_rows(name: str, runs_dir: Path, copy_to: Path | None) -> list[dict]:
    """The metrics rows of RUNS_DIR/NAME, or of its copy where the run folder is gone."""
    if (runs_dir / name / CONFIG).exists():
        return read_metrics(runs_dir / name)
    if copy_to is not None and (copy_to / name / CONFIG).exists():
        return read_metrics(copy_to / name)  # the record outlives a lost run folder
    return []


def recorded_epoch(name: str, runs_dir: Path, copy_to: Path | None) -> int:
    """The last epoch recorded_rows has (0 for none)."""
    return max((row["epoch"] for row in recorded_rows(name, runs_dir, copy_to)), default=0)


def line_status(
    run: QueuedRun,
    runs_dir: Path,
    copy_to: Path | None,
    held: Callable[[QueuedRun], bool] = held_for_bf16,
    lines: Sequence[QueuedRun] = (),
) -> LineStatus:
    """One line of the queue (`lines`, the whole queue, for its bf16 twin): how far its run got
    and what the queue does with it next."""
    run_dir = runs_dir / run.name
    has_folder = (run_dir / CONFIG).exists()
    rows = recorded_rows(run.name, runs_dir, copy_to)
    epoch = max((row["epoch"] for row in rows), default=0)
    if epoch >= run.target_epoch:
        state = "done"
    elif held(run):
        state = "held: bf16"
    elif has_folder and held_by_a_live_process(run_dir):
        state = "training"
    elif twin := answering_bf16_twin(
        run, lines, held, lambda name: recorded_epoch(name, runs_dir, copy_to)
    ):
        state = f"left to {twin.name}"
    elif has_folder:
        state = "paused"
    else:
        state = "waiting: trains again from epoch 0" if rows else "waiting"
    return LineStatus(run.name, run.target_epoch, epoch, state, seconds_per_epoch(rows))


def table(statuses: list[LineStatus]) -> str:
    """The statuses as a Markdown table, one row per line of the queue."""
    lines = [
        "| run | target | epoch | state | s an epoch | hours left |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for status in statuses:
        pace = status.seconds_per_epoch
        left = status.hours_left
        lines.append(
            f"| {status.name} | {status.target_epoch} | {status.epoch} | {status.state} | "
            f"{'-' if pace is None else f'{pace:.0f}'} | "
            f"{'-' if left is None else f'{left:.1f}'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("queue", type=Path)
    parser.add_argument("--runs-dir", type=Path, default=Path("../runs"))
    parser.add_argument(
        "--copy-to", type=Path, metavar="DIR", help="where run_queue keeps the runs' records"
    )
    args = parser.parse_args(argv)
    try:
        lines = read_queue(args.queue)
        statuses = [line_status(run, args.runs_dir, args.copy_to, lines=lines) for run in lines]
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"queue_status: error: {error}", file=sys.stderr)
        return 2
    print(table(statuses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
