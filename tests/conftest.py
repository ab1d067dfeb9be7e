"""Shared fixtures: tiny models (seeded) and the MNIST folder from $ADGM_DATA_DIR."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The suite runs one worker per core (pytest-xdist, `-n auto` in pyproject.toml); each worker and
# each adgm process a test starts keeps to one thread. Tiny models gain nothing from a second
# thread, and two workers of two threads each on two cores would stall each other's barriers.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402  (after OMP_NUM_THREADS, which it reads once at start)
from hypothesis import settings  # noqa: E402

from adgm.config import ModelConfig  # noqa: E402
from adgm.models import build_model  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# No per-example deadline: on a loaded 2-core CI machine an example can take over Hypothesis's
# default 200 ms and fail a run that found nothing wrong. print_blob: a failure says how to
# replay it.
settings.register_profile("adgm", deadline=None, print_blob=True)
settings.load_profile("adgm")

TINY = dict(hidden=(16, 12), z_dim=3, a_dim=4, x_dim=12, n_classes=3)
MODEL_NAMES = ("adgm", "adgm-det", "m2", "adgm-gen", "sdgm")


def tiny_model(name: str = "adgm", seed: int = 0, **overrides):
    """A small model in float64 (for tight numerical comparisons)."""
    torch.manual_seed(seed)
    return build_model(ModelConfig(name=name, **{**TINY, **overrides})).double()


def binary_batch(batch: int, x_dim: int = TINY["x_dim"], seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(
        torch.full((batch, x_dim), 0.4, dtype=torch.float64), generator=generator
    )


@pytest.fixture
def mnist_dir() -> Path:
    """The verified MNIST folder; the test is skipped when $ADGM_DATA_DIR is not set."""
    folder = os.environ.get("ADGM_DATA_DIR")
    if not folder:
        pytest.skip("ADGM_DATA_DIR is not set (CI sets it to ../shared/data/mnist)")
    return Path(folder)
