"""Runs of a model against the baseline run of the same seeds, over epoch windows."""

from __future__ import annotations

import json
import math
import random
import statistics

import pytest

from adgm.cli import main
from adgm.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from adgm.errors import AdgmError
from adgm.paired_seeds import pair_by_seeds, paired_seeds_table, parse_window, window_difference


def config(model: str, seed: int, label_seed: int | None = None) -> RunConfig:
    return RunConfig(
        data=DataConfig(label_seed=seed if label_seed is None else label_seed),
        model=ModelConfig(name=model),
        train=TrainConfig(seed=seed),
    )


def rows(errors: dict[int, float]) -> list[dict]:
    """Metrics rows: every epoch, a test error (a fraction) at the epochs of `errors`."""
    return [
        {"epoch": e, "J": 100.0, **({"test_error": errors[e] / 100} if e in errors else {})}
        for e in range(1, max(errors) + 1)
    ]


def run_folder(folder, run_config: RunConfig, metrics: list[dict]) -> str:
    """A run folder with its config.json and metrics.jsonl, as the commands read it; its path."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(run_config.to_dict()))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
    return str(folder)


def noisy_curve(seed: int, last: int, offset: float = 0.0) -> dict[int, float]:
    rng = random.Random(seed)
    return {
        e: 20 * math.exp(-e / 60) + 3 + offset + rng.gauss(0, 0.3) for e in range(5, last + 1, 5)
    }


def test_a_window_difference_is_the_mean_and_standard_error_of_the_differences_it_holds():
    base, model = noisy_curve(0, 300), noisy_curve(1, 300, offset=-0.8)
    got = window_difference(rows(base), rows(model), (105, 300))
    diffs = []
    for epoch in range(105, 301):  # explicit loop over the shared evaluated epochs
        if epoch in base and epoch in model:
            diffs.append(model[epoch] - base[epoch])
    mean = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    r = sum((diffs[k] - mean) * (diffs[k + 1] - mean) for k in range(39))
    r = max(0.0, r / sum((d - mean) ** 2 for d in diffs))
    assert got.evaluations == len(diffs) == 40 and got.autocorrelation == pytest.approx(r)
    widened = sd / math.sqrt(40) * math.sqrt((1 + r) / (1 - r))
    assert got.mean == pytest.approx(mean) and got.se == pytest.approx(widened)
    assert got.ahead == sum(d < 0 for d in diffs) and got.complete and got.last_epoch == 300
    assert -1.0 < got.mean < -0.6  # the offset put in, within the noise


def test_the_standard_error_widens_when_the_differences_drift_and_not_for_white_noise():
    """A model whose lead grows steadily has strongly correlated differences: its standard
    error is several times sd / sqrt(n); two curves that differ by noise alone get about it."""
    base = noisy_curve(0, 300)
    drifting = {e: v - 0.01 * e for e, v in noisy_curve(1, 300).items()}
    drift = window_difference(rows(base), rows(drifting), (5, 300))
    noise = window_difference(rows(base), rows(noisy_curve(2, 300)), (5, 300))
    assert drift.autocorrelation > 0.7 and noise.autocorrelation < 0.35
    naive_drift = statistics.stdev(drifting[e] - base[e] for e in range(5, 301, 5)) / math.sqrt(60)
    assert drift.se > 2 * naive_drift


def test_a_window_a_run_has_not_reached_is_marked_and_one_it_has_not_entered_is_none():
    base, model = noisy_curve(0, 300), noisy_curve(1, 150)
    partial = window_difference(rows(base), rows(model), (105, 300))
    assert (partial.evaluations, partial.last_epoch, partial.complete) == (10, 150, False)
    assert window_difference(rows(base), rows(noisy_curve(1, 100)), (105, 300)) is None
    every_35th = {e: v for e, v in noisy_curve(1, 300).items() if e % 7 == 0} | {300: 3.0}
    trained_through = rows(every_35th)[:-1]  # evaluated last at 280, trained to 299
    assert not window_difference(rows(base), trained_through, (105, 299 + 1)).complete
    assert window_difference(rows(base), trained_through, (105, 299)).complete


def test_runs_pair_by_training_seed_and_labelled_draw_not_by_order():
    m2 = [(config("m2", s), rows(noisy_curve(s, 100))) for s in (0, 1, 2)]
    adgm = [(config("adgm", s), rows(noisy_curve(10 + s, 100))) for s in (2, 0)]
    pairs = pair_by_seeds(m2, adgm)
    assert [(base[0].train.seed, run[0].train.seed) for _, base, run in pairs] == [(2, 2), (0, 0)]


@pytest.mark.parametrize(
    "baselines, models, message",
    [
        ([("m2", 0)], [("adgm", 1)], "no baseline run has seed 1 and label seed 1"),
        ([("m2", 0), ("adgm", 1)], [("adgm", 0)], "must be seeds of one setting"),
        ([("m2", 0), ("m2", 0)], [("adgm", 0)], "two baseline runs have seed"),
        ([("m2", 0)], [("adgm", 0), ("adgm", 0)], "two runs of ADGM 1 MC have seed"),
    ],
)
def test_runs_that_cannot_be_paired_are_refused(baselines, models, message):
    def runs(spec):
        return [(config(model, seed), rows(noisy_curve(seed, 20))) for model, seed in spec]

    with pytest.raises(AdgmError, match=message):
        pair_by_seeds(runs(baselines), runs(models))


def test_the_over_seeds_row_averages_only_the_seeds_that_finished_the_window():
    m2 = [(config("m2", s), rows(noisy_curve(s, 300))) for s in (0, 1, 2)]
    ends = {0: 300, 1: 300, 2: 150}
    offsets = {0: -1.0, 1: +0.6, 2: -5.0}
    adgm = [(config("adgm", s), rows(noisy_curve(s + 10, ends[s], offsets[s]))) for s in (0, 1, 2)]
    table = paired_seeds_table(m2, adgm, [(5, 100), (105, 300)]).splitlines()
    assert table[0].startswith("| test error minus M2 1 MC's")
    assert "to epoch 150 of 300" in table[4]
    over = table[5].split(" | ")
    expected = [
        window_difference(m2[s][1], adgm[s][1], (105, 300)).mean for s in (0, 1)
    ]  # seed 2 is 5 points ahead on a partial window and must not pull the mean
    mean = sum(expected) / 2
    sd = abs(expected[0] - expected[1]) / math.sqrt(2)
    # The seeds' mean curve, by an explicit loop over the epochs of the window, seeds 0 and 1.
    base = [noisy_curve(s, 300) for s in (0, 1)]
    model = [noisy_curve(s + 10, 300, offsets[s]) for s in (0, 1)]
    curve = [(model[0][e] - base[0][e] + model[1][e] - base[1][e]) / 2 for e in range(105, 301, 5)]
    lead = sum(c < 0 for c in curve)
    assert len(curve) == 40 and 0 < lead < 40  # the mean offset, -0.2, within the noise
    assert over[-1] == (
        f"{mean:+.2f} ± {sd:.2f} (2 of 3 seeds, ahead in 1; their mean curve ahead at {lead} "
        f"of 40, {min(curve):+.2f} to {max(curve):+.2f}) |"
    )
    assert "(3 seeds, ahead in 2; their mean curve ahead at 20 of 20," in over[1]


def test_a_setting_of_one_run_has_no_over_seeds_row():
    m2 = [(config("m2", 0), rows(noisy_curve(0, 100)))]
    det = [(config("adgm-det", 0), rows(noisy_curve(1, 100)))]
    table = paired_seeds_table(m2, det, [(5, 100)]).splitlines()
    assert len(table) == 3 and "over seeds" not in "\n".join(table)


@pytest.mark.parametrize("text", ["105", "300-105", "a-b", "5-"])
def test_a_bad_window_is_a_clear_error(text):
    with pytest.raises(AdgmError, match="FIRST-LAST"):
        parse_window(text)


def test_the_command_prints_the_table_and_refuses_bad_windows_in_one_line(tmp_path, capsys):
    folders = {}
    for model, seed in [("m2", 0), ("adgm", 0)]:
        metrics = rows(noisy_curve(seed, 100, offset=-1.0 * (model == "adgm")))
        folders[model] = run_folder(tmp_path / f"{model}-{seed}", config(model, seed), metrics)
    command = ["reproduce", "paired-seeds", "--baseline", folders["m2"], "--runs", folders["adgm"]]
    assert main([*command, "--windows", "5-100"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2].startswith("| ADGM 1 MC, seed 0, label seed 0 | -")
    assert main([*command, "--windows", "100-5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FIRST-LAST" in err


def test_label_seed_alone_tells_pairs_apart():
    m2 = [
        (config("m2", 0, 0), rows(noisy_curve(0, 50))),
        (config("m2", 0, 1), rows(noisy_curve(1, 50))),
    ]
    adgm = [(config("adgm", 0, 1), rows(noisy_curve(2, 50)))]
    [(_, base, _)] = pair_by_seeds(m2, adgm)
    assert base[0].data.label_seed == 1


def test_pooled_precisions_make_fp32_and_bf16_runs_seeds_of_one_setting(tmp_path, capsys):
    """Without pooling an fp32 and a bf16 run of a model are two settings of one run each (no
    over-seeds row); pooled, they are two seeds, each row naming its own precision, the mean
    over them the two seeds' differences averaged by hand, and the baselines may mix too."""
    from dataclasses import replace

    def bf16(run_config):
        return replace(run_config, train=replace(run_config.train, precision="bf16"))

    m2 = [
        (config("m2", 0), rows(noisy_curve(0, 100))),
        (bf16(config("m2", 1)), rows(noisy_curve(1, 100))),
    ]
    adgm = [
        (bf16(config("adgm", 0)), rows(noisy_curve(10, 100, -1.0))),
        (config("adgm", 1), rows(noisy_curve(11, 100, -2.0))),
    ]
    with pytest.raises(AdgmError, match="must be seeds of one setting"):
        paired_seeds_table(m2, adgm, [(5, 100)])
    table = paired_seeds_table(m2, adgm, [(5, 100)], pool_precisions=True).splitlines()
    assert table[0].startswith("| test error minus M2 1 MC, fp32 and bf16's")
    assert table[2].startswith("| ADGM 1 MC, bf16, seed 0, label seed 0 | ")
    assert table[3].startswith("| ADGM 1 MC, seed 1, label seed 1 | ")
    means = [window_difference(m2[s][1], adgm[s][1], (5, 100)).mean for s in (0, 1)]
    row = table[4].split(" | ")
    assert row[0] == "| ADGM 1 MC, bf16 and fp32: over seeds, mean ± sd"
    assert row[1].startswith(
        f"{(means[0] + means[1]) / 2:+.2f} ± {abs(means[0] - means[1]) / math.sqrt(2):.2f} "
        "(2 seeds, ahead in 2;"
    )
    # The command line passes --pool-precisions on.
    folders = [
        run_folder(tmp_path / name, *run)
        for name, run in [("m2-0", m2[0]), ("m2-1", m2[1]), ("a-0", adgm[0])]
    ]
    command = ["reproduce", "paired-seeds", "--baseline", *folders[:2], "--runs", folders[2]]
    assert main([*command, "--windows", "5-100", "--pool-precisions"]) == 0
    assert "| ADGM 1 MC, bf16, seed 0, label seed 0 | " in capsys.readouterr().out
    assert main([*command, "--windows", "5-100"]) == 2
    assert "must be seeds of one setting" in capsys.readouterr().err
