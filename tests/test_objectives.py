"""The bounds against independent, explicit computations of eqs. 7, 8, 9 and 11."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal

from adgm.config import STOCHASTIC_AUXILIARY_MODELS, ModelConfig
from adgm.errors import AdgmError
from adgm.objectives import labelled_bound, objective, prior_log_ratio, unlabelled_bound
from tests.conftest import MODEL_NAMES, TINY, binary_batch, tiny_model


def concat_mlp(mlp, inputs):
    """Run a MultiInputMLP as one linear map of the concatenated inputs (the textbook form)."""
    weight = torch.cat([m.weight for m in mlp.input_maps], dim=1)
    h = torch.relu(torch.cat(inputs, dim=-1) @ weight.t() + mlp.input_maps[0].bias)
    for layer in mlp.layers:
        h = torch.relu(layer(h))
    return h


def explicit_q_z(model, x, y_onehot):
    h = concat_mlp(model.z_encoder, [x, y_onehot])
    return model.z_head.mu(h), model.z_head.logvar(h)


def explicit_p_x_logits(model, z, y_onehot):
    return model.decoder_out(concat_mlp(model.decoder, [z, y_onehot]))


def explicit_q_y_logits(model, x, a):
    """q(y|a,x) as one MLP of [x, a]; q(y|x) of [x] alone for a classifier blind to a."""
    reads_a = model.config.classifier_reads_auxiliary
    return model.classifier_out(concat_mlp(model.classifier, [x, a] if reads_a else [x]))


def normal(mu, logvar):
    return Normal(mu, torch.exp(0.5 * logvar))


def weigh_labels(q_y, elbo, label_weights):
    """U from q(y|a_i,x) and elbo(a_i, y), both (S, B, K), by an explicit sum over samples.

    per-sample (eq. 11): (1/S) sum_i sum_y q_i(y) (elbo_i(y) - log q_i(y));
    sample-mean (the authors' code): sum_y qbar(y) ((1/S) sum_i elbo_i(y) - log qbar(y)).
    """
    n_samples = q_y.shape[0]
    if label_weights == "per-sample":
        return (
            sum((q_y[i] * (elbo[i] - torch.log(q_y[i]))).sum(-1) for i in range(n_samples))
            / n_samples
        )
    q_bar = sum(q_y[i] for i in range(n_samples)) / n_samples
    elbo_bar = sum(elbo[i] for i in range(n_samples)) / n_samples
    return (q_bar * (elbo_bar - torch.log(q_bar))).sum(-1)


@pytest.mark.parametrize("reads_a", [True, False])
@pytest.mark.parametrize("label_weights", ["per-sample", "sample-mean"])
@pytest.mark.parametrize("n_samples", [1, 3])
def test_unlabelled_bound_equals_explicit_loop_over_labels(n_samples, label_weights, reads_a):
    model = tiny_model("adgm", classifier_reads_auxiliary=reads_a)
    x = binary_batch(5)
    batch, k = x.shape[0], TINY["n_classes"]
    torch.manual_seed(7)
    batched = unlabelled_bound(
        model, x, n_samples=n_samples, analytic_kl=False, label_weights=label_weights
    )

    # Same random numbers, drawn in the same order: eps_a (S, B, A), then eps_z (S, B, K, Z).
    torch.manual_seed(7)
    eps_a = torch.randn(n_samples, batch, TINY["a_dim"], dtype=torch.float64)
    eps_z = torch.randn(n_samples, batch, k, TINY["z_dim"], dtype=torch.float64)
    mu_a, logvar_a = model.q_a(x)
    q_y = torch.zeros(n_samples, batch, k, dtype=torch.float64)
    elbo = torch.zeros(n_samples, batch, k, dtype=torch.float64)
    for i in range(n_samples):
        a = mu_a + torch.exp(0.5 * logvar_a) * eps_a[i]
        q_y[i] = F.softmax(explicit_q_y_logits(model, x, a), dim=-1)  # the same a_i for every y
        log_ratio_a = Normal(0, 1).log_prob(a).sum(-1) - normal(mu_a, logvar_a).log_prob(a).sum(-1)
        for y in range(k):
            onehot = F.one_hot(torch.full((batch,), y), k).double()
            mu_z, logvar_z = explicit_q_z(model, x, onehot)
            z = mu_z + torch.exp(0.5 * logvar_z) * eps_z[i, :, y]
            elbo[i, :, y] = (
                Bernoulli(logits=explicit_p_x_logits(model, z, onehot)).log_prob(x).sum(-1)
                + math.log(1 / k)
                + Normal(0, 1).log_prob(z).sum(-1)
                - normal(mu_z, logvar_z).log_prob(z).sum(-1)
                + log_ratio_a
            )
    expected = -weigh_labels(q_y, elbo, label_weights)
    torch.testing.assert_close(batched, expected, rtol=1e-10, atol=1e-10)
    if n_samples > 1 and reads_a:  # the two weightings differ once the samples of a differ
        other = "sample-mean" if label_weights == "per-sample" else "per-sample"
        assert (expected + weigh_labels(q_y, elbo, other)).abs().min() > 1e-6


PAPER_MODELS = ("adgm", "adgm-det", "m2")  # a not generated; the others: test_generative_auxiliary


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_labelled_bound_matches_hand_written_eq7_and_eq9(name):
    model = tiny_model(name)
    x = binary_batch(6)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    n_samples, batch, k = 4, 6, TINY["n_classes"]
    torch.manual_seed(3)
    bound, clf = labelled_bound(model, x, y, n_samples=n_samples, analytic_kl=False)

    torch.manual_seed(3)
    onehot = F.one_hot(y, k).double()
    if name == "adgm":
        eps_a = torch.randn(n_samples, batch, TINY["a_dim"], dtype=torch.float64)
        mu_a, logvar_a = model.q_a(x)
        a = mu_a + torch.exp(0.5 * logvar_a) * eps_a  # (S, B, A)
        a_term = Normal(0, 1).log_prob(a).sum(-1) - normal(mu_a, logvar_a).log_prob(a).sum(-1)
        log_qy = F.log_softmax(explicit_q_y_logits(model, x.expand(n_samples, -1, -1), a), -1)
    elif name == "adgm-det":
        a = model.a_mean(model.a_encoder(x))  # deterministic: no KL term
        a_term = torch.zeros(1, batch, dtype=torch.float64)
        log_qy = F.log_softmax(explicit_q_y_logits(model, x, a), -1).unsqueeze(0)
    else:
        a_term = torch.zeros(1, batch, dtype=torch.float64)
        log_qy = F.log_softmax(model.classifier_out(model.classifier(x)), -1).unsqueeze(0)
    eps_z = torch.randn(n_samples, batch, TINY["z_dim"], dtype=torch.float64)
    mu_z, logvar_z = explicit_q_z(model, x, onehot)
    z = mu_z + torch.exp(0.5 * logvar_z) * eps_z
    log_px = Bernoulli(logits=explicit_p_x_logits(model, z, onehot.expand(n_samples, -1, -1)))
    elbo = (
        log_px.log_prob(x).sum(-1)
        + math.log(1 / k)
        + Normal(0, 1).log_prob(z).sum(-1)
        - normal(mu_z, logvar_z).log_prob(z).sum(-1)
        + a_term
    )
    expected_bound = -elbo.mean(0)
    # eq. 9: -log (1/S) sum_i q(y | a_i, x)
    q_true = log_qy.exp()[..., torch.arange(batch), y]  # (S|1, B)
    expected_clf = -torch.log(q_true.mean(0))
    torch.testing.assert_close(bound, expected_bound, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(clf, expected_clf, rtol=1e-10, atol=1e-10)


def test_monte_carlo_kl_agrees_with_closed_form():
    torch.manual_seed(0)
    mu = torch.randn(3, 5, dtype=torch.float64)
    logvar = torch.randn(3, 5, dtype=torch.float64)
    sample = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, 3, 5, dtype=torch.float64)
    mc = prior_log_ratio(sample, mu, logvar, analytic=False)  # (N, 3)
    closed = prior_log_ratio(sample, mu, logvar, analytic=True)  # (1, 3)
    standard_error = mc.std(0) / math.sqrt(mc.shape[0])
    assert torch.all((mc.mean(0) - closed[0]).abs() < 5 * standard_error)
    reference = torch.distributions.kl_divergence(normal(mu, logvar), Normal(0, 1)).sum(-1)
    torch.testing.assert_close(closed[0], -reference)


def bound_estimate(model, x, y, bound, *, analytic, seed, n_samples=20_000):
    """L(x, y) ("labelled") or U(x) ("unlabelled") from n_samples draws, the RNG seeded."""
    torch.manual_seed(seed)
    with torch.no_grad():
        if bound == "labelled":
            return labelled_bound(model, x, y, n_samples=n_samples, analytic_kl=analytic)[0]
        return unlabelled_bound(model, x, n_samples=n_samples, analytic_kl=analytic)


@pytest.mark.parametrize("bound", ["labelled", "unlabelled"])
def test_analytic_and_monte_carlo_bounds_agree_in_expectation(bound):
    model = tiny_model("adgm")
    x = binary_batch(4)
    y = torch.tensor([0, 1, 2, 0])
    analytic = bound_estimate(model, x, y, bound, analytic=True, seed=1)
    monte_carlo = bound_estimate(model, x, y, bound, analytic=False, seed=2)
    # Both are 20,000-sample averages of unbiased estimates of the same expectation.
    torch.testing.assert_close(analytic, monte_carlo, rtol=0, atol=0.15)


def explicit_log_px(model, x, z):
    """log p(x|z,y) for every label (z is (..., B, K, Z)) with torch.distributions."""
    f = model.decode(z)
    if model.config.likelihood == "gaussian":
        return Normal(f, torch.exp(0.5 * model.x_logvar)).log_prob(x.unsqueeze(1)).sum(-1)
    return Bernoulli(logits=f).log_prob(x.unsqueeze(1)).sum(-1)


def real_batch(batch: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, TINY["x_dim"], dtype=torch.float64, generator=generator)


def importance_sampled_log_px(model, x, n_samples):
    """log p(x) = log sum_y p(y) E_q(z|x,y)[p(z) p(x|y,z) / q(z|x,y)] (a integrates out: p(a)
    has no children), estimated with n_samples proposals z ~ q(z|x,y) per label."""
    k = model.n_classes
    mu_z, logvar_z = model.q_z(x)  # (B, K, Z)
    z = mu_z + torch.exp(0.5 * logvar_z) * torch.randn(n_samples, *mu_z.shape, dtype=x.dtype)
    log_w = (
        explicit_log_px(model, x, z)
        + Normal(0, 1).log_prob(z).sum(-1)
        - normal(mu_z, logvar_z).log_prob(z).sum(-1)
    )
    per_label = torch.logsumexp(log_w, dim=0) - math.log(n_samples)  # (B, K)
    return torch.logsumexp(per_label - math.log(k), dim=-1)


LIKELIHOOD_CASES = [(name, "bernoulli") for name in MODEL_NAMES] + [
    ("adgm", "gaussian"),
    ("sdgm", "gaussian"),
]


def tiny_model_and_batch(name, likelihood, *, batch, seed, model_seed=0):
    model = tiny_model(name, seed=model_seed, likelihood=likelihood)
    if likelihood == "gaussian":
        with torch.no_grad():  # a learned variance that is not all ones
            model.x_logvar.copy_(torch.linspace(-0.5, 0.5, TINY["x_dim"]))
        return model, real_batch(batch, seed=seed)
    return model, binary_batch(batch, seed=seed)


@pytest.mark.parametrize(
    "name, likelihood", [case for case in LIKELIHOOD_CASES if case[0] in PAPER_MODELS]
)
def test_bound_is_below_importance_sampled_log_likelihood(name, likelihood):
    """For the models whose a is not generated (the others: tests/test_likelihood.py)."""
    model, x = tiny_model_and_batch(name, likelihood, batch=8, seed=5, model_seed=4)
    with torch.no_grad():
        torch.manual_seed(0)
        log_px = importance_sampled_log_px(model, x, 20_000)
        elbo = -unlabelled_bound(model, x, n_samples=2_000)
    assert torch.all(elbo < log_px), (elbo, log_px)
    # The gap is a KL divergence: positive but finite, and both are sensible log-densities.
    if likelihood == "bernoulli":
        assert torch.all(log_px < 0)
    assert torch.all(log_px - elbo < 50)


def test_gaussian_likelihood_is_the_normal_density_with_learned_variance():
    model, x = tiny_model_and_batch("adgm", "gaussian", batch=5, seed=2)
    z = torch.randn(3, 5, TINY["z_dim"], dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1, 0])
    expected = Normal(model.decode(z, y), torch.exp(0.5 * model.x_logvar)).log_prob(x).sum(-1)
    torch.testing.assert_close(model.log_px(x, z, y), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model.x_mean(z, y), model.decode(z, y))


@pytest.mark.parametrize("name, likelihood", LIKELIHOOD_CASES)
def test_gradients_reach_every_parameter(name, likelihood):
    model, x = tiny_model_and_batch(name, likelihood, batch=6, seed=1)
    _, x_u = tiny_model_and_batch(name, likelihood, batch=6, seed=9)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    terms = objective(model, x, y, x_u, alpha=2.0, n_samples=2)
    terms.loss.backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"{param_name} gets no gradient"
        assert param.grad.abs().sum() > 0, f"{param_name} has an all-zero gradient"


@pytest.mark.parametrize("name", ["adgm", "adgm-gen", "sdgm"])
def test_a_classifier_blind_to_a_reads_x_alone_and_every_network_still_trains(name):
    model = tiny_model(name, classifier_reads_auxiliary=False)
    reading = tiny_model(name)
    assert len(model.classifier.input_maps) == 1  # no weights for a at all
    x, y = binary_batch(6, seed=1), torch.tensor([0, 1, 2, 0, 1, 2])
    aux = model.sample_auxiliary(x, 4)
    other = model.sample_auxiliary(binary_batch(6, seed=5), 4)
    blind_logits = model.q_y_logits(x, aux)
    assert blind_logits.shape == (1, 6, TINY["n_classes"])
    torch.testing.assert_close(blind_logits, model.q_y_logits(x, other), rtol=0, atol=0)
    assert not torch.allclose(reading.q_y_logits(x, aux), reading.q_y_logits(x, other))
    # q(y|x) of the plain MLP, and the prediction is that whatever the draws of a
    torch.testing.assert_close(blind_logits[0], explicit_q_y_logits(model, x, None))
    torch.testing.assert_close(model.predict_proba(x), torch.softmax(blind_logits[0], -1))
    terms = objective(model, x, y, binary_batch(6, seed=9), alpha=2.0, n_samples=2)
    terms.loss.backward()
    for param_name, param in model.named_parameters():  # q(a|x) too, through the bound
        assert param.grad is not None and param.grad.abs().sum() > 0, param_name


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_configs_list_of_models_that_sample_a_agrees_with_the_models(name):
    """config.STOCHASTIC_AUXILIARY_MODELS (which the configuration checks before any model is
    built) names exactly the models whose q(a|x) is sampled; only they take a blind classifier."""
    samples_a = tiny_model(name).stochastic_auxiliary
    assert samples_a == (name in STOCHASTIC_AUXILIARY_MODELS)
    blind = ModelConfig(name=name, **{**TINY, "classifier_reads_auxiliary": False})
    if samples_a:
        blind.validate()
    else:
        with pytest.raises(AdgmError, match=f"stochastic a .*not {name}$"):
            blind.validate()


@pytest.mark.parametrize("name, likelihood", LIKELIHOOD_CASES)
@pytest.mark.parametrize(
    "n_samples, analytic_kl, label_weights",
    [(1, True, "per-sample"), (3, False, "per-sample"), (3, False, "sample-mean")],
)
def test_objective_is_the_two_bounds_weighed_as_documented(
    name, likelihood, n_samples, analytic_kl, label_weights
):
    """The one-pass objective equals labelled_bound and unlabelled_bound, draw for draw."""
    model, x_l = tiny_model_and_batch(name, likelihood, batch=5, seed=1)
    _, x_u = tiny_model_and_batch(name, likelihood, batch=7, seed=2)
    y = torch.tensor([0, 1, 2, 1, 0])
    options = dict(n_samples=n_samples, analytic_kl=analytic_kl)
    torch.manual_seed(0)
    terms = objective(model, x_l, y, x_u, alpha=3.5, label_weights=label_weights, **options)
    torch.manual_seed(0)
    bound_l, clf = labelled_bound(model, x_l, y, **options)
    bound_u = unlabelled_bound(model, x_u, label_weights=label_weights, **options)
    torch.testing.assert_close(terms.labelled, bound_l.mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(terms.classification, clf.mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(terms.unlabelled, bound_u.mean(), rtol=1e-12, atol=1e-12)
    expected = bound_l.mean() + 3.5 * clf.mean() + bound_u.mean()
    torch.testing.assert_close(terms.loss, expected, rtol=1e-12, atol=1e-12)


def test_objective_gradient_equals_the_two_bounds_gradient():
    model, x_l = tiny_model_and_batch("adgm", "bernoulli", batch=4, seed=1)
    _, x_u = tiny_model_and_batch("adgm", "bernoulli", batch=3, seed=2)
    y = torch.tensor([2, 1, 0, 1])
    torch.manual_seed(5)
    objective(model, x_l, y, x_u, alpha=2.0, n_samples=2).loss.backward()
    batched = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    torch.manual_seed(5)
    bound_l, clf = labelled_bound(model, x_l, y, n_samples=2)
    (
        bound_l.mean() + 2.0 * clf.mean() + unlabelled_bound(model, x_u, n_samples=2).mean()
    ).backward()
    for param_name, param in model.named_parameters():
        torch.testing.assert_close(batched[param_name], param.grad, msg=param_name)


def test_q_z_pairs_are_q_z_of_each_point_and_label():
    model, x = tiny_model_and_batch("adgm", "bernoulli", batch=5, seed=3)
    y = torch.tensor([2, 0])  # the first two rows are labelled
    mu, logvar = model.q_z_pairs(x, y)
    k = TINY["n_classes"]
    assert mu.shape == (2 + 3 * k, TINY["z_dim"])
    mu_given, logvar_given = model.q_z(x[:2], y)
    mu_all, logvar_all = model.q_z(x[2:])  # (3, K, Z)
    torch.testing.assert_close(mu, torch.cat([mu_given, mu_all.flatten(0, 1)]))
    torch.testing.assert_close(logvar, torch.cat([logvar_given, logvar_all.flatten(0, 1)]))
    onehot = F.one_hot(torch.tensor(1), k).double().expand(5, k)
    torch.testing.assert_close(model.q_z(x)[0][:, 1], explicit_q_z(model, x, onehot)[0])


@pytest.mark.parametrize("name", ["adgm", "sdgm"])
def test_bf16_autocast_keeps_densities_in_float32_and_the_loss_close(name):
    torch.manual_seed(0)
    model = tiny_model(name).float()
    x_l, x_u = binary_batch(5).float(), binary_batch(7, seed=2).float()
    y = torch.tensor([0, 1, 2, 1, 0])
    torch.manual_seed(1)
    full = objective(model, x_l, y, x_u, alpha=2.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mu, logvar = model.q_a(x_l)
        torch.manual_seed(1)
        half = objective(model, x_l, y, x_u, alpha=2.0)
    assert mu.dtype == logvar.dtype == torch.float32
    assert half.loss.dtype == torch.float32
    torch.testing.assert_close(half.loss, full.loss, rtol=2e-2, atol=0)


def test_a_constant_feature_cannot_make_the_gaussian_likelihood_unbounded():
    """A standardised constant feature is exactly 0; its variance is floored at 1e-3."""
    model = tiny_model("m2", likelihood="gaussian")
    x = torch.zeros(4, TINY["x_dim"], dtype=torch.float64)
    z = torch.zeros(4, TINY["z_dim"], dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        model.decoder_out.weight.zero_()
        model.decoder_out.bias.zero_()  # the decoder predicts the feature exactly
        model.x_logvar.fill_(-50.0)  # a variance that has collapsed
    per_feature_bound = -0.5 * (math.log(2 * math.pi) + math.log(1e-3))
    torch.testing.assert_close(
        model.log_px(x, z, y), torch.full((4,), TINY["x_dim"] * per_feature_bound).double()
    )
