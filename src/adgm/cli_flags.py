"""Every field of DataConfig, ModelConfig and TrainConfig as a ``--kebab-case`` flag.

``add_config_flags`` adds ``--preset`` and one flag per field (with its help text and the
field's default) to a parser; ``config_from_args`` overlays the flags given onto the preset's
RunConfig, or onto a stored run's. A flag left out is None in the parsed arguments, so only the
flags a user typed change anything.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from adgm.config import (
    CLASSIFICATION_TERMS,
    GAUSSIAN_INITS,
    LABEL_WEIGHTS,
    LIKELIHOODS,
    MODEL_NAMES,
    PRECISIONS,
    PRESETS,
    RESUME_MAY_CHANGE,
    TEST_INPUTS,
    UNLABELLED_ORDERS,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    preset_config,
)

HELP = {
    "dataset": "mnist, fashion-mnist, or your own data: a .npz (X, y), a .csv with a label "
    "column, or a folder with one sub-folder of images per class (+ unlabelled/)",
    "test_data": "own data: a test set in the same format (a .npz may hold X_test, y_test)",
    "label_column": "own data, CSV: the column of labels (empty or -1: unlabelled)",
    "data_dir": "folder with the four MNIST .gz files (default: $ADGM_DATA_DIR, then the cache)",
    "n_labels": "number of labelled training images, evenly across classes",
    "label_seed": "seed of the draw of labelled images",
    "labelled_batch": "labelled images per batch (first half of the batch)",
    "unlabelled_batch": "unlabelled images per batch (second half)",
    "n_validation": "training images held out as a validation set",
    "eval_train_points": "also report the error on the last N training images, which stay in "
    "the unlabelled set (mnist and fashion-mnist; the authors' paper-era log reports it for the "
    "10,000 of MNIST's validation split, merged into training, as valid[err])",
    "subset": "use only the first N training images (smoke tests)",
    "test_subset": "use only the first N test images (smoke tests)",
    "unlabelled_order": "shuffled every epoch; class-sorted: the unlabelled images stacked "
    "class by class and visited in that order every epoch, as the authors' paper-era code did; "
    "fixed: shuffled once (with the label seed) and visited in that order every epoch, as "
    "their ICML 2016 code did",
    "test_inputs": "Bernoulli data: evaluate on binary test images (one seeded binarisation) "
    "or on the grey levels (the authors' code)",
    "name": "model: adgm (the paper: p(a) q(a|x)), adgm-gen (a generated: p(a|x,y,z)), sdgm "
    "(p(a|y,z) p(x|a,y,z)), adgm-det (deterministic a) or m2",
    "hidden": "hidden layer sizes of every MLP",
    "z_dim": "units of the latent z",
    "a_dim": "units of the auxiliary a",
    "x_dim": "input size (set from the data)",
    "n_classes": "number of classes (set from the data)",
    "gaussian_init": "weights of the mu and log-variance layers: glorot (the paper), small "
    "(N(0, 1e-3^2), the authors' ICML 2016 code); auto: small for adgm-gen and sdgm",
    "classifier_reads_auxiliary": "the classifier is q(y|a,x) (the paper); "
    "--no-classifier-reads-auxiliary makes it q(y|x), blind to a, so that a acts only through "
    "the rest of the model (an ablation; adgm, adgm-gen and sdgm)",
    "likelihood": "p(x|z,y): bernoulli (data in [0, 1], binarised each epoch) or gaussian",
    "epochs": "total number of epochs (one epoch = one pass over the unlabelled set)",
    "mc_samples": "Monte Carlo samples of a and z per point in training (paper: 1 or 10)",
    "alpha": "weight of the classification term (default 0.01 * number of unlabelled images)",
    "analytic_kl": "closed-form Gaussian KL terms (else Monte Carlo, as eq. 7 is written)",
    "precision": "fp32, or bf16: training steps under autocast, matrix products in bfloat16 "
    "(densities, sums, parameters and gradients in fp32); evaluation stays fp32. Fast on a GPU "
    "and on CPUs with AVX-512 or AMX; elsewhere slower than fp32 (a warning says so)",
    "weight_prior": "add a N(0, I) prior on the weight matrices trained, divided by the number "
    "of unlabelled points, to the loss (the authors' code)",
    "weight_prior_on": "with --weight-prior, the networks under it: all, or a comma-separated "
    "list of q-y (the classifier), q-z, q-a, p-x, p-a (p(a|...) of adgm-gen and the SDGM)",
    "label_weights": "weights of the labels in U's sum over y: per-sample: q(y|a_i,x) for each "
    "sample a_i (eq. 11); sample-mean: (1/S) sum_i q(y|a_i,x) (the authors' code); equal for "
    "1 MC sample",
    "classification_term": "log-mean: -log (1/S) sum_i q(y|a_i,x) (eq. 9); mean-log: "
    "-(1/S) sum_i log q(y|a_i,x) (the authors' code); equal for 1 MC sample",
    "lr": "Adam learning rate",
    "beta1": "Adam beta1",
    "beta2": "Adam beta2",
    "lr_decay": "learning-rate factor applied every --lr-decay-every epochs",
    "lr_decay_every": "epochs between learning-rate decays",
    "clip_grad_norm": "clip the gradients' total norm to this (released code: 5); 'none': off",
    "clip_grad_value": "then clip each gradient element to +-this (released code: 1); 'none' off",
    "train_auxiliary": "train q(a|x) (the paper); --no-train-auxiliary keeps it at its initial "
    "weights, as the authors' paper-era code did",
    "eval_samples": "samples of a when predicting (paper: 100)",
    "eval_every": "epochs between test-error evaluations",
    "eval_iw_samples": "also the test log-likelihood at each evaluation, importance-weighted "
    "with this many samples (0: off)",
    "checkpoint_every": "epochs between checkpoints (one is always written at the end)",
    "checkpoint_every_minutes": "also write a checkpoint within an epoch once this many minutes "
    "have passed since the last one, so a kill loses at most that much work",
    "keep_checkpoints": "how many of the newest checkpoint files to keep",
    "tensorboard": "also write the metrics for TensorBoard to RUN_DIR/tensorboard",
    "max_steps_per_epoch": "cut each epoch to this many steps (smoke tests)",
    "rollbacks": "on a NaN/inf loss or gradient, roll back to the last checkpoint with a lower "
    "lr at most this many times (0: stop at once)",
    "rollback_lr_factor": "learning-rate factor applied at each rollback",
    "seed": "training seed (initialisation, batches, binarisation, samples)",
    "device": "cpu, cuda or cuda:N",
    "cuda_graphs": "on a CUDA device, record one training step as a CUDA graph and replay it "
    "(fewer kernel launches by the host; the same maths, not bitwise the same numbers)",
    "deterministic": "use torch's deterministic kernels only, so that a run on a GPU repeats "
    "bitwise and resumes exactly (as a CPU run always does); GPU steps may be slower",
}
CHOICES = {
    "name": MODEL_NAMES,
    "likelihood": LIKELIHOODS,
    "classification_term": CLASSIFICATION_TERMS,
    "label_weights": LABEL_WEIGHTS,
    "gaussian_init": GAUSSIAN_INITS,
    "unlabelled_order": UNLABELLED_ORDERS,
    "test_inputs": TEST_INPUTS,
    "precision": PRECISIONS,
}
RENAMED = {"name": "model", "dataset": "data"}  # ModelConfig.name is --model on the command line
SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """--preset, then one --flag per field of DataConfig, ModelConfig and TrainConfig."""
    parser.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=None,
        help="start from the paper's settings (paper), the authors' paper-era code and log "
        "(authors-2015: q(a|x) frozen, class-sorted unlabelled order, --alpha 1200, "
        "mean-log classification term, sample-mean label weights, --weight-prior, grey test "
        "inputs) or their ICML 2016 code (authors-2016: --alpha 60, "
        "mean-log, sample-mean label weights, --no-analytic-kl, --weight-prior, "
        "--gaussian-init small, fixed unlabelled order, grey test inputs); "
        "flags given beside it override it (default: paper)",
    )
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{section} settings")
        for field in dataclasses.fields(cls):
            if field.name not in ("x_dim", "n_classes"):
                _add_field_flag(group, section, field)


def flag_name(field_name: str) -> str:
    """The command-line flag of a config field, e.g. 'name' -> '--model'."""
    return "--" + RENAMED.get(field_name, field_name).replace("_", "-")


def resumable_flags() -> str:
    """'--epochs, --device, ... and --checkpoint-every-minutes': the flags of RESUME_MAY_CHANGE."""
    flags = [flag_name(name) for name in RESUME_MAY_CHANGE]
    return f"{', '.join(flags[:-1])} and {flags[-1]}"


def _add_field_flag(group, section: str, field: dataclasses.Field) -> None:
    name = RENAMED.get(field.name, field.name)
    flag = flag_name(field.name)
    dest = f"{section}.{field.name}"
    help_text = f"{HELP[field.name]} (default: {field.default})"
    if field.name == "hidden":
        group.add_argument(
            flag, dest=dest, type=int, nargs="+", default=None, metavar="UNITS", help=help_text
        )
    elif isinstance(field.default, bool):
        group.add_argument(
            flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text
        )
    elif field.name in CHOICES:
        group.add_argument(
            flag, dest=dest, choices=CHOICES[field.name], default=None, help=help_text
        )
    else:
        group.add_argument(
            flag,
            dest=dest,
            type=_field_parser(field),
            default=None,
            metavar=name.upper(),
            help=help_text,
        )


def _field_parser(field: dataclasses.Field):
    """int / float / str parsers; optional fields also accept 'none'."""
    kind = str(field.type)
    base = int if kind.startswith("int") else float if kind.startswith("float") else str

    def parse(text: str):
        if "None" in kind and text.lower() == "none":
            return None
        try:
            return base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {base.__name__}, got {text!r}") from None

    return parse


def config_from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """Overlay the flags given on the command line onto `base` (default: --preset's config)."""
    base = base or preset_config(getattr(args, "preset", None) or "paper")
    sections: dict[str, Any] = {}
    for section in SECTIONS:
        current = getattr(base, section)
        changes = {
            key.split(".", 1)[1]: value
            for key, value in vars(args).items()
            if key.startswith(section + ".") and value is not None
        }
        if "hidden" in changes:
            changes["hidden"] = tuple(changes["hidden"])
        sections[section] = dataclasses.replace(current, **changes)
    return RunConfig(**sections)
