"""The importance-weighted log-likelihood against numerical integration and against the bounds."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from adgm.errors import AdgmError
from adgm.likelihood import log_likelihood, refuse_grey_targets
from adgm.objectives import unlabelled_bound
from tests.conftest import MODEL_NAMES, binary_batch, tiny_model

# Small enough to integrate: one latent unit, one auxiliary unit, five pixels, two classes.
SMALL = dict(hidden=(8,), z_dim=1, a_dim=1, x_dim=5, n_classes=2)
GRID = torch.linspace(-10.0, 10.0, 801, dtype=torch.float64)  # standard-normal coordinates


def trapezoid_expectation(values: torch.Tensor) -> torch.Tensor:
    """E_{t ~ N(0, 1)}[f(t)] by the trapezoid rule on GRID; values (..., len(GRID))."""
    density = Normal(0.0, 1.0).log_prob(GRID).exp()
    return torch.trapezoid(values * density, GRID, dim=-1)


def integrated_log_px(model, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log sum_y p(y) int p(z) [int p(a|y,z)] p(x|[a,]y,z) dz (da), by quadrature.

    For every model but the SDGM, p(x|y,z) does not depend on a and p(a|...) integrates to 1,
    so log p(x) = log sum_y p(y) int N(z) p(x|y,z) dz. For the SDGM a = mu(y,z) + sigma(y,z) t
    with t ~ N(0, 1), a second quadrature.
    """
    k = model.n_classes
    z = GRID.view(-1, 1, 1)  # (G, 1, Z=1)
    per_label = []
    for label in range(k):
        y = torch.full((1,), label)
        if model.config.name == "sdgm":
            z_rows = z.squeeze(-1)  # (G, 1)
            mu_a, logvar_a = model.a_decoder_head(
                model.a_decoder.from_pre_activation(
                    model.a_decoder.first_layer_part(0, z_rows)
                    + model.a_decoder.input_maps[1].weight.t()[label]
                )
            )  # (G, 1)
            a = mu_a + torch.exp(0.5 * logvar_a) * GRID  # (G_z, G_a)
            logits = model.decode(
                z.expand(-1, len(GRID), 1), y.expand(len(GRID)), a.unsqueeze(-1)
            )  # (G_z, G_a, D)
            px = Bernoulli(logits=logits.unsqueeze(2)).log_prob(x).sum(-1).exp()  # (Gz, Ga, B)
            px_given_z = trapezoid_expectation(px.permute(2, 0, 1))  # (B, G_z)
        else:
            logits = model.decode(z, y)  # (G, 1, D)
            px_given_z = Bernoulli(logits=logits).log_prob(x).sum(-1).exp().t()  # (B, G)
        per_label.append(trapezoid_expectation(px_given_z) / k)
    return torch.log(torch.stack(per_label).sum(0))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_importance_weighted_estimate_matches_numerical_integration(name):
    model = tiny_model(name, seed=3, **SMALL)
    x = binary_batch(4, x_dim=SMALL["x_dim"], seed=2)
    repeats = 50
    with torch.no_grad():
        exact = integrated_log_px(model, x)
        torch.manual_seed(0)
        estimates = log_likelihood(model, x.repeat(repeats, 1), n_samples=1_000)
    # exp(estimate) is an unbiased estimate of p(x): the mean of 50 of them is within a few
    # standard errors of the integral.
    ratio = torch.exp(estimates.view(repeats, -1) - exact)  # p_hat / p, (R, B)
    standard_error = ratio.std(0) / math.sqrt(repeats)
    assert torch.all((ratio.mean(0) - 1).abs() < 4 * standard_error + 1e-3), (ratio.mean(0), exact)
    assert torch.all(standard_error < 0.05)  # the test has the power to see a 20% error
    assert torch.all(exact < 0)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_estimate_is_above_the_elbo_and_rises_with_the_number_of_samples(name):
    """E[L_1] >= ELBO and E[L_1] <= E[L_10] <= E[L_100] <= log p(x) (Burda et al. 2016, thm. 1)."""
    model = tiny_model(name, seed=1)
    x = binary_batch(3, seed=4)
    with torch.no_grad():
        torch.manual_seed(0)
        elbo = -unlabelled_bound(model, x, n_samples=20_000)
        means = {}
        for k, repeats in ((1, 8_000), (10, 800), (100, 80)):
            estimates = log_likelihood(model, x.repeat(repeats, 1), n_samples=k).view(repeats, -1)
            means[k] = estimates.mean(0)
    assert torch.all(means[1] > elbo), (means[1], elbo)
    assert torch.all(means[10] > means[1]), means
    assert torch.all(means[100] > means[10]), means


def test_memory_chunks_give_the_estimate_of_one_pass(monkeypatch):
    """Splitting the samples into passes changes nothing but the order of the sums."""
    import adgm.likelihood as likelihood

    model = tiny_model("sdgm", seed=2)
    x = binary_batch(5, seed=3)
    with torch.no_grad():
        torch.manual_seed(4)
        whole = log_likelihood(model, x, n_samples=12)
        monkeypatch.setattr(likelihood, "_ELEMENTS_PER_PASS", 1)  # one sample per pass
        torch.manual_seed(4)
        chunked = log_likelihood(model, x, n_samples=12)
    assert chunked.shape == (5,)
    assert torch.all(torch.isfinite(chunked))
    # Different passes draw a and z in another order, so compare as estimates, not draws.
    torch.testing.assert_close(chunked, whole, rtol=0, atol=2.0)


def test_the_papers_adgm_estimate_does_not_depend_on_q_a():
    """In the paper's ADGM a has no child, so p(x) does not involve a and the estimate leaves
    p(a) / q(a|x) out: moving q(a|x) far from p(a) (as a frozen random q(a|x) is) changes
    nothing, draw for draw. With the ratio kept, the estimate would fall by about the KL."""
    model = tiny_model("adgm", seed=1)
    x = binary_batch(6, seed=4)
    with torch.no_grad():
        torch.manual_seed(0)
        before = log_likelihood(model, x, n_samples=50)
        for parameter in model.a_head.parameters():
            parameter.add_(2.0)  # q(a|x): means and log-variances shifted by 2
        torch.manual_seed(0)
        after = log_likelihood(model, x, n_samples=50)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "likelihood, test_inputs, refused",
    [
        ("bernoulli", "grey", True),
        ("bernoulli", "binary", False),
        ("gaussian", "grey", False),
        ("gaussian", "binary", False),
    ],
)
def test_only_grey_bernoulli_targets_are_refused(likelihood, test_inputs, refused):
    def ask():
        refuse_grey_targets(likelihood, test_inputs, "--log-likelihood", "add --test-inputs binary")

    if refused:
        with pytest.raises(AdgmError, match="^--log-likelihood needs binary test images.*binary$"):
            ask()
    else:
        ask()


def test_an_unresolved_likelihood_is_a_programming_error():
    with pytest.raises(ValueError, match="must be resolved"):
        refuse_grey_targets("auto", "grey", "eval_iw_samples", "drop it")
