"""The variational bounds of the paper as losses (to be minimised).

Notation: B points, K classes, S Monte Carlo samples, a the auxiliary variable.

    -L(x, y) = E_q(a,z|x,y)[log p(a) p(y) p(z) p(x|y,z) - log q(a|x) q(z|y,x)]          (eq. 7)
    -U(x)    = E_q(a,y,z|x)[log p(a) p(y) p(z) p(x|y,z) - log q(y|a,x) q(a|x) q(z|y,x)]  (eq. 8)
    clf(x,y) = -log E_q(a|x)[q(y|a,x)]                                                (eq. 9)
    J        = sum_l [L(x_l, y_l) + alpha * clf(x_l, y_l)] + sum_u U(x_u)               (eq. 10)

Expectations over a and z use S reparameterised samples; the expectation over y in U is exact
(eq. 11): for each sample a_i, U sums over all K labels, weighting label y by q(y|a_i, x) and using
the same a_i for every label and one z_{y,i} ~ q(z|y,x) per label.

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
import torch.nn.functional as F

from adgm.distributions import (
    kl_normal_standard_normal,
    log_normal_diag,
    log_standard_normal,
    log_uniform_categorical,
)
from adgm.models.base import Auxiliary, GenerativeClassifier
from adgm.nn import GaussianLayer


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
    batch = x.shape[0]
    aux = model.sample_auxiliary(x, n_samples)
    a_term = auxiliary_log_ratio(aux, x, analytic=analytic_kl)  # (S|1, B)
    mu_z, logvar_z = model.q_z(x, y)  # (B, Z)
    z = GaussianLayer.sample(mu_z, logvar_z, n_samples)  # (S, B, Z)
    z_term = prior_log_ratio(z, mu_z, logvar_z, analytic=analytic_kl)  # (S|1, B)
    log_px = model.log_px(x, z, y)  # (S, B)
    elbo = log_px + log_uniform_categorical(model.n_classes) + z_term + a_term  # (S, B)

    log_qy = F.log_softmax(model.q_y_logits(x, aux), dim=-1)  # (S|1, B, K)
    log_qy_true = log_qy.gather(-1, y.view(1, batch, 1).expand(log_qy.shape[0], batch, 1))
    log_mean_qy = torch.logsumexp(log_qy_true.squeeze(-1), dim=0) - math.log(log_qy.shape[0])
    return -elbo.mean(0), -log_mean_qy


def unlabelled_bound(
    model: GenerativeClassifier,
    x: torch.Tensor,
    *,
    n_samples: int = 1,
    analytic_kl: bool = True,
) -> torch.Tensor:
    """U(x) (eq. 8), with y summed out exactly as in eq. 11; x (B, D) -> (B,)."""
    aux = model.sample_auxiliary(x, n_samples)
    a_term = auxiliary_log_ratio(aux, x, analytic=analytic_kl)  # (S|1, B)
    log_qy = F.log_softmax(model.q_y_logits(x, aux), dim=-1)  # (S|1, B, K)
    mu_z, logvar_z = model.q_z(x)  # (B, K, Z): all labels
    z = GaussianLayer.sample(mu_z, logvar_z, n_samples)  # (S, B, K, Z)
    z_term = prior_log_ratio(z, mu_z, logvar_z, analytic=analytic_kl)  # (S|1, B, K)
    log_px = model.log_px(x.unsqueeze(1), z)  # (S, B, K)
    elbo = log_px + log_uniform_categorical(model.n_classes) + z_term + a_term.unsqueeze(-1)
    # sum_y q(y|a_i,x) [elbo(a_i, y, z_yi) - log q(y|a_i,x)], then the mean over samples i
    per_sample = (log_qy.exp() * (elbo - log_qy)).sum(-1)  # (S, B)
    return -per_sample.mean(0)


def objective(
    model: GenerativeClassifier,
    x_labelled: torch.Tensor,
    y_labelled: torch.Tensor,
    x_unlabelled: torch.Tensor,
    *,
    alpha: float,
    n_samples: int = 1,
    analytic_kl: bool = True,
) -> Objective:
    """One step's loss: mean_l L + alpha * mean_l clf + mean_u U (see the module docstring)."""
    bound_l, clf = labelled_bound(
        model, x_labelled, y_labelled, n_samples=n_samples, analytic_kl=analytic_kl
    )
    bound_u = unlabelled_bound(model, x_unlabelled, n_samples=n_samples, analytic_kl=analytic_kl)
    labelled, classification, unlabelled = bound_l.mean(), clf.mean(), bound_u.mean()
    loss = labelled + alpha * classification + unlabelled
    return Objective(loss, labelled.detach(), classification.detach(), unlabelled.detach())


def default_alpha(n_unlabelled: int) -> float:
    """alpha = 0.01 * N (paper sec. 3), N the number of unlabelled training images."""
    return 0.01 * n_unlabelled
