"""Log densities and closed-form KL terms, summed over the last (feature) axis.

All functions broadcast over leading axes: an argument of shape (..., D) gives a result of
shape (...).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_LOG_2PI = math.log(2.0 * math.pi)


def log_bernoulli(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log p(x) = sum_d x_d log sigma(l_d) + (1 - x_d) log(1 - sigma(l_d)), from logits.

    Computed as -BCE-with-logits, which is exact for large |l| (no clipping needed).
    """
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(
        -1
    )


def log_normal_diag(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x | mu, diag exp(logvar)) = -1/2 sum_d [log 2pi + logvar_d + (x_d - mu_d)^2 / var_d]
    (var_d = exp(logvar_d))."""
    return -0.5 * (_LOG_2PI + logvar + (x - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def log_standard_normal(x: torch.Tensor) -> torch.Tensor:
    """log N(x | 0, I) = -1/2 sum_d [log 2pi + x_d^2]."""
    return -0.5 * (_LOG_2PI + x.pow(2)).sum(-1)


def kl_normal_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL[N(mu, diag exp(logvar)) || N(0, I)] = 1/2 sum_d [mu_d^2 + var_d - 1 - logvar_d]."""
    return 0.5 * (mu.pow(2) + torch.exp(logvar) - 1.0 - logvar).sum(-1)


def kl_per_unit(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The same KL without the sum: one value per unit, shape (..., D) (Figure 3)."""
    return 0.5 * (mu.pow(2) + torch.exp(logvar) - 1.0 - logvar)


def log_uniform_categorical(n_classes: int) -> float:
    """log p(y) for p(y) = Cat(1/K, ..., 1/K): -log K, the same for every y."""
    return -math.log(n_classes)
