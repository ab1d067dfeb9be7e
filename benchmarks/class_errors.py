"""Where a run's test errors fall: the error of each class and the largest confusions.

For each run folder (its latest checkpoint, or with --epoch N the one of the end of epoch N),
on the test set as the run evaluates it (binary or grey), with --samples draws of a, the
prediction argmax_y mean_s q(y|a_s,x) is tallied into a K x K confusion matrix C (C[t, p] =
images of class t predicted p), and the script prints

    error          sum of the off-diagonal of C over its total, in %
    per class      1 - C[t, t] / sum_p C[t, p] for each class t, in %
    wrong answers  sum_{t != p} C[t, p] for each class p: the errors that answer p (a class
                   the classifier leans to gathers them, e.g. the last class of an epoch in
                   the authors' class-sorted order)
    confusions     the --top largest off-diagonal counts, "t->p n": the images of class t
                   predicted p, and their share of all errors

Two runs with one test error can make it in different ways: a few classes merged into one
cluster (a pair t->p that holds a large share of the errors), or errors spread thinly.

    python benchmarks/class_errors.py ../runs/m2-1mc-bf16-seed2 ../runs/adgm-1mc-bf16-seed2
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from adgm.data import load_data
from adgm.errors import AdgmError
from adgm.evaluate import predict_proba
from adgm.train import load_trained_model


def confusion_matrix(truth: torch.Tensor, predicted: torch.Tensor, n_classes: int) -> torch.Tensor:
    """C (K, K) with C[t, p] the number of points of class t predicted p, from labels (N,)."""
    flat = truth.long() * n_classes + predicted.long()
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def class_errors(confusion: torch.Tensor, top: int) -> dict:
    """The module docstring's figures from a confusion matrix C (K, K)."""
    total = int(confusion.sum())
    correct = int(confusion.diagonal().sum())
    wrong = total - correct
    per_class = 1 - confusion.diagonal().double() / confusion.sum(1).clamp_min(1).double()
    off_diagonal = confusion.clone()
    off_diagonal.fill_diagonal_(0)
    counts, flat = off_diagonal.flatten().sort(descending=True)
    k = confusion.shape[0]
    pairs = [
        {"true": int(i) // k, "predicted": int(i) % k, "count": int(n)}
        for n, i in zip(counts[:top], flat[:top])
        if n > 0
    ]
    for pair in pairs:
        pair["share"] = pair["count"] / wrong
    return {
        "error": 100 * wrong / total,
        "per_class": [100 * float(e) for e in per_class],
        "wrong_answers": [int(n) for n in off_diagonal.sum(0)],
        "confusions": pairs,
    }


def run_class_errors(
    run: str, *, samples: int, seed: int, top: int, epoch: int | None = None
) -> dict:
    """class_errors of a run's latest checkpoint (or that of the end of `epoch`) on its test
    set, with its epoch and model."""
    config, model, trained = load_trained_model(run, epoch=epoch)
    data = load_data(config.data, likelihood=config.model.likelihood)
    torch.manual_seed(seed)
    predicted = predict_proba(model, data.x_test, n_samples=samples).argmax(-1)
    confusion = confusion_matrix(data.y_test, predicted, model.n_classes)
    return {
        "run": run,
        "model": config.model.name,
        "epoch": trained,
        **class_errors(confusion, top),
    }


def format_row(row: dict) -> str:
    per_class = " ".join(f"{e:.1f}" for e in row["per_class"])
    confusions = ", ".join(
        f"{c['true']}->{c['predicted']} {c['count']} ({100 * c['share']:.0f}%)"
        for c in row["confusions"]
    )
    return (
        f"{row['run']} ({row['model']}, epoch {row['epoch']}): error {row['error']:.2f}%\n"
        f"  per class (%): {per_class}\n"
        f"  wrong answers, by the class answered: {' '.join(map(str, row['wrong_answers']))}\n"
        f"  largest confusions: {confusions}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders with checkpoints")
    parser.add_argument("--samples", type=int, default=100, help="draws of a per image")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws of a")
    parser.add_argument("--top", type=int, default=5, help="confusions listed")
    parser.add_argument(
        "--epoch",
        type=int,
        help="the checkpoint of the end of this epoch (one the run still keeps), not the latest",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    torch.set_num_threads(1)
    failed = False
    for run in args.runs:
        try:
            row = run_class_errors(
                run, samples=args.samples, seed=args.seed, top=args.top, epoch=args.epoch
            )
        except AdgmError as error:
            print(f"class_errors: {error}", file=sys.stderr)
            failed = True
            continue
        print(json.dumps(row) if args.json else format_row(row), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
