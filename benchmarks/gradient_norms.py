"""How far the gradient clipping reaches: the gradient norms of a run's loss before clipping.

adgm clips as the authors' code does: the total norm of the gradient to c_n (5), then each
element to [-c_v, c_v] (1). For each run folder (its latest checkpoint, or with --init the
freshly initialised model of the same settings), on the first --steps training batches of an
epoch (default 12; a whole epoch for a run with the prior, below) drawn as training draws them
(batches and Monte Carlo draws seeded by --seed), the script prints the median, least and
largest total norm, the share of steps whose norm exceeds c_n (where the constraint rescales
the step) and the share of gradient elements still beyond c_v after it (where the element-wise
clip acts too). Per network (the first part of the parameters' names: classifier,
classifier_out, z_encoder, ...) it prints the median over the steps of the norm of the bound's
own gradient on that network's trained parameters (the prior on the weights left out), and, for
the unlabelled images of the steps, how sure the classifier is: with p_max the largest class
probability of E_q(a|x)[q(y|a,x)] (10 draws of a), the median of 1 - p_max and the share of
images with 1 - p_max above 1e-5. A classifier whose bound gradient has all but vanished and
that gives every image one class with p_max above 1 - 1e-5 is saturated: the data no longer
move it.

Once the norm constraint acts at every step, the step Adam sees is g c_n / |g| whatever the
scale of the loss: a loss multiplied by a constant (the authors' paper-era code averages its
bound over batches of 200 rows, half of adgm's sum of two means) gives the same updates.

For a run trained with the prior on the weights (--weight-prior: W / N added to the gradient of
each weight matrix trained, N the number of unlabelled images), it also prints how much of
Adam's step the prior makes, weight by weight. With c_t = min(1, c_n / |g_t|) the constraint's
factor at step t and g_t the whole gradient (bound and prior), Adam's first moment holds about
mean_t(c_t) W / N of the prior and its second about mean_t(c_t^2 g_t^2), so the prior's share of
a weight's step is

    r = mean_t(c_t) |W| / N / sqrt(mean_t(c_t^2 g_t^2))   (about 1: the step is the prior's alone)

over the --steps batches (moments as plain means, not Adam's running ones): its median, its
99th percentile, and the share of weights where r exceeds 0.1 and 0.5. Adam's second moment
averages g^2 over about 1 / (1 - beta2) = 1,000 steps, more than an epoch of 600, so for a run
with the prior the batches default to a whole epoch: fewer understate the denominator wherever
the first batches are unlike the rest, as in the authors' class-sorted order, whose first
batches hold one class only (its first 12 gave the classifier a median r of 0.99 at epoch 300
where the whole epoch gives 1e-3). Where the bound's gradient vanishes (inputs that are always
0, ReLU units that never fire) r is about 1 and the prior pulls the weight to 0 by about lr a
step; so it also counts, per network, the hidden units whose incoming weights are all within
1e-3 of 0 ("buried": such a unit no longer reads its input). Both figures that say what the
prior did to the weights, the buried units and, per network, the norm of the weight matrices
the prior covers (sqrt of the sum of their squares), are printed for every run, so that a run
with the prior can be set beside the same run without it.

    python benchmarks/gradient_norms.py ../runs/adgm-1mc-bf16 ../runs/m2-1mc-bf16
    python benchmarks/gradient_norms.py ../runs/adgm-authors-2015-1mc-bf16 --init
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterable

import torch

from adgm.data import load_data
from adgm.data.batches import epoch_batches
from adgm.distributed import ProcessGroup
from adgm.errors import errors_in_one_line
from adgm.models import build_model
from adgm.nn import MultiInputMLP
from adgm.objectives import default_alpha, weights_under_prior
from adgm.optimisation import OptimisationStep
from adgm.train import load_trained_model

DEFAULT_STEPS = 12  # batches, for the norms; the prior's share needs a whole epoch (docstring)


def gradient_norms(run: str, *, init: bool, steps: int | None, seed: int) -> dict:
    """Total gradient norms and the share of elements beyond the value clip, over the first
    `steps` batches of an epoch (None: 12, or the whole epoch for a run with the prior).

    The loss, the parameters trained and the autocast are the training step's own
    (``OptimisationStep``); only its clipped update is left out.
    """
    config, model, epoch = load_trained_model(run)
    if init:
        torch.manual_seed(config.train.seed)
        model, epoch = build_model(config.model), 0
    model.train()
    train = config.train
    if steps is None and not train.weight_prior:
        steps = DEFAULT_STEPS
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
    prior_weights = weights_under_prior(model, train.weight_prior_on) if train.weight_prior else {}
    networks = _trained_by_network(model)
    norms, beyond, factors, bound_norms, unlabelled = [], [], [], [], []
    squares = None  # with the prior: sum_t c_t^2 g_t^2 of its weights, element by element
    loss_module = step.loss_module  # the ObjectiveModule itself (one process)
    torch.manual_seed(seed)  # the Monte Carlo draws
    for x_l, y_l, x_u in batches:
        model.zero_grad()
        with step.autocast():
            bound = loss_module.bound(x_l, y_l, x_u).loss
            penalty = loss_module.prior_penalty() if train.weight_prior else None
        bound.backward()  # the bound's own gradient first, read per network
        bound_norms.append(_grad_norms_by_network(networks))
        if penalty is not None:
            penalty.backward()  # then the prior's, accumulated: the step's whole gradient
        unlabelled.append(x_u)
        flat = torch.cat([p.grad.flatten() for p in step.parameters])
        norm = float(flat.norm())
        norms.append(norm)
        factor = min(1.0, max_norm / norm)
        factors.append(factor)
        constrained = flat * factor
        beyond.append(float((constrained.abs() > max_value).double().mean()))
        if prior_weights:
            grads = torch.cat([w.grad.double().flatten() for w in prior_weights.values()])
            square = (factor * grads).pow(2)
            squares = square if squares is None else squares + square
    figures = {
        "epoch": epoch,
        "steps": len(norms),
        "median": statistics.median(norms),
        "least": min(norms),
        "largest": max(norms),
        "constrained": sum(n > max_norm for n in norms) / len(norms),
        "beyond": statistics.mean(beyond),
        "max_norm": train.clip_grad_norm,
        "bound_by_network": {
            name: statistics.median(n[name] for n in bound_norms) for name in networks
        },
        "unsure": unsure_share(model, torch.cat(unlabelled)),
        "prior_share": None,
        "buried": buried_units(model),
        "weight_norms": weight_norms(model),
    }
    if train.weight_prior:
        figures["prior_share"] = prior_share(prior_weights, factors, squares, n_unlabelled)
    return figures


def _by_network(named: Iterable[tuple[str, torch.Tensor]]) -> dict[str, list[torch.Tensor]]:
    """Tensors named after parameters, grouped by network (the first part of their names:
    classifier, z_encoder, decoder_out, ...), in order."""
    networks: dict[str, list[torch.Tensor]] = {}
    for name, tensor in named:
        networks.setdefault(name.split(".")[0], []).append(tensor)
    return networks


def _trained_by_network(model: torch.nn.Module) -> dict[str, list[torch.Tensor]]:
    """The trained parameters, grouped by network."""
    return _by_network((n, p) for n, p in model.named_parameters() if p.requires_grad)


def _grad_norms_by_network(networks: dict[str, list[torch.Tensor]]) -> dict[str, float]:
    """Per network, the norm of its trained parameters' .grad (float64)."""
    return {
        name: sum(float(p.grad.double().pow(2).sum()) for p in params if p.grad is not None) ** 0.5
        for name, params in networks.items()
    }


def unsure_share(model, x: torch.Tensor, samples: int = 10) -> dict[str, float]:
    """How sure the classifier is of the images x (B, D): with p_max the largest class
    probability of E_q(a|x)[q(y|a,x)] (`samples` draws of a), the median of 1 - p_max and
    the share of images with 1 - p_max above 1e-5 (not saturated). 1 - p_max is summed from
    the other classes' probabilities, which keep their precision where p_max rounds to 1."""
    probs = torch.cat(
        [model.predict_proba(chunk, n_samples=samples) for chunk in x.split(1000)]
    ).double()  # (B, K)
    others = probs.scatter(1, probs.argmax(dim=1, keepdim=True), 0.0)
    unsure = others.sum(dim=1)
    return {
        "median": float(unsure.median()),
        "above_1e-5": float((unsure > 1e-5).double().mean()),
    }


def buried_units(model: torch.nn.Module, tol: float = 1e-3) -> dict[str, tuple[int, int]]:
    """Per network (MultiInputMLP, by its name in the model): (hidden units whose incoming
    weights are all within tol of 0, hidden units), over all its hidden layers."""
    counts = {}
    for name, module in model.named_modules():
        if not isinstance(module, MultiInputMLP):
            continue
        first = torch.cat([m.weight.detach() for m in module.input_maps], dim=1)  # (H1, sum D)
        incoming = [first, *(layer.weight.detach() for layer in module.layers)]
        buried = sum(int((w.abs().amax(dim=1) <= tol).sum()) for w in incoming)
        counts[name] = (buried, sum(w.shape[0] for w in incoming))
    return counts


def weight_norms(model: torch.nn.Module) -> dict[str, float]:
    """Per network (the first part of the parameters' names), sqrt(sum ||W||^2) over its trained
    weight matrices (weights_under_prior over every network, whatever the run's prior covered)."""
    return {
        network: sum(float(w.detach().double().pow(2).sum()) for w in weights) ** 0.5
        for network, weights in _by_network(weights_under_prior(model).items()).items()
    }


def prior_share(
    weights: dict[str, torch.Tensor], factors: list[float], squares: torch.Tensor, n: int
) -> dict:
    """r = mean_t(c_t) |W| / n / sqrt(mean_t(c_t^2 g_t^2)) per weight (module docstring):
    its median, 99th percentile and the shares of weights with r > 0.1 and r > 0.5; and per
    network (the first part of the parameters' names: classifier, z_encoder, decoder_out, ...)
    its median and share above 0.5.

    squares: sum over the T steps of c_t^2 g_t^2, float64, one element per weight, in the
    order of `weights`.
    """
    steps = len(factors)
    magnitude = torch.cat([w.detach().double().flatten() for w in weights.values()]).abs()
    moved_by_prior = statistics.mean(factors) * magnitude / n
    share = moved_by_prior / (squares / steps).sqrt().clamp_min(1e-300)
    by_network = _by_network(zip(weights, share.split([w.numel() for w in weights.values()])))
    return {
        **_summary(share),
        "weights": share.numel(),
        "by_network": {
            network: {k: v for k, v in _summary(torch.cat(parts)).items() if k != "p99"}
            for network, parts in by_network.items()
        },
    }


def _summary(share: torch.Tensor) -> dict[str, float]:
    quantiles = torch.quantile(share.float(), torch.tensor([0.5, 0.99]))
    return {
        "median": float(quantiles[0]),
        "p99": float(quantiles[1]),
        "above_0.1": float((share > 0.1).double().mean()),
        "above_0.5": float((share > 0.5).double().mean()),
    }


@errors_in_one_line("gradient_norms")
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders with checkpoints")
    parser.add_argument("--init", action="store_true", help="the initial model of each run")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"batches per run (default {DEFAULT_STEPS}; a whole epoch with the weight prior)",
    )
    parser.add_argument("--seed", type=int, default=123, help="seed of the batches")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for run in args.runs:
        r = gradient_norms(run, init=args.init, steps=args.steps, seed=args.seed)
        print(
            f"{run} at epoch {r['epoch']}, {r['steps']} batches: gradient norm median "
            f"{r['median']:.1f} (least {r['least']:.1f}, largest {r['largest']:.1f}); steps "
            f"rescaled to norm {r['max_norm']}: {r['constrained']:.0%}; elements beyond the "
            f"value clip after it: {r['beyond']:.1e}"
        )
        bound = ", ".join(f"{name} {n:.1e}" for name, n in r["bound_by_network"].items())
        print(f"  by network, the norm of the bound's gradient (median over the steps): {bound}")
        unsure = r["unsure"]
        print(
            f"  the unlabelled images of the steps: 1 - largest class probability, median "
            f"{unsure['median']:.1e}, above 1e-5 for {unsure['above_1e-5']:.1%} of them"
        )
        share = r["prior_share"]
        if share is not None:
            print(
                f"  prior on the weights, its share of each weight's step: median "
                f"{share['median']:.1e}, 99th percentile {share['p99']:.1e}; above 0.1 for "
                f"{share['above_0.1']:.2%} and above 0.5 for {share['above_0.5']:.2%} of the "
                f"{share['weights']:,} weights"
            )
            networks = ", ".join(
                f"{name} {s['median']:.1e} ({s['above_0.5']:.0%})"
                for name, s in share["by_network"].items()
            )
            print(f"  by network, the median (and the share above 0.5): {networks}")
        norms = ", ".join(f"{name} {n:.1f}" for name, n in r["weight_norms"].items())
        print(f"  by network, the norm of the trained weight matrices: {norms}")
        buried = ", ".join(f"{name} {n} of {total}" for name, (n, total) in r["buried"].items())
        print(f"  hidden units with every incoming weight within 1e-3 of 0: {buried}")


if __name__ == "__main__":
    main()
