"""A run: a TrainingLoop (adgm.training_loop) composed with a RunFolder (adgm.run_folder).

The loop trains and knows nothing of files; the folder holds the config, command, metrics,
checkpoints and lock and knows nothing of training. ``Trainer`` joins them: ``start`` or
``resume``, then ``fit`` trains until the configured number of epochs, writing each epoch's
metrics row and then its checkpoint, with Ctrl-C, timed checkpoints and opt-in rollbacks after a
divergence. The CLI and ``adgm reproduce`` use it; the estimator uses the loop alone.
"""

from __future__ import annotations

import contextlib
import datetime
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from adgm.checkpoint import FOLDER, load_epoch_checkpoint, load_latest_checkpoint
from adgm.cli_flags import resumable_flags
from adgm.config import RESUME_MAY_CHANGE, RunConfig
from adgm.cpu import denormals_flushed
from adgm.data import SemiSupervisedData
from adgm.devices import deterministic_kernels
from adgm.errors import AdgmError
from adgm.machine import describe_machine
from adgm.models import build_model
from adgm.models.base import GenerativeClassifier
from adgm.run_folder import CONFIG, METRICS, RunFolder, load_run_config, read_metrics
from adgm.tensorboard import TensorBoardLog
from adgm.training_loop import (
    TrainingDiverged,
    TrainingInterrupted,
    TrainingLoop,
    fitted_to_data,
    learning_rate,
    resolve_device,
)

__all__ = [
    "CONFIG",
    "METRICS",
    "Trainer",
    "TrainingDiverged",
    "TrainingInterrupted",
    "learning_rate",
    "load_run_config",
    "load_trained_model",
    "read_metrics",
    "resolve_device",
]


class Trainer:
    """Trains `config` into the run folder `run_dir` (None: nothing is written).

    ``loop`` is the TrainingLoop (model, optimiser, epoch, step, ...), ``folder`` the RunFolder.
    With several processes (torchrun) only rank 0 touches the folder.
    """

    def __init__(
        self, config: RunConfig, run_dir: Path | None, data: SemiSupervisedData | None = None
    ):
        self.loop = TrainingLoop(config, data)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.folder = RunFolder(self.run_dir) if self.run_dir is not None else None
        if self.folder is not None:
            kept = self.run_dir / FOLDER
            self.loop.divergence_note = f"the last good checkpoint is kept in {kept}"
        self.rollbacks_done = 0
        self.command = ""  # what started or resumed the run, for starts.jsonl

    # The loop's state, as seen from the run.
    config = property(lambda self: self.loop.config)
    model = property(lambda self: self.loop.model)
    data = property(lambda self: self.loop.data)
    alpha = property(lambda self: self.loop.alpha)
    epoch = property(lambda self: self.loop.epoch)
    step = property(lambda self: self.loop.step)
    group = property(lambda self: self.loop.group)

    device = property(lambda self: self.loop.device)

    @property
    def stop_requested(self) -> bool:
        return self.loop.pausing.stop_requested

    @stop_requested.setter
    def stop_requested(self, value: bool) -> None:
        self.loop.pausing.stop_requested = value

    @property
    def _writes(self) -> bool:
        """Whether this process writes the run folder (rank 0 of a run with a folder)."""
        return self.folder is not None and self.group.is_main

    # ----- the run folder ---------------------------------------------------------------------
    def start(self, command: str = "") -> None:
        """Create a fresh run folder; refuse to overwrite a run that has metrics already."""
        self.command = command
        if self._writes:
            self.folder.create(self.config, command)

    def resume(self, command: str | None = None) -> None:
        """Restore everything from the latest complete checkpoint of the run folder.

        A run folder without any checkpoint file (a run stopped during its first epoch, or before
        its first checkpoint) starts from the beginning: the trainer is as ``start`` leaves it.
        `command` (what resumed it) goes to starts.jsonl when training begins.
        """
        if command is not None:
            self.command = command
        if self.group.is_main:
            self.folder.hold_lock()
        state = self.folder.latest_checkpoint()
        if state is None:
            if self.group.is_main:
                self.folder.truncate_metrics(0)
            return
        # Settings added to adgm after the checkpoint was written take their defaults.
        stored = fitted_to_data(RunConfig.from_dict(state.get("config", {})), self.loop.data)
        if _resumable_fields(stored.to_dict()) != _resumable_fields(self.config.to_dict()):
            raise AdgmError(
                f"checkpoint in {self.run_dir} was made with another configuration; "
                f"resume with the run's own settings (only {resumable_flags()} may change)"
            )
        try:
            self.loop.load_state_dict(state)
        except AdgmError:
            raise AdgmError(f"checkpoint in {self.run_dir} does not fit this model") from None
        if self.group.is_main:
            self.folder.truncate_metrics(self.epoch)

    def save(self) -> Path | None:
        """Write a checkpoint of the loop's state (atomically; the last K are kept); rank 0."""
        state = self.loop.state_dict()
        if not self._writes:
            return None
        return self.folder.save_checkpoint(state, keep=self.config.train.keep_checkpoints)

    def release_lock(self) -> None:
        """Let another process use the run folder (fit does this when it ends)."""
        if self.folder is not None:
            self.folder.release_lock()

    # ----- training ---------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        """One epoch of the loop, checkpointing into the folder where one is due within it."""
        return self.loop.train_epoch(self.save if self.folder is not None else None)

    def steps_per_epoch(self) -> int:
        return self.loop.steps_per_epoch()

    def evaluate(self) -> dict[str, float]:
        return self.loop.evaluate()

    def roll_back(self, reason: TrainingDiverged, log) -> None:
        """Restore the latest checkpoint and lower the lr, or re-raise when none is left.

        Everything is restored (weights, optimiser, RNG states, metrics file), so the run goes
        on exactly as from that checkpoint except for the learning rate, lr_scale *= factor.
        """
        train = self.config.train
        if self.folder is None or self.rollbacks_done >= train.rollbacks:
            raise reason
        if not self.folder.has_checkpoint():
            raise reason
        lowered = self.loop.lr_scale * train.rollback_lr_factor
        self.resume()
        self.loop.lr_scale = lowered
        self.rollbacks_done += 1
        log(
            f"{reason}; rollback {self.rollbacks_done}/{train.rollbacks}: back to epoch "
            f"{self.epoch}, step {self.step}, lr now {self.loop.current_lr():.3g}"
        )

    def fit(self, *, log=print) -> list[dict[str, float]]:
        """Train until config.train.epochs epochs are done; returns this call's metrics rows.

        The first Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and raises
        TrainingInterrupted; a second one abandons the step at once (KeyboardInterrupt).
        """
        try:
            with (
                _stop_on_first_interrupt(self),
                denormals_flushed(),
                deterministic_kernels(self.config.train.deterministic),
            ):
                return self._fit(log)
        finally:
            self.release_lock()

    def _fit(self, log) -> list[dict[str, float]]:
        if self._writes:  # before the board opens: a write error here leaves nothing open
            self.folder.record_start(self._start_record())
        wanted = self.config.train.tensorboard and self._writes
        board = TensorBoardLog(self.run_dir, first_epoch=self.epoch + 1) if wanted else None
        try:
            return self._fit_epochs(log, board)
        finally:
            if board is not None:
                board.close()

    def _start_record(self) -> dict[str, Any]:
        """starts.jsonl's line for this fit: when, from where, by what command, on what machine."""
        now = datetime.datetime.now(datetime.timezone.utc)
        return {
            "time": now.isoformat(timespec="seconds"),
            "epoch": self.epoch,
            "step": self.step,
            "target_epochs": self.config.train.epochs,
            "command": self.command,
            **describe_machine(self.device),
        }

    def _fit_epochs(self, log, board: TensorBoardLog | None) -> list[dict[str, float]]:
        train = self.config.train
        rows = []
        if train.rollbacks and self.folder is not None and not self.folder.has_checkpoint():
            self.save()  # something to roll back to from the first epoch on
        while self.epoch < train.epochs:
            try:
                row = self.train_epoch()
            except TrainingDiverged as diverged:
                self.roll_back(diverged, log)
                rows = [r for r in rows if r["epoch"] <= self.epoch]
                if board is not None:  # drop the points of the epochs rolled back
                    board.close()
                    board = TensorBoardLog(self.run_dir, first_epoch=self.epoch + 1)
                continue
            last = self.epoch == train.epochs
            # Rank 0 evaluates (before the checkpoint, which keeps the RNG state after it) and
            # writes the metrics, of its own shard, before the checkpoint: a resume truncates
            # whatever is after the checkpoint it starts from.
            if self.group.is_main and (self.epoch % train.eval_every == 0 or last):
                row.update(self.evaluate())
            if self._writes:
                self.folder.append_metrics(row)
            if self.epoch % train.checkpoint_every == 0 or last:
                self.save()
            if not self.group.is_main:
                continue
            if board is not None:
                board.write(row)
            log(format_row(row, train.epochs))
            rows.append(row)
        return rows


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C; a scheduler's or `kill`'s request


@contextlib.contextmanager
def _stop_on_first_interrupt(trainer: Trainer):
    """While training, the first SIGINT or SIGTERM asks the trainer to stop after its current
    step (a checkpoint is written and TrainingInterrupted raised, its ``signal`` the signal's
    number); a second one abandons the step at once (KeyboardInterrupt). A scheduler that ends
    a job with SIGTERM then SIGKILL after a grace period loses nothing that the step finished."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []

    def handler(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_requested = True
        received.append(signum)
        if signum == signal.SIGINT:
            said = "stopping after this step (Ctrl-C again to abandon it)"
        else:
            name = signal.Signals(signum).name
            said = f"{name}: stopping after this step (a second one abandons it)"
        print(f"\nadgm: {said}", file=sys.stderr)

    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    try:
        yield
    except TrainingInterrupted as exc:
        if received:  # else the class's own SIGINT
            exc.signal = received[0]
        raise
    finally:
        for number, handling in previous.items():
            signal.signal(number, handling)


def format_row(row: dict[str, float], epochs: int) -> str:
    """One human-readable line per epoch."""
    text = (
        f"epoch {row['epoch']}/{epochs}  J={row['J']:.2f}  L={row['L']:.2f}  "
        f"clf={row['clf']:.4f}  U={row['U']:.2f}  {row['seconds']:.1f}s "
        f"({row['steps_per_s']:.1f} steps/s)"
    )
    if "test_error" in row:
        text += f"  test error {100 * row['test_error']:.2f}%"
    if "test_log_likelihood" in row:
        text += f"  test log p(x) {row['test_log_likelihood']:.2f}"
    if "valid_error" in row:
        text += f"  valid error {100 * row['valid_error']:.2f}%"
    if "train_error" in row:
        text += f"  training-image error {100 * row['train_error']:.2f}%"
    return text


def _resumable_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The config without the fields a resumed run may change (RESUME_MAY_CHANGE)."""
    train = {k: v for k, v in config.get("train", {}).items() if k not in RESUME_MAY_CHANGE}
    model = dict(config.get("model", {}))
    model["hidden"] = list(model.get("hidden", ()))
    return {"data": config.get("data"), "model": model, "train": train}


def load_trained_model(
    run_dir: Path, device: str = "cpu", epoch: int | None = None
) -> tuple[RunConfig, GenerativeClassifier, int]:
    """(config, model with the latest checkpoint's weights, epochs trained) of a run folder;
    with `epoch`, the weights of the checkpoint at the end of that epoch instead."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    model = build_model(config.model).to(resolve_device(device))
    if epoch is None:
        state = load_latest_checkpoint(run_dir)
    else:
        state = load_epoch_checkpoint(run_dir, epoch)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise AdgmError(f"checkpoint in {run_dir} does not fit its config.json") from None
    model.eval()
    return config, model, int(state["epoch"])
