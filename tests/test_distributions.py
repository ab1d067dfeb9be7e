"""Log densities against torch.distributions, and the hand-written Bernoulli gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli

from adgm.distributions import log_bernoulli


def test_log_bernoulli_is_the_bernoulli_log_probability():
    generator = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(3, 5, 7, dtype=torch.float64, generator=generator)
    x = torch.bernoulli(torch.full((5, 7), 0.5, dtype=torch.float64), generator=generator)
    expected = Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum(-1)
    torch.testing.assert_close(log_bernoulli(x, logits), expected, rtol=1e-12, atol=1e-12)


def test_log_bernoulli_is_exact_for_extreme_logits():
    logits = torch.tensor([[-200.0, -60.0, -20.0, 0.0, 20.0, 60.0, 200.0]], dtype=torch.float64)
    x = torch.tensor([[0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0]], dtype=torch.float64)
    # log sigma(l) = -softplus(-l), log(1 - sigma(l)) = -softplus(l), softplus(t) = logaddexp(0, t)
    zero = torch.zeros(())
    per_pixel = -torch.where(x == 1, torch.logaddexp(zero, -logits), torch.logaddexp(zero, logits))
    torch.testing.assert_close(log_bernoulli(x, logits), per_pixel.sum(-1), rtol=1e-15, atol=0)
    assert torch.isfinite(log_bernoulli(x.float(), logits.float())).all()


@pytest.mark.parametrize("x_shape", [(4, 1, 6), (1, 6), (2, 4, 3, 6)])
def test_log_bernoulli_gradients_match_finite_differences(x_shape):
    """Also for x in [0, 1] (not only {0, 1}) and x broadcast against the logits."""
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 3, 6, dtype=torch.float64, generator=generator)
    x = torch.rand(x_shape, dtype=torch.float64, generator=generator)
    inputs = (x.requires_grad_(), logits.requires_grad_())
    assert torch.autograd.gradcheck(log_bernoulli, inputs, atol=1e-8, rtol=1e-6)


def test_log_bernoulli_gradient_equals_autograd_of_the_textbook_formula():
    generator = torch.Generator().manual_seed(3)
    logits = 3 * torch.randn(4, 5, 6, dtype=torch.float64, generator=generator)
    x = torch.rand(5, 6, dtype=torch.float64, generator=generator)
    weights = torch.randn(4, 5, dtype=torch.float64, generator=generator)

    def gradients(function):
        leaf_logits, leaf_x = logits.clone().requires_grad_(), x.clone().requires_grad_()
        (weights * function(leaf_x, leaf_logits)).sum().backward()
        return leaf_logits.grad, leaf_x.grad

    def textbook(x, logits):  # x log sigma(l) + (1 - x) log(1 - sigma(l))
        return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)

    for ours, reference in zip(gradients(log_bernoulli), gradients(textbook)):
        torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)


def test_log_bernoulli_computes_in_float32_for_bfloat16_logits():
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(8, 10, generator=generator).bfloat16().requires_grad_()
    x = torch.bernoulli(torch.full((8, 10), 0.5), generator=generator)
    value = log_bernoulli(x, logits)
    assert value.dtype == torch.float32
    expected = Bernoulli(logits=logits.detach().float()).log_prob(x).sum(-1)
    torch.testing.assert_close(value, expected)
    value.sum().backward()
    assert logits.grad.dtype == torch.bfloat16
    expected_grad = x - torch.sigmoid(logits.detach().float())
    torch.testing.assert_close(logits.grad.float(), expected_grad, rtol=0.01, atol=0.01)


def test_softplus_is_log_one_plus_exp_from_float64_to_the_extremes():
    from adgm.distributions import softplus

    logits = torch.cat(
        [
            torch.randn(10_000, dtype=torch.float64) * 5,
            torch.tensor([0.0, 1e-12, -1e-12, 30.0, -30.0, 88.0, -88.0, 700.0, -700.0]).double(),
        ]
    )
    # Independent: Python's math module (log1p, rewritten so that e^l cannot overflow).
    import math

    expected = torch.tensor(
        [max(v, 0) + math.log1p(math.exp(-abs(v))) for v in logits.tolist()], dtype=torch.float64
    )
    torch.testing.assert_close(softplus(logits), expected, rtol=1e-15, atol=1e-15)
    single = softplus(logits.float()).double()
    assert (single - expected).abs().max() < 1e-6  # F.softplus in float32: 5.4e-7
    assert torch.isfinite(softplus(torch.tensor([1e30, -1e30]))).all()
    assert softplus(torch.tensor([float("nan")])).isnan().all()
