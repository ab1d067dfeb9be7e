"""Frozen configuration dataclasses; every default is the paper's (Maaløe et al. 2016, sec. 3).

The CLI maps each field one to one onto a ``--kebab-case`` flag (see ``adgm.cli``), and a run
folder stores the three of them as ``config.json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from adgm.errors import AdgmError

MODEL_NAMES = ("adgm", "adgm-det", "m2", "adgm-gen", "sdgm")
LIKELIHOODS = ("auto", "bernoulli", "gaussian")
CLASSIFICATION_TERMS = ("log-mean", "mean-log")
LABEL_WEIGHTS = ("per-sample", "sample-mean")
GAUSSIAN_INITS = ("auto", "glorot", "small")
UNLABELLED_ORDERS = ("shuffled", "class-sorted", "fixed")
TEST_INPUTS = ("binary", "grey")
PRECISIONS = ("fp32", "bf16")
# --weight-prior-on: q(y|a,x), q(z|...), q(a|x), p(x|...), p(a|...) (adgm.objectives.PRIOR_NETWORKS)
WEIGHT_PRIOR_NETWORKS = ("q-y", "q-z", "q-a", "p-x", "p-a")
# The train settings a resumed run may change: how and where to compute, not the run's maths.
RESUME_MAY_CHANGE = ("epochs", "device", "cuda_graphs", "deterministic", "checkpoint_every_minutes")
MODEL_TITLES = {
    "adgm": "ADGM",
    "adgm-det": "ADGM, deterministic a",
    "m2": "M2",
    "adgm-gen": "ADGM, p(a|x,y,z)",
    "sdgm": "SDGM",
}
LATER_MODELS = ("adgm-gen", "sdgm")  # from the authors' ICML 2016 version and its code
STOCHASTIC_AUXILIARY_MODELS = ("adgm", "adgm-gen", "sdgm")  # a ~ q(a|x)


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split and batched."""

    dataset: str = "mnist"  # "mnist", "fashion-mnist", or a .npz / .csv / image folder path
    test_data: str | None = None  # own data: a test set in the same format
    label_column: str = "label"  # own data, CSV: the column of labels (empty or -1: unlabelled)
    data_dir: str | None = None  # None: $ADGM_DATA_DIR, then the user cache (download there)
    n_labels: int = 100  # labelled images, evenly across the classes
    label_seed: int = 0  # seed of the labelled-subset draw (independent of training seed)
    labelled_batch: int = 100  # first half of each batch: the labelled set
    unlabelled_batch: int = 100  # second half: unlabelled images
    n_validation: int = 0  # images held out of the unlabelled set for model selection
    subset: int | None = None  # use only the first `subset` training images (tests, smoke runs)
    test_subset: int | None = None  # use only the first `test_subset` test images
    unlabelled_order: str = "shuffled"  # "class-sorted": the authors' paper-era code's order
    test_inputs: str = "binary"  # Bernoulli data: test images binarised once, or "grey" levels
    eval_train_points: int = 0  # also the error on the last N training images (still trained on)

    def validate(self) -> None:
        _positive("n_labels", self.n_labels)
        _positive("labelled_batch", self.labelled_batch)
        _positive("unlabelled_batch", self.unlabelled_batch)
        if self.n_validation < 0:
            raise AdgmError(f"n_validation must be >= 0, got {self.n_validation}")
        if self.eval_train_points < 0:
            raise AdgmError(f"eval_train_points must be >= 0, got {self.eval_train_points}")
        _one_of("unlabelled_order", self.unlabelled_order, UNLABELLED_ORDERS)
        _one_of("test_inputs", self.test_inputs, TEST_INPUTS)
        for name in ("subset", "test_subset"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture: the paper's MLPs of two 500-unit ReLU layers and 100-unit Gaussians."""

    name: str = "adgm"  # one of MODEL_NAMES
    hidden: tuple[int, ...] = (500, 500)
    z_dim: int = 100
    a_dim: int = 100
    x_dim: int = 784
    n_classes: int = 10
    likelihood: str = "auto"  # p(x|z,y): "bernoulli" ([0, 1] data), "gaussian" (real), "auto"
    gaussian_init: str = "auto"  # mu/logvar layers: "glorot" (paper), "small" (ICML 2016 code)
    classifier_reads_auxiliary: bool = True  # False: q(y|x), blind to a (an ablation)

    @property
    def resolved_gaussian_init(self) -> str:
        """ "auto": "small" for adgm-gen and the SDGM (their code's), "glorot" for the others."""
        if self.gaussian_init != "auto":
            return self.gaussian_init
        return "small" if self.name in LATER_MODELS else "glorot"

    def validate(self) -> None:
        if self.name not in MODEL_NAMES:
            raise AdgmError(f"unknown model {self.name!r}; choose one of {', '.join(MODEL_NAMES)}")
        if self.likelihood not in LIKELIHOODS:
            raise AdgmError(
                f"unknown likelihood {self.likelihood!r}; choose one of {', '.join(LIKELIHOODS)}"
            )
        if self.gaussian_init not in GAUSSIAN_INITS:
            raise AdgmError(
                f"unknown gaussian_init {self.gaussian_init!r}; choose one of "
                f"{', '.join(GAUSSIAN_INITS)}"
            )
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise AdgmError(f"hidden layer sizes must be positive, got {self.hidden}")
        for name in ("z_dim", "a_dim", "x_dim"):
            _positive(name, getattr(self, name))
        if self.n_classes < 2:
            raise AdgmError(f"n_classes must be at least 2, got {self.n_classes}")
        if not self.classifier_reads_auxiliary and self.name not in STOCHASTIC_AUXILIARY_MODELS:
            raise AdgmError(
                f"a classifier blind to a needs a model with a stochastic a "
                f"({', '.join(STOCHASTIC_AUXILIARY_MODELS)}), not {self.name}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and objective settings (paper sec. 3 and the authors' released code)."""

    epochs: int = 1000
    mc_samples: int = 1  # Monte Carlo samples of a (and z) per point: the paper uses 1 or 10
    alpha: float | None = None  # classification weight; None: 0.01 * N (N = unlabelled images)
    analytic_kl: bool = True  # closed-form Gaussian KL terms (the released code) or MC (eq. 7)
    classification_term: str = "log-mean"  # eq. 9, -log mean_i q; "mean-log": the authors' code
    label_weights: str = "per-sample"  # U weighs y by q(y|a_i,x) (eq. 11); "sample-mean": by
    # (1/S) sum_i q(y|a_i,x), as the authors' code
    weight_prior: bool = False  # N(0, I) prior on the weight matrices, / N (the authors' code)
    weight_prior_on: str = "all"  # the networks under it: all, or e.g. "q-y" or "q-z,p-x"
    precision: str = "fp32"  # "bf16": training steps under autocast (matrix products in bf16)
    lr: float = 3e-4
    beta1: float = 0.9
    beta2: float = 0.999
    lr_decay: float = 0.75  # learning rate multiplied by this ...
    lr_decay_every: int = 200  # ... every this many epochs
    clip_grad_norm: float | None = 5.0  # released code: total-norm constraint 5 ...
    clip_grad_value: float | None = 1.0  # ... then element-wise clipping to [-1, 1]
    train_auxiliary: bool = True  # False: q(a|x) keeps its initial weights (paper-era code)
    eval_samples: int = 100  # samples of a when predicting (paper: 100)
    eval_every: int = 1  # test error every this many epochs
    eval_iw_samples: int = 0  # > 0: also the test log-likelihood with this many importance samples
    checkpoint_every: int = 1  # epochs between checkpoints (and one at the end)
    checkpoint_every_minutes: float | None = None  # also within an epoch, at most this apart
    keep_checkpoints: int = 3  # the newest K checkpoint files are kept
    tensorboard: bool = False  # also write the metrics to RUN_DIR/tensorboard
    max_steps_per_epoch: int | None = None  # cut epochs short (tests, smoke runs)
    rollbacks: int = 0  # on a non-finite loss: 0 stops; N > 0 rolls back at most N times ...
    rollback_lr_factor: float = 0.5  # ... to the last checkpoint, the lr multiplied by this
    seed: int = 0
    device: str = "cpu"
    cuda_graphs: bool = False  # replay each step as a recorded CUDA graph (one process, CUDA)
    deterministic: bool = False  # torch's deterministic kernels only (repeatable GPU runs)

    def validate(self) -> None:
        for name in (
            "epochs",
            "mc_samples",
            "eval_samples",
            "eval_every",
            "checkpoint_every",
            "keep_checkpoints",
        ):
            _positive(name, getattr(self, name))
        if self.lr <= 0:
            raise AdgmError(f"lr must be positive, got {self.lr}")
        if self.classification_term not in CLASSIFICATION_TERMS:
            raise AdgmError(
                f"unknown classification_term {self.classification_term!r}; choose one of "
                f"{', '.join(CLASSIFICATION_TERMS)}"
            )
        _one_of("label_weights", self.label_weights, LABEL_WEIGHTS)
        _one_of("precision", self.precision, PRECISIONS)
        if self.eval_iw_samples < 0:
            raise AdgmError(f"eval_iw_samples must be >= 0, got {self.eval_iw_samples}")
        if self.alpha is not None and self.alpha < 0:
            raise AdgmError(f"alpha must be >= 0, got {self.alpha}")
        if self.checkpoint_every_minutes is not None and not self.checkpoint_every_minutes > 0:
            raise AdgmError(
                f"checkpoint_every_minutes must be positive, got {self.checkpoint_every_minutes}"
            )
        if self.max_steps_per_epoch is not None:
            _positive("max_steps_per_epoch", self.max_steps_per_epoch)
        if self.rollbacks < 0:
            raise AdgmError(f"rollbacks must be >= 0, got {self.rollbacks}")
        if self.weight_prior_on != "all":
            networks = self.weight_prior_on.split(",")
            unknown = [n for n in networks if n not in WEIGHT_PRIOR_NETWORKS]
            if unknown or len(set(networks)) < len(networks):
                raise AdgmError(
                    f"weight_prior_on must be all or a comma-separated list of "
                    f"{', '.join(WEIGHT_PRIOR_NETWORKS)} without repeats, got "
                    f"{self.weight_prior_on!r}"
                )
            if not self.weight_prior:
                raise AdgmError("--weight-prior-on needs --weight-prior (or a preset that sets it)")
        if self.cuda_graphs and not self.device.startswith("cuda"):
            raise AdgmError(
                f"--cuda-graphs needs a CUDA device (--device cuda); this run trains on "
                f"{self.device}"
            )
        if not 0 < self.rollback_lr_factor < 1:
            raise AdgmError(f"rollback_lr_factor must lie in (0, 1), got {self.rollback_lr_factor}")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs; stored as ``config.json`` in the run folder."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()

    def validate(self) -> None:
        self.data.validate()
        self.model.validate()
        self.train.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        """Rebuild from ``to_dict`` output, rejecting unknown fields with a clear message."""
        try:
            model = dict(raw.get("model", {}))
            if "hidden" in model:
                model["hidden"] = tuple(model["hidden"])
            return cls(
                data=DataConfig(**raw.get("data", {})),
                model=ModelConfig(**model),
                train=TrainConfig(**raw.get("train", {})),
            )
        except TypeError as exc:
            raise AdgmError(f"config does not match this version of adgm: {exc}") from None


# Settings that differ from the paper's, by name. "authors-2015" is every choice of the authors'
# paper-era code (larsmaaloee/auxiliary-deep-generative-models, models/adgmssl.py,
# data_preparation/mnist.py) and of the training log committed with it that the paper does not
# state: q(a|x) never updated, the unlabelled images stacked class by class and never shuffled,
# 1200 as the classification weight per point, the mean of log q(y|a_i,x) over samples, the
# labels of U weighted by q(y|a_i,x) averaged over the samples, a N(0, I) prior on the weights
# trained (log N(W|0,I) / 120,000 on a bound averaged over batches of 200 rows: 1 / 60,000 on
# adgm's loss) and grey-level test images; its networks have the paper's two hidden layers of
# 500 units (the log's listing, e.g. "q(a|x): 784, 500, 500, 500, 100", gives the input width of
# each weight matrix, the mean's and the log-variance's layers both reading 500 units; until
# 2026-11-28 this preset read it as three hidden layers). Monte Carlo samples are left to
# --mc-samples (their log is a 10 MC run). "authors-2016" is every choice
# of their later code (models/sdgmssl.py, run_mnist.py: the ICML 2016 version, which trains the
# SDGM) that differs from the paper: alpha 60 per labelled point, the mean of log q(y|a_i,x), the
# labels of U weighted by the mean of q(y|a_i,x), Monte Carlo log densities, a N(0, I) prior on
# the weights, Gaussian layers initialised N(0, 1e-3^2), the unlabelled images shuffled once and
# visited in that order every epoch (data_loaders/mnist.py, training/train.py) and grey-level
# test images (their loader's real-valued MNIST). The weight prior and the label weights joined
# authors-2015, and the label weights authors-2016, on 2026-11-27; runs started before (their
# config.json has no label_weights, or weight_prior false) were trained without them.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {},
    "authors-2015": {
        "data": {"unlabelled_order": "class-sorted", "test_inputs": "grey"},
        "train": {
            "alpha": 1200.0,
            "classification_term": "mean-log",
            "label_weights": "sample-mean",
            "weight_prior": True,
            "train_auxiliary": False,
        },
    },
    "authors-2016": {
        "data": {"unlabelled_order": "fixed", "test_inputs": "grey"},
        "model": {"gaussian_init": "small"},
        "train": {
            "alpha": 60.0,
            "classification_term": "mean-log",
            "label_weights": "sample-mean",
            "analytic_kl": False,
            "weight_prior": True,
        },
    },
}


def preset_config(name: str) -> RunConfig:
    """The paper's configuration with the named preset's settings in place of its own."""
    if name not in PRESETS:
        raise AdgmError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    changes = PRESETS[name]
    base = RunConfig()
    return RunConfig(
        data=dataclasses.replace(base.data, **changes.get("data", {})),
        model=dataclasses.replace(base.model, **changes.get("model", {})),
        train=dataclasses.replace(base.train, **changes.get("train", {})),
    )


def _one_of(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise AdgmError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")


def _positive(name: str, value: int) -> None:
    if value <= 0:
        raise AdgmError(f"{name} must be positive, got {value}")
