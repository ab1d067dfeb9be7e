"""The bounds of the models whose auxiliary a is generated too (``adgm-gen``, ``sdgm``).

For a point x, a draw a_i ~ q(a|x), a label y and a draw z_{i,y} ~ q(z|a_i,y,x), the log weight

    w(a_i, y, z_{i,y}) = log p(y) + log p(z) - log q(z|a_i,y,x)
                         + log p(x|[a_i,] y, z) + log p(a_i|[x,] y, z) - log q(a_i|x)

gives -L(x, y) = E[w] (eq. 7 with log p(a|...) in place of log p(a)) and
-U(x) = E_a sum_y q(y|a,x) (w - log q(y|a,x)) (eqs. 8 and 11). With ``analytic_kl``,
log p(z) - log q(z|a,y,x) is replaced by its expectation given a, -KL[q(z|a,y,x) || N(0, I)], and
-log q(a|x) by its expectation, the entropy of q(a|x); log p(a|...) has no closed form (its mean
and variance depend on z) and is always evaluated at the draw. Both replacements leave the bound's
expectation unchanged.

Shapes: B points (the B_l labelled first), K classes, S samples, P = B_l + (B - B_l) K pairs.
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
from adgm.models.base import Auxiliary
from adgm.models.generative_auxiliary import GenerativeAuxiliaryModel
from adgm.nn import GaussianLayer

_LOG_2PI_E = math.log(2.0 * math.pi) + 1.0


class PairElbos(NamedTuple):
    """The log weights of one pass and the classifier, for the labelled and unlabelled rows."""

    labelled: torch.Tensor  # (S, B_l): w(a_i, y_l, z) of each labelled row
    unlabelled: torch.Tensor  # (S, B_u, K): w(a_i, y, z_{i,y}) of each other row and label
    log_qy: torch.Tensor  # (S, B, K): log q(y|a_i, x)


def pair_index(y_labelled: torch.Tensor, n_rows: int, n_classes: int):
    """(rows, labels), each (P,): (i, y_i) for the labelled rows, then (i, k) for k = 0..K-1."""
    n_labelled = y_labelled.shape[0]
    device = y_labelled.device
    other = torch.arange(n_labelled, n_rows, device=device)
    rows = torch.cat([torch.arange(n_labelled, device=device), other.repeat_interleave(n_classes)])
    labels = torch.cat([y_labelled, torch.arange(n_classes, device=device).repeat(len(other))])
    return rows, labels


def draw_noise(
    model: GenerativeAuxiliaryModel, x: torch.Tensor, n_labelled: int, n_samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """eps_a (S, B, A) and eps_z (S, P, Z) ~ N(0, I).

    Drawn in the order of ``adgm.objectives``: eps_a then eps_z of the labelled rows, then of the
    others, so that one pass over both halves equals the two bounds computed apart, draw for draw.
    """
    config, k = model.config, model.n_classes
    n_other = x.shape[0] - n_labelled

    def draw(rows: int, units: int) -> torch.Tensor:
        return torch.randn((n_samples, rows, units), dtype=x.dtype, device=x.device)

    eps_a_l, eps_z_l = draw(n_labelled, config.a_dim), draw(n_labelled, config.z_dim)
    eps_a_u, eps_z_u = draw(n_other, config.a_dim), draw(n_other * k, config.z_dim)
    return torch.cat([eps_a_l, eps_a_u], dim=1), torch.cat([eps_z_l, eps_z_u], dim=1)


def pair_elbos(
    model: GenerativeAuxiliaryModel,
    x: torch.Tensor,
    y_labelled: torch.Tensor,
    *,
    n_samples: int = 1,
    analytic_kl: bool = True,
) -> PairElbos:
    """w for every (sample, pair) of x (B, D), whose first B_l rows carry labels y_labelled (B_l,).

    One pass per network over all pairs; see the module docstring for w.
    """
    n_labelled, k = y_labelled.shape[0], model.n_classes
    rows, labels = pair_index(y_labelled, x.shape[0], k)  # (P,), (P,)
    eps_a, eps_z = draw_noise(model, x, n_labelled, n_samples)
    mu_a, logvar_a = model.q_a(x)  # (B, A)
    a = GaussianLayer.reparameterise(mu_a, logvar_a, eps_a)  # (S, B, A)
    mu_z, logvar_z = model.q_z_given_auxiliary(x, a, rows, labels)  # (S, P, Z)
    z = GaussianLayer.reparameterise(mu_z, logvar_z, eps_z)  # (S, P, Z)
    a_pairs = a.index_select(1, rows)  # (S, P, A)
    if analytic_kl:
        z_term = -kl_normal_standard_normal(mu_z, logvar_z)  # (S, P)
        minus_log_qa = 0.5 * (_LOG_2PI_E + logvar_a).sum(-1).unsqueeze(0)  # entropy, (1, B)
    else:
        z_term = log_standard_normal(z) - log_normal_diag(z, mu_z, logvar_z)
        minus_log_qa = -log_normal_diag(a, mu_a, logvar_a)  # (S, B)
    w = (
        model.log_px_pairs(x, z, a_pairs, rows, labels)
        + log_uniform_categorical(k)
        + z_term
        + model.log_p_auxiliary(a_pairs, x, z, rows, labels)
        + minus_log_qa.index_select(1, rows)
    )  # (S, P)
    log_qy = log_softmax(model.q_y_logits(x, Auxiliary(a, mu_a, logvar_a)))
    n_other = x.shape[0] - n_labelled
    return PairElbos(w[:, :n_labelled], w[:, n_labelled:].unflatten(1, (n_other, k)), log_qy)
