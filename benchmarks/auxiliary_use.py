"""How much a trained classifier q(y|a,x) uses its auxiliary variable a, on the test set.

For each run folder (its latest checkpoint), on the first --points test images (as the run
evaluates them: binary or grey), with S = --samples draws a_s ~ q(a|x):

    error          the test error of the usual prediction, mean_s q(y|a_s,x)
    error at mean  the error with the single a = E[a|x] (the mean of q(a|x))
    error, a of another image
                   the error with a_s ~ q(a|x') for another test image x' (the batch rolled
                   by one): what is left when a carries nothing of x
    I(y; a | x)    the mutual information between y and a under q, in nats, averaged over the
                   images: H(mean_s q(y|a_s,x)) - mean_s H(q(y|a_s,x)); 0 when a moves no
                   prediction, at most log K
    changed        how often the most likely label under one a_s differs from the usual
                   prediction, averaged over the draws and images

    python benchmarks/auxiliary_use.py ../runs/sdgm-1mc-bf16 ../runs/adgm-gen-1mc ...

M2 has no a and is skipped. Draws are seeded (--seed), so a run's figures repeat.
"""

from __future__ import annotations

import argparse
import json
import math

import torch
import torch.nn.functional as F

from adgm.data import load_data
from adgm.models.base import Auxiliary
from adgm.train import load_trained_model


@torch.no_grad()
def auxiliary_use(model, x: torch.Tensor, y: torch.Tensor, n_samples: int, chunk: int) -> dict:
    """The module docstring's figures for test images x (N, D) with labels y (N,)."""
    sums = {"error": 0.0, "error_at_mean": 0.0, "error_other_a": 0.0, "mi": 0.0, "changed": 0.0}
    for start in range(0, len(x), chunk):
        xb, yb = x[start : start + chunk], y[start : start + chunk]
        aux = model.sample_auxiliary(xb, n_samples)  # value (S, B, A)
        probs = F.softmax(model.q_y_logits(xb, aux), dim=-1)  # (S, B, K)
        mean = probs.mean(0)  # (B, K)
        predicted = mean.argmax(-1)
        sums["error"] += float((predicted != yb).sum())
        at_mean = model.q_y_logits(xb, Auxiliary(aux.mu.unsqueeze(0), aux.mu, aux.logvar))
        sums["error_at_mean"] += float((at_mean[0].argmax(-1) != yb).sum())
        other = Auxiliary(aux.value.roll(1, dims=1), aux.mu.roll(1, 0), aux.logvar.roll(1, 0))
        other_mean = F.softmax(model.q_y_logits(xb, other), dim=-1).mean(0)
        sums["error_other_a"] += float((other_mean.argmax(-1) != yb).sum())
        entropy_of_mean = -(mean * mean.clamp_min(1e-30).log()).sum(-1)
        mean_entropy = -(probs * probs.clamp_min(1e-30).log()).sum(-1).mean(0)
        sums["mi"] += float((entropy_of_mean - mean_entropy).sum())
        sums["changed"] += float((probs.argmax(-1) != predicted).float().mean(0).sum())
    n = len(x)
    return {key: value / n for key, value in sums.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--points", type=int, default=10_000, help="test images (default all)")
    parser.add_argument("--samples", type=int, default=100, help="draws of a per image")
    parser.add_argument("--chunk", type=int, default=500, help="images per forward pass")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    for run_dir in args.run_dirs:
        config, model, epoch = load_trained_model(run_dir)
        if not model.stochastic_auxiliary:
            print(f"{run_dir}: {config.model.name} has no stochastic a; skipped")
            continue
        data = load_data(config.data, likelihood=config.model.likelihood)
        x, y = data.x_test[: args.points], data.y_test[: args.points]
        torch.manual_seed(args.seed)
        row = {
            "run": str(run_dir),
            "model": config.model.name,
            "epoch": epoch,
            "points": len(x),
            "samples": args.samples,
            **auxiliary_use(model, x, y, args.samples, args.chunk),
        }
        print(json.dumps(row) if args.json else format_row(row), flush=True)


def format_row(row: dict) -> str:
    return (
        f"{row['run']} ({row['model']}, epoch {row['epoch']}): error {100 * row['error']:.2f}%, "
        f"at the mean of a {100 * row['error_at_mean']:.2f}%, with another image's a "
        f"{100 * row['error_other_a']:.2f}%; I(y; a | x) {row['mi']:.4f} nats "
        f"(max {math.log(10):.2f}); a draw changes the label "
        f"{100 * row['changed']:.2f}% of the time"
    )


if __name__ == "__main__":
    main()
