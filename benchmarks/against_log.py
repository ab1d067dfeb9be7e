"""A run's test error and error on its own training images beside the authors' log, epoch by epoch.

The authors' paper-era log (adgm.reference) gives, every 10 epochs, the test error with 100
samples of a and, with one sample, the test error and the error on 10,000 images its run trained
on (MNIST's validation split, merged into its unlabelled set). A run trained with
``--eval-train-points`` reports the second pair of figures for its own last training images.
This prints, at each epoch where both the run and the log have a test error, the run's test and
training-image errors, their difference (how far the run classifies its training images better
than new ones) and the same three figures of the log, then the means over those epochs.

    python benchmarks/against_log.py docs/runs/adgm-authors-2015-10mc-bf16-cpu
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from adgm.errors import AdgmError, errors_in_one_line
from adgm.reference import (
    AUTHORS_LOG_TEST_ERROR,
    AUTHORS_LOG_TEST_ERROR_ONE_SAMPLE,
    AUTHORS_LOG_TRAINING_IMAGE_ERROR,
)
from adgm.run_folder import METRICS, read_metrics


def rows_against_log(metrics: list[dict]) -> list[dict]:
    """One row per epoch that the run evaluated and the log lists: errors in %."""
    rows = []
    for row in metrics:
        epoch = row["epoch"]
        if "test_error" not in row or epoch not in AUTHORS_LOG_TEST_ERROR:
            continue
        test = 100 * row["test_error"]
        train = 100 * row["train_error"] if "train_error" in row else None
        log_test = AUTHORS_LOG_TEST_ERROR_ONE_SAMPLE[epoch]
        log_train = AUTHORS_LOG_TRAINING_IMAGE_ERROR[epoch]
        rows.append(
            {
                "epoch": epoch,
                "test": test,
                "train": train,
                "gap": None if train is None else test - train,
                "log_test_100": AUTHORS_LOG_TEST_ERROR[epoch],
                "log_test": log_test,
                "log_train": log_train,
                "log_gap": log_test - log_train,
            }
        )
    return rows


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(rows: list[dict]) -> str:
    lines = [
        "| epoch | run: test | run: its training images | run: gap | log: test (100 samples) "
        "| log: test (1 sample) | log: its training images (1 sample) | log: gap |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = ("test", "train", "gap", "log_test_100", "log_test", "log_train", "log_gap")
    for row in rows:
        lines.append(f"| {row['epoch']} | " + " | ".join(cell(row[k]) for k in keys) + " |")
    means = []
    for key in keys:
        values = [row[key] for row in rows if row[key] is not None]
        means.append(statistics.fmean(values) if values else None)
    lines.append("| mean | " + " | ".join(cell(m) for m in means) + " |")
    return "\n".join(lines)


@errors_in_one_line("against_log")
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder (or its copy in docs/runs)")
    args = parser.parse_args()
    if not (args.run / METRICS).is_file():
        raise AdgmError(f"{args.run} is not a run folder (no {METRICS})")
    rows = rows_against_log(read_metrics(args.run))
    if not rows:
        raise SystemExit(f"{args.run}: no evaluated epoch that the log lists (10, 20, ..., 400)")
    print(table(rows))


if __name__ == "__main__":
    main()
