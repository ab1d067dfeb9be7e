"""The variational bounds of the paper as losses (to be minimised).

Notation: B points, K classes, S Monte Carlo samples, a the auxiliary variable.

    -L(x, y) = E_q(a,z|x,y)[log p(a) p(y) p(z) p(x|y,z) - log q(a|x) q(z|y,x)]          (eq. 7)
    -U(x)    = E_q(a,y,z|x)[log p(a) p(y) p(z) p(x|y,z) - log q(y|a,x) q(a|x) q(z|y,x)]  (eq. 8)
    clf(x,y) = -log E_q(a|x)[q(y|a,x)]                                                (eq. 9)
    J        = sum_l [L(x_l, y_l) + alpha * clf(x_l, y_l)] + sum_u U(x_u)               (eq. 10)

Expectations over a and z use S reparameterised samples; the expectation over y in U is exact
(eq. 11): for each sample a_i, U sums over all K labels, weighting label y by q(y|a_i, x) and using
the same a_i for every label and one z_{y,i} ~ q(z|y,x) per label. The authors' code weights
label y by (1/S) sum_i q(y|a_i, x) instead (``label_weights="sample-mean"``; the same for S = 1).

With ``analytic_kl`` the terms log p(z) - log q(z|y,x) and log p(a) - log q(a|x) are replaced by
their expectations, -KL[q || N(0, I)], in closed form (lower variance; the authors' released code
does this). Otherwise they are single-sample Monte Carlo estimates, as eq. 7 is written.

Mini-batch weighting. One step sees B_l labelled and B_u unlabelled points, and its loss is

    loss = mean_l L(x_l, y_l) + alpha * mean_l clf(x_l, y_l) + mean_u U(x_u).

Each labelled point thus weighs as much as each unlabelled point, not N_l / N_u = 1/600 as a
literal reading of eq. 10 over the two sums would give. This is what the authors' released code
optimises: it builds each epoch of 600 batches by putting the labelled set in the first half of
every batch, i.e. it replicates the labelled set once per batch, and takes the mean of the bound
over the whole batch. J over that replicated data set is (up to a constant factor) the expectation
of the loss above. Measured here: with the literal 1/600 weight the classifier is hardly trained
(test error drifted from 41% to 57% in 17 epochs); the labelled points must be replicated.
alpha defaults to 0.01 * N with N the number of unlabelled training images (600 on MNIST); the
released code counted the replicated labelled rows too (N = 120,000, so alpha = 1200).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from adgm.distributions import (
    kl_normal_standard_normal,
    log_normal_diag,
    log_softmax,
    log_standard_normal,
    log_uniform_categorical,
)
from adgm.errors import AdgmError
from adgm.generative_auxiliary_bounds import PairElbos, pair_elbos
from adgm.models.base import Auxiliary, GenerativeClassifier
from adgm.nn import GaussianLayer
from adgm.pairs import draw_noise, pair_index


class Objective(NamedTuple):
    """One step's loss and its parts, each a scalar tensor (means over the batch halves)."""

    loss: torch.Tensor
    labelled: torch.Tensor  # mean_l L(x_l, y_l)
    classification: torch.Tensor  # mean_l clf(x_l, y_l), before multiplying by alpha
    unlabelled: torch.Tensor  # mean_u U(x_u)


def prior_log_ratio(
    sample: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, *, analytic: bool
) -> torch.Tensor:
    """log N(sample | 0, I) - log N(sample | mu, diag exp(logvar)), summed over units.

    sample is (S, *mu.shape); the result is (S, *mu.shape[:-1]), or (1, *mu.shape[:-1]) for the
    closed form -KL[N(mu, exp(logvar)) || N(0, I)], which is the expectation of the MC estimate.
    """
    if analytic:
        return -kl_normal_standard_normal(mu, logvar).unsqueeze(0)
    return log_standard_normal(sample) - log_normal_diag(sample, mu, logvar)


def auxiliary_log_ratio(aux: Auxiliary, x: torch.Tensor, *, analytic: bool) -> torch.Tensor:
    """log p(a) - log q(a|x) for a stochastic auxiliary, shape (S or 1, B); zeros otherwise."""
    if aux.mu is None:
        return x.new_zeros(1, x.shape[0])
    return prior_log_ratio(aux.value, aux.mu, aux.logvar, analytic=analytic)


def labelled_bound(
    model: GenerativeClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    n_samples: int = 1,
    analytic_kl: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """L(x, y) (eq. 7) and clf(x, y) = -log E_q(a|x)[q(y|a,x)] (eq. 9), each of shape (B,).

    Args:
        x: (B, D) binary images; y: (B,) integer labels.
    The classifier term sees the same samples a_i as the bound; E_q(a|x) is the log-mean-exp
    of log q(y|a_i, x) over the S samples.
    """
    if model.generative_auxiliary:
        elbos = pair_elbos(model, x, y, n_samples=n_samples, analytic_kl=analytic_kl)
        return -elbos.labelled.mean(0), -log_mean_q_true_label(elbos.log_qy, y)
    aux = model.sample_auxiliary(x, n_samples)
    a_term = auxiliary_log_ratio(aux, x, analytic=analytic_kl)  # (S|1, B)
    mu_z, logvar_z = model.q_z(x, y)  # (B, Z)
    z = GaussianLayer.sample(mu_z, logvar_z, n_samples)  # (S, B, Z)
    z_term = prior_log_ratio(z, mu_z, logvar_z, analytic=analytic_kl)  # (S|1, B)
    log_px = model.log_px(x, z, y)  # (S, B)
    elbo = log_px + log_uniform_categorical(model.n_classes) + z_term + a_term  # (S, B)

    log_qy = log_softmax(model.q_y_logits(x, aux))  # (S|1, B, K)
    return -elbo.mean(0), -log_mean_q_true_label(log_qy, y)


def log_mean_q_true_label(log_qy: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log (1/S) sum_i q(y | a_i, x) from log_qy (S, B, K) and labels y (B,); shape (B,)."""
    n_samples = log_qy.shape[0]
    return torch.logsumexp(_log_q_true_label(log_qy, y), dim=0) - math.log(n_samples)


def mean_log_q_true_label(log_qy: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(1/S) sum_i log q(y | a_i, x), the authors' code's classification term; shape (B,).

    A lower bound on ``log_mean_q_true_label`` (Jensen); the two agree for S = 1.
    """
    return _log_q_true_label(log_qy, y).mean(0)


def _log_q_true_label(log_qy: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log q(y_b | a_i, x_b) from log_qy (S, B, K) and labels y (B,); shape (S, B)."""
    n_samples, batch = log_qy.shape[:2]
    log_qy_true = log_qy.gather(-1, y.view(1, batch, 1).expand(n_samples, batch, 1))
    return log_qy_true.squeeze(-1)


CLASSIFICATION_TERMS = {"log-mean": log_mean_q_true_label, "mean-log": mean_log_q_true_label}


def expectation_over_labels(log_qy: torch.Tensor, elbo: torch.Tensor) -> torch.Tensor:
    """E_q(y|a_i,x)[elbo(a_i, y) - log q(y|a_i,x)] averaged over the samples a_i (eq. 11).

    log_qy (S|1, B, K), elbo (S, B, K) -> (B,).
    """
    return (log_qy.exp() * (elbo - log_qy)).sum(-1).mean(0)


def expectation_over_mean_labels(log_qy: torch.Tensor, elbo: torch.Tensor) -> torch.Tensor:
    """E_qbar(y|x)[(1/S) sum_i elbo(a_i, y) - log qbar(y|x)], qbar = (1/S) sum_i q(y|a_i,x).

    The authors' code (paper-era and ICML 2016) weights every label by the classifier averaged
    over the samples, one weight per point and label, where eq. 11 weights each sample by its
    own q(y|a_i,x). It is the bound of a q in which y and a are independent given x, with
    q(y|x) the S-sample estimate of E_q(a|x)[q(y|a,x)]. Equal to eq. 11 for S = 1 and for a
    classifier that does not read a (log_qy with one sample row).

    log_qy (S|1, B, K), elbo (S, B, K) -> (B,).
    """
    log_q_mean = torch.logsumexp(log_qy, 0) - math.log(log_qy.shape[0])  # (B, K)
    return (log_q_mean.exp() * (elbo.mean(0) - log_q_mean)).sum(-1)


LABEL_WEIGHTS = {"per-sample": expectation_over_labels, "sample-mean": expectation_over_mean_labels}


def unlabelled_bound(
    model: GenerativeClassifier,
    x: torch.Tensor,
    *,
    n_samples: int = 1,
    analytic_kl: bool = True,
    label_weights: str = "per-sample",
) -> torch.Tensor:
    """U(x) (eq. 8), with y summed out exactly as in eq. 11; x (B, D) -> (B,).

    label_weights: "per-sample" (eq. 11) or "sample-mean" (the authors' code; see
    ``expectation_over_mean_labels``).
    """
    expectation = LABEL_WEIGHTS[label_weights]
    if model.generative_auxiliary:
        no_labels = torch.zeros(0, dtype=torch.long, device=x.device)
        elbos = pair_elbos(model, x, no_labels, n_samples=n_samples, analytic_kl=analytic_kl)
        return -expectation(elbos.log_qy, elbos.unlabelled)
    aux = model.sample_auxiliary(x, n_samples)
    a_term = auxiliary_log_ratio(aux, x, analytic=analytic_kl)  # (S|1, B)
    log_qy = log_softmax(model.q_y_logits(x, aux))  # (S|1, B, K)
    mu_z, logvar_z = model.q_z(x)  # (B, K, Z): all labels
    z = GaussianLayer.sample(mu_z, logvar_z, n_samples)  # (S, B, K, Z)
    z_term = prior_log_ratio(z, mu_z, logvar_z, analytic=analytic_kl)  # (S|1, B, K)
    log_px = model.log_px(x.unsqueeze(1), z)  # (S, B, K)
    elbo = log_px + log_uniform_categorical(model.n_classes) + z_term + a_term.unsqueeze(-1)
    return -expectation(log_qy, elbo)


def objective(
    model: GenerativeClassifier,
    x_labelled: torch.Tensor,
    y_labelled: torch.Tensor,
    x_unlabelled: torch.Tensor,
    *,
    alpha: float,
    n_samples: int = 1,
    analytic_kl: bool = True,
    classification_term: str = "log-mean",
    label_weights: str = "per-sample",
) -> Objective:
    """One step's loss: mean_l L + alpha * mean_l clf + mean_u U (see the module docstring).

    classification_term: "log-mean", clf = -log (1/S) sum_i q(y|a_i,x) (eq. 9), or "mean-log",
    clf = -(1/S) sum_i log q(y|a_i,x) (the authors' code); the same for S = 1.
    label_weights: U weights label y by q(y|a_i,x) per sample ("per-sample", eq. 11) or by
    their mean over the samples ("sample-mean", the authors' code); the same for S = 1.

    The same numbers as ``labelled_bound`` on the labelled half and ``unlabelled_bound`` on the
    other, for the same random numbers, computed in one pass per network: the B = B_l + B_u
    points share the passes through q(a|x), q(y|a,x) and W_x x of q(z|y,x); the
    P = B_l + B_u K (point, label) pairs share the rest of q(z|y,x) and p(x|z,y).

    Args:
        x_labelled: (B_l, D), y_labelled: (B_l,) integer labels, x_unlabelled: (B_u, D).
    """
    n_labelled = y_labelled.shape[0]
    x = torch.cat([x_labelled, x_unlabelled])  # (B, D)
    log_q_true = CLASSIFICATION_TERMS[classification_term]
    elbos = batch_elbos(model, x, y_labelled, n_samples=n_samples, analytic_kl=analytic_kl)
    return _weighed(
        -elbos.labelled.mean(),
        -log_q_true(elbos.log_qy[:, :n_labelled], y_labelled).mean(),
        -LABEL_WEIGHTS[label_weights](elbos.log_qy[:, n_labelled:], elbos.unlabelled).mean(),
        alpha,
    )


def batch_elbos(
    model: GenerativeClassifier,
    x: torch.Tensor,
    y_labelled: torch.Tensor,
    *,
    n_samples: int = 1,
    analytic_kl: bool = True,
    auxiliary_ratio: bool = True,
) -> PairElbos:
    """The bound's log weights for every sample and (point, label) pair, and log q(y|a,x).

    x (B, D) with its first B_l rows labelled by y_labelled (B_l,). Returns labelled (S, B_l),
    unlabelled (S, B_u, K) (without -log q(y|a,x)) and log_qy (S|1, B, K). With analytic_kl
    False every term is evaluated at the draws: then logsumexp over y of ``unlabelled`` is
    log of an unbiased estimate of p(x) (see adgm.likelihood). auxiliary_ratio False leaves
    log p(a) - log q(a|x) out of the weights of the models in which a has no child (the paper's
    ADGM: p(x, a) = p(a) p(x), so a integrates out of p(x) and the ratio only adds noise); the
    models with a in the generative model keep their a terms.
    """
    if model.generative_auxiliary:
        return pair_elbos(model, x, y_labelled, n_samples=n_samples, analytic_kl=analytic_kl)
    n_labelled, k = y_labelled.shape[0], model.n_classes
    n_unlabelled = x.shape[0] - n_labelled
    mu_z, logvar_z = model.q_z_pairs(x, y_labelled)  # (P, Z)
    aux, eps_z = _auxiliary_and_z_noise(model, x, n_labelled, n_samples)
    z = GaussianLayer.reparameterise(mu_z, logvar_z, eps_z)  # (S, P, Z)
    rows, pair_labels = pair_index(y_labelled, x.shape[0], k)  # (P,), (P,)
    elbo = (
        model.log_px(x.index_select(0, rows), z, pair_labels)
        + log_uniform_categorical(k)
        + prior_log_ratio(z, mu_z, logvar_z, analytic=analytic_kl)
    )  # (S, P), still without log p(a) - log q(a|x)
    a_term = (  # (S|1, B)
        auxiliary_log_ratio(aux, x, analytic=analytic_kl)
        if auxiliary_ratio
        else x.new_zeros(1, x.shape[0])
    )
    elbo_l = elbo[:, :n_labelled] + a_term[:, :n_labelled]  # (S, B_l)
    elbo_u = elbo[:, n_labelled:].unflatten(1, (n_unlabelled, k))  # (S, B_u, K)
    elbo_u = elbo_u + a_term[:, n_labelled:].unsqueeze(-1)
    log_qy = log_softmax(model.q_y_logits(x, aux))  # (S|1, B, K)
    return PairElbos(elbo_l, elbo_u, log_qy)


# The networks of the models by the distribution each computes (--weight-prior-on), as the first
# part of their parameters' names: q(y|a,x), q(z|...), q(a|x), p(x|...), p(a|...).
PRIOR_NETWORKS: dict[str, tuple[str, ...]] = {
    "q-y": ("classifier", "classifier_out"),
    "q-z": ("z_encoder", "z_head"),
    "q-a": ("a_encoder", "a_head", "a_mean"),
    "p-x": ("decoder", "decoder_out"),
    "p-a": ("a_decoder", "a_decoder_head"),
}


def weights_under_prior(model: torch.nn.Module, networks: str = "all") -> dict[str, torch.Tensor]:
    """The weight matrices the prior on the weights covers, by parameter name, in the model's
    order: those trained (biases and the Gaussian likelihood's variances have no prior; neither
    have the weights of a frozen q(a|x), requires_grad False, as in the authors' paper-era code),
    of every network ("all") or of those named, comma-separated keys of PRIOR_NETWORKS (e.g.
    "q-y" or "q-z,p-x"); a named network with no trained weight matrix in the model is an error.
    """
    trained = {
        name: p
        for name, p in model.named_parameters()
        if name.endswith(".weight") and p.requires_grad
    }
    if networks == "all":
        return trained
    present = _networks_of(trained)
    for network in networks.split(","):
        if network not in present:
            raise AdgmError(
                f"--weight-prior-on {network}: this model has no trained {network} network "
                f"(it has {', '.join(present) or 'none'})"
            )
    modules = {m for network in networks.split(",") for m in PRIOR_NETWORKS[network]}
    return {n: p for n, p in trained.items() if n.split(".")[0] in modules}


def _networks_of(weights: dict[str, torch.Tensor]) -> list[str]:
    """The PRIOR_NETWORKS keys with a weight matrix among `weights`."""
    firsts = {name.split(".")[0] for name in weights}
    return [key for key, modules in PRIOR_NETWORKS.items() if firsts & set(modules)]


def weight_prior_penalty(model: torch.nn.Module, networks: str = "all") -> torch.Tensor:
    """-log N(W | 0, I) of the weight matrices under the prior, without its constant:
    1/2 sum_W ||W||^2 over ``weights_under_prior(model, networks)``.

    The authors' code (paper-era and ICML 2016) adds log N(W | 0, I) / N to the batch's mean
    bound, over every weight matrix it trains.
    """
    weights = weights_under_prior(model, networks).values()
    return 0.5 * torch.stack([w.pow(2).sum() for w in weights]).sum()


def _weighed(
    labelled: torch.Tensor, classification: torch.Tensor, unlabelled: torch.Tensor, alpha: float
) -> Objective:
    """The step's loss mean_l L + alpha mean_l clf + mean_u U, and its detached parts."""
    loss = labelled + alpha * classification + unlabelled
    return Objective(loss, labelled.detach(), classification.detach(), unlabelled.detach())


def _auxiliary_and_z_noise(
    model: GenerativeClassifier, x: torch.Tensor, n_labelled: int, n_samples: int
) -> tuple[Auxiliary, torch.Tensor]:
    """The auxiliary a for all B rows of x, and eps_z (S, P, Z) for the pairs of q_z_pairs.

    The noise is drawn in the order in which ``labelled_bound`` and then ``unlabelled_bound``
    draw it (``adgm.pairs.draw_noise``), so that ``objective`` and the two bounds agree draw for
    draw.
    """
    config = model.config
    a_units = config.a_dim if model.stochastic_auxiliary else None
    eps_a, eps_z = draw_noise(
        x, n_labelled, n_samples, a_units=a_units, z_units=config.z_dim, n_classes=model.n_classes
    )
    if eps_a is None:
        return model.sample_auxiliary(x, n_samples), eps_z
    mu_a, logvar_a = model.q_a(x)  # (B, A)
    a = GaussianLayer.reparameterise(mu_a, logvar_a, eps_a)  # (S, B, A)
    return Auxiliary(a, mu_a, logvar_a), eps_z


def default_alpha(n_unlabelled: int) -> float:
    """alpha = 0.01 * N (paper sec. 3), N the number of unlabelled training images."""
    return 0.01 * n_unlabelled
