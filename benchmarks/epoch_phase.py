"""Test error at points within an epoch: how an unshuffled data order shows in a run's error.

Loads a run's latest checkpoint (taken at the end of an epoch) and trains on from it in memory
for --epochs epochs exactly as the run would (same batches, same noise: each evaluation puts the
random state back as it found it; the run folder is not touched). Every --every steps it
evaluates the test error with --samples samples of `a` and the error on each class's test
images. With an unshuffled order (`--unlabelled-order class-sorted`, the authors' paper-era
code, or `fixed`) each line also says which classes the last --every unlabelled half-batches
held. Prints
one line per evaluation; --json writes the rows too.

    python benchmarks/epoch_phase.py ../runs/sdgm-1mc-bf16-class-sorted --every 60
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from adgm.checkpoint import load_latest_checkpoint
from adgm.data import SemiSupervisedData
from adgm.errors import errors_in_one_line
from adgm.evaluate import predict_proba
from adgm.run_folder import load_run_config
from adgm.training_loop import TrainingLoop


def class_errors(loop: TrainingLoop, n_samples: int) -> tuple[float, list[float]]:
    """Test error and the error on each class's test images (fractions); the random state is
    left as it was, so training goes on as without the evaluation."""
    data = loop.data
    random_state = torch.get_rng_state()
    predicted = predict_proba(loop.model, data.x_test, n_samples=n_samples).argmax(-1)
    torch.set_rng_state(random_state)
    wrong = (predicted != data.y_test).float()
    per_class = [wrong[data.y_test == k].mean().item() for k in range(data.n_classes)]
    return wrong.mean().item(), per_class


def visiting_order_labels(data: SemiSupervisedData) -> np.ndarray | None:
    """The classes of the unlabelled rows in the order every epoch visits them (the
    class-sorted or fixed order); None for shuffled batches, whose order changes each epoch, or
    for data without the classes of their unlabelled rows (own data)."""
    if data.shuffle or data.y_unlabelled is None:
        return None
    return data.y_unlabelled.cpu().numpy()


def classes_of_steps(ordered: np.ndarray | None, batch: int, first: int, last: int) -> list[int]:
    """The classes of the unlabelled rows of steps first..last (1-based) of an epoch visiting
    the rows labelled `ordered` in that order, `batch` a step; [] where `ordered` is None."""
    if ordered is None or last < first:
        return []
    return np.unique(ordered[(first - 1) * batch : last * batch]).tolist()


def recency_effect(rows: list[dict]) -> tuple[list[tuple[float, float]], float]:
    """Per class: its mean test error at the evaluations just after steps that held its images,
    and at the others (in %); and the mean over classes of the difference."""
    by_class = []
    for k in range(len(rows[0]["class_errors"])):
        recent = [100 * r["class_errors"][k] for r in rows if k in r["last_classes"]]
        other = [100 * r["class_errors"][k] for r in rows[1:] if k not in r["last_classes"]]
        if recent and other:
            by_class.append((float(np.mean(recent)), float(np.mean(other))))
    return by_class, float(np.mean([recent - other for recent, other in by_class]))


@errors_in_one_line("epoch_phase")
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--every", type=int, default=60, help="steps between evaluations")
    parser.add_argument("--epochs", type=int, default=1, help="epochs to train on")
    parser.add_argument("--samples", type=int, default=100, help="samples of a per evaluation")
    parser.add_argument("--json", type=Path, help="also write the rows here, one JSON a line")
    args = parser.parse_args()
    config = load_run_config(args.run_dir)
    state = load_latest_checkpoint(args.run_dir)
    loop = TrainingLoop(config)
    loop.load_state_dict(state)
    if loop.step != 0:
        sys.exit(f"epoch_phase: the latest checkpoint of {args.run_dir} is within an epoch")
    ordered = visiting_order_labels(loop.data)
    batch = loop.config.data.unlabelled_batch
    rows = []

    def report(step: int) -> None:  # the weights after `step` steps of epoch loop.epoch + 1
        error, per_class = class_errors(loop, args.samples)
        first = max(1, step - args.every + 1)
        row = {
            "epoch": loop.epoch + 1,
            "step": step,
            "last_classes": classes_of_steps(ordered, batch, first, step),
            "test_error": error,
            "class_errors": per_class,
        }
        rows.append(row)
        worst = int(np.argmax(per_class))
        seen = ",".join(map(str, row["last_classes"])) or "-"
        print(
            f"epoch {loop.epoch + 1} step {step:4d} (classes {seen}): "
            f"test error {100 * error:.2f}%, worst class {worst} {100 * per_class[worst]:.1f}%",
            flush=True,
        )

    report(0)  # the end of the checkpoint's epoch
    n_steps, step_once = loop.steps_per_epoch(), loop.step_once

    def step_then_report(x_l, y_l, x_u, *, number: int):  # the loop's step, then maybe a report
        terms = step_once(x_l, y_l, x_u, number=number)
        if number % args.every == 0 or number == n_steps:
            report(number)  # predict_proba puts the model back in training mode
        return terms

    loop.step_once = step_then_report
    start = time.perf_counter()
    for _ in range(args.epochs):
        loop.train_epoch()  # the run's own epoch: its batches, checks and learning rate
    errors = [100 * r["test_error"] for r in rows]
    by_class = 100 * np.array([r["class_errors"] for r in rows])  # (evaluations, classes)
    print(
        f"{len(rows)} evaluations over {args.epochs} epoch(s) in {time.perf_counter() - start:.0f}"
        f" s: test error {min(errors):.2f}-{max(errors):.2f}% "
        f"(mean {np.mean(errors):.2f}, sd {np.std(errors, ddof=1):.2f}); each class's error "
        f"varies with sd {by_class.std(axis=0, ddof=1).mean():.2f} points (mean over classes)"
    )
    if rows[-1]["last_classes"]:
        by_class, difference = recency_effect(rows)
        print(
            f"class by class, the error just after its images against the other evaluations: "
            f"{difference:+.2f} points on average; "
            + ", ".join(f"{k}: {a:.1f} vs {b:.1f}%" for k, (a, b) in enumerate(by_class))
        )
    if args.json:
        args.json.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
