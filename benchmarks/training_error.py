"""A run's classification error on its own unlabelled training images, beside its test error.

The authors' paper-era code merged MNIST's 10,000 validation images into the unlabelled training
set (`train_valid_combine=True`) and still logged the error on them as "valid[err]" beside the
test error; in their log the two part from epoch 100 on (0.02% against 1.20% at epoch 1000).
This script measures the same pair for a run: the error on --points unlabelled training images
(a seeded draw among all of them, prepared as the run prepares its test images: one seeded
binarisation, or grey levels), on the test set and on the labelled images, each with --samples
draws of a. With --last the training images are the last --points of the training set instead,
those `adgm train --eval-train-points` reports (in MNIST, the images that make up the authors'
validation split), so that a run trained without that flag can be set beside one trained with it.

    python benchmarks/training_error.py ../runs/adgm-authors-2015-1mc-bf16 ../runs/adgm-1mc-bf16
    python benchmarks/training_error.py --last ../runs/adgm-10mc-bf16-cpu
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from adgm.data import load_data
from adgm.data.batches import test_inputs
from adgm.errors import errors_in_one_line
from adgm.evaluate import error_rate
from adgm.train import load_trained_model


def training_error(run: str, *, points: int, samples: int, seed: int, last: bool = False) -> dict:
    """Errors (in %) on unlabelled training images (a seeded draw of them, or with last the
    last `points` of the training set), on the test set and on the labelled set."""
    config, model, epoch = load_trained_model(run)
    kind = config.data.test_inputs
    if last:
        data = load_data(dataclasses.replace(config.data, eval_train_points=points))
        x_train, y_train = data.x_train_eval, data.y_train_eval
    else:
        data = load_data(config.data)
        rows = np.random.default_rng(seed).permutation(len(data.x_unlabelled))[:points]
        x_train = torch.from_numpy(test_inputs(data.x_unlabelled[rows].numpy(), kind))
        y_train = data.y_unlabelled[rows]
    x_labelled = torch.from_numpy(test_inputs(data.x_labelled.numpy(), kind))
    torch.manual_seed(seed)
    return {
        "epoch": epoch,
        "inputs": kind,
        "train": 100 * error_rate(model, x_train, y_train, n_samples=samples),
        "test": 100 * error_rate(model, data.x_test, data.y_test, n_samples=samples),
        "labelled": 100 * error_rate(model, x_labelled, data.y_labelled, n_samples=samples),
    }


@errors_in_one_line("training_error")
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders with checkpoints")
    parser.add_argument("--points", type=int, default=10_000, help="training images drawn")
    parser.add_argument("--samples", type=int, default=100, help="draws of a per image")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw and of a")
    parser.add_argument(
        "--last", action="store_true", help="the last --points training images, not a draw"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    which = "last" if args.last else "drawn"
    for run in args.runs:
        r = training_error(
            run, points=args.points, samples=args.samples, seed=args.seed, last=args.last
        )
        print(
            f"{run} at epoch {r['epoch']} ({r['inputs']} inputs): {which} training images "
            f"{r['train']:.2f}%, test {r['test']:.2f}%, labelled {r['labelled']:.2f}%"
        )


if __name__ == "__main__":
    main()
