"""The training loop: model, optimiser, steps, divergence check and precision; no files.

One ``TrainingLoop`` trains one model on one data set in memory. Its state beyond the model and
optimiser: ``epoch`` (epochs completed), ``step`` (steps done in the current epoch), the batch
order's state (adgm.batch_order) and the epoch's tally (adgm.epoch_tally), all in
``state_dict()``, so a run continues exactly from any step: the steps already done in the epoch
are replayed by the batch order and skipped. Writing that state anywhere is the caller's
business (``adgm.train.Trainer`` with an ``adgm.run_folder.RunFolder``; ``adgm.estimator``
writes nothing). The learning rate is a function of the epoch,
lr = lr0 * lr_decay ** (epoch // lr_decay_every), so it needs no state.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from signal import SIGINT
from typing import Any

import torch
from tqdm.auto import tqdm

from adgm.batch_order import BatchOrder
from adgm.config import RunConfig
from adgm.data import SemiSupervisedData, load_data
from adgm.devices import resolve_device
from adgm.distributed import join_process_group, local_device
from adgm.epoch_tally import EpochTally
from adgm.errors import AdgmError
from adgm.evaluate import evaluate_held_out
from adgm.likelihood import refuse_grey_targets
from adgm.models import build_model
from adgm.models.base import GenerativeClassifier
from adgm.objectives import default_alpha
from adgm.optimisation import OptimisationStep, TrainingDiverged
from adgm.pausing import Pausing

__all__ = [
    "TrainingDiverged",
    "TrainingInterrupted",
    "TrainingLoop",
    "learning_rate",
    "resolve_device",
]


def learning_rate(config: RunConfig, epoch: int) -> float:
    """lr at (0-based) epoch: annealed by lr_decay every lr_decay_every epochs."""
    train = config.train
    return train.lr * train.lr_decay ** (epoch // train.lr_decay_every)


def fitted_to_data(config: RunConfig, data: SemiSupervisedData) -> RunConfig:
    """`config` with what the data decide: x_dim, n_classes, the likelihood ("auto" resolved)
    and batch sizes (at most every label, at most every unlabelled point)."""
    model = replace(
        config.model, x_dim=data.x_dim, n_classes=data.n_classes, likelihood=data.likelihood
    )
    batches = replace(
        config.data,
        labelled_batch=min(config.data.labelled_batch, len(data.y_labelled)),
        unlabelled_batch=min(config.data.unlabelled_batch, len(data.x_unlabelled)),
    )
    return replace(config, data=batches, model=model)


class TrainingInterrupted(Exception):
    """Raised after Ctrl-C (or SIGTERM) once the current step is finished and a checkpoint is
    written; ``signal``: the number of the signal that asked for it (SIGINT unless set)."""

    signal: int = SIGINT


class TrainingLoop:
    """Trains one model on one data set; see the module docstring."""

    def __init__(self, config: RunConfig, data: SemiSupervisedData | None = None):
        config.validate()
        self.device = resolve_device(local_device(config.train.device))
        self.group = join_process_group(self.device)  # rank 0 of 1 unless run by torchrun
        self.data = data or load_data(
            config.data, likelihood=config.model.likelihood, device=str(self.device)
        )
        self.config = fitted_to_data(config, self.data)
        if config.train.eval_iw_samples:
            refuse_grey_targets(
                self.data.likelihood,
                config.data.test_inputs,
                "eval_iw_samples",
                "drop it or set test_inputs to binary",
            )
        model_config = self.config.model
        torch.manual_seed(config.train.seed)
        self.model: GenerativeClassifier = build_model(model_config).to(self.device)
        train = config.train
        self.alpha = (
            train.alpha if train.alpha is not None else default_alpha(len(self.data.x_unlabelled))
        )
        self.optimisation = OptimisationStep(
            self.model,
            train,
            alpha=self.alpha,
            n_unlabelled=len(self.data.x_unlabelled),
            group=self.group,
            device=self.device,
        )
        # A CPU checks every step (a sync costs nothing there); a GPU runs ahead for 50 steps.
        self.divergence_check_every = 1 if self.device.type == "cpu" else 50
        self.batch_order = BatchOrder(self.config, self.data, self.group)  # same on every rank
        self._seed_noise_per_rank(0)
        self.epoch = 0  # epochs completed
        self.step = 0  # steps completed in the current epoch
        self.tally = EpochTally()  # the epoch so far: sums of its loss terms, its seconds
        self.lr_scale = 1.0  # lowered by each rollback after a divergence (opt-in)
        # Ctrl-C (agreed by every rank) and checkpoint_every_minutes.
        self.pausing = Pausing(self.group, self.device, train.checkpoint_every_minutes)
        # Said when a step diverges; the run folder, where there is one, says which checkpoint.
        self.divergence_note = "no weight was changed by it"

    def _seed_noise_per_rank(self, salt: int) -> None:
        """Several processes: each draws its own Monte Carlo noise (one process: unchanged)."""
        if self.group.world_size > 1:
            seed = self.config.train.seed
            torch.manual_seed(hash((seed, self.group.rank, salt)) % 2**63)

    # ----- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint needs to continue exactly: see ``load_state_dict``."""
        self.pausing.saved()
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": self.optimisation.state_dict(),
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "alpha": self.alpha,
            **self.tally.state_dict(),
            "lr_scale": self.lr_scale,
            "rng": {
                "torch": torch.get_rng_state(),
                **self.batch_order.state_dict(),  # "batches", "epoch_start"
            },
        }
        if self.device.type == "cuda":  # the Monte Carlo noise is drawn on the GPU
            state["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``: weights, optimiser, every RNG, epoch, step, partial sums."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimisation.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError):
            raise AdgmError("the checkpoint does not fit this model") from None
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.batch_order.load_state_dict(state["rng"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.tally.load_state_dict(state)
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self._seed_noise_per_rank(self.epoch * 100_003 + self.step)

    # ----- training ---------------------------------------------------------------------------
    def current_lr(self) -> float:
        """The schedule's lr for the current epoch times the rollbacks' lr_scale."""
        return learning_rate(self.config, self.epoch) * self.lr_scale

    def steps_per_epoch(self) -> int:
        return self.batch_order.steps_per_epoch()

    def train_epoch(self, checkpoint: Callable[[], Path | None] | None = None) -> dict[str, float]:
        """Finish the current epoch; returns its mean loss terms and timing.

        checkpoint(): writes a checkpoint of the loop's state_dict() where it is due within the
        epoch (Ctrl-C, checkpoint_every_minutes); None: nothing is written. Raises
        TrainingInterrupted, after that checkpoint, when Ctrl-C was pressed.
        """
        self.optimisation.set_lr(self.current_lr())
        self.model.train()
        n_steps = self.steps_per_epoch()
        # Running sums continue from the checkpoint, in the same order as an uninterrupted run;
        # they stay on the device (no sync per step).
        totals = self.tally.sums.to(self.device)  # (4,): sums of J, L, clf and U
        bar = tqdm(
            self.batch_order.batches(self.step),
            total=n_steps,
            initial=self.step,
            desc=f"epoch {self.epoch + 1}",
            leave=False,
            disable=None if self.group.rank == 0 else True,  # one bar under torchrun
            file=sys.stderr,
        )
        self.tally.start_clock()
        for x_l, y_l, x_u in bar:
            terms = self.step_once(x_l, y_l, x_u, number=self.step + 1)
            totals += torch.stack([t.detach().float() for t in terms])
            self.step += 1
            self._checkpoint_within_epoch(n_steps, totals, checkpoint)
        self.tally.keep(totals)
        return self._finish_epoch(n_steps)

    def _checkpoint_within_epoch(
        self,
        n_steps: int,
        totals: torch.Tensor,
        checkpoint: Callable[[], Path | None] | None,
    ) -> None:
        """After a step: the divergence check where due, then Ctrl-C (checkpoint and raise
        TrainingInterrupted) or a timed checkpoint, each after keeping the epoch so far."""
        due = self.step % self.divergence_check_every == 0 or self.step == n_steps
        stop = self.pausing.stop_now(due)
        if due or stop:  # a checkpoint is only written after a check
            self.check_divergence()
        if self.step == n_steps:  # the epoch's end: its row and checkpoint are the caller's
            return
        if stop:
            self.tally.keep(totals)
            path = checkpoint() if checkpoint is not None else None
            raise TrainingInterrupted(
                f"stopped at epoch {self.epoch + 1}, step {self.step}; checkpoint {path}"
            )
        if checkpoint is None or not self.pausing.checkpoint_due():
            return
        self.check_divergence()  # a checkpoint is only written after a check
        self.tally.keep(totals)
        checkpoint()  # its write time is not the epoch's: the clock restarts after it
        self.tally.start_clock()

    def _finish_epoch(self, n_steps: int) -> dict[str, float]:
        """Close the epoch: its metrics row (mean terms over its steps, lr, time) and the
        position at the start of the next one."""
        terms = self.tally.close(n_steps)
        self.epoch, self.step = self.epoch + 1, 0
        return {"epoch": self.epoch, **terms, "lr": self.optimisation.lr}

    def step_once(self, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor, *, number: int):
        """Step `number` (from 1) of the epoch (adgm.optimisation.OptimisationStep); its terms."""
        return self.optimisation(x_l, y_l, x_u, number=number)

    def check_divergence(self) -> None:
        """Raise TrainingDiverged if a step of this epoch since the last check diverged.

        One host sync; the model and the last checkpoint are as they were before that step.
        """
        kept = self.divergence_note
        self.optimisation.raise_if_diverged(
            lambda step: (
                f"training diverged at epoch {self.epoch + 1}, step {step}: "
                f"the loss or a gradient is not finite; {kept}"
            ),
        )

    def evaluate(self) -> dict[str, float]:
        """Test (and validation) error with eval_samples draws of a, the test log-likelihood
        where eval_iw_samples > 0, and eval_seconds (adgm.evaluate.evaluate_held_out)."""
        train = self.config.train
        return evaluate_held_out(
            self.model, self.data, n_samples=train.eval_samples, iw_samples=train.eval_iw_samples
        )
