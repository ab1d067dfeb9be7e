"""adgm: Auxiliary Deep Generative Models (Maaløe et al. 2016), the SDGM and M2 for semi-supervised
learning.

Public API (everything else is internal):
"""

from adgm.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from adgm.errors import AdgmError
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
from adgm.train import Trainer

__all__ = [
    "ADGM",
    "ADGMClassifier",
    "ADGMGenClassifier",
    "M2Classifier",
    "M2",
    "MODELS",
    "AdgmError",
    "DataConfig",
    "DeterministicAuxADGM",
    "GenerativeAuxiliaryADGM",
    "ModelConfig",
    "RunConfig",
    "SDGMClassifier",
    "SkipDeepGenerativeModel",
    "TrainConfig",
    "Trainer",
    "build_model",
    "error_rate",
    "labelled_bound",
    "log_likelihood",
    "objective",
    "predict_proba",
    "unlabelled_bound",
]
