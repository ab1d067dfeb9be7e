"""Model registry: ``MODELS[name](ModelConfig(...))``."""

from adgm.config import ModelConfig
from adgm.models.adgm import ADGM, DeterministicAuxADGM
from adgm.models.base import Auxiliary, GenerativeClassifier
from adgm.models.generative_auxiliary import (
    GenerativeAuxiliaryADGM,
    GenerativeAuxiliaryModel,
    SkipDeepGenerativeModel,
)
from adgm.models.m2 import M2

MODELS: dict[str, type[GenerativeClassifier]] = {
    "adgm": ADGM,
    "adgm-det": DeterministicAuxADGM,
    "m2": M2,
    "adgm-gen": GenerativeAuxiliaryADGM,
    "sdgm": SkipDeepGenerativeModel,
}


def build_model(config: ModelConfig) -> GenerativeClassifier:
    """Instantiate the model named by ``config.name`` (validated)."""
    config.validate()
    return MODELS[config.name](config)


__all__ = [
    "ADGM",
    "M2",
    "MODELS",
    "Auxiliary",
    "DeterministicAuxADGM",
    "GenerativeAuxiliaryADGM",
    "GenerativeAuxiliaryModel",
    "GenerativeClassifier",
    "SkipDeepGenerativeModel",
    "build_model",
]
