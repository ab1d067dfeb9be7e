"""The paper's figures as PNG files; matplotlib is imported only when a figure is drawn.

- ``plot_curves``: Figure 2a, test error per epoch of several runs, log-scale error axis; the
  seeds of one setting may be drawn as their mean with their range shaded.
- ``plot_samples``: Figure 2b, one row per class y of Bernoulli means of p(x|z,y), z ~ N(0, I).
- ``plot_active_units``: Figure 3, the sorted KL per stochastic unit of a and z.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from adgm.checkpoint import atomic_write
from adgm.config import MODEL_TITLES, RunConfig
from adgm.errors import AdgmError
from adgm.models.base import GenerativeClassifier
from adgm.reference import (
    AUTHORS_LOG_LABEL,
    AUTHORS_LOG_TEST_ERROR,
    AUTHORS_LOG_TRAINING_IMAGE_ERROR,
)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise AdgmError("plots need matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    atomic_write(Path(path), lambda out: fig.savefig(out, format="png", dpi=120))
    _pyplot().close(fig)
    return Path(path)


def plain_log_scale(ax) -> None:
    """Put ax's y axis on a log scale whose ticks read as plain numbers (0.5, 2, 3, 10, 20), not
    as powers of ten; matplotlib's log formatter still chooses which ticks carry a label."""
    from matplotlib import ticker

    class PlainLogFormatter(ticker.LogFormatter):
        def __call__(self, x, pos=None):
            return f"{x:g}" if super().__call__(x, pos) else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PlainLogFormatter())
    ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


LEGEND_WIDTH = 60  # characters a legend line of plot_curves holds before it wraps
LEGEND_INSIDE_LINES = 8  # a legend of more lines (or one that hides a point) goes beside the axes
ORDER_NOTES = {"class-sorted": "class-sorted", "fixed": "fixed order"}


def run_label(config: RunConfig) -> str:
    """E.g. 'ADGM 10 MC', 'M2 1 MC', 'ADGM 1 MC, q(a|x) frozen' or 'SDGM 1 MC, bf16, seed 1':
    the model and its Monte Carlo samples, then each setting that departs from the paper's
    and changes what the run computes."""
    paper = RunConfig()
    data, model, train = config.data, config.model, config.train
    notes = [
        ("q(a|x) frozen", not train.train_auxiliary and model.name != "m2"),
        ("classifier q(y|x)", not model.classifier_reads_auxiliary),
        ("bf16", train.precision != paper.train.precision),
        (
            ORDER_NOTES.get(data.unlabelled_order, ""),
            data.unlabelled_order != paper.data.unlabelled_order,
        ),
        ("mean-log", train.classification_term != paper.train.classification_term),
        ("sample-mean label weights", train.label_weights != paper.train.label_weights),
        ("Monte Carlo KL", train.analytic_kl != paper.train.analytic_kl),
        (
            "weight prior"
            + ("" if train.weight_prior_on == "all" else f" on {train.weight_prior_on}"),
            train.weight_prior != paper.train.weight_prior,
        ),
        (
            f"{model.resolved_gaussian_init} Gaussian init",
            model.resolved_gaussian_init
            != replace(model, gaussian_init="auto").resolved_gaussian_init,
        ),
        (f"alpha {train.alpha or 0:g}", train.alpha is not None),
        ("grey test images", data.test_inputs != paper.data.test_inputs),
        (f"hidden {'x'.join(map(str, model.hidden))}", model.hidden != paper.model.hidden),
        (f"seed {train.seed}", train.seed != paper.train.seed),
        (f"label seed {data.label_seed}", data.label_seed != paper.data.label_seed),
    ]
    label = f"{MODEL_TITLES[model.name]} {train.mc_samples} MC"
    return ", ".join([label, *(text for text, departs in notes if departs)])


def errors_by_epoch(rows: list[dict]) -> dict[int, float]:
    """epoch -> test error (%) of the evaluated epochs of one run's metrics rows."""
    return {r["epoch"]: 100 * r["test_error"] for r in rows if "test_error" in r}


def training_image_errors(rows: list[dict]) -> dict[int, float]:
    """epoch -> error (%) on the run's own training images (``--eval-train-points``)."""
    return {r["epoch"]: 100 * r["train_error"] for r in rows if "train_error" in r}


def seed_band(
    tested: Sequence[dict[int, float]],
) -> tuple[list[int], list[float], list[float], list[float]]:
    """Several runs of one setting (each run's errors_by_epoch) as one curve: over the epochs
    every run evaluated, the epochs and the mean, lowest and highest test error (%) at each."""
    epochs = sorted(set.intersection(*(set(t) for t in tested)))
    at = [[t[e] for t in tested] for e in epochs]
    return epochs, [math.fsum(v) / len(v) for v in at], [min(v) for v in at], [max(v) for v in at]


def _beyond(tested: Sequence[dict[int, float]], last_shared: int) -> list[list[tuple[int, float]]]:
    """Each run's (epoch, test error %) points from the last epoch all runs share onwards, for
    the runs evaluated past it."""
    points = [sorted(errors.items()) for errors in tested]
    return [
        [(e, v) for e, v in run if e >= last_shared]
        for run in points
        if run and run[-1][0] > last_shared
    ]


def plot_curves(
    curves: Sequence[tuple[str, Sequence[list[dict]]]], path: Path, *, reference: bool = False
) -> Path:
    """Figure 2a: test error (%) against epoch, one line per (label, runs) curve.

    A curve of one run is its test errors; a curve of several runs (seeds of one setting) is
    their mean over the epochs all of them evaluated, with the range from the lowest to the
    highest shaded, and beyond the last of those epochs each run that went on, alone, as a thin
    line of the same colour. A curve of one run that measured the error on its own training
    images (``--eval-train-points``) has those too, dotted, in its colour. reference: also the
    authors' training log (adgm.reference) as a dashed black line, up to the last epoch of the
    runs, and, where a run has the training-image error, the log's own (one sample of a), dotted.
    """
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    draw_curves(ax, curves, reference=reference)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    long = sum(label.count("\n") + 1 for label in labels) > LEGEND_INSIDE_LINES
    if long or _legend_hides_points(fig, ax):
        legend = ax.legend(
            fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0
        )
        fig.canvas.draw()
        beside = legend.get_window_extent().width / fig.dpi
        fig.set_figwidth(6 + beside + 0.2)  # the axes keep their width; the legend its own
    fig.tight_layout()
    return _save(fig, path)


def _legend_hides_points(fig, ax) -> bool:
    """Whether the legend, where matplotlib placed it inside the axes, covers a point of a
    curve: each line's (epoch, error) vertices, in display coordinates, against its box."""
    fig.canvas.draw()  # the legend's "best" place is chosen at drawing time
    box = ax.get_legend().get_window_extent()
    for line in ax.get_lines():
        points = line.get_transform().transform(line.get_xydata())
        if box.count_contains(points):
            return True
    return False


def draw_curves(ax, curves: Sequence[tuple[str, Sequence[list[dict]]]], *, reference: bool) -> None:
    """plot_curves' lines, bands and legend on a matplotlib Axes."""
    if reference:
        last = max((r["epoch"] for _, runs in curves for rows in runs for r in rows), default=0)
        points = sorted((e, v) for e, v in AUTHORS_LOG_TEST_ERROR.items() if e <= max(last, 10))
        epochs, errors = zip(*points)
        ax.plot(epochs, errors, "k--", marker=".", label=AUTHORS_LOG_LABEL)
        if any(training_image_errors(rows) for _, runs in curves for rows in runs):
            log = AUTHORS_LOG_TRAINING_IMAGE_ERROR
            epochs, errors = zip(*sorted((e, v) for e, v in log.items() if e <= max(last, 10)))
            label = f"{AUTHORS_LOG_LABEL}: its training images (1 sample of a)"
            ax.plot(epochs, errors, "k:", marker=".", label=label)
    for label, runs in curves:
        tested = [errors_by_epoch(rows) for rows in runs]
        epochs, mean, low, high = seed_band(tested)
        if not epochs:
            if len(runs) > 1:
                raise AdgmError(f"the runs of {label!r} share no evaluated epoch")
            raise AdgmError(f"run {label!r} has no test-error measurements yet")
        if len(runs) > 1:
            label = f"{label} ({len(runs)} seeds: mean, range shaded)"
        label = textwrap.fill(label, LEGEND_WIDTH)  # a long setting takes several lines
        (line,) = ax.plot(epochs, mean, label=label, marker="." if len(epochs) < 30 else None)
        own = training_image_errors(runs[0]) if len(runs) == 1 else {}
        if own:  # the error on the run's own training images, dotted in its colour
            own_label = "the same, on its own training images"
            ax.plot(*zip(*sorted(own.items())), ":", color=line.get_color(), label=own_label)
        if len(runs) > 1:
            ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
            for later in _beyond(tested, epochs[-1]):  # runs that went on: alone, thin
                ax.plot(*zip(*later), color=line.get_color(), linewidth=0.8)
    plain_log_scale(ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test error (%), 100 samples of a")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")


@torch.no_grad()
def class_samples(model: GenerativeClassifier, per_class: int, seed: int) -> torch.Tensor:
    """Bernoulli means sigmoid(f(z, y)) for z ~ N(0, I): (K, per_class, D)."""
    generator = torch.Generator().manual_seed(seed)
    k, z_dim = model.n_classes, model.config.z_dim
    device = next(model.parameters()).device
    z = torch.randn(per_class, k, z_dim, generator=generator).to(device)  # label k on axis 1
    return model.x_mean(z).transpose(0, 1).cpu()


def plot_samples(
    model: GenerativeClassifier, path: Path, *, per_class: int = 10, seed: int = 0
) -> Path:
    """Figure 2b: a grid with one row per class y of images drawn from p(x|z,y)."""
    images = class_samples(model, per_class, seed)
    side = math.isqrt(images.shape[-1])
    if side * side != images.shape[-1]:
        raise AdgmError(f"samples of {images.shape[-1]} features are not square images")
    k = images.shape[0]
    grid = images.reshape(k, per_class, side, side).permute(0, 2, 1, 3).reshape(k * side, -1)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(per_class * 0.6, k * 0.6))
    ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_yticks([side * (i + 0.5) for i in range(k)], [str(i) for i in range(k)])
    ax.set_xticks([])
    ax.set_ylabel("class y")
    fig.tight_layout()
    return _save(fig, path)


def plot_active_units(kl: dict[str, torch.Tensor], path: Path, *, threshold: float) -> Path:
    """Figure 3: each unit's average KL to the prior, sorted, with the threshold line."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(kl), figsize=(5 * len(kl), 3.5), squeeze=False)
    for ax, (name, values) in zip(axes[0], sorted(kl.items())):
        ordered = torch.sort(values, descending=True).values.clamp_min(1e-6).numpy()
        active = int((values > threshold).sum())
        ax.bar(range(len(ordered)), ordered, width=1.0)
        ax.axhline(threshold, color="red", linewidth=1, label=f"threshold {threshold:g}")
        plain_log_scale(ax)
        ax.set_title(f"{name}: {active} of {len(ordered)} units active")
        ax.set_xlabel("unit (sorted)")
        ax.set_ylabel("KL[q || p] (nats), mean over test set")
        ax.legend()
    fig.tight_layout()
    return _save(fig, path)
