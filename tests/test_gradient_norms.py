"""benchmarks/gradient_norms.py against the norms of the training step's own loss."""

from __future__ import annotations

import importlib.util
import statistics
from pathlib import Path

import torch

from adgm.cli import main
from adgm.data import load_data
from adgm.data.batches import epoch_batches
from adgm.distributed import ProcessGroup
from adgm.optimisation import OptimisationStep
from adgm.train import load_trained_model
from tests.test_cli import SMALL

SPEC = importlib.util.spec_from_file_location(
    "gradient_norms", Path(__file__).resolve().parents[1] / "benchmarks" / "gradient_norms.py"
)
gradient_norms = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gradient_norms)


def test_the_norms_are_those_the_training_step_clips(mnist_dir, tmp_path):
    out = tmp_path / "run"
    flags = [*SMALL, "--model", "sdgm", "--epochs", "1", "--max-steps-per-epoch", "3"]
    assert main(["train", *flags, "--mc-samples", "2", "--out", str(out)]) == 0
    figures = gradient_norms.gradient_norms(str(out), init=False, steps=3, seed=5)

    # The same batches through the training step's own loss; its clip reports the total norm.
    config, model, _ = load_trained_model(out)
    model.train()
    data = load_data(config.data)
    step = OptimisationStep(
        model,
        config.train,
        alpha=0.01 * len(data.x_unlabelled),
        n_unlabelled=len(data.x_unlabelled),
        group=ProcessGroup(),
        device=torch.device("cpu"),
    )
    norms = []
    batches = epoch_batches(
        data,
        torch.Generator().manual_seed(5),
        labelled_batch=config.data.labelled_batch,
        unlabelled_batch=config.data.unlabelled_batch,
        max_steps=3,
    )
    torch.manual_seed(5)
    for x_l, y_l, x_u in batches:
        model.zero_grad()
        step.loss_module(x_l, y_l, x_u).loss.backward()
        norms.append(float(torch.nn.utils.get_total_norm([p.grad for p in step.parameters])))
    assert len(norms) == 3
    assert abs(figures["median"] - statistics.median(norms)) < 1e-3 * figures["median"]
    assert figures["least"] <= figures["median"] <= figures["largest"]
    assert figures["constrained"] == sum(n > 5.0 for n in norms) / 3
    assert 0.0 <= figures["beyond"] < 1.0
