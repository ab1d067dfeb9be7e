"""Each model against a baseline seed by seed: the paper's claim measured over seeds.

Runs of a model and of the baseline (e.g. M2) are paired by their seeds (the training seed and
the labelled draw), so that each difference compares two runs that saw the same labels. For a
pair and an epoch window [first, last], over the epochs k in the window that both evaluated,
with test errors b_k (baseline) and m_k (model) in percent,

    d_k = m_k - b_k,   mean = (1/n) sum_k d_k,   se = sd(d_k) / sqrt(n) * sqrt((1 + r) / (1 - r)),

with r = max(0, the lag-1 autocorrelation of d_k): where the two curves' trends part, successive
differences are correlated (r of 0.6-0.85 between the SDGM and M2) and sd / sqrt(n) alone would
claim n independent measurements; the factor is that of an AR(1) series. "Ahead at j of n": the
number of k with d_k < 0 (the model's error lower). A negative mean is a lead over the
baseline. Over seeds, a setting's row gives the mean and standard deviation
of the per-seed means, of the pairs that have trained through the whole window (both runs at or
past its last epoch); pairs still training show their part of the window and are not averaged.
It also follows the seeds' mean curve, D_k = (1/S) sum_s d_k^(s) over the epochs all S finished
pairs evaluated (the distance between the two settings' mean curves, as a figure of seed means
draws them): at how many of those epochs D_k < 0, and its smallest and largest value.

With pool_precisions, runs that differ in their training precision (fp32, bf16) as well as in
their seeds are seeds of one setting: each run's own row names its precision, the over-seeds
row the precisions pooled (adgm.reproduce.pooled_label).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from adgm.config import RunConfig
from adgm.errors import AdgmError
from adgm.plots import errors_by_epoch
from adgm.reproduce import correlated_standard_error, pooled_label, setting_label

Run = tuple[RunConfig, list[dict]]


@dataclass(frozen=True)
class WindowDifference:
    """One pair of runs over one window: d_k by epoch k (in epoch order), the standard error of
    their mean (widened for the lag-1 autocorrelation r, as it was used), and whether both runs
    have reached the window's end; the mean, how many evaluations the model was ahead at, of
    how many, and up to which epoch follow from d_k."""

    by_epoch: dict[int, float]
    se: float
    autocorrelation: float
    complete: bool

    @property
    def mean(self) -> float:
        return statistics.fmean(self.by_epoch.values())

    @property
    def ahead(self) -> int:
        return sum(d < 0 for d in self.by_epoch.values())

    @property
    def evaluations(self) -> int:
        return len(self.by_epoch)

    @property
    def last_epoch(self) -> int:
        return max(self.by_epoch)


def parse_window(text: str) -> tuple[int, int]:
    """'105-300' -> (105, 300); AdgmError for anything else."""
    first, sep, last = text.partition("-")
    if not (sep and first.isdigit() and last.isdigit()) or int(first) > int(last):
        raise AdgmError(
            f"an epoch window is FIRST-LAST with FIRST <= LAST, e.g. 105-300; got {text!r}"
        )
    return int(first), int(last)


def window_difference(
    baseline: list[dict], model: list[dict], window: tuple[int, int]
) -> WindowDifference | None:
    """The model's test error minus the baseline's over the epochs of `window` both evaluated
    (metrics rows of each run); None where they share fewer than two."""
    first, last = window
    base, tested = errors_by_epoch(baseline), errors_by_epoch(model)
    epochs = sorted(e for e in set(base) & set(tested) if first <= e <= last)
    if len(epochs) < 2:
        return None
    diffs = [tested[e] - base[e] for e in epochs]
    reached = min(rows[-1]["epoch"] for rows in (baseline, model))  # epochs trained
    se, r = correlated_standard_error(diffs)
    return WindowDifference(
        by_epoch=dict(zip(epochs, diffs)), se=se, autocorrelation=r, complete=reached >= last
    )


def _seeds(config: RunConfig) -> tuple[int, int]:
    return config.train.seed, config.data.label_seed


def pair_by_seeds(
    baselines: list[Run], models: list[Run], pool_precisions: bool = False
) -> list[tuple[str, Run, Run]]:
    """(setting of the model, baseline run, model run) for each model run, its baseline being
    the run with the same training seed and labelled draw; the model runs in their order.
    Settings are setting_label's, with `pool_precisions` passed on.

    AdgmError where the baselines are of several settings, where two baselines (or two runs of
    one model setting) share their seeds, or where a model run has no baseline of its seeds."""
    settings = {setting_label(config, pool_precisions) for config, _ in baselines}
    if len(settings) != 1:
        raise AdgmError(f"the baseline runs must be seeds of one setting, got {sorted(settings)}")
    by_seeds: dict[tuple[int, int], Run] = {}
    for run in baselines:
        if _seeds(run[0]) in by_seeds:
            raise AdgmError(f"two baseline runs have seed and label seed {_seeds(run[0])}")
        by_seeds[_seeds(run[0])] = run
    pairs, seen = [], set()
    for run in models:
        setting, seeds = setting_label(run[0], pool_precisions), _seeds(run[0])
        if (setting, seeds) in seen:
            raise AdgmError(f"two runs of {setting} have seed and label seed {seeds}")
        seen.add((setting, seeds))
        if seeds not in by_seeds:
            raise AdgmError(
                f"no baseline run has seed {seeds[0]} and label seed {seeds[1]} "
                f"(a run of {setting} has)"
            )
        pairs.append((setting, by_seeds[seeds], run))
    return pairs


def _pair_cell(difference: WindowDifference | None, window: tuple[int, int]) -> str:
    if difference is None:
        return "-"
    d = difference
    cell = f"{d.mean:+.2f} ± {d.se:.2f} (ahead at {d.ahead} of {d.evaluations})"
    return cell if d.complete else f"{cell}, to epoch {d.last_epoch} of {window[1]}"


def _over_seeds_cell(differences: list[WindowDifference | None]) -> str:
    """Mean ± sd of the completed windows' means, then the seeds' mean curve D_k (module
    docstring); called for settings of several runs only."""
    finished = [d for d in differences if d is not None and d.complete]
    if not finished:
        return "-"
    means = [d.mean for d in finished]
    of = f"{len(means)} of {len(differences)}" if len(means) < len(differences) else len(means)
    ahead = sum(m < 0 for m in means)
    spread = f" ± {statistics.stdev(means):.2f}" if len(means) > 1 else ""
    cell = f"{statistics.fmean(means):+.2f}{spread} ({of} seeds, ahead in {ahead}"
    epochs = sorted(set.intersection(*(set(d.by_epoch) for d in finished)))
    if len(finished) < 2 or not epochs:
        return cell + ")"
    curve = [statistics.fmean(d.by_epoch[e] for d in finished) for e in epochs]
    return (
        f"{cell}; their mean curve ahead at {sum(c < 0 for c in curve)} of {len(curve)}, "
        f"{min(curve):+.2f} to {max(curve):+.2f})"
    )


def paired_seeds_table(
    baselines: list[Run],
    models: list[Run],
    windows: list[tuple[int, int]],
    pool_precisions: bool = False,
) -> str:
    """A Markdown table: per model run (by setting, then seed) the mean difference from the
    baseline of its seeds over each window, then, for a setting of several runs, the mean ± sd
    over its seeds (fp32 and bf16 runs pooled into one setting with `pool_precisions`)."""
    pairs = pair_by_seeds(baselines, models, pool_precisions)
    baseline_setting = setting_label(baselines[0][0], pool_precisions)
    if pool_precisions:
        baseline_setting = pooled_label(baseline_setting, [config for config, _ in baselines])
    baseline_setting = baseline_setting.replace("|", "\\|")
    columns = " | ".join(f"epochs {first}-{last}" for first, last in windows)
    lines = [
        f"| test error minus {baseline_setting}'s (points; below 0: ahead) | {columns} |",
        "| --- |" + " --- |" * len(windows),
    ]
    settings = dict.fromkeys(setting for setting, _, _ in pairs)
    for setting in settings:
        cell = setting.replace("|", "\\|")
        members = [(base, run) for s, base, run in pairs if s == setting]
        per_window = [
            [window_difference(base[1], run[1], window) for base, run in members]
            for window in windows
        ]
        for index, (_, run) in enumerate(members):
            seed, label_seed = _seeds(run[0])
            own = setting_label(run[0]).replace("|", "\\|")  # its precision named
            cells = [_pair_cell(per_window[w][index], windows[w]) for w in range(len(windows))]
            lines.append(f"| {own}, seed {seed}, label seed {label_seed} | {' | '.join(cells)} |")
        if len(members) > 1:
            if pool_precisions:
                cell = pooled_label(setting, [run[0] for _, run in members]).replace("|", "\\|")
            over = " | ".join(_over_seeds_cell(differences) for differences in per_window)
            lines.append(f"| {cell}: over seeds, mean ± sd | {over} |")
    return "\n".join(lines) + "\n"
