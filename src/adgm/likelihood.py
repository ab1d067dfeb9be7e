"""Importance-weighted estimates of the test log-likelihood log p(x) (Burda et al. 2016).

For every model, y is summed out exactly and a, z are drawn from the inference model:

    p(x) = E_{a ~ q(a|x)} sum_y E_{z ~ q(z|[a,]y,x)} [ w(a, y, z) ],
    w(a, y, z) = p(y) p(z) p(x|[a,]y,z) p(a|...) / (q(z|[a,]y,x) q(a|x)),

with p(a|x,y,z) for adgm-gen and p(a|y,z) for the SDGM. In the paper's ADGM a has no child
(p(x, a) = p(a) p(x)) and q(z|y,x) does not read it, so a integrates out and its weight is
w(y, z) = p(y) p(z) p(x|y,z) / q(z|y,x): the factor p(a) / q(a|x) would be noise of mean 1,
which lowers the K-sample bound by about KL(q(a|x) || p(a)) when q(a|x) is far from p(a) (its
q(a|x) frozen at random weights: about 22 nats at K = 1). M2 and the ADGM with a deterministic
a have no a terms. With K draws (a_k, z_{k,y}),

    log p(x) >= E[ log (1/K) sum_k sum_y w(a_k, y, z_{k,y}) ] = L_K,

a bound that rises with K towards log p(x) and equals at K = 1 a bound at least as high as the
ELBO U(x) (y is summed, not sampled). The estimate returned is log (1/K) sum_k sum_y w for one
set of K draws per point.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from adgm.errors import AdgmError
from adgm.models.base import GenerativeClassifier
from adgm.objectives import batch_elbos

_ELEMENTS_PER_PASS = 1 << 23  # floats in the widest (sample, pair, unit) tensor of one pass


def refuse_grey_targets(likelihood: str, test_inputs: str, asked_by: str, remedy: str) -> None:
    """Raise AdgmError where a test log-likelihood would be taken of Bernoulli data whose test
    images are kept as grey levels: sum_d x_d log p_d + (1 - x_d) log(1 - p_d) with x_d in (0, 1)
    is no log-probability of anything, so it cannot be compared with the binary figures.

    likelihood: the data's resolved likelihood ("bernoulli" or "gaussian"; "auto" is not
    resolved yet and is refused as a programming error); test_inputs: DataConfig.test_inputs.
    Gaussian data are used as they are, so "grey" changes nothing there and is accepted.
    """
    if likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(f"likelihood must be resolved, got {likelihood!r}")
    if likelihood == "bernoulli" and test_inputs == "grey":
        raise AdgmError(
            f"{asked_by} needs binary test images (the Bernoulli log p(x) of grey levels is no "
            f"likelihood); {remedy}"
        )


@torch.no_grad()
def log_likelihood(
    model: GenerativeClassifier,
    x: torch.Tensor,
    *,
    n_samples: int = 5000,
    points_per_pass: int = 100,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """The importance-weighted estimate of log p(x) of each point with n_samples draws; (N,).

    x: (N, D). Memory is bounded: points_per_pass points and as many samples at a time as keep
    one pass's widest tensor under about 8 M floats. progress(n) is called with the number of
    points done after each group of points.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    was_training = model.training
    model.eval()
    try:
        parts = []
        for start in range(0, len(x), points_per_pass):
            part = x[start : start + points_per_pass]
            parts.append(_log_likelihood_of_points(model, part, n_samples))
            if progress is not None:
                progress(len(part))
    finally:
        model.train(was_training)
    return torch.cat(parts)


def _log_likelihood_of_points(
    model: GenerativeClassifier, x: torch.Tensor, n_samples: int
) -> torch.Tensor:
    """log (1/K) sum_k sum_y w_k,y for the points x (B, D), in chunks of samples; (B,)."""
    config = model.config
    widest = x.shape[0] * model.n_classes * max(config.x_dim, *config.hidden)
    per_pass = max(1, min(n_samples, _ELEMENTS_PER_PASS // widest))
    no_labels = torch.zeros(0, dtype=torch.long, device=x.device)
    chunks = []
    for done in range(0, n_samples, per_pass):
        count = min(per_pass, n_samples - done)
        log_w = batch_elbos(
            model, x, no_labels, n_samples=count, analytic_kl=False, auxiliary_ratio=False
        ).unlabelled
        chunks.append(torch.logsumexp(log_w, dim=-1))  # (count, B): y summed out
    return torch.logsumexp(torch.cat(chunks), dim=0) - math.log(n_samples)
