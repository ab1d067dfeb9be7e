"""A run folder: everything of a run that lives in files, and nothing of how it trains.

    RUN_DIR/config.json       the RunConfig (written once, by ``create``)
    RUN_DIR/command.txt       the command that started the run
    RUN_DIR/metrics.jsonl     one JSON object per epoch
    RUN_DIR/starts.jsonl      one JSON object each time the run started or resumed: when, from
                              which epoch and step, with which command, on which machine
    RUN_DIR/checkpoints/      the newest K checkpoints and a ``latest`` pointer (adgm.checkpoint)
    RUN_DIR/lock              one process at a time (adgm.run_lock)

A record of a run kept in the repository (docs/runs/NAME) may hold, inside it, the record of an
earlier run of the same command that a run trained again replaced: NAME/replaced-record (then
replaced-record-2, ...), with the same small files.

Every write error becomes one AdgmError naming the file, the cause and the checkpoint a resume
would start from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adgm.checkpoint import (
    FOLDER,
    POINTER,
    atomic_write_text,
    has_checkpoint,
    load_latest_checkpoint,
    save_checkpoint,
)
from adgm.config import RunConfig
from adgm.errors import AdgmError
from adgm.run_lock import RunLock

METRICS = "metrics.jsonl"
CONFIG = "config.json"
COMMAND = "command.txt"
STARTS = "starts.jsonl"
REPLACED_RECORD = "replaced-record"  # RECORD/replaced-record[-N]: a record a retrained run replaced


def replaced_record_dir(record: Path, number: int) -> Path:
    """The folder of the number-th record kept inside ``record``: ``replaced-record`` for the
    first, ``replaced-record-N`` for the N-th after it."""
    return record / (REPLACED_RECORD if number == 1 else f"{REPLACED_RECORD}-{number}")


def run_name(run_dir: Path) -> str:
    """The name a table gives a run: its folder's name, or ``NAME/replaced-record[-N]`` for a
    replaced record kept inside the record NAME (its own folder name alone would not say whose)."""
    if run_dir.name.startswith(REPLACED_RECORD) and run_dir.parent.name:
        return f"{run_dir.parent.name}/{run_dir.name}"
    return run_dir.name


class RunFolder:
    """The files of one run; see the module docstring."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock: RunLock | None = None

    def hold_lock(self) -> None:
        """Lock the folder for this process (once); another process holding it is an error."""
        if self.lock is None:
            self.lock = RunLock.acquire(self.path)

    def release_lock(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def create(self, config: RunConfig, command: str) -> None:
        """Start a fresh run here: config.json and command.txt; refuse to overwrite a run."""
        self.hold_lock()
        if (self.path / METRICS).exists() or has_checkpoint(self.path):
            raise AdgmError(f"{self.path} already holds a run; use --resume or another --out")
        try:
            atomic_write_text(self.path / CONFIG, json.dumps(config.to_dict(), indent=2))
            atomic_write_text(self.path / COMMAND, command + "\n")
        except OSError as exc:
            raise AdgmError(f"cannot write the run folder {self.path}: {exc}") from None

    def has_checkpoint(self) -> bool:
        return has_checkpoint(self.path)

    def latest_checkpoint(self) -> dict[str, Any] | None:
        """The newest checkpoint that loads; None when no checkpoint was ever written."""
        if not self.has_checkpoint():
            return None
        return load_latest_checkpoint(self.path)

    def save_checkpoint(self, state: dict[str, Any], *, keep: int) -> Path:
        try:
            return save_checkpoint(self.path, state, keep=keep)
        except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as RuntimeError
            raise AdgmError(
                f"cannot write a checkpoint in {self.path / FOLDER} ({_first_line(exc)}); "
                f"{self.intact()}; free some space and continue with --resume"
            ) from None

    def append_metrics(self, row: dict[str, float]) -> None:
        """One line of metrics.jsonl; written before the epoch's checkpoint (see Trainer)."""
        self._append_json(METRICS, row)

    def record_start(self, start: dict[str, Any]) -> None:
        """One line of starts.jsonl: where a start or resume began (see Trainer.fit)."""
        self._append_json(STARTS, start)

    def _append_json(self, name: str, record: dict[str, Any]) -> None:
        """Append `record` as one JSON line to RUN_DIR/name; a write error is one AdgmError."""
        try:
            _append_line(self.path / name, json.dumps(record))
        except OSError as exc:
            raise AdgmError(
                f"cannot append to {self.path / name} ({_first_line(exc)}); "
                f"{self.intact()}; free some space and continue with --resume"
            ) from None

    def truncate_metrics(self, epochs_done: int) -> None:
        """Drop metrics rows of epochs after `epochs_done` (they will be trained again)."""
        path = self.path / METRICS
        if not path.exists():
            return
        kept = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if _parsed_epoch(line) is not None and _parsed_epoch(line) <= epochs_done
        ]
        atomic_write_text(path, "".join(line + "\n" for line in kept))

    def intact(self) -> str:
        """Which checkpoint a resume would start from, in words."""
        try:
            name = (self.path / FOLDER / POINTER).read_text(encoding="utf-8").strip()
        except OSError:
            name = ""
        if name:
            return f"the newest intact checkpoint is {name}"
        return "no checkpoint was written yet, so a resume starts the run from the beginning"


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """The metrics rows of a run folder, in epoch order."""
    return _read_json_lines(Path(run_dir) / METRICS)


def without_timings(row: dict[str, float]) -> dict[str, float]:
    """A metrics row less its timings (every key naming seconds, and steps_per_s): what the same
    run repeated, resumed or trained again on another CPU, must give again exactly."""
    return {
        key: value for key, value in row.items() if "second" not in key and key != "steps_per_s"
    }


def read_starts(run_dir: Path) -> list[dict[str, Any]]:
    """The starts of a run folder, oldest first (empty for a run older than this record)."""
    return _read_json_lines(Path(run_dir) / STARTS)


def _read_json_lines(path: Path) -> list[dict[str, Any]]:
    """One JSON object per non-empty line of `path`; none for a file not written yet.

    A last line that does not parse is a write cut short by a crash (the run's next --resume
    drops it) and is left out; one before it means the file was damaged: an AdgmError naming it.
    """
    if not path.exists():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            if number == len(lines):
                break
            raise AdgmError(f"{path}, line {number}, is not a JSON record: the file is damaged")
        records.append(record)
    return records


def load_run_config(run_dir: Path) -> RunConfig:
    """The RunConfig stored in a run folder, with a clear error if it is not one."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise AdgmError(f"{run_dir} is not a run folder (no {CONFIG})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AdgmError(f"{path} is not valid JSON: {exc}") from None
    return RunConfig.from_dict(raw)


def _append_line(path: Path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")


def _parsed_epoch(line: str) -> int | None:
    """The epoch of a metrics line, or None for a line cut short by a crash."""
    try:
        return int(json.loads(line)["epoch"])
    except (ValueError, KeyError, TypeError):
        return None


def _first_line(exc: BaseException) -> str:
    """What went wrong, in one line: the OSError behind the exception if there is one (torch's
    serialiser reports a full disk as a RuntimeError raised while handling the OSError),
    otherwise the first line of its message."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError):
            exc = seen
            break
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
