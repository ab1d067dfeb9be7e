"""From an estimator's parameters to a run's configuration (``adgm.estimator``).

Sizes follow the data: hidden width 2 D (at least 32, at most the paper's 500), a and z D / 4
(at least 2, at most the paper's 100), for D features; training runs at a constant learning rate
(no decay: a fit is minutes, not the paper's hundreds of epochs).
"""

from __future__ import annotations

from adgm.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from adgm.errors import AdgmError


def check_training_parameters(params) -> None:
    """One-line errors for the parameters the configs do not check themselves."""
    if params.inputs not in ("grey", "binary"):
        raise AdgmError(f"inputs must be 'grey' or 'binary', got {params.inputs!r}")
    if params.epochs is None and not (isinstance(params.max_steps, int) and params.max_steps > 0):
        raise AdgmError(f"max_steps must be a positive integer, got {params.max_steps!r}")
    if params.max_time is not None and not params.max_time >= 0:
        raise AdgmError(f"max_time must be a number of seconds >= 0, got {params.max_time!r}")


def run_config_for(params, n_features: int, n_classes: int) -> RunConfig:
    """The RunConfig of a fit of the estimator `params` (its model_name, parameters and
    resolved device_) to data of `n_features` features and `n_classes` classes."""
    width = max(32, min(500, 2 * n_features))
    latent = max(2, min(100, n_features // 4))
    hidden = (width, width) if params.hidden == "auto" else tuple(params.hidden)
    model = ModelConfig(
        name=params.model_name,
        hidden=hidden,
        z_dim=latent if params.z_dim == "auto" else int(params.z_dim),
        a_dim=latent if params.a_dim == "auto" else int(params.a_dim),
        x_dim=n_features,
        n_classes=n_classes,
        likelihood=params.likelihood,
    )
    data = DataConfig(
        labelled_batch=params.labelled_batch, unlabelled_batch=params.unlabelled_batch
    )
    train = TrainConfig(
        epochs=params.epochs if params.epochs is not None else 1,  # whole fits: see _train
        mc_samples=params.mc_samples,
        alpha=params.alpha,
        lr=params.lr,
        eval_samples=params.eval_samples,
        precision=params.precision,
        seed=params.random_state,
        device=params.device_,
        cuda_graphs=bool(params.cuda_graphs) and params.device_.startswith("cuda"),
        lr_decay=1.0,
    )
    return RunConfig(data=data, model=model, train=train)
