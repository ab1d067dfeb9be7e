"""Saving a fitted estimator to one file and reading it back (``save`` / ``load`` of
``adgm.estimator``'s classifiers).

The file is a ``torch.save`` dict of plain values and tensors, so ``torch.load(weights_only=True)``
reads it without running code: the estimator's class name and parameters, the model's config
and weights, the classes, the likelihood, the feature scaling and the fit history.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from adgm.checkpoint import atomic_write, load_checkpoint
from adgm.config import ModelConfig
from adgm.devices import resolve_device
from adgm.errors import AdgmError
from adgm.models import build_model


def save_classifier(classifier, path: str | Path) -> Path:
    """Write the fitted `classifier` to `path` atomically; a write error is one AdgmError."""
    check_is_fitted(classifier)
    state = {
        "kind": type(classifier).__name__,
        "params": _plain(classifier.get_params()),
        "model_config": _plain(asdict(classifier.model_config_)),
        "model": classifier.model_.state_dict(),
        "classes": classifier.classes_.tolist(),
        "likelihood": classifier.likelihood_,
        "feature_mean": _tensor_or_none(classifier.feature_mean_),
        "feature_std": _tensor_or_none(classifier.feature_std_),
        "history": classifier.history_,
    }
    path = Path(path)
    try:
        atomic_write(path, lambda out: torch.save(state, out))
    except OSError as exc:
        raise AdgmError(f"cannot write {path}: {exc}") from None
    return path


def load_classifier(cls, path: str | Path, device: str | None = None):
    """An instance of `cls` as ``save_classifier`` wrote it, on `device` (default: its own
    ``device`` parameter, "auto" resolved on this machine)."""
    state = load_checkpoint(Path(path))
    if state.get("kind") != cls.__name__:
        raise AdgmError(f"{path} holds a {state.get('kind')!r}, not a {cls.__name__}")
    params = dict(state["params"])
    if device is not None:
        params["device"] = device
    classifier_device = str(resolve_device(params.get("device", "cpu")))
    if isinstance(params["hidden"], list):
        params["hidden"] = tuple(params["hidden"])
    classifier = cls(**params)
    raw = dict(state["model_config"], hidden=tuple(state["model_config"]["hidden"]))
    classifier.model_config_ = ModelConfig(**raw)
    classifier.model_ = build_model(classifier.model_config_)
    classifier.model_.load_state_dict(state["model"])
    classifier.model_.to(classifier_device).eval()
    classifier.device_ = classifier_device
    classifier.classes_ = np.asarray(state["classes"])
    classifier.likelihood_ = state["likelihood"]
    classifier.feature_mean_ = _array_or_none(state["feature_mean"])
    classifier.feature_std_ = _array_or_none(state["feature_std"])
    classifier.n_features_in_ = classifier.model_config_.x_dim
    classifier.history_ = state["history"]
    return classifier


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Tuples as lists: what torch.load(weights_only=True) reads back."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _tensor_or_none(array: np.ndarray | None):
    return None if array is None else torch.from_numpy(np.asarray(array, dtype=np.float32))


def _array_or_none(tensor) -> np.ndarray | None:
    return None if tensor is None else tensor.numpy()
