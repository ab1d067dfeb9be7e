"""Table 1 of the paper: train each variant for each seed and tabulate the test error.

Each (variant, seed) trains in its own run folder, ``<out>/<model>-<S>mc-seed<seed>``; a run
that already has a checkpoint is resumed, so an interrupted reproduction continues where it
stopped. The seed sets both the training seed and the draw of the labelled images.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

from adgm.checkpoint import atomic_write_text, has_checkpoint
from adgm.config import MODEL_NAMES, MODEL_TITLES, RunConfig
from adgm.errors import AdgmError
from adgm.plots import errors_by_epoch, run_label, seed_band
from adgm.reference import AUTHORS_LOG_LABEL, AUTHORS_LOG_TEST_ERROR
from adgm.train import Trainer, read_metrics

# Table 1 of Maaløe et al. (2016), MNIST with 100 labels; M2 alone is quoted in its sec. 2.
PAPER_TABLE1 = {
    ("adgm", 1): "2.25% (± 0.08)",
    ("adgm", 10): "0.96% (± 0.02)",
    ("m2", 1): "11.97% (± 1.71) (Kingma et al. 2014)",
}
# The ICML 2016 version's figures (MNIST, 100 labels) for the models with a generated a, shown
# beside runs of these models whatever their number of Monte Carlo samples.
LATER_PAPER_TABLE1 = {
    "adgm-gen": "0.96% (± 0.02) (ICML 2016)",
    "sdgm": "1.32% (± 0.07) (ICML 2016)",
}


def summarise_runs(
    runs: list[tuple[str, list[dict]]], at_epochs: list[int], time_to: list[float] = ()
) -> str:
    """A Markdown table of (label, metrics rows) runs: test error at chosen epochs, the last and
    the best, epochs done and wall time (training + evaluation, summed over epochs); then, for
    each error in `time_to` (percent), the hours and epoch at which the run first reached it."""
    header = " | ".join(f"epoch {e}" for e in at_epochs)
    targets = "".join(f" {_percent(t)} at |" for t in time_to)
    lines = [
        f"| run | {header} | last | best (epoch) | epochs | hours |{targets}",
        "| --- |" + " --- |" * (len(at_epochs) + 4 + len(time_to)),
    ]
    for label, rows in runs:
        tested = errors_by_epoch(rows)
        at = " | ".join(f"{tested[e]:.2f}%" if e in tested else "-" for e in at_epochs)
        hours = sum(_row_seconds(r) for r in rows) / 3600
        cell = label.replace("|", "\\|")  # a '|' would end the Markdown cell
        if tested:
            best, last = min(tested, key=tested.get), max(tested)
            ends = f"{tested[last]:.2f}% | {tested[best]:.2f}% ({best})"
        else:  # not evaluated yet: the row says so instead of failing the whole table
            ends = "- | -"
        epochs = rows[-1]["epoch"] if rows else 0
        reached = "".join(f" {_time_to(rows, target)} |" for target in time_to)
        lines.append(f"| {cell} | {at} | {ends} | {epochs} | {hours:.2f} |{reached}")
    return "\n".join(lines) + "\n"


def machine_note(name: str, starts: list[dict], last_epoch: int) -> str:
    """Which epochs of a run trained on which machine, from its starts.jsonl, in one line:

    'sdgm (epochs 1-206 not recorded; 207-300 on AMD EPYC, 2 cores, 1 thread, torch 2.14.1)'.

    Consecutive starts on the same machine (CPU or GPU model, cores, threads, torch) make one
    stretch; a stretch ends where the next one starts, and a start from an older checkpoint
    takes over the epochs it trains again. '' for a run with no start recorded or no epoch
    finished.
    """
    if not starts:
        return ""
    stretches: list[tuple[int, str]] = []  # (first epoch, machine)
    for start in starts:
        machine, first = _machine_words(start), start["epoch"] + 1
        # A start from an older checkpoint trains the epochs after it again: on this machine.
        stretches = [stretch for stretch in stretches if stretch[0] < first]
        if not stretches or stretches[-1][1] != machine:
            stretches.append((first, machine))

    def span(first: int, last: int) -> str:
        return str(first) if first == last else f"{first}-{last}"

    parts = [f"{span(1, stretches[0][0] - 1)} not recorded"] if stretches[0][0] > 1 else []
    for (first, machine), following in zip(stretches, [*stretches[1:], (last_epoch + 1, "")]):
        if following[0] > first:  # a stretch that trained at least one epoch
            parts.append(f"{span(first, following[0] - 1)} on {machine}")
    if not parts:  # started, but no epoch finished yet
        return ""
    return f"{name} (epochs {'; '.join(parts)})"


def _machine_words(start: dict) -> str:
    threads = start.get("threads", "?")
    where = start.get("gpu") or f"{start.get('cpu', '?')}, {start.get('cores', '?')} cores"
    plural = "" if threads == 1 else "s"
    return f"{where}, {threads} thread{plural}, torch {start.get('torch', '?')}"


def _row_seconds(row: dict) -> float:
    return row["seconds"] + row.get("eval_seconds", 0.0)


def _percent(value: float) -> str:
    return f"{value:g}%"


def _time_to(rows: list[dict], target_percent: float) -> str:
    """'2.01 h (40)': wall time up to and including the first epoch whose test error is at
    most `target_percent`, and that epoch; '-' if no evaluated epoch reached it."""
    seconds = 0.0
    for row in rows:
        seconds += _row_seconds(row)
        if "test_error" in row and 100 * row["test_error"] <= target_percent:
            return f"{seconds / 3600:.2f} h ({row['epoch']})"
    return "-"


def curve_agreement(reference: list[dict], other: list[dict]) -> dict[str, float]:
    """How far `other`'s test-error curve lies from `reference`'s, against the noise of a curve.

    Over the epochs both evaluated (test errors e_k and f_k in percent, in epoch order):
    ``bias`` = mean(f_k - e_k), ``spread`` = sd(f_k - e_k), ``mean_abs`` = mean |f_k - e_k|;
    ``noise`` = the epoch-to-epoch noise sigma of one evaluation, estimated from each curve's
    second differences (for e_k = trend + noise with a locally linear trend,
    e_k - (e_{k-1} + e_{k+1}) / 2 has variance 1.5 sigma^2) and averaged over the two curves.
    Two runs that differ only by noise have ``spread`` near sqrt(2) sigma and ``bias`` within
    about ``bias_se`` = spread / sqrt(n) of 0. Where the two trends part, successive differences
    are correlated (``autocorrelation``, lag 1, negatives counted as 0) and
    ``bias_se_correlated`` (correlated_standard_error) is the standard error to use.
    """
    first, second = errors_by_epoch(reference), errors_by_epoch(other)
    epochs = sorted(set(first) & set(second))
    if len(epochs) < 4:  # the noise needs two second differences of each curve
        raise AdgmError(f"the two runs share {len(epochs)} evaluated epochs; at least 4 are needed")
    diffs = [second[e] - first[e] for e in epochs]
    curves = ([curve[e] for e in epochs] for curve in (first, second))
    noise = statistics.fmean(_second_difference_noise(values) for values in curves)
    spread = statistics.stdev(diffs)
    correlated_se, autocorrelation = correlated_standard_error(diffs)
    return {
        "epochs": len(epochs),
        "first_epoch": epochs[0],
        "last_epoch": epochs[-1],
        "bias": statistics.fmean(diffs),
        "bias_se": spread / len(diffs) ** 0.5,
        "autocorrelation": autocorrelation,
        "bias_se_correlated": correlated_se,
        "spread": spread,
        "mean_abs": statistics.fmean(abs(d) for d in diffs),
        "noise": noise,
    }


def band_agreement(references: list[list[dict]], other: list[dict]) -> dict[str, Any]:
    """How far `other`'s test-error curve lies from the band of several runs of one setting
    (e.g. three seeds), against the spread of those runs.

    Over the epochs every run evaluated (test errors in percent): with m_k the mean and
    s_k the standard deviation of the references at epoch k, ``bias`` = mean(f_k - m_k) with
    ``bias_se`` = sd(f_k - m_k) / sqrt(n) and ``bias_se_correlated`` that error widened for the
    lag-1 autocorrelation of the differences (``autocorrelation``; correlated_standard_error);
    ``seed_sd`` = mean(s_k), the references' own spread;
    ``above`` and ``below`` count the epochs where f_k is above the highest reference or below
    the lowest one; ``references`` is their number; ``rows`` holds, per epoch, (k, m_k, lowest,
    highest, f_k). Needs two references and two shared epochs.
    """
    if len(references) < 2:
        raise AdgmError(f"a band needs at least 2 reference runs, got {len(references)}")
    bands = [errors_by_epoch(rows) for rows in references]
    tested = errors_by_epoch(other)
    rows = [
        (epoch, mean, low, high, tested[epoch])
        for epoch, mean, low, high in zip(*seed_band(bands), strict=True)
        if epoch in tested
    ]
    if len(rows) < 2:
        raise AdgmError(f"the runs share {len(rows)} evaluated epochs; at least 2 are needed")
    diffs = [value - mean for _, mean, _, _, value in rows]
    correlated_se, autocorrelation = correlated_standard_error(diffs)
    return {
        "epochs": len(rows),
        "first_epoch": rows[0][0],
        "last_epoch": rows[-1][0],
        "references": len(references),
        "bias": statistics.fmean(diffs),
        "bias_se": statistics.stdev(diffs) / len(diffs) ** 0.5,
        "autocorrelation": autocorrelation,
        "bias_se_correlated": correlated_se,
        "seed_sd": statistics.fmean(statistics.stdev(b[row[0]] for b in bands) for row in rows),
        "above": sum(value > high for _, _, _, high, value in rows),
        "below": sum(value < low for _, _, low, _, value in rows),
        "rows": rows,
    }


def lag1_autocorrelation(values: list[float]) -> float:
    """sum_k (v_k - m)(v_{k+1} - m) / sum_k (v_k - m)^2, kept below 0.99 (0 for fewer than
    three values or a constant series)."""
    if len(values) < 3:
        return 0.0
    mean = statistics.fmean(values)
    centred = [v - mean for v in values]
    variance = sum(c * c for c in centred)
    if variance == 0:
        return 0.0
    covariance = sum(a * b for a, b in zip(centred, centred[1:]))
    return min(covariance / variance, 0.99)


def correlated_standard_error(values: list[float]) -> tuple[float, float]:
    """(standard error, r) of the mean of a series whose successive values are correlated:
    sd / sqrt(n) * sqrt((1 + r) / (1 - r)), the factor of an AR(1) series (two test-error
    curves whose trends part slowly differ by such a series), with r = max(0,
    lag1_autocorrelation): a negative r, alternating values, is taken as none, so the error is
    never narrower than sd / sqrt(n). r is returned as used, so that every report of it agrees."""
    r = max(0.0, lag1_autocorrelation(values))
    return statistics.stdev(values) / len(values) ** 0.5 * ((1 + r) / (1 - r)) ** 0.5, r


def _second_difference_noise(values: list[float]) -> float:
    """sigma of e_k = trend + noise from sd(e_k - (e_{k-1} + e_{k+1}) / 2) / sqrt(1.5)."""
    curvature = [values[k] - (values[k - 1] + values[k + 1]) / 2 for k in range(1, len(values) - 1)]
    return statistics.stdev(curvature) / 1.5**0.5


def setting_label(config: RunConfig, pool_precisions: bool = False) -> str:
    """run_label of the config with the paper's seeds: the name of its setting, which runs that
    differ only in their training seed and labelled draw share. With `pool_precisions`, runs
    that differ in their training precision (fp32, bf16) too share it, and it names no
    precision (pooled_label names a group's)."""
    train = replace(config.train, seed=0)
    if pool_precisions:
        train = replace(train, precision=RunConfig().train.precision)
    return run_label(replace(config, data=replace(config.data, label_seed=0), train=train))


def pooled_label(setting: str, configs: list[RunConfig]) -> str:
    """A pooled setting (setting_label with pool_precisions) with the precisions its runs
    trained in, in the runs' order: 'SDGM 1 MC, bf16 and fp32', 'SDGM 1 MC, fp32'."""
    precisions = list(dict.fromkeys(config.train.precision for config in configs))
    return f"{setting}, {' and '.join(precisions)}"


def group_seeds(
    runs: list[tuple[RunConfig, list[dict]]], pool_precisions: bool = False
) -> dict[str, list[list[dict]]]:
    """setting_label -> the metrics rows of each of its runs, settings in order of first run.

    A run whose training seed and labelled draw are those of an earlier run of its setting
    repeats that run (on another device, say) and is no further seed: the k-th run of each
    seed pair goes to '<setting>, repeat k', so a spread over a group is one over seeds. With
    `pool_precisions`, fp32 and bf16 runs are seeds of one setting (labelled by
    pooled_label), so that a bf16 and an fp32 run of the same seeds repeat each other."""
    groups = _seed_groups(runs, pool_precisions)
    return {label: [rows for _, rows in group] for label, group in groups.items()}


def _seed_groups(
    runs: list[tuple[RunConfig, list[dict]]], pool_precisions: bool = False
) -> dict[str, list[tuple]]:
    """group_seeds' groups, of (config, rows) pairs."""
    groups: dict[tuple[str, int], list[tuple]] = {}  # (setting, k-th run of its seeds) -> runs
    seen: dict[tuple[str, int, int], int] = {}
    for config, rows in runs:
        setting = setting_label(config, pool_precisions)
        seeds = (setting, config.train.seed, config.data.label_seed)
        seen[seeds] = seen.get(seeds, 0) + 1
        groups.setdefault((setting, seen[seeds]), []).append((config, rows))
    labelled = {}
    for (setting, repeat), group in groups.items():
        if pool_precisions:
            setting = pooled_label(setting, [config for config, _ in group])
        labelled[setting if repeat == 1 else f"{setting}, repeat {repeat}"] = group
    return labelled


def table1_from_runs(
    runs: list[tuple[RunConfig, list[dict]]], at_epochs: list[int], pool_precisions: bool = False
) -> str:
    """Table 1 as measured, from finished or running runs: one row per setting (the runs'
    labels without their seeds; repeats of a seed in rows of their own, see group_seeds; fp32
    and bf16 runs in one with `pool_precisions`), the test error at each of `at_epochs` and at
    each run's last evaluation as mean ± standard deviation over the runs of that setting that
    got there (with their number), and the paper's figure; a last row gives the authors'
    training log at the same epochs (adgm.reference)."""
    columns = " | ".join(f"epoch {e}" for e in at_epochs)
    lines = [
        f"| setting | {columns} | last (epochs) | paper |",
        "| --- |" + " --- |" * (len(at_epochs) + 2),
    ]
    for label, members in _seed_groups(runs, pool_precisions).items():
        name, samples = members[0][0].model.name, members[0][0].train.mc_samples
        paper = PAPER_TABLE1.get((name, samples), LATER_PAPER_TABLE1.get(name, "-"))
        tested = [errors_by_epoch(rows) for _, rows in members]
        cells = [_mean_sd([t[e] for t in tested if e in t], len(tested)) for e in at_epochs]
        cell = label.replace("|", "\\|")
        last = _last_errors([t for t in tested if t])
        lines.append(f"| {cell} | {' | '.join(cells)} | {last} | {paper} |")
    log = [AUTHORS_LOG_TEST_ERROR.get(e) for e in at_epochs]
    log_cells = " | ".join("-" if v is None else f"{v:.2f}%" for v in log)
    lines.append(f"| {AUTHORS_LOG_LABEL} | {log_cells} | - | - |")
    return "\n".join(lines) + "\n"


def _mean_sd(values: list[float], of: int = 1) -> str:
    """'3.49%' for one value, '3.40% ± 0.12 (3 runs)' for several, '-' for none; with `of`
    runs in the setting and fewer values, '(2 of 3 runs)': the others have not got there yet."""
    if not values:
        return "-"
    runs = f"{len(values)} of {of} runs" if len(values) < of else f"{len(values)} runs"
    if len(values) == 1:
        return f"{values[0]:.2f}%" + (f" ({runs})" if of > 1 else "")
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    return f"{mean:.2f}% ± {sd:.2f} ({runs})"


def _last_errors(tested: list[dict[int, float]]) -> str:
    """The runs' last evaluations: mean ± sd '(epoch)' where they all stopped at one epoch,
    else each run's own, '2.49% (230); 7.51% (25)' (errors of different epochs do not average)."""
    if not tested:
        return "- (-)"
    lasts = [max(t) for t in tested]
    if len(set(lasts)) == 1:
        return f"{_mean_sd([t[lasts[0]] for t in tested])} ({lasts[0]})"
    return "; ".join(f"{t[epoch]:.2f}% ({epoch})" for t, epoch in zip(tested, lasts))


def parse_variants(texts: list[str]) -> list[tuple[str, int]]:
    """'adgm:10' -> ('adgm', 10), with a clear error for anything else."""
    variants = []
    for text in texts:
        name, _, samples = text.partition(":")
        if name not in MODEL_NAMES or not samples.isdigit() or int(samples) < 1:
            raise AdgmError(
                f"variant {text!r} is not MODEL:MC_SAMPLES with MODEL in {', '.join(MODEL_NAMES)}"
            )
        variants.append((name, int(samples)))
    return variants


def train_or_resume(config: RunConfig, run_dir: Path) -> list[dict]:
    """Train `config` in `run_dir`, resuming from its checkpoint if it has one; the metrics."""
    trainer = Trainer(config, run_dir)
    if has_checkpoint(run_dir):
        trainer.resume()
    else:
        trainer.start("adgm reproduce table1")
    trainer.fit(log=lambda line: print(f"{run_dir.name}: {line}", flush=True))
    return read_metrics(run_dir)


def run_table1(
    base: RunConfig, variants: list[tuple[str, int]], seeds: list[int], out: Path
) -> str:
    """Train every variant for every seed; write and return ``table1.md``."""
    lines = [
        f"Test error on MNIST with {base.data.n_labels} labels after {base.train.epochs} epochs "
        f"(mean ± standard deviation over seeds {', '.join(map(str, seeds))}; "
        f"{base.train.eval_samples} samples of a).",
        "",
        "| model | test error (adgm) | paper | epochs | seeds | training time (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, samples in variants:
        errors, seconds = [], 0.0
        for seed in seeds:
            config = replace(
                base,
                data=replace(base.data, label_seed=seed),
                model=replace(base.model, name=name),
                train=replace(base.train, mc_samples=samples, seed=seed),
            )
            rows = train_or_resume(config, out / f"{name}-{samples}mc-seed{seed}")
            errors.append(100 * rows[-1]["test_error"])
            seconds += sum(_row_seconds(r) for r in rows)
        spread = statistics.stdev(errors) if len(errors) > 1 else 0.0
        paper = PAPER_TABLE1.get((name, samples), "-")
        lines.append(
            f"| {MODEL_TITLES[name]} ({samples} MC) | {statistics.mean(errors):.2f}% "
            f"(± {spread:.2f}) | {paper} | {base.train.epochs} | {len(seeds)} | "
            f"{seconds:.0f} |"
        )
    table = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "table1.md", table)
    return table
