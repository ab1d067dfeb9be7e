"""The benchmark's FLOP count equals what PyTorch's own counter sees in a real step."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from adgm.config import ModelConfig
from adgm.flops import step_flops
from adgm.models import build_model
from adgm.objectives import objective


@pytest.mark.parametrize(
    "name, n_samples, reads_a",
    [
        ("m2", 1, True),
        ("adgm", 1, True),
        ("adgm", 3, True),
        ("adgm-det", 2, True),
        ("adgm-gen", 1, True),
        ("adgm-gen", 3, True),
        ("sdgm", 1, True),
        ("sdgm", 2, True),
        ("adgm", 3, False),  # a classifier blind to a: q(y|x)
        ("adgm-gen", 2, False),
        ("sdgm", 2, False),
    ],
)
def test_step_flops_match_pytorch_flop_counter(name, n_samples, reads_a):
    config = ModelConfig(
        name=name,
        hidden=(50, 40),
        z_dim=8,
        a_dim=6,
        x_dim=30,
        n_classes=4,
        classifier_reads_auxiliary=reads_a,
    )
    model = build_model(config)
    x_l, x_u = torch.rand(7, 30).round(), torch.rand(9, 30).round()
    y_l = torch.arange(7) % 4
    with FlopCounterMode(display=False) as counter:
        objective(model, x_l, y_l, x_u, alpha=1.0, n_samples=n_samples).loss.backward()
    assert counter.get_total_flops() == step_flops(config, 7, 9, n_samples)
