"""benchmarks/auxiliary_use.py's figures against a direct computation on a stand-in model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from adgm.models.base import Auxiliary

SPEC = importlib.util.spec_from_file_location(
    "auxiliary_use", Path(__file__).resolve().parents[1] / "benchmarks" / "auxiliary_use.py"
)
auxiliary_use = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(auxiliary_use)


class StandIn:
    """q(a|x) = N(x W, 1); q(y|a,x) with logits a V + x U (K = 3 classes, A = 2 units)."""

    stochastic_auxiliary = True

    def __init__(self, uses_a: bool):
        generator = torch.Generator().manual_seed(3)
        self.W = torch.randn(4, 2, generator=generator)
        self.V = torch.randn(2, 3, generator=generator) * (3.0 if uses_a else 0.0)
        self.U = torch.randn(4, 3, generator=generator)

    def sample_auxiliary(self, x, n_samples):
        mu = x @ self.W
        value = mu + torch.randn(n_samples, *mu.shape)
        return Auxiliary(value, mu, torch.zeros_like(mu))

    def q_y_logits(self, x, aux):
        return aux.value @ self.V + x @ self.U


def direct(model, x, y, n_samples):
    """The same figures, image by image, with torch.distributions."""
    torch.manual_seed(0)
    errors, mis = 0, 0.0
    for start in range(0, len(x), 7):  # the benchmark's chunks of 7, drawn in the same order
        xb = x[start : start + 7]
        aux = model.sample_auxiliary(xb, n_samples)
        probs = torch.softmax(model.q_y_logits(xb, aux), -1)
        for i in range(len(xb)):
            mean = probs[:, i].mean(0)
            errors += int(mean.argmax() != y[start + i])
            draws = [torch.distributions.Categorical(probs=p).entropy() for p in probs[:, i]]
            mis += float(torch.distributions.Categorical(probs=mean).entropy())
            mis -= float(torch.stack(draws).mean())
    return errors / len(x), mis / len(x)


def test_the_error_and_the_mutual_information_match_a_direct_computation():
    x = torch.randn(20, 4, generator=torch.Generator().manual_seed(1))
    y = torch.arange(20) % 3
    for uses_a in (True, False):
        model = StandIn(uses_a)
        torch.manual_seed(0)
        got = auxiliary_use.auxiliary_use(model, x, y, n_samples=50, chunk=7)
        error, mi = direct(model, x, y, n_samples=50)
        assert abs(got["error"] - error) < 1e-9
        assert abs(got["mi"] - mi) < 1e-5
        if uses_a:
            assert got["mi"] > 0.01 and got["changed"] > 0
        else:  # a moves nothing: no information, no change, another image's a is as good
            assert abs(got["mi"]) < 1e-6 and got["changed"] == 0
            assert got["error_other_a"] == got["error"] == got["error_at_mean"]
