"""How far the gradient clipping reaches: the gradient norms of a run's loss before clipping.

adgm clips as the authors' code does: the total norm of the gradient to c_n (5), then each
element to [-c_v, c_v] (1). For each run folder (its latest checkpoint, or with --init the
freshly initialised model of the same settings), on --steps training batches drawn as training
draws them (batches and Monte Carlo draws seeded by --seed), the script prints the median,
least and largest total norm, the share of steps whose norm exceeds c_n (where the constraint
rescales the step) and the share of gradient elements still beyond c_v after it (where the
element-wise clip acts too).

Once the norm constraint acts at every step, the step Adam sees is g c_n / |g| whatever the
scale of the loss: a loss multiplied by a constant (the authors' paper-era code averages its
bound over batches of 200 rows, half of adgm's sum of two means) gives the same updates.

    python benchmarks/gradient_norms.py ../runs/adgm-1mc-bf16 ../runs/m2-1mc-bf16
    python benchmarks/gradient_norms.py ../runs/adgm-authors-2015-1mc-bf16 --init
"""

from __future__ import annotations

import argparse
import statistics

import torch

from adgm.data import load_data
from adgm.data.batches import epoch_batches
from adgm.distributed import ProcessGroup
from adgm.errors import errors_in_one_line
from adgm.models import build_model
from adgm.objectives import default_alpha
from adgm.optimisation import OptimisationStep
from adgm.train import load_trained_model


def gradient_norms(run: str, *, init: bool, steps: int, seed: int) -> dict:
    """Total gradient norms and the share of elements beyond the value clip, over `steps`.

    The loss, the parameters trained and the autocast are the training step's own
    (``OptimisationStep``); only its clipped update is left out.
    """
    config, model, epoch = load_trained_model(run)
    if init:
        torch.manual_seed(config.train.seed)
        model, epoch = build_model(config.model), 0
    model.train()
    train = config.train
    data = load_data(config.data)
    n_unlabelled = len(data.x_unlabelled)
    step = OptimisationStep(
        model,
        train,
        alpha=train.alpha if train.alpha is not None else default_alpha(n_unlabelled),
        n_unlabelled=n_unlabelled,
        group=ProcessGroup(),
        device=torch.device("cpu"),
    )
    batches = epoch_batches(
        data,
        torch.Generator().manual_seed(seed),
        labelled_batch=config.data.labelled_batch,
        unlabelled_batch=config.data.unlabelled_batch,
        max_steps=steps,
    )
    max_norm = train.clip_grad_norm or float("inf")
    max_value = train.clip_grad_value or float("inf")
    norms, beyond = [], []
    torch.manual_seed(seed)  # the Monte Carlo draws
    for x_l, y_l, x_u in batches:
        model.zero_grad()
        with step.autocast():
            terms = step.loss_module(x_l, y_l, x_u)
        terms.loss.backward()
        flat = torch.cat([p.grad.flatten() for p in step.parameters])
        norm = float(flat.norm())
        norms.append(norm)
        constrained = flat * min(1.0, max_norm / norm)
        beyond.append(float((constrained.abs() > max_value).double().mean()))
    return {
        "epoch": epoch,
        "median": statistics.median(norms),
        "least": min(norms),
        "largest": max(norms),
        "constrained": sum(n > max_norm for n in norms) / len(norms),
        "beyond": statistics.mean(beyond),
        "max_norm": train.clip_grad_norm,
    }


@errors_in_one_line("gradient_norms")
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders with checkpoints")
    parser.add_argument("--init", action="store_true", help="the initial model of each run")
    parser.add_argument("--steps", type=int, default=12, help="batches per run")
    parser.add_argument("--seed", type=int, default=123, help="seed of the batches")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for run in args.runs:
        r = gradient_norms(run, init=args.init, steps=args.steps, seed=args.seed)
        print(
            f"{run} at epoch {r['epoch']}: gradient norm median {r['median']:.1f} "
            f"(least {r['least']:.1f}, largest {r['largest']:.1f}); steps rescaled to norm "
            f"{r['max_norm']}: {r['constrained']:.0%}; elements beyond the value clip after "
            f"it: {r['beyond']:.1e}"
        )


if __name__ == "__main__":
    main()
