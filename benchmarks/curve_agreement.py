"""Whether two runs' test-error curves agree within the epoch-to-epoch noise (e.g. fp32 and bf16).

Reads two run folders (or their copies under docs/runs/), prints both curves at the epochs both
evaluated, their difference, and `adgm.reproduce.curve_agreement`: the mean difference (bias)
with its standard error, the spread of the differences and the noise sigma of one evaluation
estimated from the curves themselves (two runs that differ only by noise have a spread near
sqrt(2) sigma).

    python benchmarks/curve_agreement.py docs/runs/sdgm-1mc docs/runs/sdgm-1mc-bf16
    python benchmarks/curve_agreement.py A B --from-epoch 20 --to-epoch 100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adgm.errors import AdgmError
from adgm.plots import run_label
from adgm.reproduce import curve_agreement
from adgm.run_folder import load_run_config, read_metrics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("other", type=Path)
    parser.add_argument("--from-epoch", type=int, default=1)
    parser.add_argument("--to-epoch", type=int, default=None)
    args = parser.parse_args()
    try:
        folders = (args.reference, args.other)
        labels = [run_label(load_run_config(path)) for path in folders]
        runs = [_rows_in_range(path, args.from_epoch, args.to_epoch) for path in folders]
        agreement = curve_agreement(*runs)
    except AdgmError as exc:
        print(f"curve_agreement: error: {exc}", file=sys.stderr)
        return 2
    _print_curves(labels, runs)
    a = agreement
    print(
        f"\nepochs {a['first_epoch']}-{a['last_epoch']} ({a['epochs']} evaluations): "
        f"difference {a['bias']:+.2f} ± {a['bias_se']:.2f} points (mean ± s.e.), "
        f"spread {a['spread']:.2f}, mean |difference| {a['mean_abs']:.2f}; noise of one "
        f"evaluation {a['noise']:.2f} points, so noise alone gives a spread of about "
        f"{2**0.5 * a['noise']:.2f}"
    )
    return 0


def _rows_in_range(run_dir: Path, first: int, last: int | None) -> list[dict]:
    rows = read_metrics(run_dir)
    return [r for r in rows if r["epoch"] >= first and (last is None or r["epoch"] <= last)]


def _print_curves(labels: list[str], runs: list[list[dict]]) -> None:
    errors = [
        {r["epoch"]: 100 * r["test_error"] for r in rows if "test_error" in r} for rows in runs
    ]
    print(f"| epoch | {labels[0]} | {labels[1]} | difference |")
    print("| --- | --- | --- | --- |")
    for epoch in sorted(set(errors[0]) & set(errors[1])):
        first, second = errors[0][epoch], errors[1][epoch]
        print(f"| {epoch} | {first:.2f}% | {second:.2f}% | {second - first:+.2f} |")


if __name__ == "__main__":
    sys.exit(main())
