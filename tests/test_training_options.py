"""Options taken from the authors' ICML 2016 code: each against an independent computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adgm.config import MODEL_NAMES, WEIGHT_PRIOR_NETWORKS, ModelConfig, TrainConfig
from adgm.distributed import ObjectiveModule, ProcessGroup
from adgm.errors import AdgmError
from adgm.models import build_model
from adgm.objectives import PRIOR_NETWORKS, _networks_of, objective, weights_under_prior
from adgm.optimisation import OptimisationStep
from tests.conftest import TINY, binary_batch, tiny_model
from tests.test_objectives import explicit_q_y_logits


@pytest.mark.parametrize("name", ["adgm", "sdgm"])
def test_mean_log_classification_term_is_the_mean_of_log_q_over_samples(name):
    model = tiny_model(name)
    x_l, x_u = binary_batch(5), binary_batch(4, seed=2)
    y = torch.tensor([0, 1, 2, 1, 0])
    n_samples = 4
    torch.manual_seed(3)
    mean_log = objective(
        model, x_l, y, x_u, alpha=1.0, n_samples=n_samples, classification_term="mean-log"
    )
    torch.manual_seed(3)
    log_mean = objective(model, x_l, y, x_u, alpha=1.0, n_samples=n_samples)
    # The same draws: eps_a of the labelled rows comes first in both.
    torch.manual_seed(3)
    eps_a = torch.randn(n_samples, 5, TINY["a_dim"], dtype=torch.float64)
    mu_a, logvar_a = model.q_a(x_l)
    a = mu_a + torch.exp(0.5 * logvar_a) * eps_a  # (S, B, A)
    log_q = F.log_softmax(explicit_q_y_logits(model, x_l.expand(n_samples, -1, -1), a), -1)
    expected = -log_q[:, torch.arange(5), y].mean(0).mean()
    torch.testing.assert_close(mean_log.classification, expected, rtol=1e-10, atol=1e-10)
    assert mean_log.classification > log_mean.classification  # Jensen, S > 1
    torch.testing.assert_close(mean_log.unlabelled, log_mean.unlabelled)  # only clf changes


def test_the_two_classification_terms_agree_for_one_sample():
    model = tiny_model("adgm")
    x_l, x_u, y = binary_batch(5), binary_batch(4, seed=2), torch.tensor([0, 1, 2, 1, 0])
    torch.manual_seed(1)
    first = objective(model, x_l, y, x_u, alpha=2.0, classification_term="mean-log")
    torch.manual_seed(1)
    second = objective(model, x_l, y, x_u, alpha=2.0)
    torch.testing.assert_close(first.loss, second.loss, rtol=1e-12, atol=1e-12)


def test_weight_prior_adds_half_the_squared_weights_over_n_to_the_loss():
    model = tiny_model("sdgm")
    x_l, x_u, y = binary_batch(5), binary_batch(4, seed=2), torch.tensor([0, 1, 2, 1, 0])
    options = dict(alpha=2.0, n_samples=1, analytic_kl=True)
    torch.manual_seed(1)
    plain = ObjectiveModule(model, **options)(x_l, y, x_u)
    torch.manual_seed(1)
    with_prior = ObjectiveModule(model, weight_prior_scale=1 / 600, **options)(x_l, y, x_u)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    squared = sum(float((m.weight.detach() ** 2).sum()) for m in linears)
    assert len(linears) > 20  # every MLP and Gaussian layer of the five networks
    torch.testing.assert_close(with_prior.loss - plain.loss, torch.tensor(squared / 1200).double())
    torch.testing.assert_close(with_prior.unlabelled, plain.unlabelled)


@pytest.mark.parametrize("name", ["m2", "adgm-det"])
def test_the_two_label_weights_agree_when_the_classifier_does_not_read_a_sample(name):
    """q(y|x) is the same for every sample, so its mean over the samples is itself."""
    model = tiny_model(name)
    x_l, x_u, y = binary_batch(5), binary_batch(4, seed=2), torch.tensor([0, 1, 2, 1, 0])
    terms = {}
    for label_weights in ("per-sample", "sample-mean"):
        torch.manual_seed(1)
        terms[label_weights] = objective(
            model, x_l, y, x_u, alpha=2.0, n_samples=3, label_weights=label_weights
        )
    torch.testing.assert_close(
        terms["per-sample"].loss, terms["sample-mean"].loss, rtol=1e-12, atol=1e-12
    )


def test_the_sample_mean_label_weights_reach_the_training_step():
    """A TrainConfig's label_weights is the loss OptimisationStep minimises."""
    model = tiny_model("sdgm")
    x_l, x_u, y = binary_batch(5), binary_batch(4, seed=2), torch.tensor([0, 1, 2, 1, 0])
    train = TrainConfig(mc_samples=3, label_weights="sample-mean")
    step = OptimisationStep(
        model,
        train,
        alpha=2.0,
        n_unlabelled=600,
        group=ProcessGroup(),
        device=torch.device("cpu"),
    )
    torch.manual_seed(4)
    loss = step.loss_module(x_l, y, x_u).loss
    losses = {}
    for label_weights in ("per-sample", "sample-mean"):
        torch.manual_seed(4)
        losses[label_weights] = objective(
            model, x_l, y, x_u, alpha=2.0, n_samples=3, label_weights=label_weights
        ).loss
    torch.testing.assert_close(loss, losses["sample-mean"], rtol=1e-12, atol=1e-12)
    assert abs(float((losses["sample-mean"] - losses["per-sample"]).detach())) > 1e-6


def test_weight_prior_leaves_out_the_weights_of_a_frozen_q_a():
    """The authors' paper-era code puts the prior on the weights it trains only."""
    model = tiny_model("adgm")
    x_l, x_u, y = binary_batch(5), binary_batch(4, seed=2), torch.tensor([0, 1, 2, 1, 0])
    for param in model.auxiliary_encoder_parameters():
        param.requires_grad_(False)
    options = dict(alpha=2.0, n_samples=1, analytic_kl=True)
    torch.manual_seed(1)
    plain = ObjectiveModule(model, **options)(x_l, y, x_u)
    torch.manual_seed(1)
    with_prior = ObjectiveModule(model, weight_prior_scale=1 / 600, **options)(x_l, y, x_u)
    frozen = {id(p) for p in model.auxiliary_encoder_parameters()}
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    trained = [m.weight for m in linears if id(m.weight) not in frozen]
    assert 0 < len(trained) < len(linears)
    squared = sum(float((w.detach() ** 2).sum()) for w in trained)
    torch.testing.assert_close(with_prior.loss - plain.loss, torch.tensor(squared / 1200).double())


def test_small_gaussian_init_starts_every_gaussian_near_a_standard_normal():
    config = ModelConfig(name="adgm", gaussian_init="small")
    torch.manual_seed(0)
    model = build_model(config)
    x = torch.rand(50, 784).round()
    with torch.no_grad():
        mu, logvar = model.q_a(x)
    assert mu.abs().max() < 0.1 and logvar.abs().max() < 0.1
    assert 0.5e-3 < float(model.z_head.mu.weight.detach().std()) < 1.5e-3
    torch.manual_seed(0)
    glorot = build_model(ModelConfig(name="adgm"))
    with torch.no_grad():
        assert glorot.q_a(x)[1].abs().max() > 0.5  # the paper's Glorot init: far from N(0, I)


@pytest.mark.parametrize(
    "name, expected",
    [("adgm", "glorot"), ("m2", "glorot"), ("sdgm", "small"), ("adgm-gen", "small")],
)
def test_auto_init_is_the_papers_for_its_models_and_the_later_codes_for_the_others(name, expected):
    assert ModelConfig(name=name).resolved_gaussian_init == expected
    assert ModelConfig(name=name, gaussian_init="glorot").resolved_gaussian_init == "glorot"


@pytest.mark.parametrize(
    "config, message",
    [
        (lambda: ModelConfig(gaussian_init="he"), "unknown gaussian_init 'he'"),
        (lambda: TrainConfig(classification_term="sum"), "unknown classification_term 'sum'"),
        (lambda: TrainConfig(eval_iw_samples=-1), "eval_iw_samples must be >= 0"),
    ],
)
def test_bad_option_values_are_clear_errors(config, message):
    with pytest.raises(AdgmError, match=message):
        config().validate()


def test_the_prior_networks_are_the_configs_and_cover_every_weight_matrix():
    """Each model's trained weight matrices fall in exactly one network of --weight-prior-on."""
    assert tuple(PRIOR_NETWORKS) == WEIGHT_PRIOR_NETWORKS
    for name in MODEL_NAMES:
        model = tiny_model(name)
        everything = weights_under_prior(model)
        parts = [weights_under_prior(model, n) for n in _networks_of(everything)]
        assert sorted(k for part in parts for k in part) == sorted(everything)


def test_weight_prior_on_some_networks_adds_only_their_squared_weights():
    model = tiny_model("sdgm")
    x_l, x_u, y = binary_batch(5), binary_batch(4, seed=2), torch.tensor([0, 1, 2, 1, 0])
    options = dict(alpha=2.0, n_samples=1, analytic_kl=True, weight_prior_scale=1 / 600)
    torch.manual_seed(1)
    everywhere = ObjectiveModule(model, **options)(x_l, y, x_u)
    torch.manual_seed(1)
    some = ObjectiveModule(model, weight_prior_on="q-y,p-x", **options)(x_l, y, x_u)
    named = ("classifier", "classifier_out", "decoder", "decoder_out")  # q(y|a,x) and p(x|...)
    squared = {
        under: sum(
            float((p.detach() ** 2).sum())
            for n, p in model.named_parameters()
            if n.endswith(".weight") and (n.split(".")[0] in named) == under
        )
        for under in (True, False)
    }
    assert squared[True] > 0 and squared[False] > 0
    torch.testing.assert_close(
        everywhere.loss - some.loss, torch.tensor(squared[False] / 1200).double()
    )


@pytest.mark.parametrize(
    "train, message",
    [
        (dict(weight_prior=True, weight_prior_on="q-x"), "comma-separated list of q-y, q-z"),
        (dict(weight_prior=True, weight_prior_on="q-y,q-y"), "without repeats"),
        (dict(weight_prior_on="q-y"), "--weight-prior-on needs --weight-prior"),
    ],
)
def test_bad_weight_prior_networks_are_clear_errors(train, message):
    with pytest.raises(AdgmError, match=message):
        TrainConfig(**train).validate()


def test_a_network_the_model_lacks_is_named_when_the_step_is_built():
    model = tiny_model("m2")
    with pytest.raises(AdgmError, match=r"--weight-prior-on p-a: this model has no trained p-a"):
        ObjectiveModule(
            model,
            alpha=1.0,
            n_samples=1,
            analytic_kl=True,
            weight_prior_scale=0.1,
            weight_prior_on="q-y,p-a",
        )
