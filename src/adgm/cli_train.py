"""``adgm train``: start a run, or continue one with ``--resume``.

Every field of DataConfig, ModelConfig and TrainConfig is a ``--kebab-case`` flag
(``adgm.cli_flags``); on ``--resume`` only the flags of RESUME_MAY_CHANGE may be given.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path

from adgm.cli_flags import add_config_flags, config_from_args, flag_name, resumable_flags
from adgm.config import PRESETS, RESUME_MAY_CHANGE, ModelConfig, RunConfig
from adgm.errors import AdgmError


def add_train(commands) -> None:
    train = commands.add_parser("train", help="train a model (defaults: the paper's setup)")
    add_config_flags(train)
    train.add_argument("--out", type=Path, default=None, help="run folder (default runs/<model>)")
    train.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its latest checkpoint"
    )
    train.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace, argv: list[str]) -> int:
    from adgm.distributed import leave_process_group
    from adgm.train import Trainer, load_run_config

    if args.resume:
        model = getattr(args, "model.name")
        if args.out is None:  # the folder a run started without --out went to
            args.out = Path("runs") / (model or ModelConfig().name)
        stored = load_run_config(args.out)
        if model is not None and model == stored.model.name:
            setattr(args, "model.name", None)  # naming the run's own model changes nothing
        config = _graphs_where_they_run(config_from_args(_only_resumable(args), stored), args)
    else:
        config = config_from_args(args)
        _refuse_split_flags_for_own_data(args, config)
    config.validate()
    out = args.out or Path("runs") / config.model.name
    trainer = Trainer(config, out)
    if args.resume:
        trainer.resume("adgm " + shlex.join(argv))
        if trainer.epoch == 0 and trainer.step == 0:
            print(f"{out} has no checkpoint yet: starting it from the beginning")
        else:
            print(f"resuming {out} after epoch {trainer.epoch}")
    else:
        trainer.start("adgm " + shlex.join(argv))
    n_params = sum(p.numel() for p in trainer.model.parameters())
    print(
        f"{config.model.name}: {n_params:,} parameters, alpha={trainer.alpha:g}, "
        f"{config.train.mc_samples} MC sample(s), device {trainer.device}, run folder {out}"
    )
    finished = False
    try:
        trainer.fit()
        finished = True
    finally:
        # The model of a distributed run (DistributedDataParallel) holds the process group: let
        # it go before the group is torn down, not at interpreter exit after it.
        del trainer
        leave_process_group(finished=finished)
    return 0


SPLIT_FLAGS = (
    "subset",
    "test_subset",
    "n_labels",
    "label_seed",
    "n_validation",
    "unlabelled_order",
    "eval_train_points",
)


def _refuse_split_flags_for_own_data(args: argparse.Namespace, config: RunConfig) -> None:
    """The flags that split MNIST-format data mean nothing for own data: refuse them by name."""
    if config.data.dataset in ("mnist", "fashion-mnist"):
        return
    split = PRESETS.get(args.preset or "paper", {}).get("data", {})
    if split:  # e.g. the class-sorted order, which needs every training image's label
        flags = ", ".join(flag_name(name) for name in split)
        raise AdgmError(
            f"--preset {args.preset} sets {flags}, which apply to mnist and fashion-mnist "
            f"only; with own data ({config.data.dataset}) give its other settings as flags"
        )
    given = [name for name in SPLIT_FLAGS if getattr(args, f"data.{name}", None) is not None]
    if given:
        flags = ", ".join(flag_name(name) for name in given)
        raise AdgmError(
            f"{flags} split mnist and fashion-mnist; own data ({config.data.dataset}) bring "
            "their own labels (-1 = unlabelled) and test set (--test-data)"
        )


def _graphs_where_they_run(config: RunConfig, args: argparse.Namespace) -> RunConfig:
    """A run that trained with --cuda-graphs and resumes on a CPU trains on without them,
    unless --cuda-graphs is given again (then validate() says it needs a CUDA device)."""
    train = config.train
    if not train.cuda_graphs or train.device.startswith("cuda"):
        return config
    if getattr(args, "train.cuda_graphs", None) is not None:
        return config
    print(f"resuming on {train.device}: training on without CUDA graphs")
    return dataclasses.replace(config, train=dataclasses.replace(train, cuda_graphs=False))


def _only_resumable(args: argparse.Namespace) -> argparse.Namespace:
    """On --resume, only the flags of RESUME_MAY_CHANGE (--epochs, --device, ...) may differ
    (how and where to compute, not what)."""
    if args.preset is not None:
        raise AdgmError("--resume keeps the run's settings; --preset cannot be given with it")
    allowed = {f"train.{name}" for name in RESUME_MAY_CHANGE}
    changed = [k for k, v in vars(args).items() if "." in k and v is not None and k not in allowed]
    if changed:
        flags = ", ".join(flag_name(k.split(".", 1)[1]) for k in changed)
        raise AdgmError(
            f"--resume keeps the run's settings; only {resumable_flags()} may be given "
            f"(got {flags})"
        )
    return args
