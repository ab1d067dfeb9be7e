"""scikit-learn style semi-supervised classifiers: ``ADGMClassifier``, ``M2Classifier``,
``SDGMClassifier`` and ``ADGMGenClassifier`` (one per model of ``adgm.models``).

The convention is scikit-learn's for semi-supervised learning: ``fit(X, y)`` with ``y == -1``
marking the unlabelled rows. Every row is used as an unlabelled point (the paper's setup: the
labelled points are part of the unlabelled set too); the labelled rows also enter the labelled
bound and the classification term.

    clf = ADGMClassifier(epochs=50).fit(X, y)      # X (N, D), y (N,) with -1 = unlabelled
    clf.predict(X_test); clf.predict_proba(X_test); clf.score(X_test, y_test)
    clf.sample(16, y=3)                            # 16 draws of E[x|z,y], z ~ N(0, I)
    clf.save("model.pt"); ADGMClassifier.load("model.pt")

Sizes default to the paper's (two 500-unit layers, 100-unit a and z) for inputs of 500 or more
features and shrink with smaller inputs (hidden width 2 D, at least 32; a and z D / 4, at least
2). The likelihood is Bernoulli for features in [0, 1] and Gaussian otherwise (standardised),
unless given. Batches adapt: each step sees min(100, labels) labelled and min(100, N) unlabelled
rows, so any number of classes and uneven label counts work. ``precision="bf16"`` trains with
the matrix products in bfloat16 (``adgm train --precision``); prediction stays fp32.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm.auto import tqdm

from adgm.checkpoint import atomic_write
from adgm.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from adgm.cpu import denormals_flushed
from adgm.data import Dataset, OwnData, split_given_labels
from adgm.errors import AdgmError
from adgm.models import build_model
from adgm.training_loop import TrainingLoop

PREDICT_CHUNK = 2_000  # rows per forward pass when predicting


class GenerativeSemiSupervisedClassifier(ClassifierMixin, BaseEstimator):
    """Shared fit / predict / sample / save of ``ADGMClassifier`` and ``M2Classifier``."""

    model_name = "adgm"

    def __init__(
        self,
        *,
        hidden: tuple[int, ...] | str = "auto",
        z_dim: int | str = "auto",
        a_dim: int | str = "auto",
        likelihood: str = "auto",
        epochs: int = 100,
        mc_samples: int = 1,
        alpha: float | None = None,
        lr: float = 3e-4,
        labelled_batch: int = 100,
        unlabelled_batch: int = 100,
        eval_samples: int = 100,
        precision: str = "fp32",
        random_state: int = 0,
        device: str = "cpu",
        verbose: bool = False,
    ):
        self.hidden = hidden
        self.z_dim = z_dim
        self.a_dim = a_dim
        self.likelihood = likelihood
        self.epochs = epochs
        self.mc_samples = mc_samples
        self.alpha = alpha
        self.lr = lr
        self.labelled_batch = labelled_batch
        self.unlabelled_batch = unlabelled_batch
        self.eval_samples = eval_samples
        self.precision = precision
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ----- fitting ----------------------------------------------------------------------------
    def fit(self, X, y) -> GenerativeSemiSupervisedClassifier:
        """Train on X (N, D) with labels y (N,); y == -1 marks the unlabelled rows."""
        x, labels = validate_data(self, X, y, dtype=np.float32)  # finite, 2-D, matching rows
        check_classification_targets(labels)
        labelled = _labelled_mask(labels)
        self.classes_ = np.unique(labels[labelled])
        if len(self.classes_) < 2:
            raise AdgmError(
                f"y has labels of {len(self.classes_)} class(es); at least 2 are needed"
            )
        codes = np.full(len(labels), -1, dtype=np.int64)
        codes[labelled] = np.searchsorted(self.classes_, labels[labelled])
        own = OwnData(Dataset(x, codes), None, tuple(str(c) for c in self.classes_))
        data = split_given_labels(own, likelihood=self.likelihood, device=self.device)
        config = self._run_config(x.shape[1], len(self.classes_))
        # Seeded by random_state, the caller's RNG kept; denormals flushed while training.
        with torch.random.fork_rng(devices=[]), denormals_flushed():
            loop = TrainingLoop(config, data)  # in memory: no run folder, no checkpoints
            epochs = tqdm(range(self.epochs), desc="fit", disable=not self.verbose, leave=False)
            self.history_ = [loop.train_epoch() for _ in epochs]
        self.model_ = loop.model.eval()
        self.model_config_ = loop.config.model
        self.likelihood_ = data.likelihood
        self.feature_mean_, self.feature_std_ = data.feature_mean, data.feature_std
        return self

    def _run_config(self, n_features: int, n_classes: int) -> RunConfig:
        width = max(32, min(500, 2 * n_features))
        latent = max(2, min(100, n_features // 4))
        hidden = (width, width) if self.hidden == "auto" else tuple(self.hidden)
        model = ModelConfig(
            name=self.model_name,
            hidden=hidden,
            z_dim=latent if self.z_dim == "auto" else int(self.z_dim),
            a_dim=latent if self.a_dim == "auto" else int(self.a_dim),
            x_dim=n_features,
            n_classes=n_classes,
            likelihood=self.likelihood,
        )
        data = DataConfig(
            labelled_batch=self.labelled_batch, unlabelled_batch=self.unlabelled_batch
        )
        train = TrainConfig(
            epochs=self.epochs,
            mc_samples=self.mc_samples,
            alpha=self.alpha,
            lr=self.lr,
            eval_samples=self.eval_samples,
            precision=self.precision,
            seed=self.random_state,
            device=self.device,
        )
        return RunConfig(data=data, model=model, train=train)

    # ----- prediction -------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """E_q(a|x)[q(y|a,x)] with eval_samples draws of a; (N, K), columns in classes_ order.

        Repeatable and row by row: every row uses the same seeded noise eps_1..eps_S, so a
        row's probabilities do not depend on the other rows, their order or the chunking.
        """
        x = self._model_input(X)
        chunks = []
        with torch.random.fork_rng(devices=[]):
            for start in range(0, len(x), PREDICT_CHUNK):
                torch.manual_seed(self.random_state)
                chunk = x[start : start + PREDICT_CHUNK]
                chunks.append(
                    self.model_.predict_proba(chunk, self.eval_samples, shared_noise=True)
                )
        return torch.cat(chunks).double().cpu().numpy()

    def predict_log_proba(self, X) -> np.ndarray:
        """log predict_proba(X); (N, K) (-inf where a probability is exactly 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row, as one of classes_; (N,)."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def _model_input(self, X) -> torch.Tensor:
        check_is_fitted(self)
        x = validate_data(self, X, dtype=np.float32, reset=False)  # also checks n_features_in_
        if self.likelihood_ == "gaussian":
            x = (x - self.feature_mean_) / self.feature_std_
        elif x.min() < 0 or x.max() > 1:
            raise AdgmError("X must lie in [0, 1] like the data the classifier was fitted on")
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)

    # ----- generation -------------------------------------------------------------------------
    def sample(self, n: int, y) -> np.ndarray:
        """n draws of E[x|z, y] with z ~ N(0, I), for class y (one of classes_); (n, D).

        Bernoulli data: pixel probabilities in [0, 1]; Gaussian data: means on the scale of X.
        """
        check_is_fitted(self)
        if y not in set(self.classes_.tolist()):
            raise AdgmError(f"y={y!r} is not one of the classes {self.classes_.tolist()}")
        code = int(np.searchsorted(self.classes_, y))
        generator = torch.Generator().manual_seed(self.random_state)
        z = torch.randn(n, self.model_config_.z_dim, generator=generator).to(self.device)
        with torch.no_grad():
            labels = torch.full((n,), code, dtype=torch.long, device=self.device)
            mean = self.model_.x_mean(z, labels).cpu().numpy()
        if self.likelihood_ == "gaussian":
            mean = mean * self.feature_std_ + self.feature_mean_
        return mean

    # ----- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted classifier to `path` (atomically; read back with ``load``)."""
        check_is_fitted(self)
        state = {
            "kind": type(self).__name__,
            "params": _plain(self.get_params()),
            "model_config": _plain(asdict(self.model_config_)),
            "model": self.model_.state_dict(),
            "classes": self.classes_.tolist(),
            "likelihood": self.likelihood_,
            "feature_mean": _tensor_or_none(self.feature_mean_),
            "feature_std": _tensor_or_none(self.feature_std_),
            "history": self.history_,
        }
        path = Path(path)
        try:
            atomic_write(path, lambda out: torch.save(state, out))
        except OSError as exc:
            raise AdgmError(f"cannot write {path}: {exc}") from None
        return path

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> GenerativeSemiSupervisedClassifier:
        """A classifier saved by ``save`` (read with weights_only=True: no code is run)."""
        from adgm.checkpoint import load_checkpoint

        state = load_checkpoint(Path(path))
        if state.get("kind") != cls.__name__:
            raise AdgmError(f"{path} holds a {state.get('kind')!r}, not a {cls.__name__}")
        params = {**state["params"], "device": device}
        if isinstance(params["hidden"], list):
            params["hidden"] = tuple(params["hidden"])
        classifier = cls(**params)
        raw = dict(state["model_config"], hidden=tuple(state["model_config"]["hidden"]))
        classifier.model_config_ = ModelConfig(**raw)
        classifier.model_ = build_model(classifier.model_config_)
        classifier.model_.load_state_dict(state["model"])
        classifier.model_.to(device).eval()
        classifier.classes_ = np.asarray(state["classes"])
        classifier.likelihood_ = state["likelihood"]
        classifier.feature_mean_ = _array_or_none(state["feature_mean"])
        classifier.feature_std_ = _array_or_none(state["feature_std"])
        classifier.n_features_in_ = classifier.model_config_.x_dim
        classifier.history_ = state["history"]
        return classifier


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


def _labelled_mask(labels: np.ndarray) -> np.ndarray:
    """True where a row has a label: y != -1 (numeric labels; other kinds are all labels)."""
    if labels.dtype.kind in "iuf":
        if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
            raise AdgmError("y contains NaN or infinite values")
        return labels != -1
    return np.ones(len(labels), dtype=bool)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Tuples as lists: what torch.load(weights_only=True) reads back."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _tensor_or_none(array: np.ndarray | None):
    return None if array is None else torch.from_numpy(np.asarray(array, dtype=np.float32))


def _array_or_none(tensor) -> np.ndarray | None:
    return None if tensor is None else tensor.numpy()
