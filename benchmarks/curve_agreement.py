"""Whether two runs' test-error curves agree within the epoch-to-epoch noise (e.g. fp32 and bf16).

Reads two run folders (or their copies under docs/runs/), prints both curves at the epochs both
evaluated, their difference, and `adgm.reproduce.curve_agreement`: the mean difference (bias)
with its standard error (sd / sqrt(n), and widened for the lag-1 autocorrelation of the
differences, which is large where the two trends part), the spread of the differences and the
noise sigma of one evaluation estimated from the curves themselves (two runs that differ only
by noise have a spread near sqrt(2) sigma); then the training loss J of the two runs, epoch by
epoch, a far less noisy comparison than the test error.

With several reference runs (seeds of one setting) before the last run, the reference is their
band: the last run against their mean at each epoch, the seeds' own spread, and the number of
evaluations above the highest seed or below the lowest (`adgm.reproduce.band_agreement`); the
training loss against their mean J.

    python benchmarks/curve_agreement.py docs/runs/sdgm-1mc docs/runs/sdgm-1mc-bf16
    python benchmarks/curve_agreement.py A B --from-epoch 20 --to-epoch 100
    python benchmarks/curve_agreement.py SEED0 SEED1 SEED2 OTHER --to-epoch 100
"""

from __future__ import annotations

import argparse
import statistics
import sys
from functools import partial
from pathlib import Path

from adgm.errors import AdgmError
from adgm.plots import run_label
from adgm.reproduce import band_agreement, curve_agreement, errors_by_epoch
from adgm.run_folder import load_run_config, read_metrics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, nargs="+", help="one run, or several seeds")
    parser.add_argument("other", type=Path)
    parser.add_argument("--from-epoch", type=int, default=1)
    parser.add_argument("--to-epoch", type=int, default=None)
    args = parser.parse_args()
    try:
        folders = (*args.reference, args.other)
        labels = [run_label(load_run_config(path)) for path in folders]
        runs = [_rows_in_range(path, args.from_epoch, args.to_epoch) for path in folders]
        if len(args.reference) > 1:
            report = partial(_print_band, labels, runs, band_agreement(runs[:-1], runs[-1]))
        else:
            report = partial(_print_pair, labels, runs, curve_agreement(*runs))
    except AdgmError as exc:
        print(f"curve_agreement: error: {exc}", file=sys.stderr)
        return 2
    report()
    return 0


def _print_pair(labels: list[str], runs: list[list[dict]], a: dict) -> None:
    """Two runs side by side, epoch by epoch, then their agreement and their training losses."""
    _print_curves(labels, runs)
    print(
        f"\nepochs {a['first_epoch']}-{a['last_epoch']} ({a['epochs']} evaluations): "
        f"difference {_mean_difference(a)}, spread {a['spread']:.2f}, "
        f"mean |difference| {a['mean_abs']:.2f}; noise of one evaluation {a['noise']:.2f} "
        f"points, so noise alone gives a spread of about {2**0.5 * a['noise']:.2f}"
    )
    _print_loss_agreement(runs)


def _mean_difference(a: dict) -> str:
    """The mean difference of curve_agreement or band_agreement with both standard errors."""
    return (
        f"{a['bias']:+.2f} ± {a['bias_se']:.2f} points (mean ± s.e.; "
        f"± {a['bias_se_correlated']:.2f} allowing for the correlation of successive "
        f"differences, r = {a['autocorrelation']:.2f})"
    )


def _print_loss_agreement(runs: list[list[dict]]) -> None:
    """The training bound J of the two runs (one per epoch, nats per point), epoch by epoch."""
    losses = [{r["epoch"]: r["J"] for r in rows} for rows in runs]
    epochs = sorted(set(losses[0]) & set(losses[1]))
    if len(epochs) < 2:
        return
    diffs = [losses[1][e] - losses[0][e] for e in epochs]
    steps = [losses[0][e] - losses[0][e + 1] for e in epochs if e + 1 in losses[0]]
    progress = f"; the reference's J falls {statistics.fmean(steps):.2f} a epoch" if steps else ""
    print(
        f"training loss J over epochs {epochs[0]}-{epochs[-1]}: difference "
        f"{statistics.fmean(diffs):+.3f} ± {statistics.stdev(diffs):.3f} nats (mean ± sd of "
        f"the per-epoch differences, J about {statistics.fmean(losses[0][e] for e in epochs):.0f})"
        f"{progress}"
    )


def _print_band(labels: list[str], runs: list[list[dict]], band: dict) -> None:
    """The last run against the mean and range of the others, epoch by epoch, then in sum."""
    mean_of = f"mean of {band['references']} runs (lowest-highest)"
    print(f"| epoch | {mean_of} | {labels[-1]} | difference |")
    print("| --- | --- | --- | --- |")
    for epoch, mean, low, high, value in band["rows"]:
        print(
            f"| {epoch} | {mean:.2f}% ({low:.2f}-{high:.2f}) | {value:.2f}% | {value - mean:+.2f} |"
        )
    print(f"\nreference runs: {'; '.join(labels[:-1])}")
    print(
        f"epochs {band['first_epoch']}-{band['last_epoch']} ({band['epochs']} evaluations): "
        f"difference from their mean {_mean_difference(band)}; their own spread (sd across "
        f"runs) {band['seed_sd']:.2f} points on average; above the highest at {band['above']}, "
        f"below the lowest at {band['below']}"
    )
    losses = [{r["epoch"]: r["J"] for r in rows} for rows in runs[:-1]]
    shared = sorted(set.intersection(*(set(j) for j in losses)))
    mean_loss = [{"epoch": e, "J": statistics.fmean(j[e] for j in losses)} for e in shared]
    _print_loss_agreement([mean_loss, runs[-1]])


def _rows_in_range(run_dir: Path, first: int, last: int | None) -> list[dict]:
    rows = read_metrics(run_dir)
    return [r for r in rows if r["epoch"] >= first and (last is None or r["epoch"] <= last)]


def _print_curves(labels: list[str], runs: list[list[dict]]) -> None:
    errors = [errors_by_epoch(rows) for rows in runs]
    print(f"| epoch | {labels[0]} | {labels[1]} | difference |")
    print("| --- | --- | --- | --- |")
    for epoch in sorted(set(errors[0]) & set(errors[1])):
        first, second = errors[0][epoch], errors[1][epoch]
        print(f"| {epoch} | {first:.2f}% | {second:.2f}% | {second - first:+.2f} |")


if __name__ == "__main__":
    sys.exit(main())
