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
from adgm.pairs import draw_noise, pair_index

_LOG_2PI_E = math.log(2.0 * math.pi) + 1.0


class PairElbos(NamedTuple):
    """The log weights of one pass and the classifier, for the labelled and unlabelled rows."""

    labelled: torch.Tensor  # (S, B_l): w(a_i, y_l, z) of each labelled row
    unlabelled: torch.Tensor  # (S, B_u, K): w(a_i, y, z_{i,y}) of each other row and label
    log_qy: torch.Tensor  # (S, B, K): log q(y|a_i, x)


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
    config = model.config
    eps_a, eps_z = draw_noise(
        x, n_labelled, n_samples, a_units=config.a_dim, z_units=config.z_dim, n_classes=k
    )
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
