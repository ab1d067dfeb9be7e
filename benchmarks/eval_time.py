"""Time the test error of a paper-sized model: 10,000 images, 100 samples of a (the paper's).

Prints seconds per evaluation (median of --repeats after one warm-up) for M2, the ADGM with a
deterministic auxiliary unit and the ADGM, on random binary images (the cost does not depend on
the pixels or the weights).

    python benchmarks/eval_time.py                 # CPU
    python benchmarks/eval_time.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from adgm.config import ModelConfig
from adgm.devices import synchronise
from adgm.evaluate import error_rate
from adgm.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    x = torch.bernoulli(torch.full((args.images, 784), 0.3, device=device))
    y = torch.arange(args.images, device=device) % 10
    for name in ("m2", "adgm-det", "adgm"):
        torch.manual_seed(0)
        model = build_model(ModelConfig(name=name)).to(device).eval()
        error_rate(model, x, y, n_samples=args.samples)  # warm-up
        times = []
        for _ in range(args.repeats):
            synchronise(device)
            start = time.perf_counter()
            error_rate(model, x, y, n_samples=args.samples)
            synchronise(device)
            times.append(time.perf_counter() - start)
        print(
            f"{name:>8}: {statistics.median(times):6.2f} s for {args.images} images, "
            f"{args.samples} samples of a, on {device} ({torch.get_num_threads()} threads)"
        )


if __name__ == "__main__":
    main()
