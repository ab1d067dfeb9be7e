"""adgm: Auxiliary Deep Generative Models (Maaløe et al. 2016), the SDGM and M2 for semi-supervised
learning.

Public API (everything else is internal). The names are imported when first used, so that
``import adgm.cli`` (and ``adgm --help``) does not load torch and scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ADGM": "adgm.models",
    "ADGMClassifier": "adgm.estimator",
    "ADGMGenClassifier": "adgm.estimator",
    "AdgmError": "adgm.errors",
    "AdgmWarning": "adgm.errors",
    "DataConfig": "adgm.config",
    "DeterministicAuxADGM": "adgm.models",
    "GenerativeAuxiliaryADGM": "adgm.models",
    "M2": "adgm.models",
    "M2Classifier": "adgm.estimator",
    "MODELS": "adgm.models",
    "ModelConfig": "adgm.config",
    "RunConfig": "adgm.config",
    "SDGMClassifier": "adgm.estimator",
    "SkipDeepGenerativeModel": "adgm.models",
    "TrainConfig": "adgm.config",
    "Trainer": "adgm.train",
    "TrainingLoop": "adgm.training_loop",
    "RunFolder": "adgm.run_folder",
    "build_model": "adgm.models",
    "error_rate": "adgm.evaluate",
    "labelled_bound": "adgm.objectives",
    "log_likelihood": "adgm.likelihood",
    "objective": "adgm.objectives",
    "predict_proba": "adgm.evaluate",
    "unlabelled_bound": "adgm.objectives",
}

__all__ = [
    "ADGM",
    "ADGMClassifier",
    "ADGMGenClassifier",
    "AdgmError",
    "AdgmWarning",
    "DataConfig",
    "DeterministicAuxADGM",
    "GenerativeAuxiliaryADGM",
    "M2",
    "M2Classifier",
    "MODELS",
    "ModelConfig",
    "RunConfig",
    "RunFolder",
    "SDGMClassifier",
    "SkipDeepGenerativeModel",
    "TrainConfig",
    "Trainer",
    "TrainingLoop",
    "build_model",
    "error_rate",
    "labelled_bound",
    "log_likelihood",
    "objective",
    "predict_proba",
    "unlabelled_bound",
]

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from adgm.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from adgm.errors import AdgmError, AdgmWarning
    from adgm.estimator import ADGMClassifier, ADGMGenClassifier, M2Classifier, SDGMClassifier
    from adgm.evaluate import error_rate, predict_proba
    from adgm.likelihood import log_likelihood
    from adgm.models import (
        ADGM,
        M2,
        MODELS,
        DeterministicAuxADGM,
        GenerativeAuxiliaryADGM,
        SkipDeepGenerativeModel,
        build_model,
    )
    from adgm.objectives import labelled_bound, objective, unlabelled_bound
    from adgm.run_folder import RunFolder
    from adgm.train import Trainer
    from adgm.training_loop import TrainingLoop


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'adgm' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
