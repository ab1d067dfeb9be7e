"""What a fitted classifier answers: predict, predict_proba, score, transform and sample.

``FittedModelQueries`` is the half of ``adgm.estimator``'s classifiers that reads a fitted
model and changes nothing; the fitting half (``fit``, ``warm_start``) is in ``adgm.estimator``.
It expects of the classifier: ``model_`` (an ``adgm.models.base.GenerativeClassifier`` in eval
mode), ``model_config_``, ``classes_`` (K,), ``likelihood_``, ``feature_mean_`` and
``feature_std_`` (D,) for Gaussian data, ``device_``, ``random_state`` and ``eval_samples``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, validate_data

from adgm.errors import AdgmError

PREDICT_CHUNK = 2_000  # rows per forward pass when predicting


class FittedModelQueries:
    """predict / predict_proba / predict_log_proba / score / transform / sample of a fitted
    semi-supervised classifier (mixed in before scikit-learn's ClassifierMixin)."""

    # ----- prediction -------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """E_q(a|x)[q(y|a,x)] with eval_samples draws of a; (N, K), columns in classes_ order.

        Repeatable and row by row: every row uses the same seeded noise eps_1..eps_S, so a
        row's probabilities do not depend on the other rows, their order or the chunking.
        """
        return self._probabilities(self._model_input(X)).double().cpu().numpy()

    def _probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """predict_proba of model inputs x (N, D) (from _model_input): (N, K) on the device."""
        chunks = []
        with torch.random.fork_rng(devices=[]):
            for start in range(0, len(x), PREDICT_CHUNK):
                torch.manual_seed(self.random_state)
                chunk = x[start : start + PREDICT_CHUNK]
                chunks.append(
                    self.model_.predict_proba(chunk, self.eval_samples, shared_noise=True)
                )
        return torch.cat(chunks)

    def predict_log_proba(self, X) -> np.ndarray:
        """log predict_proba(X); (N, K) (-inf where a probability is exactly 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row, as one of classes_; (N,)."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy on the rows of X whose label is not -1 (the unlabelled rows are left out,
        so GridSearchCV and cross_val_score can score folds of semi-supervised data)."""
        labels = np.asarray(y)
        keep = labelled_mask(labels)
        if not keep.any():
            raise AdgmError("score: y has no labelled row (every label is -1)")
        if keep.all():
            return super().score(X, y, sample_weight)
        rows = np.flatnonzero(keep)
        X = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]
        weights = None if sample_weight is None else np.asarray(sample_weight)[rows]
        return super().score(X, labels[rows], weights)

    def transform(self, X) -> np.ndarray:
        """Latent features for downstream use: the mean of q(z|x) = sum_y q(y|x) mu_z(x, y),
        (N, Z) as float64, q(y|x) as in predict_proba; for the models whose q(z|a,y,x) takes
        a, mu_z is taken at the mean of q(a|x)."""
        x = self._model_input(X)  # validated and scaled once, for q(y|x) and q(z|y,x) alike
        probabilities = self._probabilities(x)
        chunks = []
        with torch.no_grad():
            for start in range(0, len(x), PREDICT_CHUNK):
                rows = slice(start, start + PREDICT_CHUNK)
                mu = self.model_.z_means(x[rows])  # (B, K, Z)
                chunks.append((probabilities[rows].unsqueeze(-1) * mu).sum(1))
        return torch.cat(chunks).double().cpu().numpy()

    def _model_input(self, X) -> torch.Tensor:
        check_is_fitted(self)
        x = validate_data(self, X, dtype=np.float32, reset=False)  # also checks n_features_in_
        if self.likelihood_ == "gaussian":
            x = (x - self.feature_mean_) / self.feature_std_
        elif x.min() < 0 or x.max() > 1:
            raise AdgmError("X must lie in [0, 1] like the data the classifier was fitted on")
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device_)

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
        z = torch.randn(n, self.model_config_.z_dim, generator=generator).to(self.device_)
        with torch.no_grad():
            labels = torch.full((n,), code, dtype=torch.long, device=self.device_)
            mean = self.model_.x_mean(z, labels).cpu().numpy()
        if self.likelihood_ == "gaussian":
            mean = mean * self.feature_std_ + self.feature_mean_
        return mean


def labelled_mask(labels: np.ndarray) -> np.ndarray:
    """True where a row has a label: y != -1 (numeric labels; other kinds are all labels)."""
    if labels.dtype.kind in "iuf":
        if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
            raise AdgmError("y contains NaN or infinite values")
        return labels != -1
    return np.ones(len(labels), dtype=bool)
