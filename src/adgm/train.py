"""The training loop: model-agnostic, with run folder, metrics, checkpoints and exact resume.

A run folder holds ``config.json``, ``command.txt``, ``metrics.jsonl`` (one JSON object per epoch),
``checkpoints/`` (see ``adgm.checkpoint``) and ``lock`` (see ``adgm.run_lock``: one process at a
time). The learning rate is a function of the epoch,
lr = lr0 * lr_decay ** (epoch // lr_decay_every), so it needs no state of its own.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from adgm.checkpoint import (
    FOLDER,
    POINTER,
    atomic_write_text,
    has_checkpoint,
    load_latest_checkpoint,
    save_checkpoint,
)
from adgm.config import RunConfig
from adgm.cpu import denormals_flushed, keep_freed_memory
from adgm.data import SemiSupervisedData, epoch_batches, load_data, steps_per_epoch
from adgm.distributed import (
    ObjectiveModule,
    data_parallel,
    join_process_group,
    local_device,
)
from adgm.errors import AdgmError
from adgm.evaluate import error_rate
from adgm.likelihood import log_likelihood
from adgm.models import build_model
from adgm.models.base import GenerativeClassifier
from adgm.objectives import default_alpha
from adgm.run_lock import RunLock
from adgm.tensorboard import TensorBoardLog
from adgm.update import ClippedAdamUpdate

METRICS = "metrics.jsonl"
CONFIG = "config.json"


def learning_rate(config: RunConfig, epoch: int) -> float:
    """lr at (0-based) epoch: annealed by lr_decay every lr_decay_every epochs."""
    train = config.train
    return train.lr * train.lr_decay ** (epoch // train.lr_decay_every)


def resolve_device(requested: str) -> torch.device:
    """torch.device for 'cpu', 'cuda' or 'cuda:N', with a clear error when it is not there."""
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise AdgmError(f"unknown device {requested!r}; use 'cpu' or 'cuda'") from None
    if device.type not in ("cpu", "cuda"):
        raise AdgmError(f"unsupported device {requested!r}; use 'cpu' or 'cuda'")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AdgmError("device 'cuda' was asked for but no CUDA GPU is available")
    return device


class TrainingInterrupted(Exception):
    """Raised after Ctrl-C once the current step is finished and a checkpoint is written."""


class TrainingDiverged(AdgmError):
    """A non-finite loss or gradient; that step and the ones after it changed no weight."""


class Trainer:
    """Trains one model on one data set, writing everything into `run_dir`.

    State beyond the model and optimiser: `epoch` (epochs completed), `step` (steps done in the
    current epoch), the batch generator's state at the start of the current epoch, and the
    current epoch's partial sums. A checkpoint holds all of it, so a run resumes exactly from
    any step: the steps already done in the epoch are replayed by the batch generator (cheap:
    it only draws random numbers) and skipped.
    """

    def __init__(
        self, config: RunConfig, run_dir: Path | None, data: SemiSupervisedData | None = None
    ):
        config.validate()
        self.device = resolve_device(local_device(config.train.device))
        self.group = join_process_group(self.device)  # rank 0 of 1 unless run by torchrun
        self.data = data or load_data(
            config.data, likelihood=config.model.likelihood, device=str(self.device)
        )
        self.config = self._fitted_to_data(config)
        model_config = self.config.model
        self.run_dir = Path(run_dir) if run_dir is not None else None  # None: nothing is written
        self.lock: RunLock | None = None  # held from start/resume until fit ends
        torch.manual_seed(config.train.seed)
        self.model: GenerativeClassifier = build_model(model_config).to(self.device)
        train = config.train
        if not train.train_auxiliary:  # as the authors' paper-era code: q(a|x) stays as drawn
            for param in self.model.auxiliary_encoder_parameters():
                param.requires_grad_(False)
        self.trained_parameters = [p for p in self.model.parameters() if p.requires_grad]
        # The fused kernel updates every parameter in one pass (the same Adam maths); it is also
        # what lets ClippedAdamUpdate skip a diverged step on the device.
        self.optimizer = torch.optim.Adam(
            self.trained_parameters, lr=train.lr, betas=(train.beta1, train.beta2), fused=True
        )
        self.update = ClippedAdamUpdate(
            self.optimizer,
            self.trained_parameters,
            max_norm=train.clip_grad_norm,
            max_value=train.clip_grad_value,
        )
        # A CPU checks every step (a sync costs nothing there); a GPU runs ahead for 50 steps.
        self.divergence_check_every = 1 if self.device.type == "cpu" else 50
        self.batch_generator = torch.Generator().manual_seed(train.seed)  # same on every rank
        self.alpha = (
            train.alpha if train.alpha is not None else default_alpha(len(self.data.x_unlabelled))
        )
        loss = ObjectiveModule(
            self.model,
            alpha=self.alpha,
            n_samples=train.mc_samples,
            analytic_kl=train.analytic_kl,
            classification_term=train.classification_term,
            weight_prior_scale=1.0 / len(self.data.x_unlabelled) if train.weight_prior else 0.0,
        )
        self.loss_module = data_parallel(loss, self.group, self.device)
        self._seed_noise_per_rank(0)
        self.epoch = 0  # epochs completed
        self.step = 0  # steps completed in the current epoch
        self.epoch_start_rng = self.batch_generator.get_state()
        self.partial = torch.zeros(4)  # the epoch so far: sums of J, L, clf and U
        self.partial_seconds = 0.0
        self.lr_scale = 1.0  # lowered by each rollback after a divergence (opt-in)
        self.rollbacks_done = 0
        self.stop_requested = False  # set by Ctrl-C: stop after the current step
        self.last_save_time = time.monotonic()  # for checkpoint_every_minutes

    def _fitted_to_data(self, config: RunConfig) -> RunConfig:
        """`config` with what the data decide: x_dim, n_classes, the likelihood ("auto"
        resolved) and batch sizes (at most every label, at most every unlabelled point)."""
        model = replace(
            config.model,
            x_dim=self.data.x_dim,
            n_classes=self.data.n_classes,
            likelihood=self.data.likelihood,
        )
        data = replace(
            config.data,
            labelled_batch=min(config.data.labelled_batch, len(self.data.y_labelled)),
            unlabelled_batch=min(config.data.unlabelled_batch, len(self.data.x_unlabelled)),
        )
        return replace(config, data=data, model=model)

    def _seed_noise_per_rank(self, salt: int) -> None:
        """Several processes: each draws its own Monte Carlo noise (one process: unchanged)."""
        if self.group.world_size > 1:
            seed = self.config.train.seed
            torch.manual_seed(hash((seed, self.group.rank, salt)) % 2**63)

    # ----- run folder -------------------------------------------------------------------------
    def start(self, command: str = "") -> None:
        """Create a fresh run folder; refuse to overwrite a run that has metrics already.

        With several processes only rank 0 writes; the others do nothing here.
        """
        if not self.group.is_main:
            return
        self._hold_lock()
        if (self.run_dir / METRICS).exists() or has_checkpoint(self.run_dir):
            raise AdgmError(f"{self.run_dir} already holds a run; use --resume or another --out")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / CONFIG, json.dumps(self.config.to_dict(), indent=2))
            atomic_write_text(self.run_dir / "command.txt", command + "\n")
        except OSError as exc:
            raise AdgmError(f"cannot write the run folder {self.run_dir}: {exc}") from None

    def _hold_lock(self) -> None:
        """Lock the run folder for this process (see adgm.run_lock), once."""
        if self.lock is None:
            self.lock = RunLock.acquire(self.run_dir)

    def release_lock(self) -> None:
        """Let another process use the run folder (fit does this when it ends)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def resume(self) -> None:
        """Restore everything from the latest complete checkpoint of the run folder.

        A run folder without any checkpoint file (a run stopped during its first epoch, or before
        its first checkpoint) starts from the beginning: the trainer is as ``start`` leaves it.
        """
        if self.group.is_main:
            self._hold_lock()
        if not has_checkpoint(self.run_dir):
            if self.group.is_main:
                _truncate_metrics(self.run_dir / METRICS, 0)
            return
        state = load_latest_checkpoint(self.run_dir)
        # Settings added to adgm after the checkpoint was written take their defaults.
        stored = self._fitted_to_data(RunConfig.from_dict(state.get("config", {})))
        if _resumable_fields(stored.to_dict()) != _resumable_fields(self.config.to_dict()):
            raise AdgmError(
                f"checkpoint in {self.run_dir} was made with another configuration; "
                "resume with the run's own settings (only --epochs, --device and "
                "--checkpoint-every-minutes may change)"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError):
            raise AdgmError(f"checkpoint in {self.run_dir} does not fit this model") from None
        for group in self.optimizer.param_groups:  # how to compute, not state: ours, not saved
            group["fused"], group["foreach"] = True, None
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.batch_generator.set_state(state["rng"]["batches"])
        self.epoch_start_rng = state["rng"]["epoch_start"]
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.partial, self.partial_seconds = state["partial"], float(state["partial_seconds"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self._seed_noise_per_rank(self.epoch * 100_003 + self.step)
        if self.group.is_main:
            _truncate_metrics(self.run_dir / METRICS, self.epoch)

    def _append_metrics(self, row: dict[str, float]) -> None:
        """One line of metrics.jsonl; a write error names the file and how to go on."""
        try:
            _append_metrics(self.run_dir / METRICS, row)
        except OSError as exc:
            raise AdgmError(
                f"cannot append to {self.run_dir / METRICS} ({_first_line(exc)}); "
                f"{_intact(self.run_dir)}; free some space and continue with --resume"
            ) from None

    def save(self) -> Path | None:
        """Write a checkpoint of the current state (atomically; the last K are kept).

        With several processes only rank 0 writes (the weights are the same on every rank).
        """
        self.last_save_time = time.monotonic()
        if not self.group.is_main:
            return None
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "alpha": self.alpha,
            "partial": self.partial,
            "partial_seconds": self.partial_seconds,
            "lr_scale": self.lr_scale,
            "rng": {
                "torch": torch.get_rng_state(),
                "batches": self.batch_generator.get_state(),
                "epoch_start": self.epoch_start_rng,
            },
        }
        if self.device.type == "cuda":  # the Monte Carlo noise is drawn on the GPU
            state["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        try:
            return save_checkpoint(self.run_dir, state, keep=self.config.train.keep_checkpoints)
        except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as RuntimeError
            raise AdgmError(
                f"cannot write a checkpoint in {self.run_dir / FOLDER} ({_first_line(exc)}); "
                f"{_intact(self.run_dir)}; free some space and continue with --resume"
            ) from None

    # ----- training ---------------------------------------------------------------------------
    def _epoch_batches(self, n_steps: int):
        """This epoch's batches from its first step not yet done (replaying the ones done)."""
        if self.step == 0:
            self.epoch_start_rng = self.batch_generator.get_state()
        else:
            self.batch_generator.set_state(self.epoch_start_rng)
        batches = epoch_batches(
            self.data,
            self.batch_generator,
            labelled_batch=self.config.data.labelled_batch,
            unlabelled_batch=self.config.data.unlabelled_batch,
            max_steps=n_steps,
            shard=(self.group.rank, self.group.world_size),
        )
        for _ in range(self.step):
            next(batches)
        return batches

    def current_lr(self) -> float:
        """The schedule's lr for the current epoch times the rollbacks' lr_scale."""
        return learning_rate(self.config, self.epoch) * self.lr_scale

    def roll_back(self, reason: TrainingDiverged, log) -> None:
        """Restore the latest checkpoint and lower the lr, or re-raise when none is left.

        Everything is restored (weights, optimiser, RNG states, metrics file), so the run goes
        on exactly as from that checkpoint except for the learning rate, lr_scale *= factor.
        """
        train = self.config.train
        if self.rollbacks_done >= train.rollbacks or not has_checkpoint(self.run_dir):
            raise reason
        lowered = self.lr_scale * train.rollback_lr_factor
        self.resume()
        self.lr_scale = lowered
        self.rollbacks_done += 1
        log(
            f"{reason}; rollback {self.rollbacks_done}/{train.rollbacks}: back to epoch "
            f"{self.epoch}, step {self.step}, lr now {self.current_lr():.3g}"
        )

    def steps_per_epoch(self) -> int:
        n_steps = steps_per_epoch(
            self.data, self.config.data.unlabelled_batch, self.group.world_size
        )
        cap = self.config.train.max_steps_per_epoch
        return n_steps if cap is None else min(n_steps, cap)

    def train_epoch(self) -> dict[str, float]:
        """Finish the current epoch; returns its mean loss terms and timing.

        Raises TrainingInterrupted, after writing a checkpoint, when Ctrl-C was pressed.
        """
        for group in self.optimizer.param_groups:
            group["lr"] = self.current_lr()
        self.model.train()
        n_steps = self.steps_per_epoch()
        # Running sums continue from the checkpoint, in the same order as an uninterrupted run;
        # they stay on the device (no sync per step).
        totals = self.partial.to(self.device)
        bar = tqdm(
            self._epoch_batches(n_steps),
            total=n_steps,
            initial=self.step,
            desc=f"epoch {self.epoch + 1}",
            leave=False,
            disable=None,
            file=sys.stderr,
        )
        start = time.perf_counter()
        for x_l, y_l, x_u in bar:
            terms = self.step_once(x_l, y_l, x_u, number=self.step + 1)
            totals += torch.stack([t.detach().float() for t in terms])
            self.step += 1
            due = self.step % self.divergence_check_every == 0 or self.step == n_steps
            if due or self.stop_requested:  # a checkpoint is only written after a check
                self.check_divergence()
            if self.stop_requested and self.step < n_steps:
                self._keep_partial(totals, time.perf_counter() - start)
                path = self.save()
                raise TrainingInterrupted(
                    f"stopped at epoch {self.epoch + 1}, step {self.step}; checkpoint {path}"
                )
            if self._timed_checkpoint_due() and self.step < n_steps:
                self.check_divergence()  # a checkpoint is only written after a check
                self._keep_partial(totals, time.perf_counter() - start)
                start = time.perf_counter()
                self.save()
        self._keep_partial(totals, time.perf_counter() - start)
        loss, labelled, classification, unlabelled = (self.partial / n_steps).tolist()
        seconds = self.partial_seconds
        self.epoch, self.step, self.partial, self.partial_seconds = (
            self.epoch + 1,
            0,
            torch.zeros(4),
            0.0,
        )
        return {
            "epoch": self.epoch,
            "J": loss,
            "L": labelled,
            "clf": classification,
            "U": unlabelled,
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": seconds,
            "steps_per_s": n_steps / seconds,
        }

    def _timed_checkpoint_due(self) -> bool:
        """checkpoint_every_minutes: whether that long has passed since the last checkpoint."""
        minutes = self.config.train.checkpoint_every_minutes
        if minutes is None or self.run_dir is None:
            return False
        return time.monotonic() - self.last_save_time >= 60 * minutes

    def _keep_partial(self, totals: torch.Tensor, seconds: float) -> None:
        self.partial = totals.cpu()
        self.partial_seconds += seconds

    def step_once(self, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor, *, number: int):
        """Step `number` (from 1) of the epoch on the loss of `adgm.objectives.objective`.

        Returns its terms. The loss goes through `loss_module`: the model itself, or DDP around
        it when several processes train together (their gradients are then averaged before the
        update). The update is `adgm.update.ClippedAdamUpdate`: a step whose loss or gradient is
        not finite, and every step after it, changes nothing until `check_divergence` stops
        training.
        """
        with self._autocast():
            terms = self.loss_module(x_l, y_l, x_u)  # DDP averages the gradients over ranks
        self.optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        self.update.step(terms.loss, number)
        return terms

    def _autocast(self):
        """bf16: the step's forward pass under autocast (matrix products in bf16; densities,
        sums and the parameters and their gradients stay fp32). fp32: nothing changes."""
        enabled = self.config.train.precision == "bf16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def check_divergence(self) -> None:
        """Raise TrainingDiverged if a step of this epoch since the last check diverged.

        One host sync; the model and the last checkpoint are as they were before that step.
        """
        if self.run_dir is None:
            kept = "no weight was changed by it"
        else:
            kept = f"the last good checkpoint is kept in {self.run_dir / FOLDER}"
        self.update.raise_if_diverged(
            TrainingDiverged,
            lambda step: (
                f"training diverged at epoch {self.epoch + 1}, step {step}: "
                f"the loss or a gradient is not finite; {kept}"
            ),
        )

    def evaluate(self) -> dict[str, float]:
        """Test (and validation) error with eval_samples draws of a; with eval_iw_samples > 0
        also the mean importance-weighted test log-likelihood (adgm.likelihood)."""
        train = self.config.train
        samples = train.eval_samples
        start = time.perf_counter()
        result = {}
        if self.data.x_test is not None:
            result["test_error"] = error_rate(
                self.model, self.data.x_test, self.data.y_test, n_samples=samples
            )
        if self.data.x_valid is not None:
            result["valid_error"] = error_rate(
                self.model, self.data.x_valid, self.data.y_valid, n_samples=samples
            )
        if train.eval_iw_samples and self.data.x_test is not None:
            result["test_log_likelihood"] = (
                log_likelihood(self.model, self.data.x_test, n_samples=train.eval_iw_samples)
                .mean()
                .item()
            )
        result["eval_seconds"] = time.perf_counter() - start
        return result

    def fit(self, *, log=print) -> list[dict[str, float]]:
        """Train until config.train.epochs epochs are done; returns this call's metrics rows.

        The first Ctrl-C finishes the current step, writes a checkpoint and raises
        TrainingInterrupted; a second one abandons the step at once (KeyboardInterrupt).
        """
        if self.device.type == "cpu":
            keep_freed_memory()  # see adgm.cpu: no page faults on each step's fresh tensors
        try:
            with _stop_on_first_interrupt(self), denormals_flushed():
                return self._fit(log)
        finally:
            self.release_lock()

    def _fit(self, log) -> list[dict[str, float]]:
        train = self.config.train
        wanted = train.tensorboard and self.group.is_main
        board = TensorBoardLog(self.run_dir, first_epoch=self.epoch + 1) if wanted else None
        try:
            return self._fit_epochs(log, board)
        finally:
            if board is not None:
                board.close()

    def _fit_epochs(self, log, board: TensorBoardLog | None) -> list[dict[str, float]]:
        train = self.config.train
        rows = []
        if train.rollbacks and not has_checkpoint(self.run_dir):
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
            # writes the metrics, of its own shard.
            if self.group.is_main and (self.epoch % train.eval_every == 0 or last):
                row.update(self.evaluate())
            if self.group.is_main:  # before the checkpoint: a resume truncates what is after it
                self._append_metrics(row)
            if self.epoch % train.checkpoint_every == 0 or last:
                self.save()
            if not self.group.is_main:
                continue
            if board is not None:
                board.write(row)
            log(format_row(row, train.epochs))
            rows.append(row)
        return rows


@contextlib.contextmanager
def _stop_on_first_interrupt(trainer: Trainer):
    """While training, the first SIGINT asks the trainer to stop after its current step."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_requested = True
        print("\nadgm: stopping after this step (Ctrl-C again to abandon it)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
    return text


RESUME_MAY_CHANGE = ("epochs", "device", "checkpoint_every_minutes")  # not the run's maths


def _resumable_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The config without the fields a resumed run may change (epochs, device)."""
    train = {k: v for k, v in config.get("train", {}).items() if k not in RESUME_MAY_CHANGE}
    model = dict(config.get("model", {}))
    model["hidden"] = list(model.get("hidden", ()))
    return {"data": config.get("data"), "model": model, "train": train}


def _first_line(exc: BaseException) -> str:
    """What went wrong, in one line: the OSError behind the exception if there is one (torch's
    serialiser reports a full disk as a RuntimeError raised while handling the OSError),
    otherwise the first line of its message."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError):
            exc = seen
            break
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _intact(run_dir: Path) -> str:
    """Which checkpoint a resume would start from, in words."""
    pointer = Path(run_dir) / FOLDER / POINTER
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except OSError:
        name = ""
    if name:
        return f"the newest intact checkpoint is {name}"
    return "no checkpoint was written yet, so a resume starts the run from the beginning"


def _append_metrics(path: Path, row: dict[str, float]) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


def _truncate_metrics(path: Path, epochs_done: int) -> None:
    """Drop metrics rows of epochs after the checkpoint (they will be trained again)."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if _parsed_epoch(line) is not None and _parsed_epoch(line) <= epochs_done
    ]
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def _parsed_epoch(line: str) -> int | None:
    """The epoch of a metrics line, or None for a line cut short by a crash."""
    try:
        return int(json.loads(line)["epoch"])
    except (ValueError, KeyError, TypeError):
        return None


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """The metrics rows of a run folder, in epoch order."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


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


def load_trained_model(
    run_dir: Path, device: str = "cpu"
) -> tuple[RunConfig, GenerativeClassifier, int]:
    """(config, model with the latest checkpoint's weights, epochs trained) of a run folder."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    model = build_model(config.model).to(resolve_device(device))
    state = load_latest_checkpoint(run_dir)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise AdgmError(f"checkpoint in {run_dir} does not fit its config.json") from None
    model.eval()
    return config, model, int(state["epoch"])
