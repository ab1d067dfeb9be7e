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
    a's cost       (adgm-gen and SDGM, after the figures above, from further draws) what a
                   costs in the unlabelled bound, in nats per image:
                   E[log q(a|x) - log p(a|...)] with a ~ q(a|x), z ~ q(z|a,y,x) and y weighted
                   by q(y|a,x); about 0 when p(a|...) can copy q(a|x), whatever a holds
    z's share      (adgm-gen and SDGM) how much a moves the posterior of z: with y the image's
                   label and a_s ~ q(a|x), q(z|y,x) = mean_s q(z|a_s,y,x) is a mixture whose
                   variance per unit is E_s[sigma^2] + Var_s[mu] (the law of total variance);
                   the share Var_s[mu] / (E_s[sigma^2] + Var_s[mu]), each term averaged over the
                   images, then over the active units of z (mean KL of q(z|a,y,x) to N(0, 1)
                   above 0.01); 0 when q(z|a,y,x) ignores a, near 1 when a decides where z is

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
from adgm.distributions import kl_per_unit, log_normal_diag
from adgm.errors import errors_in_one_line
from adgm.models.base import Auxiliary
from adgm.nn import GaussianLayer
from adgm.pairs import pair_index
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


@torch.no_grad()
def auxiliary_cost(model, x: torch.Tensor, n_samples: int, chunk: int) -> float:
    """E[log q(a|x) - log p(a|...)] per image (see the module docstring), for x (N, D)."""
    total = 0.0
    k = model.n_classes
    for start in range(0, len(x), chunk):
        xb = x[start : start + chunk]
        rows, labels = pair_index(xb.new_zeros(0, dtype=torch.long), len(xb), k)  # every label
        mu_a, logvar_a = model.q_a(xb)
        a = GaussianLayer.sample(mu_a, logvar_a, n_samples)  # (S, B, A)
        mu_z, logvar_z = model.q_z_given_auxiliary(xb, a, rows, labels)  # (S, B K, Z)
        z = GaussianLayer.reparameterise(mu_z, logvar_z, torch.randn_like(mu_z))
        log_p_a = model.log_p_auxiliary(a.index_select(1, rows), xb, z, rows, labels)
        log_q_a = log_normal_diag(a, mu_a, logvar_a)  # (S, B)
        weights = F.softmax(model.q_y_logits(xb, Auxiliary(a, mu_a, logvar_a)), dim=-1)
        cost = log_q_a.unsqueeze(-1) - log_p_a.unflatten(1, (len(xb), k))  # (S, B, K)
        total += float((weights * cost).sum(-1).mean(0).sum())
    return total / len(x)


@torch.no_grad()
def z_share_of_a(model, x: torch.Tensor, y: torch.Tensor, n_samples: int, chunk: int) -> dict:
    """The module docstring's z's share for images x (N, D) with labels y (N,), and the number
    of active units of z it averages over."""
    n_z = model.config.z_dim
    between, within, kl = (torch.zeros(n_z, dtype=torch.float64) for _ in range(3))
    for start in range(0, len(x), chunk):
        xb, yb = x[start : start + chunk], y[start : start + chunk]
        a = model.sample_auxiliary(xb, n_samples).value  # (S, B, A)
        rows = torch.arange(len(xb), device=xb.device)
        mu, logvar = model.q_z_given_auxiliary(xb, a, rows, yb)  # (S, B, Z)
        between += mu.double().var(0).sum(0).cpu()
        within += logvar.double().exp().mean(0).sum(0).cpu()
        kl += kl_per_unit(mu, logvar).double().mean(0).sum(0).cpu()
    active = kl / len(x) > 0.01
    share = between / (between + within)
    return {
        "z_share": float(share[active].mean()) if active.any() else 0.0,
        "z_active": int(active.sum()),
    }


@errors_in_one_line("auxiliary_use")
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
            "max_mi": math.log(model.n_classes),  # I(y; a | x) is at most log K
            **auxiliary_use(model, x, y, args.samples, args.chunk),
        }
        if model.generative_auxiliary:
            row["a_cost"] = auxiliary_cost(model, x, min(args.samples, 10), args.chunk)
            row.update(z_share_of_a(model, x, y, min(args.samples, 10), args.chunk))
        print(json.dumps(row) if args.json else format_row(row), flush=True)


def format_row(row: dict) -> str:
    return (
        f"{row['run']} ({row['model']}, epoch {row['epoch']}): error {100 * row['error']:.2f}%, "
        f"at the mean of a {100 * row['error_at_mean']:.2f}%, with another image's a "
        f"{100 * row['error_other_a']:.2f}%; I(y; a | x) {row['mi']:.4f} nats "
        f"(max {row['max_mi']:.2f}); a draw changes the label "
        f"{100 * row['changed']:.2f}% of the time"
        + (f"; a costs {row['a_cost']:.2f} nats" if "a_cost" in row else "")
        + (
            f"; a moves {100 * row['z_share']:.1f}% of the variance of q(z|y,x) over the "
            f"{row['z_active']} active units of z"
            if "z_share" in row
            else ""
        )
    )


if __name__ == "__main__":
    main()
