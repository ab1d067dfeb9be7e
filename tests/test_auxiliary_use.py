"""benchmarks/auxiliary_use.py's figures against a direct computation on a stand-in model."""

from __future__ import annotations

import torch

from adgm.models.base import Auxiliary
from tests.scripts import load_script

auxiliary_use = load_script("benchmarks", "auxiliary_use")


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


def test_the_cost_of_a_matches_a_loop_over_images_draws_and_labels():
    """E[log q(a|x) - log p(a|y,z)], y weighted by q(y|a,x), for a small untrained SDGM: the
    benchmark's batched version against one (image, draw, label) at a time."""
    from adgm.config import ModelConfig
    from adgm.models import build_model
    from adgm.pairs import pair_index

    torch.manual_seed(2)
    model = build_model(
        ModelConfig(name="sdgm", hidden=(8,), z_dim=2, a_dim=3, x_dim=5, n_classes=3)
    ).eval()
    x = torch.rand(4, 5)
    torch.manual_seed(0)
    got = auxiliary_use.auxiliary_cost(model, x, n_samples=2, chunk=4)

    torch.manual_seed(0)  # the same draws: eps of a (S, B, A), then eps of z (S, B K, Z)
    eps_a, eps_z = torch.randn(2, 4, 3), torch.randn(2, 12, 2)
    normal = torch.distributions.Normal
    expected = 0.0
    with torch.no_grad():
        mu_a, logvar_a = model.q_a(x)
        for i in range(4):
            for s in range(2):
                a = mu_a[i] + (0.5 * logvar_a[i]).exp() * eps_a[s, i]
                log_q = normal(mu_a[i], (0.5 * logvar_a[i]).exp()).log_prob(a).sum()
                aux = Auxiliary(a.view(1, 1, 3), mu_a[i : i + 1], logvar_a[i : i + 1])
                weights = torch.softmax(model.q_y_logits(x[i : i + 1], aux)[0, 0], -1)
                for y in range(3):
                    rows, labels = pair_index(torch.tensor([y]), 1, 3)
                    mu_z, logvar_z = model.q_z_given_auxiliary(
                        x[i : i + 1], a.view(1, 1, 3), rows, labels
                    )
                    z = mu_z + (0.5 * logvar_z).exp() * eps_z[s, 3 * i + y]
                    mu_p, logvar_p = model.p_a(x[i : i + 1], z, rows, labels)
                    log_p = normal(mu_p[0, 0], (0.5 * logvar_p[0, 0]).exp()).log_prob(a).sum()
                    expected += float(weights[y] * (log_q - log_p)) / 2
    assert abs(got - expected / 4) < 1e-4


def test_the_share_of_z_that_a_moves_matches_a_loop_and_is_zero_when_q_z_ignores_a():
    """Var_s[mu] / (E_s[sigma^2] + Var_s[mu]) of q(z|a,y,x) over the active units of z: the
    benchmark's batched version (chunks of 3) against one image and one draw at a time."""
    from adgm.config import ModelConfig
    from adgm.models import build_model

    torch.manual_seed(4)
    model = build_model(
        ModelConfig(
            name="sdgm", hidden=(8,), z_dim=4, a_dim=3, x_dim=5, n_classes=3, gaussian_init="glorot"
        )
    ).eval()
    with torch.no_grad():  # unit 0 of z: q(z|a,y,x) = N(0, 1) whatever the input, not active;
        # unit 1: N(0.1, 1), a KL of 0.005 nats for every image: inactive by its mean over the
        # images, though their sum (0.03) is above the threshold
        for unit, mean in ((0, 0.0), (1, 0.1)):
            for layer in (model.z_head.mu, model.z_head.logvar):
                layer.weight[unit].zero_()
                layer.bias[unit].zero_()
            model.z_head.mu.bias[unit] = mean
    x, y = torch.rand(6, 5), torch.tensor([0, 1, 2, 2, 1, 0])
    torch.manual_seed(0)
    got = auxiliary_use.z_share_of_a(model, x, y, n_samples=4, chunk=3)

    torch.manual_seed(0)  # the same draws of a, chunk by chunk
    draws = torch.cat([model.sample_auxiliary(x[i : i + 3], 4).value for i in (0, 3)], dim=1)
    normal, standard = torch.distributions.Normal, torch.distributions.Normal(0.0, 1.0)
    between, within, kl = torch.zeros(4), torch.zeros(4), torch.zeros(4)
    with torch.no_grad():
        for i in range(6):
            mus, sigmas = [], []
            for s in range(4):
                aux = Auxiliary(draws[s : s + 1, i : i + 1], None, None)
                mu, logvar = model.q_z(x[i : i + 1], y[i : i + 1], aux=aux)
                mus.append(mu[0])
                sigmas.append((0.5 * logvar[0]).exp())
            mus, sigmas = torch.stack(mus), torch.stack(sigmas)  # (S, Z)
            between += mus.var(0) / 6
            within += sigmas.square().mean(0) / 6
            kl += torch.distributions.kl_divergence(normal(mus, sigmas), standard).mean(0) / 6
    active = kl > 0.01
    assert not active[0] and not active[1] and abs(float(kl[1]) - 0.005) < 1e-6
    assert 0 < int(active.sum()) == got["z_active"]
    expected = float((between / (between + within))[active].mean())
    assert abs(got["z_share"] - expected) < 1e-5 and got["z_share"] > 1e-3

    with torch.no_grad():
        model.z_encoder.input_maps[2].weight.zero_()  # q(z|a,y,x) no longer reads a
    assert auxiliary_use.z_share_of_a(model, x, y, n_samples=4, chunk=3)["z_share"] == 0.0
