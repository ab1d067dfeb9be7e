"""adgm: Auxiliary Deep Generative Models (Maaløe et al. 2016) and M2 for semi-supervised learning.

Public API (everything else is internal):
"""

from adgm.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from adgm.errors import AdgmError
from adgm.estimator import ADGMClassifier, M2Classifier
from adgm.evaluate import error_rate, predict_proba
from adgm.models import ADGM, M2, MODELS, DeterministicAuxADGM, build_model
from adgm.objectives import labelled_bound, objective, unlabelled_bound
from adgm.train import Trainer

__all__ = [
    "ADGM",
    "ADGMClassifier",
    "M2Classifier",
    "M2",
    "MODELS",
    "AdgmError",
    "DataConfig",
    "DeterministicAuxADGM",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "Trainer",
    "build_model",
    "error_rate",
    "labelled_bound",
    "objective",
    "predict_proba",
    "unlabelled_bound",
]
