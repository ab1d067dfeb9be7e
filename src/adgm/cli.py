"""The ``adgm`` command: train, evaluate, sample, plot, summary and reproduce (``adgm CMD -h``).

Every field of DataConfig, ModelConfig and TrainConfig is a ``--kebab-case`` flag of
``adgm train`` (``adgm.cli_flags``); the defaults are the paper's. Errors in the user's input
end the program with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import sys
import warnings
from pathlib import Path

from adgm.cli_flags import add_config_flags, config_from_args, flag_name, resumable_flags
from adgm.config import PRESETS, RESUME_MAY_CHANGE, TEST_INPUTS, ModelConfig, RunConfig
from adgm.errors import AdgmError

POOL_PRECISIONS_HELP = (
    "take runs that differ only in their seeds and their training precision (fp32, bf16) for "
    "seeds of one setting; its label names the precisions pooled"
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # --help and usage errors end here, before torch is loaded
    from adgm.cpu import denormals_flushed, keep_freed_memory

    if args.command in ("train", "reproduce"):  # this process is ours: see adgm.cpu
        keep_freed_memory()
    try:
        with denormals_flushed(), _adgm_warnings_in_one_line():
            # denormals flushed before torch starts threads, which then inherit the mode
            return args.handler(args, argv if argv is not None else sys.argv[1:])
    except AdgmError as exc:
        print(f"adgm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "adgm: interrupted; the last checkpoint is kept (resume with --resume)", file=sys.stderr
        )
        return 130
    except BrokenPipeError:  # whoever read stdout stopped (`adgm summary ... | head`)
        _discard_stdout()
        return 141  # as a shell reports a command ended by SIGPIPE
    except Exception as exc:
        from adgm.train import TrainingInterrupted

        if not isinstance(exc, TrainingInterrupted):
            raise
        print(f"adgm: interrupted: {exc} (continue with --resume)", file=sys.stderr)
        return 128 + exc.signal  # as a shell reports the signal: 130 for Ctrl-C, 143 for SIGTERM


@contextlib.contextmanager
def _adgm_warnings_in_one_line():
    """Inside the block adgm's own warnings print as ``adgm: warning: <message>`` on stderr, as
    its errors do; other warnings as Python prints them."""
    from adgm.errors import AdgmWarning

    shown_before = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, AdgmWarning):
            print(f"adgm: warning: {message}", file=sys.stderr)
        else:
            shown_before(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown_before


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush has nowhere to fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file behind stdout
        pass


def build_parser() -> argparse.ArgumentParser:
    """The adgm command: one sub-parser per subcommand, each with its handler."""
    parser = argparse.ArgumentParser(prog="adgm", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_train,
        _add_evaluate,
        _add_sample,
        _add_plot,
        _add_summary,
        _add_reproduce,
    ):
        add(commands)
    return parser


def _add_train(commands) -> None:
    train = commands.add_parser("train", help="train a model (defaults: the paper's setup)")
    add_config_flags(train)
    train.add_argument("--out", type=Path, default=None, help="run folder (default runs/<model>)")
    train.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its latest checkpoint"
    )
    train.set_defaults(handler=run_train)


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="test error (and log-likelihood) of a trained run"
    )
    evaluate.add_argument("run_dir", type=Path)
    evaluate.add_argument(
        "--samples", type=int, default=None, help="samples of a (default: the run's eval_samples)"
    )
    evaluate.add_argument(
        "--log-likelihood",
        action="store_true",
        help="also the importance-weighted test log-likelihood log p(x) (Burda et al. 2016)",
    )
    evaluate.add_argument(
        "--iw-samples", type=int, default=5000, help="importance samples per test image"
    )
    evaluate.add_argument(
        "--points", type=int, default=None, help="only the first N test images (default: all)"
    )
    evaluate.add_argument(
        "--test-inputs",
        choices=TEST_INPUTS,
        default=None,
        help="binary or grey-level test images (default: the run's setting)",
    )
    evaluate.add_argument(
        "--epoch",
        type=int,
        default=None,
        help="the checkpoint of the end of this epoch, one the run still keeps (default: latest)",
    )
    evaluate.add_argument("--device", default="cpu")
    evaluate.set_defaults(handler=run_evaluate)


def _add_sample(commands) -> None:
    sample = commands.add_parser("sample", help="Figure 2b: samples of p(x|z,y) per class")
    sample.add_argument("run_dir", type=Path)
    sample.add_argument("--per-class", type=int, default=10, help="images per class (columns)")
    sample.add_argument("--seed", type=int, default=0, help="seed of z ~ N(0, I)")
    sample.set_defaults(handler=run_sample)


def _add_plot(commands) -> None:
    plot = commands.add_parser("plot", help="figures of trained runs")
    plots = plot.add_subparsers(dest="figure", required=True)
    curves = plots.add_parser("curves", help="Figure 2a: test error per epoch of several runs")
    curves.add_argument("run_dirs", type=Path, nargs="+")
    curves.add_argument(
        "--out",
        type=Path,
        default=None,
        help="PNG path (default: curves.png in the first run folder)",
    )
    curves.add_argument(
        "--reference",
        action="store_true",
        help="also the authors' training log (ADGM, 10 MC, 100 samples of a) as a dashed line",
    )
    curves.add_argument(
        "--group-seeds",
        action="store_true",
        help="draw the runs of one setting that differ only in their seeds as one line, their "
        "mean, with their range shaded, over the epochs all of them evaluated (the runs that "
        "went further go on alone, as thin lines)",
    )
    curves.add_argument(
        "--pool-precisions",
        action="store_true",
        help="with --group-seeds: " + POOL_PRECISIONS_HELP,
    )
    curves.set_defaults(handler=run_plot_curves)
    units = plots.add_parser("active-units", help="Figure 3: KL per unit of a and z")
    units.add_argument("run_dir", type=Path)
    units.add_argument(
        "--threshold", type=float, default=0.01, help="KL above which a unit is active"
    )
    units.add_argument("--device", default="cpu")
    units.set_defaults(handler=run_plot_active_units)


def _add_summary(commands) -> None:
    summary = commands.add_parser("summary", help="a Markdown table of the test errors of runs")
    summary.add_argument("run_dirs", type=Path, nargs="+")
    summary.add_argument(
        "--at", type=int, nargs="+", default=[1, 10, 50, 100], help="epochs to show (columns)"
    )
    summary.add_argument(
        "--time-to",
        type=float,
        nargs="+",
        default=[],
        metavar="PERCENT",
        help="also the wall time (training + evaluation) and epoch at which each run first "
        "reached these test errors, e.g. --time-to 5 3 2.25",
    )
    summary.set_defaults(handler=run_summary)


def _add_reproduce(commands) -> None:
    reproduce = commands.add_parser("reproduce", help="the paper's experiments")
    experiments = reproduce.add_subparsers(dest="experiment", required=True)
    table1 = experiments.add_parser(
        "table1", help="Table 1: test error of ADGM 1 MC, ADGM 10 MC and M2 over seeds"
    )
    add_config_flags(table1)
    table1.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    table1.add_argument(
        "--variants",
        nargs="+",
        default=["adgm:1", "adgm:10", "m2:1"],
        help="model:mc_samples pairs to train",
    )
    table1.add_argument("--out", type=Path, default=Path("runs/table1"), help="folder of the runs")
    table1.set_defaults(handler=run_reproduce_table1)
    measured = experiments.add_parser(
        "table1-from-runs",
        help="Table 1 as measured from run folders (or docs/runs copies): mean ± sd over "
        "seeds per setting at chosen epochs, beside the paper and the authors' log",
    )
    measured.add_argument("run_dirs", type=Path, nargs="+")
    measured.add_argument(
        "--at", type=int, nargs="+", default=[100, 200, 300], help="epochs to show (columns)"
    )
    measured.add_argument("--pool-precisions", action="store_true", help=POOL_PRECISIONS_HELP)
    measured.set_defaults(handler=run_reproduce_table1_from_runs)
    paired = experiments.add_parser(
        "paired-seeds",
        help="each model's test error minus the baseline's, seed by seed (runs paired by their "
        "training seed and labelled draw), over epoch windows, and over seeds",
    )
    paired.add_argument(
        "--baseline", type=Path, nargs="+", required=True, help="seeds of the baseline (e.g. M2)"
    )
    paired.add_argument(
        "--runs", type=Path, nargs="+", required=True, help="runs of one or more models"
    )
    paired.add_argument(
        "--windows", nargs="+", default=["5-100", "105-300"], help="epoch windows, FIRST-LAST"
    )
    paired.add_argument("--pool-precisions", action="store_true", help=POOL_PRECISIONS_HELP)
    paired.set_defaults(handler=run_reproduce_paired_seeds)


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


def run_evaluate(args: argparse.Namespace, argv: list[str]) -> int:
    from adgm.data import load_data
    from adgm.evaluate import error_rate
    from adgm.likelihood import refuse_grey_targets
    from adgm.train import load_trained_model

    config, model, epoch = load_trained_model(args.run_dir, args.device, epoch=args.epoch)
    data_config = config.data
    if args.test_inputs is not None:
        data_config = dataclasses.replace(data_config, test_inputs=args.test_inputs)
    data = load_data(data_config, likelihood=config.model.likelihood, device=args.device)
    if args.log_likelihood:
        refuse_grey_targets(
            data.likelihood, data_config.test_inputs, "--log-likelihood", "add --test-inputs binary"
        )
    if data.x_test is None:
        raise AdgmError(f"{config.data.dataset} has no test set (give one with --test-data)")
    for name in ("samples", "iw_samples", "points"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise AdgmError(f"--{name.replace('_', '-')} must be positive, got {value}")
    x_test, y_test = data.x_test[: args.points], data.y_test[: args.points]
    samples = args.samples or config.train.eval_samples
    result = {"epoch": epoch, "points": len(x_test), "samples": samples}
    result["test_inputs"] = data_config.test_inputs
    result["test_error"] = error_rate(model, x_test, y_test, n_samples=samples)
    if args.log_likelihood:
        result.update(_test_log_likelihood(model, x_test, args.iw_samples))
    print(json.dumps(result))
    return 0


def _test_log_likelihood(model, x_test, iw_samples: int) -> dict[str, float]:
    """Mean and standard error over the test images of the importance-weighted log p(x)."""
    import math

    from tqdm.auto import tqdm

    from adgm.likelihood import log_likelihood

    with tqdm(total=len(x_test), desc=f"log p(x), {iw_samples} samples", unit="image") as bar:
        per_image = log_likelihood(model, x_test, n_samples=iw_samples, progress=bar.update)
    spread = per_image.std().item() / math.sqrt(len(per_image)) if len(per_image) > 1 else 0.0
    return {
        "iw_samples": iw_samples,
        "test_log_likelihood": per_image.mean().item(),
        "test_log_likelihood_standard_error": spread,
    }


def run_sample(args: argparse.Namespace, argv: list[str]) -> int:
    from adgm.plots import plot_samples
    from adgm.train import load_trained_model

    _, model, epoch = load_trained_model(args.run_dir)
    path = plot_samples(
        model, args.run_dir / "samples.png", per_class=args.per_class, seed=args.seed
    )
    print(f"wrote {path} (epoch {epoch})")
    return 0


def run_plot_curves(args: argparse.Namespace, argv: list[str]) -> int:
    from adgm.plots import errors_by_epoch, plot_curves, run_label
    from adgm.reproduce import group_seeds
    from adgm.train import load_run_config, read_metrics

    runs = []
    for run_dir in args.run_dirs:
        rows = read_metrics(run_dir)
        if not errors_by_epoch(rows) and len(args.run_dirs) > 1:
            print(f"adgm: skipped {run_dir}: no test-error measurements yet", file=sys.stderr)
            continue
        runs.append((load_run_config(run_dir), rows))
    if not runs:
        raise AdgmError("none of these runs has a test-error measurement yet")
    if args.pool_precisions and not args.group_seeds:
        raise AdgmError("--pool-precisions pools the seeds of --group-seeds; give both")
    if args.group_seeds:
        curves = list(group_seeds(runs, args.pool_precisions).items())
    else:
        curves = [(run_label(config), [rows]) for config, rows in runs]
    path = plot_curves(
        curves, args.out or args.run_dirs[0] / "curves.png", reference=args.reference
    )
    print(f"wrote {path}")
    return 0


def run_plot_active_units(args: argparse.Namespace, argv: list[str]) -> int:
    from adgm.checkpoint import atomic_write_text
    from adgm.data import load_data
    from adgm.evaluate import active_units, kl_per_unit
    from adgm.plots import plot_active_units
    from adgm.train import load_trained_model

    config, model, epoch = load_trained_model(args.run_dir, args.device)
    data = load_data(config.data, likelihood=config.model.likelihood, device=args.device)
    x = data.x_test if data.x_test is not None else data.x_unlabelled
    kl = kl_per_unit(model, x)
    counts = {name: active_units(values, args.threshold) for name, values in kl.items()}
    report = {
        "epoch": epoch,
        "threshold": args.threshold,
        "active": counts,
        "kl_per_unit": {name: values.tolist() for name, values in kl.items()},
    }
    atomic_write_text(args.run_dir / "active-units.json", json.dumps(report, indent=1))
    path = plot_active_units(kl, args.run_dir / "active-units.png", threshold=args.threshold)
    print(f"active units: {counts}; wrote {path} and active-units.json")
    return 0


def run_summary(args: argparse.Namespace, argv: list[str]) -> int:
    from adgm.plots import run_label
    from adgm.reproduce import machine_note, summarise_runs
    from adgm.run_folder import read_starts, run_name
    from adgm.train import load_run_config, read_metrics

    runs = [
        (f"{run_label(load_run_config(d))} ({run_name(d)})", read_metrics(d)) for d in args.run_dirs
    ]
    print(summarise_runs(runs, args.at, args.time_to), end="")
    notes = [
        machine_note(run_name(d), read_starts(d), rows[-1]["epoch"] if rows else 0)
        for d, (_, rows) in zip(args.run_dirs, runs)
    ]
    if any(notes):
        print("\nMachines (each run's starts.jsonl): " + "; ".join(n for n in notes if n) + ".")
    return 0


def run_reproduce_table1(args: argparse.Namespace, argv: list[str]) -> int:
    from adgm.reproduce import parse_variants, run_table1

    base = config_from_args(args)
    base.validate()
    table = run_table1(base, parse_variants(args.variants), args.seeds, args.out)
    print(table)
    return 0


def run_reproduce_table1_from_runs(args: argparse.Namespace, argv: list[str]) -> int:
    from adgm.reproduce import table1_from_runs
    from adgm.train import load_run_config, read_metrics

    runs = [(load_run_config(d), read_metrics(d)) for d in args.run_dirs]
    print(table1_from_runs(runs, args.at, args.pool_precisions), end="")
    return 0


def run_reproduce_paired_seeds(args: argparse.Namespace, argv: list[str]) -> int:
    from adgm.paired_seeds import paired_seeds_table, parse_window
    from adgm.train import load_run_config, read_metrics

    windows = [parse_window(text) for text in args.windows]
    baselines = [(load_run_config(d), read_metrics(d)) for d in args.baseline]
    runs = [(load_run_config(d), read_metrics(d)) for d in args.runs]
    print(paired_seeds_table(baselines, runs, windows, args.pool_precisions), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
