"""benchmarks/gradient_norms.py, training_error.py, against_log.py and class_errors.py against
independent computations; resume_check.py's verdicts."""

from __future__ import annotations

import json
import os
import shutil
import statistics
from pathlib import Path

import pytest
import torch

from adgm.cli import main
from adgm.data import load_data
from adgm.data.batches import epoch_batches
from adgm.objectives import objective
from adgm.train import load_trained_model
from tests.scripts import load_script
from tests.test_cli import SMALL


def benchmark(name: str):
    """A script of benchmarks/ as a module."""
    return load_script("benchmarks", name)


gradient_norms = benchmark("gradient_norms")
training_error = benchmark("training_error")


@pytest.fixture(scope="module")
def small_m2(tmp_path_factory) -> tuple[Path, dict]:
    """A one-epoch, three-step M2 run reporting its last 300 training images (M2 predicts
    without drawing a, so what a benchmark reports of it can be recomputed exactly), trained
    once for the tests of this module that only read it: its folder and last metrics record."""
    if not os.environ.get("ADGM_DATA_DIR"):
        pytest.skip("ADGM_DATA_DIR is not set (CI sets it to ../shared/data/mnist)")
    out = tmp_path_factory.mktemp("small_m2") / "m2"
    small = [*SMALL, "--model", "m2", "--epochs", "1", "--max-steps-per-epoch", "3"]
    assert main(["train", *small, "--eval-train-points", "300", "--out", str(out)]) == 0
    return out, json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])


def training_batches(config, data, *, seed: int, steps: int | None):
    """The first `steps` training batches (None: the whole epoch), drawn as training (and the
    benchmarks) draw them."""
    return epoch_batches(
        data,
        torch.Generator().manual_seed(seed),
        labelled_batch=config.data.labelled_batch,
        unlabelled_batch=config.data.unlabelled_batch,
        max_steps=steps,
    )


def test_the_norms_are_those_the_training_step_clips(mnist_dir, tmp_path):
    out = tmp_path / "run"
    flags = [*SMALL, "--model", "sdgm", "--epochs", "1", "--max-steps-per-epoch", "3"]
    assert main(["train", *flags, "--mc-samples", "2", "--out", str(out)]) == 0
    figures = gradient_norms.gradient_norms(str(out), init=False, steps=3, seed=5)

    # The same batches and draws through the objective itself (every SDGM weight is trained,
    # no weight prior): the total norm of its gradient.
    config, model, _ = load_trained_model(out)
    model.train()
    data = load_data(config.data)
    norms = []
    batches = training_batches(config, data, seed=5, steps=3)
    torch.manual_seed(5)
    for x_l, y_l, x_u in batches:
        model.zero_grad()
        alpha = 0.01 * len(data.x_unlabelled)
        objective(model, x_l, y_l, x_u, alpha=alpha, n_samples=2).loss.backward()
        norms.append(float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])))
    assert len(norms) == 3
    assert abs(figures["median"] - statistics.median(norms)) < 1e-3 * figures["median"]
    assert figures["least"] <= figures["median"] <= figures["largest"]
    assert figures["constrained"] == sum(n > 5.0 for n in norms) / 3
    assert 0.0 <= figures["beyond"] < 1.0


def test_the_training_image_error_is_that_of_the_drawn_training_images(small_m2):
    """M2 predicts without drawing a: the figures can be recomputed exactly."""
    import numpy as np

    from adgm.data import binarise_fixed

    out, last = small_m2
    figures = training_error.training_error(str(out), points=200, samples=1, seed=4)

    config, model, _ = load_trained_model(out)
    data = load_data(config.data)
    rows = np.random.default_rng(4).permutation(len(data.x_unlabelled))[:200]
    x = torch.from_numpy(binarise_fixed(data.x_unlabelled[rows].numpy()))
    with torch.no_grad():
        wrong = model.predict_proba(x, 1).argmax(-1) != data.y_unlabelled[rows]
    assert figures["train"] == pytest.approx(100 * float(wrong.double().mean()), abs=1e-4)
    assert figures["test"] == pytest.approx(100 * last["test_error"], abs=1e-4)
    x_labelled = torch.from_numpy(binarise_fixed(data.x_labelled.numpy()))
    with torch.no_grad():
        wrong = model.predict_proba(x_labelled, 1).argmax(-1) != data.y_labelled
    assert figures["labelled"] == pytest.approx(100 * float(wrong.double().mean()), abs=1e-4)


def test_a_run_is_set_beside_the_log_at_the_epochs_both_have():
    from adgm.reference import AUTHORS_LOG_TEST_ERROR_ONE_SAMPLE, AUTHORS_LOG_TRAINING_IMAGE_ERROR

    against_log = benchmark("against_log")
    metrics = [
        {"epoch": 5, "test_error": 0.2, "train_error": 0.2},  # the log has no epoch 5
        {"epoch": 9},  # not evaluated
        {"epoch": 10, "test_error": 0.18, "train_error": 0.17},
        {"epoch": 20, "test_error": 0.15},  # no training-image error measured
    ]
    rows = against_log.rows_against_log(metrics)
    assert [r["epoch"] for r in rows] == [10, 20]
    assert rows[0]["test"] == pytest.approx(18.0) and rows[0]["gap"] == pytest.approx(1.0)
    assert rows[1]["train"] is None and rows[1]["gap"] is None
    log_gap = AUTHORS_LOG_TEST_ERROR_ONE_SAMPLE[20] - AUTHORS_LOG_TRAINING_IMAGE_ERROR[20]
    assert rows[1]["log_gap"] == pytest.approx(log_gap)
    mean_row = against_log.table(rows).splitlines()[-1].split(" | ")
    assert mean_row[1] == "16.50" and mean_row[2] == "17.00"  # training images: one epoch only


def test_the_class_errors_are_those_of_an_explicit_tally(small_m2):
    """M2 predicts without drawing a: its confusion matrix can be tallied image by image."""
    class_errors = benchmark("class_errors")
    out, last = small_m2
    figures = class_errors.run_class_errors(str(out), samples=1, seed=0, top=3)

    config, model, _ = load_trained_model(out)
    data = load_data(config.data)
    with torch.no_grad():
        predicted = model.predict_proba(data.x_test, 1).argmax(-1).tolist()
    truth = data.y_test.tolist()
    tally = [[0] * 10 for _ in range(10)]
    for t, p in zip(truth, predicted):
        tally[t][p] += 1
    wrong = sum(t != p for t, p in zip(truth, predicted))
    assert figures["error"] == pytest.approx(100 * wrong / len(truth))
    assert figures["error"] == pytest.approx(100 * last["test_error"], abs=1e-4)
    for t in range(10):
        expected = 100 * (1 - tally[t][t] / sum(tally[t])) if sum(tally[t]) else 0.0
        assert figures["per_class"][t] == pytest.approx(expected)
    answered = [sum(tally[t][p] for t in range(10) if t != p) for p in range(10)]
    assert figures["wrong_answers"] == answered and sum(answered) == wrong
    pairs = sorted(
        ((tally[t][p], t, p) for t in range(10) for p in range(10) if t != p and tally[t][p]),
        reverse=True,
    )
    listed = figures["confusions"]
    assert 0 < len(listed) <= 3
    assert [c["count"] for c in listed] == [n for n, _, _ in pairs[: len(listed)]]
    for c in listed:
        assert tally[c["true"]][c["predicted"]] == c["count"]
        assert c["share"] == pytest.approx(c["count"] / wrong)


def test_class_errors_of_an_earlier_epoch_read_that_epochs_checkpoint(
    small_m2, tmp_path, capsys, monkeypatch
):
    """--epoch N reads the checkpoint of the end of epoch N even where `latest` names a newer
    one; an epoch the run no longer keeps is one line that lists the epochs it keeps."""
    class_errors = benchmark("class_errors")
    out, _ = small_m2
    run = tmp_path / "run"
    shutil.copytree(out, run)
    at_epoch_1 = class_errors.run_class_errors(str(run), samples=1, seed=0, top=3)
    state = torch.load(run / "checkpoints" / "epoch-00001-step-00000.pt", weights_only=True)
    state["epoch"] = 2
    for name, weights in state["model"].items():
        if name.startswith("classifier"):
            weights.zero_()  # every image gets one class: a different tally
    torch.save(state, run / "checkpoints" / "epoch-00002-step-00000.pt")
    (run / "checkpoints" / "latest").write_text("epoch-00002-step-00000.pt\n")

    latest = class_errors.run_class_errors(str(run), samples=1, seed=0, top=3)
    assert latest["epoch"] == 2 and latest["error"] != at_epoch_1["error"]
    again = class_errors.run_class_errors(str(run), samples=1, seed=0, top=3, epoch=1)
    assert again == at_epoch_1

    monkeypatch.setattr("sys.argv", ["class_errors.py", str(run), "--epoch", "7"])
    with pytest.raises(SystemExit) as stopped:
        class_errors.main()
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no checkpoint of epoch 7" in err
    assert "(epochs kept: 1, 2)" in err


def test_a_run_folder_that_is_not_one_gets_one_line(tmp_path, capsys, monkeypatch):
    class_errors = benchmark("class_errors")
    monkeypatch.setattr("sys.argv", ["class_errors.py", str(tmp_path)])
    with pytest.raises(SystemExit) as stopped:
        class_errors.main()
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a run folder" in err


@pytest.mark.parametrize(
    "script", ["against_log", "auxiliary_use", "epoch_phase", "gradient_norms", "training_error"]
)
def test_the_scripts_that_read_a_run_folder_say_in_one_line_that_it_is_not_one(
    script, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr("sys.argv", [f"{script}.py", str(tmp_path)])
    with pytest.raises(SystemExit) as stopped:
        benchmark(script).main()
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{script}: error: {tmp_path} is not a run")


def test_the_last_training_images_are_those_the_run_reports(small_m2):
    """--last evaluates the images `adgm train --eval-train-points` reports: M2 predicts
    without drawing a, so the figure is the run's own train_error."""
    out, last = small_m2
    figures = training_error.training_error(str(out), points=300, samples=1, seed=0, last=True)
    assert figures["train"] == pytest.approx(100 * last["train_error"], abs=1e-4)
    drawn = training_error.training_error(str(out), points=300, samples=1, seed=0)
    assert drawn["test"] == figures["test"]


def test_the_prior_share_is_that_of_an_explicit_loop(mnist_dir, tmp_path):
    """The prior's share of each weight's Adam step, r = mean_t(c_t) |W| / N / sqrt(mean_t(c_t^2
    g_t^2)), recomputed from the objective and the prior written out here."""
    import numpy as np

    out = tmp_path / "run"
    flags = [*SMALL, "--model", "m2", "--epochs", "1", "--max-steps-per-epoch", "3"]
    assert main(["train", *flags, "--weight-prior", "--out", str(out)]) == 0
    figures = gradient_norms.gradient_norms(str(out), init=False, steps=4, seed=7)

    config, model, _ = load_trained_model(out)
    model.train()
    data = load_data(config.data)
    n = len(data.x_unlabelled)
    named = {name: p for name, p in model.named_parameters() if name.endswith(".weight")}
    weights = list(named.values())
    batches = training_batches(config, data, seed=7, steps=4)
    torch.manual_seed(7)
    factors, squares, bound_squares, total_squares = [], 0.0, [], []
    for x_l, y_l, x_u in batches:
        model.zero_grad()
        prior = sum(0.5 * (w**2).sum() for w in weights) / n
        loss = objective(model, x_l, y_l, x_u, alpha=0.01 * n, n_samples=1).loss + prior
        loss.backward()
        # The bound's gradient: the whole gradient less the prior's, W / N on each weight.
        bound_squares.append({})
        total_squares.append({})
        for name, p in model.named_parameters():
            g = p.grad.double()
            bound = g - (p.detach().double() / n if name in named else 0.0)
            network = name.split(".")[0]
            for squares_by_network, grad in ((bound_squares, bound), (total_squares, g)):
                step = squares_by_network[-1]
                step[network] = step.get(network, 0.0) + float(grad.pow(2).sum())
        total = np.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in model.parameters()))
        factor = min(1.0, 5.0 / total)
        factors.append(factor)
        grads = np.concatenate([w.grad.double().numpy().ravel() for w in weights])
        squares = squares + (factor * grads) ** 2
    magnitude = np.concatenate([w.detach().double().numpy().ravel() for w in weights])
    share = np.mean(factors) * np.abs(magnitude) / n / np.sqrt(squares / len(factors))

    found = figures["prior_share"]
    assert found["weights"] == share.size
    assert found["median"] == pytest.approx(np.median(share), rel=1e-3)
    assert found["above_0.1"] == pytest.approx(np.mean(share > 0.1), abs=1e-6)
    assert found["above_0.5"] == pytest.approx(np.mean(share > 0.5), abs=1e-6)
    assert 0 < found["median"] <= found["p99"]
    names = list(named)
    sizes = [p.numel() for p in weights]
    starts = np.cumsum([0, *sizes])
    for network in {name.split(".")[0] for name in names}:
        parts = [
            share[starts[i] : starts[i + 1]]
            for i, name in enumerate(names)
            if name.split(".")[0] == network
        ]
        ours = np.concatenate(parts)
        assert found["by_network"][network]["median"] == pytest.approx(np.median(ours), rel=1e-3)
        assert found["by_network"][network]["above_0.5"] == pytest.approx(np.mean(ours > 0.5))
    # The prior moves these norms by 1e-7 to 2e-5 of themselves here (the bound's gradient is
    # far larger than W / N in a run of three steps): compared at 1e-8, they tell it apart.
    prior_effects = []
    for network, norm in figures["bound_by_network"].items():
        explicit = np.median([np.sqrt(step[network]) for step in bound_squares])
        with_prior = np.median([np.sqrt(step[network]) for step in total_squares])
        assert norm == pytest.approx(explicit, rel=1e-8)
        prior_effects.append(abs(with_prior - explicit) / explicit)
    assert max(prior_effects) > 1e-6
    assert set(figures["bound_by_network"]) == set(bound_squares[0])
    # By default a run with the prior is measured over a whole epoch (Adam's second moment
    # spans more than one).
    whole_epoch = gradient_norms.gradient_norms(str(out), init=False, steps=None, seed=7)
    assert whole_epoch["steps"] == len(list(training_batches(config, data, seed=7, steps=None)))
    assert whole_epoch["steps"] > 12


def test_the_unsure_share_is_that_of_the_classifier_on_the_steps_images(small_m2):
    """M2's q(y|x) needs no draw of a: its largest class probability on the images the steps
    drew, from the classifier's own layers."""
    out, _ = small_m2
    figures = gradient_norms.gradient_norms(str(out), init=False, steps=3, seed=4)
    config, model, _ = load_trained_model(out)
    data = load_data(config.data)
    x_u = torch.cat([x for _, _, x in training_batches(config, data, seed=4, steps=3)])
    with torch.no_grad():
        logits = model.classifier_out(model.classifier(x_u)).double()
    log_probs = torch.log_softmax(logits, dim=1)
    unsure = -torch.expm1(log_probs.amax(dim=1))  # 1 - p_max, exact where p_max is near 1
    assert len(unsure) == 3 * config.data.unlabelled_batch
    assert figures["unsure"]["median"] == pytest.approx(float(unsure.median()), rel=1e-4)
    assert figures["unsure"]["above_1e-5"] == pytest.approx(float((unsure > 1e-5).double().mean()))


def test_a_run_without_the_prior_reports_no_prior_share(small_m2):
    out, _ = small_m2
    figures = gradient_norms.gradient_norms(str(out), init=False, steps=None, seed=0)
    assert figures["prior_share"] is None
    assert figures["steps"] == gradient_norms.DEFAULT_STEPS
    assert set(figures["buried"]) >= {"classifier", "z_encoder"}  # reported without the prior too
    assert set(figures["weight_norms"]) >= {"classifier", "z_encoder"}


def test_weight_norms_cover_the_trained_weight_matrices_of_each_network():
    import math

    from adgm.config import ModelConfig
    from adgm.models import build_model

    model = build_model(ModelConfig(name="adgm", hidden=(8, 6), z_dim=3, a_dim=2, x_dim=12))
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.fill_(1.0 if name.endswith("weight") else 100.0)  # biases must not count
    for param in model.a_encoder.parameters():
        param.requires_grad_(False)  # a frozen q(a|x): no prior, no norm
    # Every nn.Linear's weight in each top-level network but the frozen q(a|x), all set to 1.
    expected = {
        name: sum(m.weight.numel() for m in child.modules() if isinstance(m, torch.nn.Linear))
        for name, child in model.named_children()
        if name != "a_encoder"
    }
    expected = {name: n for name, n in expected.items() if n}
    found = gradient_norms.weight_norms(model)
    assert "a_encoder" not in found and "classifier" in found
    assert found == {k: pytest.approx(math.sqrt(n)) for k, n in expected.items()}


def test_buried_units_are_those_whose_incoming_weights_were_zeroed():
    from adgm.config import ModelConfig
    from adgm.models import build_model

    model = build_model(ModelConfig(name="m2", hidden=(8, 6), z_dim=3, x_dim=12))
    found = gradient_norms.buried_units(model)
    assert found["classifier"] == (0, 14) and found["z_encoder"] == (0, 14)
    with torch.no_grad():
        # Unit 2 of the classifier's first layer: every input map's row (x and, for others, y).
        for m in model.classifier.input_maps:
            m.weight[2] = 0.0
        model.classifier.layers[0].weight[[0, 5]] = 1e-4  # two units of its second layer
        model.z_encoder.input_maps[0].weight[4] = 0.0  # x's row only: y still reaches unit 4
    found = gradient_norms.buried_units(model)
    assert found["classifier"] == (3, 14)
    assert found["z_encoder"] == (0, 14)


def test_the_unsure_share_keeps_what_rounds_away_in_p_max():
    """1 - p_max of 1e-9 and 3e-6, where float32's p_max is 1.0 exactly, and one unsure image."""

    class Classifier:
        def predict_proba(self, x, n_samples):
            probs = torch.tensor(
                [[1.0, 1e-9, 0.0], [3e-6, 1.0, 0.0], [0.5, 0.3, 0.2]], dtype=torch.float32
            )
            return probs[: len(x)]

    found = gradient_norms.unsure_share(Classifier(), torch.zeros(3, 4))
    assert found["median"] == pytest.approx(3e-6, rel=1e-6)
    assert found["above_1e-5"] == pytest.approx(1 / 3)
    found = gradient_norms.unsure_share(Classifier(), torch.zeros(1, 4))
    assert found["median"] == pytest.approx(1e-9, rel=1e-6)


def test_resume_check_gives_no_verdict_when_a_signal_stops_a_run(tmp_path, monkeypatch):
    """A run the script did not ask to stop (a real SIGTERM, e.g. from `timeout`) ends the script
    with one line, instead of a comparison of a short run that would read as a difference."""
    from tests.test_train import tiny_run

    resume_check = benchmark("resume_check")
    config, data = tiny_run(epochs=2)
    original_start = resume_check.Trainer.start

    def start_then_signal(trainer):  # as if SIGTERM arrived during the first step
        original_start(trainer)
        trainer.stop_requested = True

    monkeypatch.setattr(resume_check.Trainer, "start", start_then_signal)
    with pytest.raises(SystemExit, match=r"adgm: stopped by a signal .*; no verdict"):
        resume_check._train(config, tmp_path / "straight", data)


def test_resume_check_finds_equal_runs_equal_and_a_short_run_different(tmp_path):
    """Its own stop is not an error, and the comparison tells a resumed run (equal, on a CPU)
    from one stopped short (different)."""
    from tests.test_train import tiny_run

    resume_check = benchmark("resume_check")
    config, data = tiny_run(epochs=2)
    resume_check._train(config, tmp_path / "straight", data)
    resume_check._train(config, tmp_path / "stopped", data, stop_at=(1, 2))
    short = resume_check._same(tmp_path / "straight", tmp_path / "stopped")
    assert short.startswith("WEIGHTS DIFFER")
    resumed = resume_check.Trainer(config, tmp_path / "stopped", data)
    resumed.resume()
    resumed.fit(log=lambda _: None)
    assert resume_check._same(tmp_path / "straight", tmp_path / "stopped") == (
        "weights equal, metrics equal"
    )
