"""Time one training step of every model (1 and 10 MC, fp32 and bf16) against its FLOP floor.

For each case: ms per step (median of --repeats timed steps after --warmup), seconds per epoch
(600 steps), the step's FLOPs counted from the layer sizes (adgm.flops), the achieved GFLOP/s,
the device's dense matmul GFLOP/s in the same dtype (timed in this run), and the ratio
step time / (FLOPs / matmul rate): 1.0 would be a step as fast as its matrix products alone.

    python benchmarks/step_time.py                 # CPU, every case
    python benchmarks/step_time.py --device cuda --json

The process is set up as ``adgm train`` sets it up (adgm.cpu): denormals flushed and, on a CPU,
freed memory kept for the next step (--default-malloc measures without the latter).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch

from adgm.config import ModelConfig
from adgm.cpu import flush_denormals, keep_freed_memory
from adgm.devices import synchronise
from adgm.flops import step_flops
from adgm.models import build_model
from adgm.objectives import objective

CASES = [("m2", 1), ("adgm", 1), ("adgm", 10), ("adgm-gen", 1), ("sdgm", 1), ("sdgm", 10)]
DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def autocast(device: torch.device, dtype_name: str):
    if DTYPES[dtype_name] is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[dtype_name])


def matmul_gflops(device: torch.device, dtype_name: str, repeats: int) -> float:
    """Dense (2000 x 500) @ (500 x 784) products, the step's typical shape, in GFLOP/s."""
    dtype = DTYPES[dtype_name] or torch.float32
    a = torch.randn(2000, 500, device=device, dtype=dtype)
    b = torch.randn(500, 784, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        synchronise(device)
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        synchronise(device)
        times.append((time.perf_counter() - start) / 10)
    return 2 * 2000 * 500 * 784 / statistics.median(times) / 1e9


def make_step(name: str, n_samples: int, dtype_name: str, device: torch.device):
    """One Adam step on the paper-sized model and a random binary batch (100 + 100 images)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name)).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-4, fused=device.type in ("cpu", "cuda"))
    x_l = torch.bernoulli(torch.full((100, 784), 0.3, device=device))
    y_l = torch.arange(100, device=device) % 10
    x_u = torch.bernoulli(torch.full((100, 784), 0.3, device=device))

    def one_step():
        with autocast(device, dtype_name):
            loss = objective(model, x_l, y_l, x_u, alpha=600.0, n_samples=n_samples).loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    return one_step


def step_ms(name: str, n_samples: int, dtype_name: str, device: torch.device, args) -> float:
    """Median wall time of one Adam step on the paper-sized model and batch, in ms."""
    one_step = make_step(name, n_samples, dtype_name, device)
    for _ in range(args.warmup):
        one_step()
    times = []
    for _ in range(args.repeats):
        synchronise(device)
        start = time.perf_counter()
        one_step()
        synchronise(device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        choices=sorted({name for name, _ in CASES}),
        help="only these models (default: every case)",
    )
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="leave glibc's malloc as it is (adgm train keeps freed memory: see adgm.cpu)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    flush_denormals()  # as adgm train does
    if device.type == "cpu" and not args.default_malloc:
        keep_freed_memory()
    rows = []
    for dtype_name in args.dtypes:
        rate = matmul_gflops(device, dtype_name, args.repeats)
        for name, n_samples in CASES:
            if args.models and name not in args.models:
                continue
            ms = step_ms(name, n_samples, dtype_name, device, args)
            flops = step_flops(ModelConfig(name=name), 100, 100, n_samples)
            rows.append(
                {
                    "model": name,
                    "mc_samples": n_samples,
                    "dtype": dtype_name,
                    "device": str(device),
                    "threads": torch.get_num_threads(),
                    "ms_per_step": ms,
                    "s_per_epoch": 600 * ms / 1000,
                    "gflop_per_step": flops / 1e9,
                    "achieved_gflops": flops / 1e9 / (ms / 1000),
                    "matmul_gflops": rate,
                    "ratio_to_floor": (ms / 1000) / (flops / 1e9 / rate),
                }
            )
            print(json.dumps(rows[-1]) if args.json else format_row(rows[-1]), flush=True)
    summary = next(
        (r for r in rows if r["model"] == "adgm" and r["mc_samples"] == 1 and r["dtype"] == "fp32"),
        rows[0],
    )
    print(
        f"summary: {summary['model']} {summary['mc_samples']} MC {summary['dtype']} on "
        f"{summary['device']}: "
        f"{summary['ms_per_step']:.1f} ms/step, {summary['s_per_epoch']:.1f} s/epoch, "
        f"{summary['ratio_to_floor']:.2f}x its FLOP floor"
    )


def format_row(row: dict) -> str:
    return (
        f"{row['model']:>8} {row['mc_samples']:>2} MC {row['dtype']}: "
        f"{row['ms_per_step']:8.1f} ms/step {row['s_per_epoch']:7.1f} s/epoch "
        f"{row['gflop_per_step']:6.2f} GFLOP {row['achieved_gflops']:7.1f} GFLOP/s "
        f"(matmul {row['matmul_gflops']:.1f}) ratio {row['ratio_to_floor']:.2f}"
    )


if __name__ == "__main__":
    main()
