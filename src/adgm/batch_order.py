"""The order of a run's batches, replayable from any step of an epoch.

One ``torch.Generator`` seeded by train.seed (the same on every rank) draws each epoch's batch
order (adgm.data.epoch_batches). Its state at the start of the current epoch is kept, so that an
epoch stopped after `step` steps continues exactly: the generator goes back to the epoch's start
and the `step` batches already trained on are drawn again and skipped (cheap: drawing them only
draws random numbers and indexes tensors).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from adgm.config import RunConfig
from adgm.data import SemiSupervisedData, epoch_batches, steps_per_epoch
from adgm.distributed import ProcessGroup


class BatchOrder:
    """Each epoch's batches (x_l (B_l, D), y_l (B_l,), x_u (B_u, D)) from a seeded generator."""

    def __init__(self, config: RunConfig, data: SemiSupervisedData, group: ProcessGroup):
        self.config, self.data, self.group = config, data, group
        self.generator = torch.Generator().manual_seed(config.train.seed)
        self.epoch_start = self.generator.get_state()

    def steps_per_epoch(self) -> int:
        """Steps in an epoch: the unlabelled set over the unlabelled batch (over the ranks),
        capped by train.max_steps_per_epoch."""
        n_steps = steps_per_epoch(
            self.data, self.config.data.unlabelled_batch, self.group.world_size
        )
        cap = self.config.train.max_steps_per_epoch
        return n_steps if cap is None else min(n_steps, cap)

    def batches(self, step: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The current epoch's batches from step `step` (0: a new epoch, its order drawn now)."""
        if step == 0:
            self.epoch_start = self.generator.get_state()
        else:
            self.generator.set_state(self.epoch_start)
        batches = epoch_batches(
            self.data,
            self.generator,
            labelled_batch=self.config.data.labelled_batch,
            unlabelled_batch=self.config.data.unlabelled_batch,
            max_steps=self.steps_per_epoch(),
            shard=(self.group.rank, self.group.world_size),
        )
        for _ in range(step):
            next(batches)
        return batches

    def state_dict(self) -> dict[str, Any]:
        """The generator's state now and at the start of the current epoch."""
        return {"batches": self.generator.get_state(), "epoch_start": self.epoch_start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["batches"])
        self.epoch_start = state["epoch_start"]
