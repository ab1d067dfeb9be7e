"""The figure and reproduction commands, end to end on tiny runs of real MNIST."""

from __future__ import annotations

import json
import shutil

import pytest

from adgm.cli import main
from adgm.errors import AdgmError

pytest.importorskip("matplotlib")

TINY = [
    "--subset",
    "2000",
    "--test-subset",
    "300",
    "--hidden",
    "32",
    "--z-dim",
    "6",
    "--a-dim",
    "5",
    "--eval-samples",
    "4",
    "--max-steps-per-epoch",
    "5",
]


def assert_png(path, min_bytes=2_000):
    from PIL import Image

    assert path.is_file() and path.stat().st_size > min_bytes, path
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG"


@pytest.fixture
def tiny_runs(mnist_dir, tmp_path):
    runs = {}
    for name in ("adgm", "adgm-det", "m2", "sdgm"):
        runs[name] = tmp_path / name
        assert (
            main(["train", *TINY, "--model", name, "--epochs", "2", "--out", str(runs[name])]) == 0
        )
    return runs


def test_curves_samples_and_active_units(tiny_runs, tmp_path, capsys):
    curves = tmp_path / "curves.png"
    assert main(["plot", "curves", *map(str, tiny_runs.values()), "--out", str(curves)]) == 0
    assert_png(curves)
    with_log = tmp_path / "with-log.png"
    args = ["plot", "curves", *map(str, tiny_runs.values()), "--reference", "--out", str(with_log)]
    assert main(args) == 0
    assert_png(with_log)
    started = tmp_path / "started"  # a run with no evaluation yet: skipped, with a line
    started.mkdir()
    shutil.copy(tiny_runs["m2"] / "config.json", started / "config.json")
    (started / "metrics.jsonl").write_text("")
    capsys.readouterr()
    assert main(["plot", "curves", str(tiny_runs["m2"]), str(started), "--out", str(curves)]) == 0
    assert capsys.readouterr().err == f"adgm: skipped {started}: no test-error measurements yet\n"
    assert main(["plot", "curves", str(started), str(started), "--out", str(curves)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "adgm: error: none of these runs has a test-error measurement yet"
    assert main(["plot", "curves", str(started), "--out", str(curves)]) == 2
    assert "has no test-error measurements yet" in capsys.readouterr().err

    assert main(["sample", str(tiny_runs["adgm"])]) == 0
    assert_png(tiny_runs["adgm"] / "samples.png")

    assert main(["plot", "active-units", str(tiny_runs["adgm"])]) == 0
    assert_png(tiny_runs["adgm"] / "active-units.png")
    report = json.loads((tiny_runs["adgm"] / "active-units.json").read_text())
    assert len(report["kl_per_unit"]["a"]) == 5 and len(report["kl_per_unit"]["z"]) == 6
    assert all(value >= 0 for value in report["kl_per_unit"]["z"])
    assert report["active"]["z"] == sum(v > 0.01 for v in report["kl_per_unit"]["z"])

    assert main(["sample", str(tiny_runs["sdgm"])]) == 0  # x from p(x|a,y,z), a from p(a|y,z)
    assert_png(tiny_runs["sdgm"] / "samples.png")
    assert main(["plot", "active-units", str(tiny_runs["sdgm"])]) == 0
    assert set(json.loads((tiny_runs["sdgm"] / "active-units.json").read_text())["active"]) == {
        "a",
        "z",
    }

    assert main(["plot", "active-units", str(tiny_runs["m2"])]) == 0  # z only
    assert set(json.loads((tiny_runs["m2"] / "active-units.json").read_text())["active"]) == {"z"}


def test_reproduce_table1_writes_a_parsable_table(mnist_dir, tmp_path, capsys):
    out = tmp_path / "table1"
    args = [
        "reproduce",
        "table1",
        *TINY,
        "--epochs",
        "1",
        "--seeds",
        "0",
        "1",
        "--variants",
        "adgm:1",
        "m2:1",
        "sdgm:1",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    lines = (out / "table1.md").read_text().splitlines()
    rows = [line.split("|")[1:-1] for line in lines if line.startswith("| ") and "%" in line]
    assert [row[0].strip() for row in rows] == ["ADGM (1 MC)", "M2 (1 MC)", "SDGM (1 MC)"]
    for row in rows:
        mean = float(row[1].split("%")[0])
        assert 0 <= mean <= 100 and row[3].strip() == "1" and row[4].strip() == "2"
    assert "2.25%" in rows[0][2]
    capsys.readouterr()
    # A second call finds the runs finished: it trains nothing and leaves their metrics alone.
    before = (out / "adgm-1mc-seed0" / "metrics.jsonl").read_text()
    assert main(args) == 0
    assert "epoch 1/1" not in capsys.readouterr().out
    assert (out / "adgm-1mc-seed0" / "metrics.jsonl").read_text() == before


def test_bad_variant_is_one_line(capsys):
    assert main(["reproduce", "table1", "--variants", "adgm:x"]) == 2
    assert "not MODEL:MC_SAMPLES" in capsys.readouterr().err


def test_summary_tabulates_each_run_from_its_metrics(tiny_runs, capsys):
    capsys.readouterr()
    assert main(["summary", *map(str, tiny_runs.values()), "--at", "1", "2", "7"]) == 0
    output = capsys.readouterr().out
    table, machines = output.split("\n\n")
    lines = table.splitlines()
    assert lines[0].startswith("| run | epoch 1 | epoch 2 | epoch 7 | last |")
    assert len(lines) == 2 + len(tiny_runs)
    assert machines.startswith("Machines (each run's starts.jsonl): adgm (epochs 1-2 on ")
    assert machines.count(" on ") == len(tiny_runs)
    assert len({line.count("|") for line in lines}) == 1  # every row has the header's cells
    for line, run in zip(lines[2:], tiny_runs.values()):
        cells = [c.strip() for c in line.strip("|").split("|")]
        errors = [
            json.loads(r)["test_error"] for r in (run / "metrics.jsonl").read_text().splitlines()
        ]
        assert cells[1] == f"{100 * errors[0]:.2f}%" and cells[3] == "-" and cells[6] == "2"


def test_summary_names_a_replaced_record_by_the_record_it_is_kept_in(tiny_runs, tmp_path, capsys):
    record = tmp_path / "record"
    shutil.copytree(
        tiny_runs["m2"], record / "replaced-record-2", ignore=shutil.ignore_patterns("checkpoints")
    )
    capsys.readouterr()
    assert main(["summary", str(tiny_runs["m2"]), str(record / "replaced-record-2")]) == 0
    table, machines = capsys.readouterr().out.split("\n\n")
    rows = table.splitlines()[2:]
    assert rows[0].startswith("| M2 1 MC, hidden 32 (m2) |")
    assert rows[1].startswith("| M2 1 MC, hidden 32 (record/replaced-record-2) |")
    assert rows[0].split("|")[2:] == rows[1].split("|")[2:]  # the same metrics, row for row
    assert "; record/replaced-record-2 (epochs 1-2 on " in machines


def test_summary_shows_a_run_not_yet_evaluated_as_a_row_of_dashes():
    from adgm.reproduce import summarise_runs

    evaluated = [{"epoch": 1, "seconds": 3600.0, "test_error": 0.25}]
    pending = [{"epoch": 1, "seconds": 1800.0}, {"epoch": 2, "seconds": 1800.0}]
    table = summarise_runs([("a", evaluated), ("b", pending)], [1, 5]).splitlines()
    assert table[2] == "| a | 25.00% | - | 25.00% | 25.00% (1) | 1 | 1.00 |"
    assert table[3] == "| b | - | - | - | - | 2 | 1.00 |"


def test_summary_time_to_an_error_sums_the_epochs_up_to_the_first_that_reached_it():
    from adgm.reproduce import summarise_runs

    rows = [
        {"epoch": 1, "seconds": 1000.0, "eval_seconds": 80.0, "test_error": 0.06},
        {"epoch": 2, "seconds": 1000.0},  # not evaluated: its time still counts
        {"epoch": 3, "seconds": 1000.0, "eval_seconds": 520.0, "test_error": 0.0499},
        {"epoch": 4, "seconds": 1000.0, "eval_seconds": 0.0, "test_error": 0.03},
    ]
    table = summarise_runs([("r", rows)], [1], time_to=[6, 5, 3, 2.25]).splitlines()
    assert table[0].endswith("| 6% at | 5% at | 3% at | 2.25% at |")
    assert table[1].count("---") == 1 + 1 + 4 + 4
    # 6%: epoch 1 after 1,080 s; 5%: epoch 3 after 3,600 s; 3%: epoch 4 after 4,600 s.
    assert table[2].endswith("| 0.30 h (1) | 1.00 h (3) | 1.28 h (4) | - |")


def test_run_labels_name_each_setting_that_departs_from_the_paper():
    from dataclasses import replace

    from adgm.config import RunConfig, preset_config
    from adgm.plots import run_label

    paper = RunConfig()
    assert run_label(paper) == "ADGM 1 MC"
    sdgm = replace(
        paper,
        model=replace(paper.model, name="sdgm"),
        train=replace(paper.train, precision="bf16", seed=1, mc_samples=10),
    )
    assert run_label(sdgm) == "SDGM 10 MC, bf16, seed 1"
    blind = replace(sdgm, model=replace(sdgm.model, classifier_reads_auxiliary=False))
    assert run_label(blind) == "SDGM 10 MC, classifier q(y|x), bf16, seed 1"
    assert run_label(preset_config("authors-2015")) == (
        "ADGM 1 MC, q(a|x) frozen, class-sorted, mean-log, sample-mean label weights, "
        "weight prior, alpha 1200, grey test images"
    )
    later = preset_config("authors-2016")  # on the SDGM its Gaussian init is the default one
    assert run_label(replace(later, model=replace(later.model, name="sdgm"))) == (
        "SDGM 1 MC, fixed order, mean-log, sample-mean label weights, Monte Carlo KL, "
        "weight prior, alpha 60, grey test images"
    )
    assert run_label(later) == (
        "ADGM 1 MC, fixed order, mean-log, sample-mean label weights, Monte Carlo KL, "
        "weight prior, small Gaussian init, alpha 60, grey test images"
    )


def test_curve_agreement_recovers_the_noise_and_an_offset_of_synthetic_curves():
    import numpy as np

    from adgm.reproduce import curve_agreement

    rng = np.random.default_rng(0)
    epochs = np.arange(5, 2005, 5)
    trend = 20 * np.exp(-epochs / 300) + 2  # percent, falling like a run's test error
    sigma = 0.3

    def rows(errors):
        return [{"epoch": int(e), "test_error": v / 100} for e, v in zip(epochs, errors)]

    first = trend + rng.normal(0, sigma, len(epochs))
    second = trend + rng.normal(0, sigma, len(epochs))
    same = curve_agreement(rows(first), rows(second))
    assert same["epochs"] == len(epochs) and same["last_epoch"] == 2000
    assert abs(same["noise"] - sigma) < 0.1 * sigma
    assert abs(same["spread"] - 2**0.5 * sigma) < 0.1 * sigma
    assert abs(same["bias"]) < 3 * same["bias_se"]
    shifted = curve_agreement(rows(first), rows(second + 1.0))
    assert abs(shifted["bias"] - 1.0) < 3 * shifted["bias_se"]
    assert abs(shifted["noise"] - sigma) < 0.1 * sigma  # an offset is not noise
    # Independent noise: the correlated standard error stays near sd / sqrt(n); a slow drift
    # between the two (a lead that grows with the epochs) makes successive differences
    # correlated and widens it several times.
    assert 0 <= same["autocorrelation"] < 0.15  # negatives count as none
    assert same["bias_se"] <= same["bias_se_correlated"] < 1.2 * same["bias_se"]
    drifting = curve_agreement(rows(first), rows(second + np.sin(epochs / 200)))
    assert drifting["autocorrelation"] > 0.5
    assert drifting["bias_se_correlated"] > 2 * drifting["bias_se"]
    with pytest.raises(AdgmError, match="share 2 evaluated epochs"):
        curve_agreement(rows(first)[:2], rows(second))


def test_band_agreement_measures_a_run_against_the_mean_and_range_of_seeds():
    import numpy as np

    from adgm.reproduce import band_agreement

    rng = np.random.default_rng(1)
    epochs = np.arange(5, 505, 5)
    trend = 20 * np.exp(-epochs / 100) + 3
    seeds = [trend + rng.normal(0, 0.5, len(epochs)) for _ in range(3)]
    other = trend - 2.0 + rng.normal(0, 0.5, len(epochs))

    def rows(errors, skip=()):
        return [
            {"epoch": int(e), "test_error": v / 100}
            for e, v in zip(epochs, errors)
            if int(e) not in skip
        ]

    # the other run misses epoch 10 and one seed misses epoch 15: neither epoch counts
    band = band_agreement(
        [rows(seeds[0]), rows(seeds[1], skip={15}), rows(seeds[2])], rows(other, {10})
    )
    kept = [k for k, e in enumerate(epochs) if e not in (10, 15)]
    stacked = np.array(seeds)[:, kept]
    diffs = other[kept] - stacked.mean(axis=0)
    assert band["epochs"] == len(kept) and band["references"] == 3
    assert band["first_epoch"] == 5 and band["last_epoch"] == 500
    assert band["bias"] == pytest.approx(diffs.mean())
    assert band["bias_se"] == pytest.approx(diffs.std(ddof=1) / len(kept) ** 0.5)
    centred = diffs - diffs.mean()
    r = max(0.0, float(centred[:-1] @ centred[1:] / (centred @ centred)))
    assert band["autocorrelation"] == pytest.approx(r)
    assert band["bias_se_correlated"] == pytest.approx(band["bias_se"] * ((1 + r) / (1 - r)) ** 0.5)
    assert band["seed_sd"] == pytest.approx(stacked.std(axis=0, ddof=1).mean())
    assert abs(band["bias"] + 2.0) < 3 * band["bias_se"]
    assert band["below"] == int((other[kept] < stacked.min(axis=0)).sum()) > 0
    assert band["above"] == int((other[kept] > stacked.max(axis=0)).sum())
    drifting = band_agreement([rows(s) for s in seeds], rows(other + epochs / 100))
    assert drifting["autocorrelation"] > 0.5
    assert drifting["bias_se_correlated"] > 2 * drifting["bias_se"]
    with pytest.raises(AdgmError, match="at least 2 reference runs"):
        band_agreement([rows(seeds[0])], rows(other))


def seeded_config(seed: int, **train):
    """The paper's RunConfig with training seed and labelled draw `seed` and `train` set."""
    from dataclasses import replace

    from adgm.config import RunConfig

    paper = RunConfig()
    return replace(
        paper,
        data=replace(paper.data, label_seed=seed),
        train=replace(paper.train, seed=seed, **train),
    )


def rows_at_100(error: float) -> list[dict]:
    """Metrics rows of a run evaluated once, at epoch 100, with `error` percent."""
    return [{"epoch": 100, "seconds": 1.0, "test_error": error / 100}]


def test_table1_from_runs_groups_seeds_of_a_setting_and_gives_mean_and_sd():
    import numpy as np

    from adgm.reproduce import table1_from_runs

    def rows(errors):  # epoch -> test error in percent
        return [{"epoch": e, "seconds": 1.0, "test_error": v / 100} for e, v in errors.items()]

    runs = [
        (seeded_config(0), rows({100: 5.0, 200: 2.0})),
        (seeded_config(1), rows({100: 6.0, 200: 3.0, 300: 1.5})),
        (seeded_config(2), rows({100: 4.0})),
        (seeded_config(0, precision="bf16"), rows({100: 7.0})),
    ]
    table = table1_from_runs(runs, [100, 200, 300]).splitlines()
    assert len(table) == 2 + 2 + 1
    at_100 = f"{np.mean([5, 6, 4]):.2f}% ± {np.std([5, 6, 4], ddof=1):.2f} (3 runs)"
    at_200 = f"{np.mean([2, 3]):.2f}% ± {np.std([2, 3], ddof=1):.2f} (2 runs)"
    at_200 = at_200.replace("(2 runs)", "(2 of 3 runs)")  # seed 2 has not got there
    last = "2.00% (200); 1.50% (300); 4.00% (100)"  # errors of different epochs: not averaged
    assert table[2] == (
        f"| ADGM 1 MC | {at_100} | {at_200} | 1.50% (1 of 3 runs) | {last} | 2.25% (± 0.08) |"
    )
    assert table[3] == "| ADGM 1 MC, bf16 | 7.00% | - | - | 7.00% (100) | 2.25% (± 0.08) |"
    assert table[4] == ("| authors' log, ADGM 10 MC | 5.44% | 1.59% | 1.60% | - | - |")
    # Seeds that all stopped at one epoch: their last evaluations are averaged.
    level = [(seeded_config(s), rows({100: v, 150: v / 2})) for s, v in enumerate([4.0, 6.0])]
    both = table1_from_runs(level, [100]).splitlines()[2]
    assert both == (
        f"| ADGM 1 MC | 5.00% ± {np.std([4, 6], ddof=1):.2f} (2 runs) | "
        f"2.50% ± {np.std([2, 3], ddof=1):.2f} (2 runs) (150) | 2.25% (± 0.08) |"
    )


def test_pooled_precisions_put_fp32_and_bf16_seeds_in_one_row_and_name_them():
    """With pool_precisions a bf16 and an fp32 run of other seeds are two seeds of one setting;
    an fp32 run of a bf16 run's seeds repeats it; each row names its runs' precisions."""
    import numpy as np

    from adgm.reproduce import table1_from_runs

    runs = [
        (seeded_config(0, precision="bf16"), rows_at_100(5.0)),
        (seeded_config(1, precision="fp32"), rows_at_100(7.0)),
        (seeded_config(0, precision="fp32"), rows_at_100(4.0)),
    ]
    apart = table1_from_runs(runs, [100]).splitlines()[2:4]
    assert [line.split(" | ")[0] for line in apart] == ["| ADGM 1 MC, bf16", "| ADGM 1 MC"]
    pooled = table1_from_runs(runs, [100], pool_precisions=True).splitlines()
    mean_sd = f"6.00% ± {np.std([5, 7], ddof=1):.2f} (2 runs)"
    assert pooled[2].startswith(f"| ADGM 1 MC, bf16 and fp32 | {mean_sd} | ")
    assert pooled[3].startswith("| ADGM 1 MC, fp32, repeat 2 | 4.00% | ")
    assert len(pooled) == 2 + 2 + 1


def test_a_repeat_of_a_seed_is_no_further_seed_of_its_setting():
    """The same command on another device repeats a run: its spread is no seed spread, so
    the k-th run of each seed pair makes a row of its own."""
    from adgm.reproduce import group_seeds, table1_from_runs

    runs = [
        (seeded_config(0, device="cpu"), rows_at_100(5.0)),
        (seeded_config(1, device="cpu"), rows_at_100(6.0)),
        (seeded_config(0, device="cuda"), rows_at_100(4.0)),
        (seeded_config(1, device="cuda"), rows_at_100(3.0)),
        (seeded_config(0, device="cuda"), rows_at_100(2.0)),
    ]
    groups = group_seeds(runs)
    assert list(groups) == ["ADGM 1 MC", "ADGM 1 MC, repeat 2", "ADGM 1 MC, repeat 3"]
    assert [[r[0]["test_error"] * 100 for r in g] for g in groups.values()] == [
        [5.0, 6.0],
        [4.0, 3.0],
        [2.0],
    ]
    table = table1_from_runs(runs, [100]).splitlines()
    assert table[2].startswith("| ADGM 1 MC | 5.50% ± 0.71 (2 runs) |")
    assert table[3].startswith("| ADGM 1 MC, repeat 2 | 3.50% ± 0.71 (2 runs) |")
    assert table[4] == "| ADGM 1 MC, repeat 3 | 2.00% | 2.00% (100) | 2.25% (± 0.08) |"


def test_seeds_of_a_setting_are_drawn_as_their_mean_with_their_range_shaded():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from adgm.plots import draw_curves

    def rows(errors):  # epoch -> test error in percent, with an unevaluated epoch between
        return [
            row
            for e, v in errors.items()
            for row in ({"epoch": e - 1}, {"epoch": e, "test_error": v / 100})
        ]

    seeds = [rows({5: 9.0, 10: 6.0, 15: 4.0}), rows({5: 7.0, 10: 5.0}), rows({5: 8.0, 10: 7.0})]
    other = rows({5: 20.0, 10: 15.0, 15: 12.0})
    fig, ax = plt.subplots()
    draw_curves(ax, [("SDGM 1 MC", seeds), ("M2 1 MC", [other])], reference=False)
    mean_line, went_on, single = ax.get_lines()
    np.testing.assert_allclose(went_on.get_xdata(), [10, 15])  # the first seed, alone, thin
    np.testing.assert_allclose(went_on.get_ydata(), [6, 4])
    assert went_on.get_color() == mean_line.get_color() and went_on.get_label().startswith("_")
    np.testing.assert_allclose(mean_line.get_xdata(), [5, 10])  # epochs all three evaluated
    np.testing.assert_allclose(mean_line.get_ydata(), [np.mean([9, 7, 8]), np.mean([6, 5, 7])])
    assert mean_line.get_label() == "SDGM 1 MC (3 seeds: mean, range shaded)"
    np.testing.assert_allclose(single.get_ydata(), [20, 15, 12])
    assert single.get_label() == "M2 1 MC"
    (band,) = ax.collections  # one band, the seeds', spanning their lowest to highest error
    outline = band.get_paths()[0].vertices
    corners = {(x, round(y, 9)) for x, y in outline}  # errors pass through /100 and *100
    assert corners >= {(5, 7), (5, 9), (10, 5), (10, 7)}
    assert corners <= {(5, 7), (5, 9), (10, 5), (10, 7), (5, 8), (10, 6)}  # nothing outside
    plt.close(fig)
    fig, ax = plt.subplots()
    long = "ADGM 1 MC, q(a|x) frozen, bf16, class-sorted, mean-log, alpha 1200, grey test images"
    draw_curves(ax, [(long, [other])], reference=False)
    (wrapped,) = ax.get_lines()  # a long label takes several legend lines, every word kept
    assert "\n" in wrapped.get_label() and wrapped.get_label().replace("\n", " ") == long
    plt.close(fig)
    fig, ax = plt.subplots()
    with pytest.raises(AdgmError, match="share no evaluated epoch"):
        draw_curves(ax, [("SDGM 1 MC", [rows({5: 9.0}), rows({10: 6.0})])], reference=False)
    plt.close(fig)


def test_plot_curves_groups_the_seeds_of_runs_when_asked(tiny_runs, tmp_path, capsys):
    seeded = tmp_path / "sdgm-seed1"  # the tiny SDGM run's files, as if trained with seed 1
    shutil.copytree(tiny_runs["sdgm"], seeded)
    config = json.loads((seeded / "config.json").read_text())
    config["train"]["seed"], config["data"]["label_seed"] = 1, 1
    (seeded / "config.json").write_text(json.dumps(config))
    figure = tmp_path / "seeds.png"
    runs = [str(tiny_runs["sdgm"]), str(seeded), str(tiny_runs["m2"])]
    assert main(["plot", "curves", *runs, "--group-seeds", "--out", str(figure)]) == 0
    assert_png(figure)
    unevaluated = tmp_path / "sdgm-seed2"  # evaluated at no epoch the others were
    shutil.copytree(seeded, unevaluated)
    config["train"]["seed"] = 2
    (unevaluated / "config.json").write_text(json.dumps(config))
    metrics = [json.loads(line) for line in (seeded / "metrics.jsonl").read_text().splitlines()]
    for row in metrics:
        row["epoch"] += 100
    (unevaluated / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
    capsys.readouterr()
    args = ["plot", "curves", *runs, str(unevaluated), "--group-seeds", "--out", str(figure)]
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "adgm: error: the runs of 'SDGM 1 MC, hidden 32' share no evaluated epoch"
    )


def test_plot_curves_pools_precisions_into_one_seed_band_when_asked(
    tiny_runs, tmp_path, capsys, monkeypatch
):
    import adgm.plots

    seeded = tmp_path / "sdgm-seed1-bf16"  # the tiny SDGM run's files, as if seed 1 in bf16
    shutil.copytree(tiny_runs["sdgm"], seeded)
    config = json.loads((seeded / "config.json").read_text())
    config["train"]["seed"], config["data"]["label_seed"] = 1, 1
    config["train"]["precision"] = "bf16"
    (seeded / "config.json").write_text(json.dumps(config))
    drawn = []
    monkeypatch.setattr(adgm.plots, "plot_curves", lambda curves, out, **_: drawn.append(curves))
    runs = [str(tiny_runs["sdgm"]), str(seeded), "--group-seeds", "--out", str(tmp_path / "f.png")]
    assert main(["plot", "curves", *runs]) == 0
    assert [(label, len(group)) for label, group in drawn[0]] == [
        ("SDGM 1 MC, hidden 32", 1),
        ("SDGM 1 MC, bf16, hidden 32", 1),
    ]
    assert main(["plot", "curves", *runs, "--pool-precisions"]) == 0
    assert [(label, len(group)) for label, group in drawn[1]] == [
        ("SDGM 1 MC, hidden 32, fp32 and bf16", 2)
    ]
    capsys.readouterr()
    assert main(["plot", "curves", *runs[:2], "--pool-precisions"]) == 2
    assert capsys.readouterr().err.strip() == (
        "adgm: error: --pool-precisions pools the seeds of --group-seeds; give both"
    )


def test_machine_note_gives_each_stretch_of_epochs_its_machine():
    from adgm.reproduce import machine_note

    xeon = {"cpu": "Intel Xeon", "cores": 2, "threads": 1, "torch": "2.14.1"}
    epyc = {"cpu": "AMD EPYC", "cores": 2, "threads": 1, "torch": "2.14.1"}
    gpu = {"cpu": "AMD EPYC", "gpu": "NVIDIA H100", "cores": 16, "threads": 16, "torch": "2.14.1"}
    starts = [
        {"epoch": 0, **xeon},
        {"epoch": 12, **xeon},  # a resume on the same machine: the same stretch
        {"epoch": 206, **epyc},  # mid-epoch 207: it counts from 207
        {"epoch": 207, **epyc},
        {"epoch": 250, **gpu},
        {"epoch": 251, **epyc},  # back after one epoch on the GPU
    ]
    assert machine_note("r", starts, 300) == (
        "r (epochs 1-206 on Intel Xeon, 2 cores, 1 thread, torch 2.14.1; "
        "207-250 on AMD EPYC, 2 cores, 1 thread, torch 2.14.1; "
        "251 on NVIDIA H100, 16 threads, torch 2.14.1; "
        "252-300 on AMD EPYC, 2 cores, 1 thread, torch 2.14.1)"
    )
    # A run older than starts.jsonl, and a start that has not finished an epoch yet.
    assert machine_note("old", [{"epoch": 196, **epyc}], 196) == ("old (epochs 1-196 not recorded)")
    assert machine_note("none", [], 5) == ""
    assert machine_note("fresh", [{"epoch": 0, **epyc}], 0) == ""  # no epoch finished yet
    # Resumed from an older checkpoint elsewhere: epochs 9-10 were trained again on the Xeon.
    back = [{"epoch": 0, **xeon}, {"epoch": 10, **epyc}, {"epoch": 8, **xeon}]
    assert machine_note("back", back, 20) == (
        "back (epochs 1-20 on Intel Xeon, 2 cores, 1 thread, torch 2.14.1)"
    )


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(1.5, 25.0, {"2", "3", "10", "20"}), (0.2, 60.0, {"0.2", "0.3", "1", "10", "20"})],
)
def test_the_log_error_axis_reads_as_plain_numbers(low, high, expected):
    """Tick labels of the log-scale axis are plain numbers a reader takes in at a glance, not
    matplotlib's default powers of ten (2 x 10^0); minor ticks are labelled where the range is
    short, as matplotlib's log formatter chooses."""
    from adgm.plots import _pyplot, plain_log_scale

    plt = _pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [low, high])
    plain_log_scale(ax)
    fig.canvas.draw()
    labels = {t.get_text() for minor in (False, True) for t in ax.get_yticklabels(minor=minor)}
    plt.close(fig)
    labels.discard("")
    assert expected <= labels, labels
    assert all(float(label) == float(f"{float(label):g}") for label in labels)  # plain numbers
    assert not any(mark in label for label in labels for mark in ("e", "$", "\u00d7", "\u2212"))


def test_a_legend_of_many_lines_goes_beside_the_axes_and_a_short_one_stays_inside(tmp_path):
    from PIL import Image

    from adgm.plots import LEGEND_INSIDE_LINES, plot_curves

    def rows(errors):
        return [{"epoch": e, "test_error": v / 100} for e, v in errors.items()]

    def width_of(curves):
        figure = plot_curves(curves, tmp_path / "curves.png", reference=True)
        with Image.open(figure) as image:
            return image.size[0]

    long = "ADGM 1 MC, q(a|x) frozen, bf16, class-sorted, mean-log, alpha 1200, grey test images"
    few = [("M2 1 MC", [rows({5: 20.0, 10: 15.0})]), ("SDGM 1 MC", [rows({5: 9.0, 10: 6.0})])]
    many = [(f"{long}, run {i}", [rows({5: 10.0 + i, 10: 5.0 + i})]) for i in range(5)]
    assert 5 * 2 > LEGEND_INSIDE_LINES  # each long label wraps to at least two lines
    assert width_of(few) == 6 * 120  # the figure as it always was: 6 inches at 120 dpi
    assert width_of(many) > 6 * 120 * 1.5  # widened for a legend to the right of the axes


def test_a_short_legend_that_would_hide_a_point_goes_beside_the_axes(tmp_path):
    """Two curves that zigzag across the whole height of the axes, a point every epoch, leave
    the legend no free place inside: it goes beside them."""
    import matplotlib

    matplotlib.use("Agg")
    from PIL import Image

    from adgm.plots import _legend_hides_points, draw_curves, plot_curves

    def rows(errors):
        return [{"epoch": e, "test_error": v / 100} for e, v in errors.items()]

    levels = [2.0, 4.0, 8.0, 16.0, 32.0]
    zigzag = {e: levels[e % 5] for e in range(1, 101)}
    zagzig = {e: levels[(e + 2) % 5] for e in range(1, 101)}
    crossing = [("M2 1 MC", [rows(zigzag)]), ("SDGM 1 MC", [rows(zagzig)])]
    figure = plot_curves(crossing, tmp_path / "crossing.png")
    with Image.open(figure) as image:
        assert image.size[0] > 6 * 120  # widened for the legend to the right of the axes

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    draw_curves(ax, crossing, reference=False)
    assert _legend_hides_points(fig, ax)  # inside, it would hide points
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    draw_curves(ax, [("M2 1 MC", [rows({5: 20.0, 10: 15.0})])], reference=False)
    assert not _legend_hides_points(fig, ax)
    plt.close(fig)


def test_curve_agreement_script_compares_a_run_with_the_band_of_several_seeds(tmp_path):
    import json
    import subprocess
    import sys
    from dataclasses import replace
    from pathlib import Path

    from adgm.config import RunConfig

    paper = RunConfig()
    curves = {  # run -> test errors (%) at epochs 5, 10, 15, 20
        "seed0": [10.0, 8.0, 6.0, 5.0],
        "seed1": [12.0, 9.0, 7.0, 6.0],
        "seed2": [14.0, 10.0, 8.0, 7.0],
        "other": [9.0, 9.5, 7.5, 4.0],
    }
    folders = []
    for k, (name, errors) in enumerate(curves.items()):
        folder = tmp_path / name
        folder.mkdir()
        config = replace(paper, train=replace(paper.train, seed=k))
        (folder / "config.json").write_text(json.dumps(config.to_dict()))
        rows = [
            {"epoch": 5 * (i + 1), "J": 100.0 - i, "test_error": e / 100}
            for i, e in enumerate(errors)
        ]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        folders.append(str(folder))
    script = Path(__file__).parents[1] / "benchmarks" / "curve_agreement.py"
    done = subprocess.run(
        [sys.executable, str(script), *folders], capture_output=True, text=True, check=True
    )
    # mean of the seeds: 12, 9, 7, 6; the other run: -3, +0.5, +0.5, -2 -> mean -1.00;
    # below the lowest seed at epochs 5 and 20, above the highest at none
    assert "| 5 | 12.00% (10.00-14.00) | 9.00% | -3.00 |" in done.stdout
    assert "difference from their mean -1.00 ±" in done.stdout
    assert "their own spread (sd across runs) 1.25 points" in done.stdout  # sd 2, 1, 1, 1
    assert "above the highest at 0, below the lowest at 2" in done.stdout
    alone = subprocess.run(
        [sys.executable, str(script), folders[0], folders[3]], capture_output=True, text=True
    )
    assert alone.returncode == 0 and "spread" in alone.stdout and "band" not in alone.stdout


def test_a_run_with_its_training_image_error_draws_it_dotted_beside_the_log_s_own():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from adgm.plots import draw_curves
    from adgm.reference import AUTHORS_LOG_TRAINING_IMAGE_ERROR

    measured = [
        {"epoch": 10, "test_error": 0.20, "train_error": 0.19},
        {"epoch": 20, "test_error": 0.15, "train_error": 0.12},
    ]
    plain = [{"epoch": 10, "test_error": 0.30}, {"epoch": 20, "test_error": 0.25}]
    fig, ax = plt.subplots()
    draw_curves(ax, [("ADGM 10 MC", [measured]), ("M2 1 MC", [plain])], reference=True)
    log_test, log_own, run, own, other = ax.get_lines()
    np.testing.assert_allclose(own.get_xdata(), [10, 20])
    np.testing.assert_allclose(own.get_ydata(), [19, 12])
    assert own.get_linestyle() == ":" and own.get_color() == run.get_color()
    np.testing.assert_allclose(
        log_own.get_ydata(), [AUTHORS_LOG_TRAINING_IMAGE_ERROR[e] for e in (10, 20)]
    )
    assert "training images" in log_own.get_label() and other.get_label() == "M2 1 MC"
    plt.close(fig)
    fig, ax = plt.subplots()  # no run measured it: neither line
    draw_curves(ax, [("M2 1 MC", [plain])], reference=True)
    assert len(ax.get_lines()) == 2
    plt.close(fig)
