"""Keep a queue of long training runs going on a small machine, a few at a time.

    python scripts/run_queue.py QUEUE [--runs-dir ../runs] [--parallel 2] [--copy-to docs/runs]

QUEUE is a text file with one run a line, in the order to train them:

    NAME  TARGET_EPOCH  adgm train ARGUMENTS...     # without --out and --epochs

A name may come back on a later line, with the same arguments and a higher target: the run
trains to its first target in its first place in the queue and further in its later one.

Each run lives in RUNS_DIR/NAME (its log in RUNS_DIR/NAME.log) and trains until its metrics
have a row for TARGET_EPOCH. Up to --parallel runs train at once, one thread each
(OMP_NUM_THREADS=1); when one reaches its target the next unfinished one starts. A run with a
folder continues with `adgm train --resume --epochs TARGET` (exact, from its last
checkpoint); a new one starts with its line's arguments and `--epochs TARGET`. So the same
command, run again after the machine stopped everything, picks up where the queue was; raising a
line's target later trains that run further. With --copy-to DIR the small files of each
running run (config.json, command.txt, metrics.jsonl, starts.jsonl) are kept copied in DIR/NAME,
ready to commit. A copy that reaches further than its run is never overwritten: when the machine
was replaced and the runs folder lost, a line whose copy reaches its target counts as done, and
a run whose copy stops short trains again from epoch 0 (training is deterministic on a CPU,
but bf16 steps round differently on processors with other bf16 instructions), its copy kept as
it was until the new run passes it, then compared with it row by row (a copy that differs is
kept in NAME/replaced-record before the new run's files replace it). The queue
file is read again at every poll (5 s), so lines added, removed or moved while the queue trains
count from the next start (a file that no longer reads keeps the last good queue, with a
message). A run that exits with an error is
reported and not started again in this call; so is a run stopped by a Ctrl-C (SIGINT) or a
SIGTERM sent to it alone, which pauses that run (from its checkpoint) and lets the next line
start. Ctrl-C (or
SIGTERM) to the queue passes Ctrl-C to the runs, which write a checkpoint after their current
step, and waits for them. On a CPU without bf16 kernels (adgm.cpu.has_bf16_matrix_kernels: no
AVX-512 or AMX), where a bf16 step takes 8-13 times an fp32 one, a line that trains in bf16 on
the CPU is held, with a message, and the lines after it go on; --bf16-on-any-cpu trains it.
An fp32 line on the CPU whose bf16 twin is in the queue (another name, the same configuration
but the precision, to at least its target) is left, with a message, where that twin trains (a
CPU with bf16 kernels, or --bf16-on-any-cpu) or already reaches the fp32 line's target: the
twin answers it in half the time; on a CPU without bf16 kernels the fp32 line trains instead.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import io
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from adgm.config import RunConfig
from adgm.run_folder import (
    COMMAND,
    CONFIG,
    METRICS,
    STARTS,
    read_metrics,
    replaced_record_dir,
    without_timings,
)

# adgm train's exit statuses after a Ctrl-C or a SIGTERM: it wrote a checkpoint and paused.
INTERRUPTED = (130, 143)


@dataclass(frozen=True)
class QueuedRun:
    name: str
    target_epoch: int
    arguments: tuple[str, ...]  # after `adgm train`


def read_queue(path: Path) -> list[QueuedRun]:
    """The queue's runs, in order; ValueError naming the line for a malformed one."""
    runs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        where = f"{path}, line {number}"
        if len(words) < 4 or words[2:4] != ["adgm", "train"] or not words[1].isdigit():
            raise ValueError(f"{where}: expected NAME TARGET_EPOCH adgm train ARGUMENTS...")
        arguments = tuple(words[4:])
        if {"--out", "--epochs", "--resume"} & set(arguments):
            raise ValueError(f"{where}: --out, --epochs and --resume are the queue's to give")
        earlier = [run for run in runs if run.name == words[0]]
        if earlier and earlier[-1].arguments != arguments:
            raise ValueError(f"{where}: {words[0]} is already in the queue with other arguments")
        if earlier and earlier[-1].target_epoch >= int(words[1]):
            raise ValueError(f"{where}: a later line for {words[0]} must raise its target epoch")
        runs.append(QueuedRun(words[0], int(words[1]), arguments))
    return runs


def last_epoch(run_dir: Path) -> int:
    """The last epoch with a metrics row (0 for a run not started)."""
    return max((row["epoch"] for row in read_metrics(run_dir)), default=0)


@functools.cache
def parsed_training_config(arguments: tuple[str, ...]) -> RunConfig | None:
    """`adgm train ARGUMENTS`'s configuration, or None where the CLI refuses them (kept: a queue
    reads the same lines again and again)."""
    from adgm.cli import build_parser
    from adgm.cli_flags import config_from_args

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # its usage error is said when it runs
            return config_from_args(build_parser().parse_args(["train", *arguments]))
    except SystemExit:
        return None


def cpu_training_config(run: QueuedRun) -> RunConfig | None:
    """The configuration `adgm train` reads from the line's arguments (defaults, --preset and
    abbreviations included) where it trains on this machine's CPU: device cpu, or auto on a
    machine without CUDA. None for a line that trains elsewhere, or that the CLI refuses (left to
    fail as it runs). A run folder keeps the configuration it started with, so the line's
    arguments say it for a resumed run too."""
    from adgm.devices import resolve_device

    config = parsed_training_config(run.arguments)
    if config is None:
        return None
    device = config.train.device
    on_the_cpu = device == "cpu" or (device == "auto" and resolve_device("auto").type == "cpu")
    return config if on_the_cpu else None


def trains_bf16_on_the_cpu(run: QueuedRun) -> bool:
    """Whether the line trains with precision bf16 on this machine's CPU."""
    config = cpu_training_config(run)
    return config is not None and config.train.precision == "bf16"


def bf16_twin(run: QueuedRun, lines: Sequence[QueuedRun]) -> QueuedRun | None:
    """The first line of `lines` that trains `run` (an fp32 line on the CPU) in bf16: another
    name, to at least run's target, with a configuration equal to run's but for its precision
    (seeds, model and every flag alike). None for a bf16 line, or where there is no such line."""
    config = cpu_training_config(run)
    if config is None or config.train.precision != "fp32":
        return None
    in_bf16 = dataclasses.replace(config, train=dataclasses.replace(config.train, precision="bf16"))
    return next(
        (
            line
            for line in lines
            if line.name != run.name
            and line.target_epoch >= run.target_epoch
            and cpu_training_config(line) == in_bf16
        ),
        None,
    )


def held_for_bf16(run: QueuedRun) -> bool:
    """A bf16 line on a CPU that has no bf16 kernels (adgm.cpu.has_bf16_matrix_kernels)."""
    from adgm.cpu import has_bf16_matrix_kernels

    return not has_bf16_matrix_kernels() and trains_bf16_on_the_cpu(run)  # the CPU's, first


def answering_bf16_twin(
    run: QueuedRun,
    lines: Sequence[QueuedRun],
    held: Callable[[QueuedRun], bool],
    reached_epoch: Callable[[str], int],
) -> QueuedRun | None:
    """`run`'s bf16 twin (bf16_twin) where the twin answers it, so the queue leaves `run`: the
    twin is not held on this CPU (`held`), or it already reaches run's target
    (`reached_epoch(NAME)`: the last epoch its run folder or its record has). None otherwise."""
    twin = bf16_twin(run, lines)
    if twin is None or (held(twin) and reached_epoch(twin.name) < run.target_epoch):
        return None
    return twin


def train_command(run: QueuedRun, run_dir: Path) -> list[str]:
    """Continue a run that was started (from its last checkpoint), or start it."""
    adgm = [sys.executable, "-m", "adgm.cli", "train"]
    target = ["--epochs", str(run.target_epoch), "--out", str(run_dir)]
    if (run_dir / CONFIG).exists():  # --resume starts afresh without a checkpoint
        return [*adgm, "--resume", *target]
    return [*adgm, *run.arguments, *target]


SMALL_FILES = (CONFIG, COMMAND, METRICS, STARTS)  # what --copy-to copies: never checkpoints


def copy_small_files(run_dir: Path, destination: Path) -> None:
    """Copy a run folder's small files into `destination` where they changed (atomically)."""
    for name in SMALL_FILES:
        source = run_dir / name
        if not source.exists():
            continue
        content, target = source.read_bytes(), destination / name
        if target.exists() and target.read_bytes() == content:
            continue
        destination.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".tmp")
        partial.write_bytes(content)
        partial.replace(target)


def run_queue(
    queue_path: Path,
    runs_dir: Path,
    parallel: int,
    poll: float = 5.0,
    *,
    copy_to: Path | None = None,
    hold_slow_bf16: bool = False,
) -> int:
    """Train every run of the queue file to its target; returns the number of runs that failed.

    The file is read again at every poll; a line (name, target) is taken once per call. With
    `copy_to`, each running run's small files are copied to copy_to/NAME at every poll. With
    `hold_slow_bf16`, bf16 lines on a CPU without bf16 kernels are held (``held_for_bf16``).
    """
    runner = QueueRunner(
        queue_path, runs_dir, parallel, poll, copy_to=copy_to, hold_slow_bf16=hold_slow_bf16
    )
    return runner.run()


class QueueRunner:
    """One call of run_queue: the runs it started, took, paused and saw fail."""

    def __init__(
        self,
        queue_path: Path,
        runs_dir: Path,
        parallel: int,
        poll: float,
        *,
        copy_to: Path | None = None,
        hold_slow_bf16: bool = False,
    ):
        self.queue = Queue(queue_path)
        self.hold_slow_bf16 = hold_slow_bf16
        self.held_bf16: set[str] = set()  # bf16 runs on a CPU without bf16 kernels
        self.left_to_twin: set[str] = set()  # fp32 runs whose bf16 twin answers them
        self.runs_dir, self.parallel, self.poll = runs_dir, parallel, poll
        self.running: dict[str, subprocess.Popen] = {}
        self.taken: set[tuple[str, int]] = set()  # lines started, or found done, in this call
        self.failed: set[str] = set()
        self.paused: set[str] = set()  # interrupted by hand
        self.environment = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.stopping = False
        self.copier = Copier(runs_dir, copy_to) if copy_to is not None else None

    def run(self) -> int:
        """Start, watch and reap runs until none is waiting or running; the number that failed."""
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            lines = self.queue.runs()  # read once a poll
            while (not self.stopping and self.waiting(lines)) or self.running:
                self.start_runs(lines)
                time.sleep(self.poll)
                lines = self.queue.runs()
                self.reap()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return len(self.failed)

    def stop(self, signum, frame) -> None:
        """Ctrl-C or SIGTERM to the queue: one Ctrl-C to each run, which checkpoints and ends."""
        self.stopping = True
        for process in self.running.values():
            process.send_signal(signal.SIGINT)

    def waiting(self, lines: list[QueuedRun]) -> list[QueuedRun]:
        """The lines still to take, in order, skipping runs that failed, were paused, are held
        or are left to their bf16 twins."""
        skipped = self.failed | self.paused | self.held_bf16 | self.left_to_twin
        return [
            run
            for run in lines
            if (run.name, run.target_epoch) not in self.taken and run.name not in skipped
        ]

    def start_runs(self, lines: list[QueuedRun]) -> None:
        """Start the first waiting lines until `parallel` runs train (a line found done is taken
        without starting anything)."""
        while len(self.running) < self.parallel and not self.stopping:
            run = next((r for r in self.waiting(lines) if r.name not in self.running), None)
            if run is None:
                return
            self.taken.add((run.name, run.target_epoch))
            run_dir = self.runs_dir / run.name
            done = last_epoch(run_dir)
            if done >= run.target_epoch:
                continue
            recorded = 0  # epochs the copy records, where the run folder is gone
            if self.copier is not None and not (run_dir / CONFIG).exists():
                recorded = self.copier.recorded_epoch(run.name)
                where = self.copier.copy_to / run.name
                if recorded >= run.target_epoch:
                    say(f"{run.name}: {where} records epoch {recorded}; not trained again")
                    continue
            # Held only where there is training to do: a line its record reaches is done.
            if self.held(run):
                self.held_bf16.add(run.name)  # and its later lines
                say(
                    f"{run.name}: held: it trains in bf16 on this CPU, which has no bf16 "
                    "kernels (a step 8-13 times an fp32 one); --bf16-on-any-cpu trains it"
                )
                continue
            twin = answering_bf16_twin(run, lines, self.held, self.reached_epoch)
            if twin is not None:
                self.left_to_twin.add(run.name)  # and its later lines
                say(
                    f"{run.name}: left to {twin.name}, the same run in bf16, which trains on "
                    f"this CPU or reaches epoch {run.target_epoch} already"
                )
                continue
            if recorded:
                self.copier.held.add(run.name)  # compared with the run once it passes
                say(
                    f"{run.name}: no run folder, {where} records epoch {recorded}: "
                    "training again from epoch 0; the record is kept until the run passes it"
                )
            say(f"{run.name}: from epoch {done} to {run.target_epoch}")
            with open(self.runs_dir / f"{run.name}.log", "a") as log:
                # Its own session: a terminal's Ctrl-C reaches the queue only, which passes one
                # on (a second would make the run abandon its step).
                self.running[run.name] = subprocess.Popen(
                    train_command(run, run_dir),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.environment,
                    start_new_session=True,
                )

    def held(self, run: QueuedRun) -> bool:
        """Whether this call holds the line (`hold_slow_bf16` and ``held_for_bf16``)."""
        return self.hold_slow_bf16 and held_for_bf16(run)

    def reached_epoch(self, name: str) -> int:
        """The last epoch of the run's folder or, where further, of its record."""
        recorded = self.copier.recorded_epoch(name) if self.copier is not None else 0
        return max(last_epoch(self.runs_dir / name), recorded)

    def reap(self) -> None:
        """Copy each running run's small files; say how each run that ended did."""
        for name, process in list(self.running.items()):
            finished = process.poll() is not None
            if self.copier is not None:
                self.copier.copy(name)
            if not finished:
                continue
            del self.running[name]
            if process.returncode in INTERRUPTED and not self.stopping:
                self.paused.add(name)  # Ctrl-C to the run alone: it waits for the next call
                at = last_epoch(self.runs_dir / name)
                say(f"{name}: interrupted at epoch {at}; not started again in this call")
            elif process.returncode != 0 and not self.stopping:
                self.failed.add(name)  # nor its later lines
                say(f"{name}: exited with {process.returncode}; see {name}.log")
            else:
                say(f"{name}: stopped at epoch {last_epoch(self.runs_dir / name)}")


def first_difference(record: list[dict], rows: list[dict]) -> str | None:
    """Where `rows` first differ from `record` (timings aside, `without_timings`) over their
    common epochs, in words; None where every common epoch agrees exactly."""
    recorded = {row["epoch"]: without_timings(row) for row in record}
    for row in map(without_timings, rows):
        old = recorded.get(row["epoch"], row)
        for key in sorted(old.keys() | row.keys()):
            if old.get(key) != row.get(key):
                return f"epoch {row['epoch']}: {key} {row.get(key)} against {old.get(key)}"
    return None


def keep_replaced_record(destination: Path) -> Path:
    """Copy a record's small files into a new folder inside it (``replaced-record``, then
    ``replaced-record-2``, ...) before a run that differs from it replaces them; that folder.

    Inside, not beside, so that ``docs/runs/*/`` still names one folder a run.
    """
    number = 1
    while (kept := replaced_record_dir(destination, number)).exists():
        number += 1
    partial = kept.with_name(kept.name + ".tmp")
    shutil.rmtree(partial, ignore_errors=True)  # left by an earlier call that stopped halfway
    partial.mkdir()
    copy_small_files(destination, partial)
    partial.rename(kept)
    return kept


class Copier:
    """copy_small_files for the queue. A copy that reaches further than its run is held until
    the run passes it, then the two are compared; a copy failing is said once and does not stop
    the run."""

    def __init__(self, runs_dir: Path, copy_to: Path):
        self.runs_dir, self.copy_to = runs_dir, copy_to
        self.complaints: set[str] = set()
        self.held: set[str] = set()

    def recorded_epoch(self, name: str) -> int:
        """The last epoch of the copy's metrics (0 without a copy, or one that does not read)."""
        try:
            return last_epoch(self.copy_to / name)
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def copy(self, name: str) -> None:
        run_dir, destination = self.runs_dir / name, self.copy_to / name
        try:
            recorded, reached = self.recorded_epoch(name), last_epoch(run_dir)
            if recorded > reached:
                if name not in self.held:
                    self.held.add(name)
                    say(f"{name}: at epoch {reached}, {destination} records {recorded}: kept")
                return
            if name in self.held:
                self.held.discard(name)
                difference = first_difference(read_metrics(destination), read_metrics(run_dir))
                if difference is None:
                    say(f"{name}: passed its record (epoch {recorded}) and agrees exactly")
                else:
                    kept = keep_replaced_record(destination)
                    say(
                        f"{name}: passed its record (epoch {recorded}) and differs at "
                        f"{difference}; the record is kept in {kept}"
                    )
            copy_small_files(run_dir, destination)
        except (OSError, ValueError) as error:
            if name not in self.complaints:
                self.complaints.add(name)
                say(f"{name}: cannot copy its files to {destination} ({error})")


class Queue:
    """The queue file, read afresh by each call of ``runs``; its last good reading if it breaks."""

    def __init__(self, path: Path):
        self.path = path
        self.last_good = read_queue(path)  # the first reading must succeed
        self.complaint = ""

    def runs(self) -> list[QueuedRun]:
        try:
            self.last_good, self.complaint = read_queue(self.path), ""
        except (OSError, ValueError) as error:
            if str(error) != self.complaint:  # say it once, not at every poll
                self.complaint = str(error)
                say(f"{error}; keeping the queue as it last read")
        return self.last_good


def say(text: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} run_queue: {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("queue", type=Path)
    parser.add_argument("--runs-dir", type=Path, default=Path("../runs"))
    parser.add_argument("--parallel", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument(
        "--copy-to",
        type=Path,
        metavar="DIR",
        help="keep a copy of each running run's config.json, command.txt, metrics.jsonl and "
        "starts.jsonl in DIR/NAME (e.g. docs/runs), never its checkpoints",
    )
    parser.add_argument(
        "--bf16-on-any-cpu",
        action="store_true",
        help="train bf16 lines on a CPU without bf16 kernels too (held by default)",
    )
    parser.add_argument("--poll", type=float, default=5.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parallel < 1:
        parser.error("--parallel must be at least 1")
    try:
        read_queue(args.queue)
    except (OSError, ValueError) as error:
        print(f"run_queue: error: {error}", file=sys.stderr)
        return 2
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    failed = run_queue(
        args.queue,
        args.runs_dir,
        args.parallel,
        args.poll,
        copy_to=args.copy_to,
        hold_slow_bf16=not args.bf16_on_any_cpu,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
