"""scikit-learn style semi-supervised classifiers: ``ADGMClassifier``, ``M2Classifier``,
``SDGMClassifier`` and ``ADGMGenClassifier`` (one per model of ``adgm.models``).

The convention is scikit-learn's for semi-supervised learning: ``fit(X, y)`` with ``y == -1``
marking the unlabelled rows. Every row is used as an unlabelled point (the paper's setup: the
labelled points are part of the unlabelled set too); the labelled rows also enter the labelled
bound and the classification term.

    clf = ADGMClassifier().fit(X, y)               # X (N, D), y (N,) with -1 = unlabelled
    clf.predict(X_test); clf.predict_proba(X_test); clf.score(X_test, y_test)
    clf.sample(16, y=3)                            # 16 draws of E[x|z,y], z ~ N(0, I)
    clf.save("model.pt"); ADGMClassifier.load("model.pt")

Defaults chosen for a fit of minutes on a CPU, by benchmarks/own_data.py
(docs/own_data/README.md): ``max_steps=3000`` training steps (whole epochs; ``epochs`` counts
epochs instead, ``max_time`` stops after the epoch that passes that many seconds), ``lr=1e-3``
and constant (3e-4, the paper's, reached 79.3% where 1e-3 reached 87.3%: MNIST, 10,000 rows,
100 labels, 3,000 steps), ``inputs="grey"``: Bernoulli data are used as grey levels at fit and
at predict time, the Bernoulli log-likelihood taken with grey-level targets ("binary" binarises
afresh at each step, as the paper, and predicts on grey levels: 81.6% on the same MNIST fit, and
74.8% against 76.0% on Fashion-MNIST).

Sizes default to the paper's (two 500-unit layers, 100-unit a and z) for inputs of 500 or more
features and shrink with smaller inputs (hidden width 2 D, at least 32; a and z D / 4, at least
2). The likelihood is Bernoulli for features in [0, 1] and Gaussian otherwise (standardised),
unless given. Batches adapt: each step sees min(100, labels) labelled and min(100, N) unlabelled
rows, so any number of classes and uneven label counts work. ``precision="bf16"`` trains with
the matrix products in bfloat16 (``adgm train --precision``); prediction stays fp32. On a CPU
without bf16 kernels (no AVX-512 or AMX) bf16 is slower than fp32 and the fit warns
(``adgm.AdgmWarning``; ``adgm.cpu.has_bf16_matrix_kernels``).
``cuda_graphs=True`` replays each training step as a recorded CUDA graph when the fit runs on a
CUDA device (``adgm train --cuda-graphs``: 2-9x faster steps on an H200, docs/speed.md; not yet
measured through the estimators) and changes nothing on a CPU, so one script serves both.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data
from tqdm.auto import tqdm

from adgm.cpu import denormals_flushed
from adgm.data import Dataset, OwnData, split_given_labels
from adgm.devices import resolve_device
from adgm.errors import AdgmError
from adgm.estimator_persistence import load_classifier, save_classifier
from adgm.estimator_queries import FittedModelQueries, labelled_mask
from adgm.estimator_settings import check_training_parameters, run_config_for
from adgm.training_loop import TrainingLoop


class GenerativeSemiSupervisedClassifier(
    FittedModelQueries, ClassifierMixin, TransformerMixin, BaseEstimator
):
    """Shared fit / save / load of the classifiers below; predict, score, transform and sample
    come from ``adgm.estimator_queries.FittedModelQueries``."""

    model_name = "adgm"

    def __init__(
        self,
        *,
        hidden: tuple[int, ...] | str = "auto",
        z_dim: int | str = "auto",
        a_dim: int | str = "auto",
        likelihood: str = "auto",
        inputs: str = "grey",
        epochs: int | None = None,
        max_steps: int = 3000,
        max_time: float | None = None,
        mc_samples: int = 1,
        alpha: float | None = None,
        lr: float = 1e-3,
        labelled_batch: int = 100,
        unlabelled_batch: int = 100,
        eval_samples: int = 100,
        precision: str = "fp32",
        random_state: int = 0,
        device: str = "auto",
        cuda_graphs: bool = False,
        warm_start: bool = False,
        verbose: bool = False,
    ):
        self.hidden = hidden
        self.z_dim = z_dim
        self.a_dim = a_dim
        self.likelihood = likelihood
        self.inputs = inputs
        self.epochs = epochs
        self.max_steps = max_steps
        self.max_time = max_time
        self.mc_samples = mc_samples
        self.alpha = alpha
        self.lr = lr
        self.labelled_batch = labelled_batch
        self.unlabelled_batch = unlabelled_batch
        self.eval_samples = eval_samples
        self.precision = precision
        self.random_state = random_state
        self.device = device
        self.cuda_graphs = cuda_graphs
        self.warm_start = warm_start
        self.verbose = verbose

    # ----- fitting ----------------------------------------------------------------------------
    def fit(self, X, y) -> GenerativeSemiSupervisedClassifier:
        """Train on X (N, D) with labels y (N,); y == -1 marks the unlabelled rows.

        warm_start=True and already fitted: training goes on from where the last fit stopped
        (weights, and the optimiser's state unless the classifier was read back by ``load``)
        for `epochs` / `max_steps` more, on the new X and y (same features and classes).
        """
        check_training_parameters(self)
        continuing = bool(self.warm_start) and hasattr(self, "model_")
        x, labels = validate_data(  # finite, 2-D, matching rows
            self, X, y, dtype=np.float32, reset=not continuing
        )
        check_classification_targets(labels)
        labelled = labelled_mask(labels)
        classes = np.unique(labels[labelled])
        if len(classes) < 2:
            raise AdgmError(f"y has labels of {len(classes)} class(es); at least 2 are needed")
        if continuing and not np.array_equal(classes, self.classes_):
            raise AdgmError(
                f"warm_start: y has the classes {classes.tolist()}, the fitted classifier "
                f"{self.classes_.tolist()}"
            )
        previous = self._previous_state() if continuing else None
        self.classes_ = classes
        self.device_ = str(resolve_device(self.device))
        codes = np.full(len(labels), -1, dtype=np.int64)
        codes[labelled] = np.searchsorted(self.classes_, labels[labelled])
        own = OwnData(Dataset(x, codes), None, tuple(str(c) for c in self.classes_))
        likelihood = self._likelihood_for(previous)
        data = split_given_labels(own, likelihood=likelihood, device=self.device_)
        data = replace(data, binarise=self.inputs == "binary")
        config = run_config_for(self, x.shape[1], len(self.classes_))
        # Seeded by random_state, the caller's RNG kept; denormals flushed while training.
        with torch.random.fork_rng(devices=[]), denormals_flushed():
            loop = TrainingLoop(config, data)  # in memory: no run folder, no checkpoints
            if previous is not None:
                _continue_from(loop, previous)
            history = self._train(loop)
            self._training_state = loop.state_dict()  # with this fit's RNG state
        self.history_ = (self.history_ if previous is not None else []) + history
        self.model_ = loop.model.eval()
        self.model_config_ = loop.config.model
        self.likelihood_ = data.likelihood
        self.feature_mean_, self.feature_std_ = data.feature_mean, data.feature_std
        return self

    def _previous_state(self) -> dict[str, Any]:
        """The last fit's loop state; after ``load``, the weights alone."""
        return getattr(self, "_training_state", None) or {"model": self.model_.state_dict()}

    def _likelihood_for(self, previous) -> str:
        """A warm start keeps the likelihood (and so the standardisation rule) of the first fit."""
        return self.likelihood_ if previous is not None else self.likelihood

    def _train(self, loop: TrainingLoop) -> list[dict[str, float]]:
        """Whole epochs until `epochs`, else until max_steps steps, or max_time seconds."""
        per_epoch = loop.steps_per_epoch()
        epochs = self.epochs if self.epochs is not None else -(-self.max_steps // per_epoch)
        bar = tqdm(total=epochs * per_epoch, desc="fit", unit="step", disable=not self.verbose)
        history, start = [], time.perf_counter()
        with bar:
            for _ in range(epochs):
                history.append(loop.train_epoch())
                bar.update(per_epoch)
                bar.set_postfix(loss=f"{history[-1]['J']:.2f}")
                if self.max_time is not None and time.perf_counter() - start > self.max_time:
                    break
        return history

    # ----- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted classifier to `path` (atomically; read back with ``load``)."""
        return save_classifier(self, path)

    @classmethod
    def load(
        cls, path: str | Path, *, device: str | None = None
    ) -> GenerativeSemiSupervisedClassifier:
        """A classifier saved by ``save`` (read with weights_only=True: no code is run), on
        `device` (default: its own ``device`` parameter, "auto" resolved on this machine)."""
        return load_classifier(cls, path, device)


class ADGMClassifier(GenerativeSemiSupervisedClassifier):
    """The auxiliary deep generative model (Maaløe et al. 2016) as a semi-supervised classifier.

    See the module docstring for the parameters; ``mc_samples`` samples of a and z per point in
    training (paper: 1 or 10), ``eval_samples`` samples of a when predicting (paper: 100),
    ``alpha`` the weight of the classification term (default 0.01 * N).
    """

    model_name = "adgm"


class M2Classifier(GenerativeSemiSupervisedClassifier):
    """M2 (Kingma et al. 2014) as a semi-supervised classifier; the same parameters."""

    model_name = "m2"


class SDGMClassifier(GenerativeSemiSupervisedClassifier):
    """The skip deep generative model (Maaløe et al., ICML 2016) as a semi-supervised
    classifier: p(y) p(z) p(a|y,z) p(x|a,y,z), so a carries information; the same parameters."""

    model_name = "sdgm"


class ADGMGenClassifier(GenerativeSemiSupervisedClassifier):
    """The ADGM with a in the generative model, p(a|x,y,z) (Maaløe et al., ICML 2016), as a
    semi-supervised classifier; the same parameters."""

    model_name = "adgm-gen"


def _continue_from(loop: TrainingLoop, previous: dict[str, Any]) -> None:
    """Start `loop` where a previous fit stopped: its whole state, or its weights alone."""
    if "optimizer" in previous:
        loop.load_state_dict(previous)
    else:
        loop.model.load_state_dict(previous["model"])
