"""Training steps replayed from a CUDA graph against eager ones: time per step and agreement.

For each case (model, Monte Carlo samples, precision), two copies of the paper-sized model start
from the same weights and take the same --steps steps on the same random binary batches (100 +
100 images, drawn before timing) and the same noise seed: one with eager steps, one through
``--cuda-graphs`` (adgm.cuda_graph_step: 3 eager warm-up steps, a capture, then replays).
Prints per case the median ms per step of each (steps 11 to the end, timed in blocks of 10 with
a device sync around each block), the speed-up, how many steps were replays, the largest
difference between the two runs' losses (relative) and weights (absolute) after the last step,
the capture's failure if it failed, and the warnings each copy raised while it trained (torch
reports, e.g., a gradient accumulator on another CUDA stream). Before them, on a GPU, whether a
recorded draw of noise gives new numbers at each replay.

    python benchmarks/cuda_graph_check.py --json                  # on a GPU
    python benchmarks/cuda_graph_check.py --device cpu --steps 20 # a CPU: eager against eager,
                                                                  # a dry run of this script

The two runs are not expected to agree bitwise: a replay launches the same kernels, but a GPU
run is not bitwise repeatable to begin with (README, On a GPU); the check is that they agree to
rounding at first and stay close.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import torch

from adgm.config import ModelConfig, TrainConfig
from adgm.devices import synchronise
from adgm.distributed import ProcessGroup
from adgm.models import build_model
from adgm.optimisation import OptimisationStep

CASES = ["adgm:1", "adgm:10", "sdgm:1", "sdgm:10"]
BLOCK = 10  # steps timed together between two device syncs


def make_batches(n_steps: int, device: torch.device) -> list[tuple[torch.Tensor, ...]]:
    """n_steps batches: x_l (100, 784) binary, y_l (100,) ten of each class, x_u (100, 784)."""
    generator = torch.Generator(device=device).manual_seed(7)
    probabilities = torch.rand(784, generator=generator, device=device)
    y_l = torch.arange(100, device=device) % 10
    out = []
    for _ in range(n_steps):
        x = torch.bernoulli(probabilities.expand(200, 784), generator=generator)
        out.append((x[:100], y_l, x[100:]))
    return out


def run(case: str, precision: str, graphs: bool, batches, device: torch.device) -> dict:
    """Train one copy for len(batches) steps; its losses, final weights, timings and replays."""
    name, n_samples = case.split(":")
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name)).to(device)
    train = TrainConfig(
        mc_samples=int(n_samples), precision=precision, cuda_graphs=graphs, device=str(device)
    )
    step = OptimisationStep(
        model, train, alpha=600.0, n_unlabelled=60_000, group=ProcessGroup(), device=device
    )
    torch.manual_seed(1)  # the Monte Carlo noise
    losses, block_ms = [], []
    synchronise(device)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # torch's warnings, e.g. of streams
        warnings.simplefilter("always")
        for number, (x_l, y_l, x_u) in enumerate(batches, start=1):
            losses.append(step(x_l, y_l, x_u, number=number).loss.detach().clone())
            if number % BLOCK == 0:
                synchronise(device)
                now = time.perf_counter()
                if number > BLOCK:  # the first block holds the warm-up and the capture
                    block_ms.append(1000 * (now - start) / BLOCK)
                start = now
    step.raise_if_diverged(lambda k: f"{case} {precision}: step {k} diverged")
    graphed = step.graphed
    return {
        "losses": torch.stack(losses).double().cpu(),
        "weights": [p.detach().clone() for p in step.parameters],
        "ms_per_step": statistics.median(block_ms) if block_ms else float("nan"),
        "replays": graphed.replays if graphed is not None else 0,
        "failed": graphed.failed if graphed is not None else None,
        "warnings": sorted({str(w.message).splitlines()[0][:160] for w in caught}),
    }


def fresh_noise_per_replay(device: torch.device) -> bool:
    """Whether a recorded draw from the default generator gives new numbers at each replay, as
    an eager draw does (the Monte Carlo noise of every replayed step depends on it)."""
    out = torch.zeros(3, 16, device=device)
    row = torch.zeros((), dtype=torch.long, device=device)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out.index_copy_(0, row.view(1), torch.randn(1, 16, device=device))
    for i in range(3):
        row.fill_(i)
        graph.replay()
    torch.cuda.synchronize(device)
    return bool((out[0] != out[1]).all() and (out[1] != out[2]).all() and (out[0] != 0).all())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=200, help="steps per run (default 200)")
    parser.add_argument("--cases", nargs="+", default=CASES, help="MODEL:MC_SAMPLES")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    args = parser.parse_args()
    device = torch.device(args.device)
    graphs = device.type == "cuda"  # a CPU: eager against eager (a dry run of the script)
    batches = make_batches(args.steps, device)
    if graphs:
        fresh = fresh_noise_per_replay(device)
        row = {"check": "fresh noise at each replay", "device": str(device), "ok": fresh}
        print(json.dumps(row) if args.json else f"fresh noise at each replay: {fresh}")
    for case in args.cases:
        for precision in args.precisions:
            eager = run(case, precision, False, batches, device)
            replayed = run(case, precision, graphs, batches, device)
            loss_gap = (replayed["losses"] - eager["losses"]).abs() / eager["losses"].abs()
            weight_gap = max(
                float((a - b).abs().max())
                for a, b in zip(eager["weights"], replayed["weights"], strict=True)
            )
            row = {
                "case": case,
                "precision": precision,
                "device": str(device),
                "graphs": graphs,
                "steps": args.steps,
                "eager_ms_per_step": eager["ms_per_step"],
                "graphed_ms_per_step": replayed["ms_per_step"],
                "speedup": eager["ms_per_step"] / replayed["ms_per_step"],
                "replays": replayed["replays"],
                "first_loss_gap": float(loss_gap[:10].max()),
                "max_loss_gap": float(loss_gap.max()),
                "last_loss": float(eager["losses"][-1]),
                "max_weight_gap": weight_gap,
                "capture_failed": replayed["failed"],
                "warnings": replayed["warnings"],  # raised while the replayed copy trained
                "eager_warnings": eager["warnings"],
            }
            print(json.dumps(row) if args.json else format_row(row), flush=True)


def format_row(row: dict) -> str:
    failed = f"  CAPTURE FAILED: {row['capture_failed']}" if row["capture_failed"] else ""
    return (
        f"{row['case']:>8} {row['precision']}: eager {row['eager_ms_per_step']:.2f} ms/step, "
        f"graphed {row['graphed_ms_per_step']:.2f} ({row['speedup']:.2f}x, "
        f"{row['replays']} replays); loss gap first 10 steps {row['first_loss_gap']:.1e}, "
        f"all {row['max_loss_gap']:.1e}; weight gap {row['max_weight_gap']:.1e}{failed}"
        + "".join(f"\n  warning (graphed): {text}" for text in row["warnings"])
    )


if __name__ == "__main__":
    main()
