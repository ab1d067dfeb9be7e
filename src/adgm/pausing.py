"""When a run pauses within an epoch: Ctrl-C, agreed by every process, and checkpoints by the clock.

``adgm.training_loop.TrainingLoop`` asks ``Pausing`` after each step whether to stop (Ctrl-C was
pressed) and whether a checkpoint is due by the clock (``checkpoint_every_minutes``); it does
the stopping and the writing itself. Under torchrun every rank must stop after the same step:
a rank that stopped alone would leave the others waiting forever in the next gradient
all-reduce, and rank 0's checkpoint would not hold the state the other ranks had.
"""

from __future__ import annotations

import time

import torch

from adgm.distributed import ProcessGroup


class Pausing:
    """Ctrl-C requests (``stop_requested``, set by the SIGINT handler) and the checkpoint clock.

    group: this process's place among the training processes (world_size 1 without torchrun).
    device: where the agreement's one-element all-reduce runs (the gradients' device).
    checkpoint_every_minutes: None, or the longest time between two checkpoints.
    """

    def __init__(
        self,
        group: ProcessGroup,
        device: torch.device,
        checkpoint_every_minutes: float | None = None,
    ):
        self.group = group
        self.device = device
        self.checkpoint_every_minutes = checkpoint_every_minutes
        self.stop_requested = False  # set by Ctrl-C: stop after the current step
        self.last_save_time = time.monotonic()

    def stop_now(self, due: bool) -> bool:
        """Whether training stops after this step. One process: whenever Ctrl-C was pressed.
        Several (torchrun): the processes agree at each check (`due`, the same step on every
        rank), each sending 1 if it was asked and taking the maximum, so all stop after the same
        step when any one was asked; between checks nobody stops.

        A Ctrl-C that lands while this rank waits in the agreement's all-reduce is handled just
        after it returns, when the others have already agreed not to stop: it is kept (never
        overwritten by the agreed value) and counts at the next check."""
        if self.group.world_size == 1:
            return self.stop_requested
        if not due:
            return False
        flag = torch.tensor([float(self.stop_requested)], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        agreed = bool(flag.item() > 0)
        if agreed:
            self.stop_requested = True
        return agreed

    def checkpoint_due(self) -> bool:
        """Whether checkpoint_every_minutes have passed since the last checkpoint."""
        if self.checkpoint_every_minutes is None:
            return False
        return time.monotonic() - self.last_save_time >= 60 * self.checkpoint_every_minutes

    def saved(self) -> None:
        """A checkpoint was just taken: the clock starts again."""
        self.last_save_time = time.monotonic()
