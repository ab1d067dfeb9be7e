"""The running tally of one training epoch: sums of the loss terms over its steps, and its time.

A ``TrainingLoop`` keeps one. A checkpoint within an epoch saves it (``partial``: the sums of J,
L, clf and U so far, shape (4,); ``partial_seconds``), so a resumed run's epoch row equals an
uninterrupted run's: the same sums added in the same order, and the time of the epoch's training
steps only (not a checkpoint's write, not the time the run was stopped).
"""

from __future__ import annotations

import time
from typing import Any

import torch

TERMS = ("J", "L", "clf", "U")  # the order of the sums


class EpochTally:
    """Sums (4,) of J, L, clf and U over the epoch's steps so far, kept on the CPU, and the
    training seconds kept so far; the clock runs from ``start_clock`` to the next ``keep``."""

    def __init__(self) -> None:
        self.sums = torch.zeros(len(TERMS))
        self.seconds = 0.0
        self._clock_start = time.perf_counter()

    def start_clock(self) -> None:
        """Training goes on from now (an epoch starts or goes on, or a checkpoint was written)."""
        self._clock_start = time.perf_counter()

    def keep(self, totals: torch.Tensor) -> None:
        """The epoch so far: `totals` (4,), on any device, become the sums; the seconds since
        the clock started are added to the kept time."""
        self.sums = totals.cpu()
        self.seconds += time.perf_counter() - self._clock_start

    def close(self, n_steps: int) -> dict[str, float]:
        """The epoch's row: each term's mean over its `n_steps` steps, its seconds and steps per
        second; the tally starts afresh for the next epoch."""
        row = dict(zip(TERMS, (self.sums / n_steps).tolist()))
        row.update(seconds=self.seconds, steps_per_s=n_steps / self.seconds)
        self.sums, self.seconds = torch.zeros(len(TERMS)), 0.0
        return row

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's keys for the epoch so far (names kept from earlier checkpoints)."""
        return {"partial": self.sums, "partial_seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums, self.seconds = state["partial"], float(state["partial_seconds"])
