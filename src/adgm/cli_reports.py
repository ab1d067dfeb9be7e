"""``adgm plot``, ``adgm summary`` and ``adgm reproduce``: figures and tables of runs, and the
paper's experiments (Table 1 trained from scratch, or read from run folders)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from adgm.cli_flags import add_config_flags, config_from_args
from adgm.errors import AdgmError

POOL_PRECISIONS_HELP = (
    "take runs that differ only in their seeds and their training precision (fp32, bf16) for "
    "seeds of one setting; its label names the precisions pooled"
)


def add_plot(commands) -> None:
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


def add_summary(commands) -> None:
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


def add_reproduce(commands) -> None:
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
