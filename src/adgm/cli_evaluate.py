"""``adgm evaluate`` and ``adgm sample``: what one trained run's checkpoint does on test images
(error, log-likelihood) and what it generates (Figure 2b)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from adgm.config import TEST_INPUTS
from adgm.errors import AdgmError


def add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="test error (and log-likelihood) of a trained run"
    )
    evaluate.add_argument("run_dir", type=Path)
    evaluate.add_argument(
        "--samples", type=int, default=None, help="samples of a (default: the run's eval_samples)"
    )
    evaluate.add_argument(
        "--log-likelihood",
        action="store_true",
        help="also the importance-weighted test log-likelihood log p(x) (Burda et al. 2016)",
    )
    evaluate.add_argument(
        "--iw-samples", type=int, default=5000, help="importance samples per test image"
    )
    evaluate.add_argument(
        "--points", type=int, default=None, help="only the first N test images (default: all)"
    )
    evaluate.add_argument(
        "--test-inputs",
        choices=TEST_INPUTS,
        default=None,
        help="binary or grey-level test images (default: the run's setting)",
    )
    evaluate.add_argument(
        "--epoch",
        type=int,
        default=None,
        help="the checkpoint of the end of this epoch, one the run still keeps (default: latest)",
    )
    evaluate.add_argument("--device", default="cpu")
    evaluate.set_defaults(handler=run_evaluate)


def add_sample(commands) -> None:
    sample = commands.add_parser("sample", help="Figure 2b: samples of p(x|z,y) per class")
    sample.add_argument("run_dir", type=Path)
    sample.add_argument("--per-class", type=int, default=10, help="images per class (columns)")
    sample.add_argument("--seed", type=int, default=0, help="seed of z ~ N(0, I)")
    sample.set_defaults(handler=run_sample)


def run_evaluate(args: argparse.Namespace, argv: list[str]) -> int:
    from adgm.data import load_data
    from adgm.evaluate import error_rate
    from adgm.likelihood import refuse_grey_targets
    from adgm.train import load_trained_model

    config, model, epoch = load_trained_model(args.run_dir, args.device, epoch=args.epoch)
    data_config = config.data
    if args.test_inputs is not None:
        data_config = dataclasses.replace(data_config, test_inputs=args.test_inputs)
    data = load_data(data_config, likelihood=config.model.likelihood, device=args.device)
    if args.log_likelihood:
        refuse_grey_targets(
            data.likelihood, data_config.test_inputs, "--log-likelihood", "add --test-inputs binary"
        )
    if data.x_test is None:
        raise AdgmError(f"{config.data.dataset} has no test set (give one with --test-data)")
    for name in ("samples", "iw_samples", "points"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise AdgmError(f"--{name.replace('_', '-')} must be positive, got {value}")
    x_test, y_test = data.x_test[: args.points], data.y_test[: args.points]
    samples = args.samples or config.train.eval_samples
    result = {"epoch": epoch, "points": len(x_test), "samples": samples}
    result["test_inputs"] = data_config.test_inputs
    result["test_error"] = error_rate(model, x_test, y_test, n_samples=samples)
    if args.log_likelihood:
        result.update(_test_log_likelihood(model, x_test, args.iw_samples))
    print(json.dumps(result))
    return 0


def _test_log_likelihood(model, x_test, iw_samples: int) -> dict[str, float]:
    """Mean and standard error over the test images of the importance-weighted log p(x)."""
    import math

    from tqdm.auto import tqdm

    from adgm.likelihood import log_likelihood

    with tqdm(total=len(x_test), desc=f"log p(x), {iw_samples} samples", unit="image") as bar:
        per_image = log_likelihood(model, x_test, n_samples=iw_samples, progress=bar.update)
    spread = per_image.std().item() / math.sqrt(len(per_image)) if len(per_image) > 1 else 0.0
    return {
        "iw_samples": iw_samples,
        "test_log_likelihood": per_image.mean().item(),
        "test_log_likelihood_standard_error": spread,
    }


def run_sample(args: argparse.Namespace, argv: list[str]) -> int:
    from adgm.plots import plot_samples
    from adgm.train import load_trained_model

    _, model, epoch = load_trained_model(args.run_dir)
    path = plot_samples(
        model, args.run_dir / "samples.png", per_class=args.per_class, seed=args.seed
    )
    print(f"wrote {path} (epoch {epoch})")
    return 0
