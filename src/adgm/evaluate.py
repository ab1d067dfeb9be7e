"""Test error of the classifier E_q(a|x)[q(y|a,x)] (q(y|x) for M2)."""

from __future__ import annotations

import torch

from adgm.models.base import GenerativeClassifier


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
