"""Test error of the classifier E_q(a|x)[q(y|a,x)] (q(y|x) for M2)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from adgm.distributions import kl_per_unit as per_unit_kl
from adgm.likelihood import log_likelihood
from adgm.models.base import GenerativeClassifier

if TYPE_CHECKING:
    from adgm.data import SemiSupervisedData


@torch.no_grad()
def predict_proba(
    model: GenerativeClassifier, x: torch.Tensor, *, n_samples: int = 100, chunk: int = 500
) -> torch.Tensor:
    """Class probabilities (N, K), each row averaged over n_samples draws of a, in chunks of x."""
    was_training = model.training
    model.eval()
    try:
        parts = [model.predict_proba(x[i : i + chunk], n_samples) for i in range(0, len(x), chunk)]
    finally:
        model.train(was_training)
    return torch.cat(parts)


def error_rate(
    model: GenerativeClassifier, x: torch.Tensor, y: torch.Tensor, *, n_samples: int = 100
) -> float:
    """Fraction of points whose most probable class is wrong, in [0, 1]."""
    predicted = predict_proba(model, x, n_samples=n_samples).argmax(-1)
    return (predicted != y).float().mean().item()


def evaluate_held_out(
    model: GenerativeClassifier, data: SemiSupervisedData, *, n_samples: int, iw_samples: int = 0
) -> dict[str, float]:
    """What a run reports after an epoch: ``test_error``, ``valid_error`` and ``train_error``
    (the error on training images, ``SemiSupervisedData.x_train_eval``; where the data have
    those sets) with n_samples draws of a; with iw_samples > 0 also
    ``test_log_likelihood``, the mean over the test images of the importance-weighted bound on
    log p(x) (adgm.likelihood); and ``eval_seconds``, the time all this took."""
    start = time.perf_counter()
    result = {}
    if data.x_test is not None:
        result["test_error"] = error_rate(model, data.x_test, data.y_test, n_samples=n_samples)
    if data.x_valid is not None:
        result["valid_error"] = error_rate(model, data.x_valid, data.y_valid, n_samples=n_samples)
    if data.x_train_eval is not None:
        result["train_error"] = error_rate(
            model, data.x_train_eval, data.y_train_eval, n_samples=n_samples
        )
    if iw_samples and data.x_test is not None:
        bound = log_likelihood(model, data.x_test, n_samples=iw_samples)  # (N,)
        result["test_log_likelihood"] = bound.mean().item()
    result["eval_seconds"] = time.perf_counter() - start
    return result


@torch.no_grad()
def kl_per_unit(
    model: GenerativeClassifier, x: torch.Tensor, *, chunk: int = 500
) -> dict[str, torch.Tensor]:
    """Figure 3: the KL between each stochastic unit's posterior and its N(0, 1) prior, averaged
    over the points x.

    For a: KL[q(a_i|x) || N(0, 1)] (the models with a stochastic a). For z, whose posterior
    q(z|y,x) depends on the label, the KL is averaged over labels with the classifier's weights:
    sum_y q(y|x) KL[q(z_i|y,x) || N(0, 1)], q(y|x) = E_q(a|x)[q(y|a,x)] with 10 samples of a;
    for adgm-gen and the SDGM, whose q(z|a,y,x) also depends on a, at one draw a ~ q(a|x).
    Returns {"z": (Z,)} and, for the ADGM, {"a": (A,)}.
    """
    totals: dict[str, torch.Tensor] = {}
    was_training = model.training
    model.eval()
    for i in range(0, len(x), chunk):
        part = x[i : i + chunk]
        q_y = model.predict_proba(part, 10)  # (B, K)
        mu_z, logvar_z = model.q_z(part)  # (B, K, Z)
        kl_z = (q_y.unsqueeze(-1) * per_unit_kl(mu_z, logvar_z)).sum(1)  # (B, Z)
        parts = {"z": kl_z.sum(0)}
        if model.stochastic_auxiliary:
            mu_a, logvar_a = model.q_a(part)
            parts["a"] = per_unit_kl(mu_a, logvar_a).sum(0)
        for key, value in parts.items():
            totals[key] = totals.get(key, 0) + value
    model.train(was_training)
    return {key: value / len(x) for key, value in totals.items()}


def active_units(kl: torch.Tensor, threshold: float = 0.01) -> int:
    """Number of units whose average KL exceeds the threshold (Burda et al. 2015 use 0.01)."""
    return int((kl > threshold).sum())
