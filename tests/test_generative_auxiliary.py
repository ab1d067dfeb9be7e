"""adgm-gen and the SDGM: their bounds against explicit loops written with torch.distributions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal

from adgm.objectives import labelled_bound, unlabelled_bound
from tests.conftest import TINY, binary_batch, tiny_model
from tests.test_objectives import (
    bound_estimate,
    concat_mlp,
    explicit_q_y_logits,
    normal,
    weigh_labels,
)

NEW_MODELS = ("adgm-gen", "sdgm")


def explicit_q_z(model, x, y_onehot, a):
    """q(z|a,y,x) as one MLP of the concatenation [x, y, a]."""
    h = concat_mlp(model.z_encoder, [x, y_onehot, a])
    return model.z_head.mu(h), model.z_head.logvar(h)


def explicit_p_a(model, x, y_onehot, z):
    """p(a|x,y,z) (adgm-gen) or p(a|y,z) (sdgm) as one MLP of the concatenation."""
    inputs = [z, y_onehot, x] if model.config.name == "adgm-gen" else [z, y_onehot]
    h = concat_mlp(model.a_decoder, inputs)
    return model.a_decoder_head.mu(h), model.a_decoder_head.logvar(h)


def explicit_log_px(model, x, y_onehot, z, a):
    """log p(x|y,z) (adgm-gen) or log p(x|a,y,z) (sdgm), Bernoulli."""
    inputs = [z, y_onehot] if model.config.name == "adgm-gen" else [z, y_onehot, a]
    logits = model.decoder_out(concat_mlp(model.decoder, inputs))
    return Bernoulli(logits=logits).log_prob(x).sum(-1)


def explicit_log_weight(model, x, y, a, eps_z):
    """w(a, y, z) = log p(y) p(z) p(x|..) p(a|..) - log q(z|a,y,x) q(a|x), z = mu + sigma eps_z.

    x (B, D), y (B,) labels, a (B, A), eps_z (B, Z) -> (B,); every density by torch.distributions.
    """
    k = model.n_classes
    onehot = F.one_hot(y, k).to(x.dtype)
    mu_a, logvar_a = model.q_a(x)
    mu_z, logvar_z = explicit_q_z(model, x, onehot, a)
    z = mu_z + torch.exp(0.5 * logvar_z) * eps_z
    mu_pa, logvar_pa = explicit_p_a(model, x, onehot, z)
    return (
        explicit_log_px(model, x, onehot, z, a)
        + math.log(1 / k)
        + Normal(0, 1).log_prob(z).sum(-1)
        - normal(mu_z, logvar_z).log_prob(z).sum(-1)
        + normal(mu_pa, logvar_pa).log_prob(a).sum(-1)
        - normal(mu_a, logvar_a).log_prob(a).sum(-1)
    )


@pytest.mark.parametrize("reads_a", [True, False])
@pytest.mark.parametrize("name", NEW_MODELS)
@pytest.mark.parametrize("n_samples", [1, 3])
def test_labelled_bound_and_classifier_equal_an_explicit_loop(name, n_samples, reads_a):
    model = tiny_model(name, classifier_reads_auxiliary=reads_a)
    x, y = binary_batch(6), torch.tensor([0, 1, 2, 2, 1, 0])
    batch = x.shape[0]
    torch.manual_seed(11)
    bound, clf = labelled_bound(model, x, y, n_samples=n_samples, analytic_kl=False)

    torch.manual_seed(11)  # eps_a (S, B, A), then eps_z (S, B, Z)
    eps_a = torch.randn(n_samples, batch, TINY["a_dim"], dtype=torch.float64)
    eps_z = torch.randn(n_samples, batch, TINY["z_dim"], dtype=torch.float64)
    mu_a, logvar_a = model.q_a(x)
    elbo = torch.zeros(batch, dtype=torch.float64)
    q_true = torch.zeros(batch, dtype=torch.float64)
    for i in range(n_samples):
        a = mu_a + torch.exp(0.5 * logvar_a) * eps_a[i]
        elbo += explicit_log_weight(model, x, y, a, eps_z[i])
        q_true += F.softmax(explicit_q_y_logits(model, x, a), -1)[torch.arange(batch), y]
    torch.testing.assert_close(bound, -elbo / n_samples, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(clf, -torch.log(q_true / n_samples), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("reads_a", [True, False])
@pytest.mark.parametrize("name", NEW_MODELS)
@pytest.mark.parametrize("n_samples", [1, 3])
@pytest.mark.parametrize("label_weights", ["per-sample", "sample-mean"])
def test_unlabelled_bound_equals_an_explicit_loop_over_labels_and_samples(
    name, n_samples, label_weights, reads_a
):
    model = tiny_model(name, classifier_reads_auxiliary=reads_a)
    x = binary_batch(5)
    batch, k = x.shape[0], TINY["n_classes"]
    torch.manual_seed(7)
    batched = unlabelled_bound(
        model, x, n_samples=n_samples, analytic_kl=False, label_weights=label_weights
    )

    torch.manual_seed(7)  # eps_a (S, B, A), then eps_z (S, B, K, Z)
    eps_a = torch.randn(n_samples, batch, TINY["a_dim"], dtype=torch.float64)
    eps_z = torch.randn(n_samples, batch, k, TINY["z_dim"], dtype=torch.float64)
    mu_a, logvar_a = model.q_a(x)
    q_y = torch.zeros(n_samples, batch, k, dtype=torch.float64)
    log_weights = torch.zeros(n_samples, batch, k, dtype=torch.float64)
    for i in range(n_samples):
        a = mu_a + torch.exp(0.5 * logvar_a) * eps_a[i]  # the same a_i for every label
        q_y[i] = F.softmax(explicit_q_y_logits(model, x, a), dim=-1)
        for label in range(k):
            y = torch.full((batch,), label)
            log_weights[i, :, label] = explicit_log_weight(model, x, y, a, eps_z[i, :, label])
    expected = -weigh_labels(q_y, log_weights, label_weights)
    torch.testing.assert_close(batched, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", NEW_MODELS)
@pytest.mark.parametrize("bound", ["labelled", "unlabelled"])
def test_closed_form_terms_and_monte_carlo_agree_in_expectation(name, bound):
    """Entropy of q(a|x) and KL of q(z|a,y,x) in closed form against their draws.

    Both estimates use the same draws (the same seed), so they differ only in the terms that
    analytic_kl replaces: log p(a|...) at the draws, heavy-tailed for an untrained p(a|...),
    cancels, and what is left is the difference of two estimates of the same expectation.
    """
    model = tiny_model(name)
    x, y = binary_batch(4), torch.tensor([0, 1, 2, 0])
    analytic = bound_estimate(model, x, y, bound, analytic=True, seed=1)
    monte_carlo = bound_estimate(model, x, y, bound, analytic=False, seed=1)
    torch.testing.assert_close(analytic, monte_carlo, rtol=0, atol=0.1)
    assert not torch.equal(analytic, monte_carlo)  # the two forms are not the same numbers


def test_sdgm_decoder_takes_a_and_adgm_gen_decoder_does_not():
    """p(x|a,y,z) depends on a in the SDGM only; p(a|...) depends on x in adgm-gen only."""
    x = binary_batch(4)
    z = torch.randn(4, TINY["z_dim"], dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    a1, a2 = torch.randn(2, 4, TINY["a_dim"], dtype=torch.float64)
    sdgm = tiny_model("sdgm")
    assert not torch.allclose(sdgm.decode(z, y, a1), sdgm.decode(z, y, a2))
    rows = torch.arange(4)
    gen = tiny_model("adgm-gen")
    mu1, _ = gen.p_a(x, z.unsqueeze(0), rows, y)
    mu2, _ = gen.p_a(1 - x, z.unsqueeze(0), rows, y)
    assert not torch.allclose(mu1, mu2)
    torch.testing.assert_close(
        sdgm.p_a(x, z.unsqueeze(0), rows, y), sdgm.p_a(1 - x, z.unsqueeze(0), rows, y)
    )


def test_sdgm_samples_of_x_use_the_mean_of_p_a_given_y_z():
    """Figure 2b for the SDGM: E[x|z,y] at a = the mean of p(a|y,z), for every label at once."""
    model = tiny_model("sdgm")
    z = torch.randn(4, TINY["n_classes"], TINY["z_dim"], dtype=torch.float64)  # label on axis 1
    means = model.x_mean(z)  # (4, K, D)
    assert means.shape == (4, TINY["n_classes"], TINY["x_dim"])
    for label in range(TINY["n_classes"]):
        onehot = F.one_hot(torch.full((4,), label), TINY["n_classes"]).double()
        mu_a, _ = explicit_p_a(model, None, onehot, z[:, label])
        logits = model.decoder_out(concat_mlp(model.decoder, [z[:, label], onehot, mu_a]))
        torch.testing.assert_close(means[:, label], torch.sigmoid(logits))
