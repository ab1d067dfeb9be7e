"""The training loop on synthetic data: schedule, exact resume, checkpoints and run folders."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch

from adgm.checkpoint import FOLDER, POINTER, load_checkpoint, load_latest_checkpoint
from adgm.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from adgm.data import Dataset, split_semi_supervised
from adgm.devices import deterministic_kernels
from adgm.errors import AdgmError
from adgm.run_folder import without_timings
from adgm.train import Trainer, TrainingInterrupted, learning_rate, read_metrics


def blobs(n: int, seed: int) -> Dataset:
    """Three classes of 20-pixel 'images': noisy grey-level prototypes."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(99).random((3, 20), dtype=np.float32)
    labels = rng.integers(0, 3, size=n)
    noise = 0.1 * rng.standard_normal((n, 20)).astype(np.float32)
    return Dataset(np.clip(prototypes[labels] + noise, 0, 1), labels)


def tiny_run(model: str = "adgm", **train_changes) -> tuple[RunConfig, object]:
    data_config = DataConfig(n_labels=6, labelled_batch=6, unlabelled_batch=20)
    config = RunConfig(
        data=data_config,
        model=ModelConfig(name=model, hidden=(16,), z_dim=2, a_dim=2, x_dim=20, n_classes=3),
        train=TrainConfig(
            **{"epochs": 4, "eval_samples": 5, "checkpoint_every": 1, **train_changes}
        ),
    )
    data = split_semi_supervised(blobs(200, 0), blobs(60, 1), data_config, n_classes=3)
    return config, data


def test_learning_rate_schedule_is_the_papers():
    config = RunConfig()
    assert learning_rate(config, 0) == pytest.approx(3e-4)
    assert learning_rate(config, 199) == pytest.approx(3e-4)
    assert learning_rate(config, 200) == pytest.approx(3e-4 * 0.75)
    assert learning_rate(config, 650) == pytest.approx(3e-4 * 0.75**3)


def test_resume_gives_bitwise_the_same_metrics_as_an_uninterrupted_run(tmp_path):
    config, data = tiny_run()
    straight = Trainer(config, tmp_path / "straight", data)
    straight.start()
    straight.fit(log=lambda _: None)

    half = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=2))
    first = Trainer(half, tmp_path / "resumed", data)
    first.start()
    first.fit(log=lambda _: None)
    second = Trainer(config, tmp_path / "resumed", data)
    second.resume()
    assert second.epoch == 2
    second.fit(log=lambda _: None)

    assert comparable(read_metrics(tmp_path / "resumed")) == comparable(
        read_metrics(tmp_path / "straight")
    )
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key


def test_checkpoint_is_self_describing_and_leaves_no_temp_files(tmp_path):
    config, data = tiny_run(epochs=1)
    trainer = Trainer(config, tmp_path, data)
    trainer.start("adgm train ...")
    trainer.fit(log=lambda _: None)
    state = load_latest_checkpoint(tmp_path)
    assert state["epoch"] == 1 and state["step"] == 0
    assert set(state) >= {"model", "optimizer", "config", "rng", "partial"}
    assert RunConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == trainer.config
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoints",
        "command.txt",
        "config.json",
        "lock",  # released: see test_run_lock.py
        "metrics.jsonl",
        "starts.jsonl",
    ]
    assert sorted(p.name for p in (tmp_path / FOLDER).iterdir()) == [
        "epoch-00001-step-00000.pt",
        POINTER,
    ]


def test_a_fresh_run_refuses_to_overwrite_an_existing_one(tmp_path):
    config, data = tiny_run(epochs=1)
    trainer = Trainer(config, tmp_path, data)
    trainer.start()
    trainer.fit(log=lambda _: None)
    with pytest.raises(AdgmError, match="already holds a run"):
        Trainer(config, tmp_path, data).start()


def test_resume_rejects_another_configuration(tmp_path):
    config, data = tiny_run(epochs=1)
    trainer = Trainer(config, tmp_path, data)
    trainer.start()
    trainer.fit(log=lambda _: None)
    other = dataclasses.replace(config, train=dataclasses.replace(config.train, lr=1e-3))
    with pytest.raises(AdgmError, match="another configuration"):
        Trainer(other, tmp_path, data).resume()


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    (tmp_path / "c.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(AdgmError, match="unreadable"):
        load_checkpoint(tmp_path / "c.pt")


def test_only_the_newest_checkpoints_are_kept_and_a_corrupt_latest_falls_back(tmp_path):
    config, data = tiny_run(epochs=5, keep_checkpoints=2)
    trainer = Trainer(config, tmp_path, data)
    trainer.start()
    trainer.fit(log=lambda _: None)
    folder = tmp_path / FOLDER
    assert sorted(p.name for p in folder.glob("*.pt")) == [
        "epoch-00004-step-00000.pt",
        "epoch-00005-step-00000.pt",
    ]
    assert (folder / POINTER).read_text().strip() == "epoch-00005-step-00000.pt"
    (folder / "epoch-00005-step-00000.pt").write_bytes(b"torn write")
    assert load_latest_checkpoint(tmp_path)["epoch"] == 4


@pytest.mark.parametrize(
    "model, changes",
    [
        ("adgm", {}),
        ("sdgm", {"eval_iw_samples": 3}),
        ("adgm-gen", {}),
        ("adgm", {"precision": "bf16"}),
    ],
)
def test_resume_from_the_middle_of_an_epoch_is_exact(tmp_path, model, changes):
    config, data = tiny_run(model, epochs=3, **changes)
    straight = Trainer(config, tmp_path / "straight", data)
    straight.start()
    straight.fit(log=lambda _: None)

    stopped = Trainer(config, tmp_path / "stopped", data)
    stopped.start()
    original_step = stopped.loop.step_once

    def step_then_ask_to_stop(*args, **kwargs):  # as Ctrl-C does, during epoch 2, step 3
        terms = original_step(*args, **kwargs)
        if stopped.epoch == 1 and stopped.step == 2:
            stopped.stop_requested = True
        return terms

    stopped.loop.step_once = step_then_ask_to_stop
    with pytest.raises(TrainingInterrupted, match="epoch 2, step 3"):
        stopped.fit(log=lambda _: None)
    resumed = Trainer(config, tmp_path / "stopped", data)
    resumed.resume()
    assert (resumed.epoch, resumed.step) == (1, 3)
    resumed.fit(log=lambda _: None)

    rows = read_metrics(tmp_path / "stopped")
    assert comparable(rows) == comparable(read_metrics(tmp_path / "straight"))
    assert ("test_log_likelihood" in rows[-1]) == ("eval_iw_samples" in changes)


def test_divergence_stops_with_a_clear_message(tmp_path):
    config, data = tiny_run(epochs=1)
    trainer = Trainer(config, tmp_path, data)
    trainer.start()
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(
        AdgmError, match="diverged at epoch 1, step 1: the loss or a gradient is not finite"
    ):
        trainer.fit(log=lambda _: None)


def test_training_on_blobs_beats_chance(tmp_path):
    config, data = tiny_run(epochs=15, seed=1, lr=1e-2)
    trainer = Trainer(config, tmp_path, data)
    trainer.start()
    rows = trainer.fit(log=lambda _: None)
    assert rows[-1]["test_error"] < 0.2  # chance is 2/3
    assert rows[-1]["U"] < rows[0]["U"]  # the bound improves


def test_an_sdgm_whose_classifier_is_blind_to_a_learns_and_resumes_as_such(tmp_path):
    config, data = tiny_run("sdgm", epochs=15, seed=1, lr=1e-2)
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, classifier_reads_auxiliary=False)
    )
    trainer = Trainer(config, tmp_path, data)
    trainer.start()
    rows = trainer.fit(log=lambda _: None)
    assert rows[-1]["test_error"] < 0.2  # chance is 2/3
    stored = json.loads((tmp_path / "config.json").read_text())
    assert stored["model"]["classifier_reads_auxiliary"] is False
    state = load_latest_checkpoint(tmp_path)["model"]
    assert "classifier.input_maps.1.weight" not in state  # no weights for a


def test_a_bf16_run_learns_as_the_fp32_run_does(tmp_path):
    errors = {}
    for precision in ("fp32", "bf16"):
        config, data = tiny_run(epochs=15, seed=1, lr=1e-2, precision=precision)
        trainer = Trainer(config, tmp_path / precision, data)
        trainer.start()
        rows = trainer.fit(log=lambda _: None)
        errors[precision] = rows[-1]["test_error"]
        assert rows[-1]["U"] < rows[0]["U"]
    assert errors["bf16"] < 0.2, errors  # chance is 2/3
    assert abs(errors["bf16"] - errors["fp32"]) < 0.1, errors


def test_opt_in_rollback_restores_the_last_checkpoint_and_lowers_the_lr(tmp_path, monkeypatch):
    import adgm.distributed

    config, data = tiny_run(epochs=4, rollbacks=2, rollback_lr_factor=0.5)
    steps_per_epoch = 200 // 20
    calls = {"n": 0}
    real_objective = adgm.distributed.objective

    def nan_once_in_epoch_3(*args, **kwargs):  # the 5th step of epoch 3 diverges, once
        calls["n"] += 1
        terms = real_objective(*args, **kwargs)
        if calls["n"] == 2 * steps_per_epoch + 5:
            return terms._replace(loss=terms.loss * float("nan"))
        return terms

    monkeypatch.setattr(adgm.distributed, "objective", nan_once_in_epoch_3)
    trainer = Trainer(config, tmp_path, data)
    trainer.start()
    messages = []
    rows = trainer.fit(log=messages.append)

    rollback = [m for m in messages if "rollback 1/2" in m]
    assert len(rollback) == 1 and "diverged at epoch 3, step 5" in rollback[0]
    assert "back to epoch 2, step 0" in rollback[0]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert [r["epoch"] for r in read_metrics(tmp_path)] == [1, 2, 3, 4]
    assert [r["lr"] for r in rows] == pytest.approx([3e-4, 3e-4, 1.5e-4, 1.5e-4])
    assert load_latest_checkpoint(tmp_path)["lr_scale"] == 0.5


def test_rollbacks_run_out_and_then_the_run_stops(tmp_path):
    config, data = tiny_run(epochs=2, rollbacks=1)
    trainer = Trainer(config, tmp_path, data)
    trainer.start()
    with torch.no_grad():  # every step diverges, so does the retry from the start checkpoint
        trainer.model.z_head.mu.weight.fill_(float("nan"))
    trainer.save()
    messages = []
    with pytest.raises(AdgmError, match="diverged at epoch 1, step 1"):
        trainer.fit(log=messages.append)
    assert len([m for m in messages if "rollback 1/1" in m]) == 1


def test_tensorboard_gets_the_same_numbers_as_the_metrics_file(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config, data = tiny_run(epochs=3, tensorboard=True)
    trainer = Trainer(config, tmp_path, data)
    trainer.start()
    trainer.fit(log=lambda _: None)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    metrics = read_metrics(tmp_path)
    for name in ("J", "U", "test_error", "lr"):
        logged = events.Scalars(name)
        assert [e.step for e in logged] == [1, 2, 3]
        np.testing.assert_allclose([e.value for e in logged], [r[name] for r in metrics], rtol=1e-6)


def test_a_checkpoint_from_before_newer_settings_still_resumes(tmp_path):
    from adgm.checkpoint import save_checkpoint

    config, data = tiny_run(epochs=1)
    trainer = Trainer(config, tmp_path, data)
    trainer.start()
    trainer.fit(log=lambda _: None)
    state = load_latest_checkpoint(tmp_path)
    for section, field in (("model", "likelihood"), ("train", "rollbacks"), ("data", "dataset")):
        del state["config"][section][field]  # as written by an adgm without these settings
    save_checkpoint(tmp_path, state, keep=3)
    resumed = Trainer(
        dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=2)),
        tmp_path,
        data,
    )
    resumed.resume()
    assert resumed.epoch == 1
    resumed.release_lock()
    other = dataclasses.replace(config, train=dataclasses.replace(config.train, lr=1e-2))
    with pytest.raises(AdgmError, match="another configuration"):
        Trainer(other, tmp_path, data).resume()


@pytest.mark.parametrize("train_auxiliary", [True, False])
def test_no_train_auxiliary_keeps_q_a_at_its_initial_weights(tmp_path, train_auxiliary):
    config, data = tiny_run(epochs=1, train_auxiliary=train_auxiliary)
    trainer = Trainer(config, tmp_path, data)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.start()
    trainer.fit(log=lambda _: None)
    for name, param in trainer.model.named_parameters():
        is_q_a = name.startswith(("a_encoder.", "a_head."))
        unchanged = torch.equal(before[name], param.detach())
        assert unchanged == (is_q_a and not train_auxiliary), name


def test_training_flushes_denormals_and_restores_the_callers_mode(tmp_path):
    def flushing():
        return torch.tensor([1e-39]).mul(2.0).item() == 0.0

    torch.set_flush_denormal(False)
    config, data = tiny_run(epochs=1)
    trainer = Trainer(config, tmp_path, data)
    trainer.start()
    seen = []
    trainer.fit(log=lambda _: seen.append(flushing()))
    assert seen == [True] and not flushing()


def test_a_run_that_checks_divergence_every_few_steps_names_the_first_bad_step(
    tmp_path, monkeypatch
):
    import adgm.distributed

    config, data = tiny_run(epochs=1)
    calls = {"n": 0}
    real_objective = adgm.distributed.objective

    def nan_at_step_3(*args, **kwargs):
        calls["n"] += 1
        terms = real_objective(*args, **kwargs)
        return terms._replace(loss=terms.loss * float("nan")) if calls["n"] == 3 else terms

    monkeypatch.setattr(adgm.distributed, "objective", nan_at_step_3)
    trainer = Trainer(config, tmp_path, data)
    trainer.loop.divergence_check_every = 4  # as on a GPU, which checks every 50 steps
    trainer.start()
    weights = {}

    def keep_weights_after_step_2(*args, **kwargs):
        terms = real_step(*args, **kwargs)
        if kwargs["number"] == 2:
            weights.update({n: p.detach().clone() for n, p in trainer.model.named_parameters()})
        return terms

    real_step = trainer.loop.step_once
    trainer.loop.step_once = keep_weights_after_step_2
    with pytest.raises(AdgmError, match="diverged at epoch 1, step 3: the loss or a gradient"):
        trainer.fit(log=lambda _: None)
    assert calls["n"] == 4  # found at the check after step 4
    for name, param in trainer.model.named_parameters():
        assert torch.equal(weights[name], param.detach()), name


def test_divergence_without_a_run_folder_says_no_weight_changed():
    config, data = tiny_run(epochs=1)
    trainer = Trainer(config, None, data)  # as ADGMClassifier.fit trains: nothing written
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(AdgmError, match="step 1: .* not finite; no weight was changed by it"):
        trainer.train_epoch()


@pytest.mark.parametrize("name", ["mps", "meta", "tpu0"])
def test_devices_other_than_cpu_and_cuda_are_refused_by_name(name):
    from adgm.train import resolve_device

    with pytest.raises(AdgmError, match=f"device '{name}'; use 'cpu' or 'cuda'"):
        resolve_device(name)
    assert resolve_device("cpu") == torch.device("cpu")


def comparable(rows):
    return list(map(without_timings, rows))


def straight_run(tmp_path, **changes):
    config, data = tiny_run(epochs=3, **changes)
    trainer = Trainer(config, tmp_path / "straight", data)
    trainer.start()
    trainer.fit(log=lambda _: None)
    return comparable(read_metrics(tmp_path / "straight"))


def test_timed_checkpoints_are_written_within_epochs_and_change_nothing(tmp_path):
    reference = straight_run(tmp_path)
    config, data = tiny_run(epochs=3, checkpoint_every_minutes=1e-9, keep_checkpoints=1000)
    trainer = Trainer(config, tmp_path / "timed", data)
    trainer.start()
    trainer.fit(log=lambda _: None)
    names = [p.name for p in (tmp_path / "timed" / FOLDER).glob("epoch-*.pt")]
    within = [n for n in names if not n.endswith("step-00000.pt")]
    assert len(within) >= 2 * trainer.steps_per_epoch() - 3, names  # about one a step
    assert comparable(read_metrics(tmp_path / "timed")) == reference
    with pytest.raises(AdgmError, match="checkpoint_every_minutes must be positive"):
        TrainConfig(checkpoint_every_minutes=0).validate()


def test_a_full_disk_during_a_checkpoint_is_one_error_and_loses_nothing(tmp_path, monkeypatch):
    import adgm.checkpoint

    reference = straight_run(tmp_path)
    real_save, calls = adgm.checkpoint.torch.save, {"n": 0}

    def full_disk_on_the_second(state, out):
        calls["n"] += 1
        if calls["n"] == 2:
            out.write(b"part of a checkpoint")
            raise RuntimeError(
                "[enforce fail at inline_container.cc:672] . unexpected pos 64\nmore"
            )
        real_save(state, out)

    monkeypatch.setattr(adgm.checkpoint.torch, "save", full_disk_on_the_second)
    config, data = tiny_run(epochs=3)
    trainer = Trainer(config, tmp_path / "full", data)
    trainer.start()
    with pytest.raises(AdgmError) as error:
        trainer.fit(log=lambda _: None)
    message = str(error.value)
    assert "\n" not in message
    assert "cannot write a checkpoint in" in message and "enforce fail" in message
    assert "the newest intact checkpoint is epoch-00001-step-00000.pt" in message
    assert "free some space and continue with --resume" in message
    assert not [p for p in (tmp_path / "full" / FOLDER).iterdir() if p.suffix == ".tmp"]
    monkeypatch.setattr(adgm.checkpoint.torch, "save", real_save)
    resumed = Trainer(config, tmp_path / "full", data)
    resumed.resume()
    assert resumed.epoch == 1
    resumed.fit(log=lambda _: None)
    assert comparable(read_metrics(tmp_path / "full")) == reference


def test_a_metrics_write_error_names_the_file_and_loses_nothing(tmp_path, monkeypatch):
    import errno

    import adgm.run_folder

    reference = straight_run(tmp_path)
    real_append, calls = adgm.run_folder._append_line, {"n": 0}

    def full_on_the_second(path, line):
        calls["n"] += path.name == "metrics.jsonl"  # the second epoch's row
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_append(path, line)

    monkeypatch.setattr(adgm.run_folder, "_append_line", full_on_the_second)
    config, data = tiny_run(epochs=3)
    trainer = Trainer(config, tmp_path / "full", data)
    trainer.start()
    with pytest.raises(
        AdgmError, match="cannot append to .*metrics.jsonl .*No space left"
    ) as error:
        trainer.fit(log=lambda _: None)
    assert "the newest intact checkpoint is epoch-00001-step-00000.pt" in str(error.value)
    monkeypatch.setattr(adgm.run_folder, "_append_line", real_append)
    resumed = Trainer(config, tmp_path / "full", data)
    resumed.resume()
    resumed.fit(log=lambda _: None)
    assert comparable(read_metrics(tmp_path / "full")) == reference


def test_a_full_disk_at_the_start_record_is_one_line_and_trains_nothing(tmp_path, monkeypatch):
    import errno

    import adgm.run_folder

    def full(path, line):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(adgm.run_folder, "_append_line", full)
    config, data = tiny_run(epochs=1)
    trainer = Trainer(config, tmp_path / "full", data)
    trainer.start()
    with pytest.raises(AdgmError, match="cannot append to .*starts.jsonl .*No space left"):
        trainer.fit(log=lambda _: None)
    assert trainer.epoch == 0 and trainer.step == 0


def test_a_gpu_runs_generator_state_goes_into_the_checkpoint_and_back(tmp_path, monkeypatch):
    """Not run on a GPU here: the CUDA RNG calls are stand-ins that record what they get."""
    gpu_state = torch.arange(8, dtype=torch.uint8)
    restored = {}
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: gpu_state)
    monkeypatch.setattr(
        torch.cuda, "set_rng_state", lambda state, device: restored.update(state=state)
    )
    config, data = tiny_run(epochs=1)
    trainer = Trainer(config, tmp_path, data)
    trainer.start()
    # As if it trained on a GPU: the loop's device decides whether the checkpoint holds the
    # GPU generator's state (its optimiser and Ctrl-C agreement keep the CPU, unused here).
    trainer.loop.device = torch.device("cuda")
    trainer.save()
    assert torch.equal(load_latest_checkpoint(tmp_path)["rng"]["cuda"], gpu_state)
    trainer.release_lock()
    resumed = Trainer(config, tmp_path, data)
    resumed.loop.device = torch.device("cuda")
    resumed.resume()
    assert torch.equal(restored["state"], gpu_state)


def test_an_epoch_tally_gives_each_terms_mean_and_keeps_only_the_clocked_seconds(monkeypatch):
    from adgm import epoch_tally

    now = [100.0]  # a clock the test moves by hand
    monkeypatch.setattr(epoch_tally.time, "perf_counter", lambda: now[0])
    tally = epoch_tally.EpochTally()
    tally.start_clock()
    now[0] += 2.0
    tally.keep(torch.tensor([6.0, 3.0, 0.3, 3.0]))  # after 3 steps: a checkpoint
    saved = tally.state_dict()
    now[0] += 50.0  # the run was stopped: not the epoch's time
    resumed = epoch_tally.EpochTally()
    resumed.load_state_dict(saved)
    resumed.start_clock()
    now[0] += 1.0
    resumed.keep(torch.tensor([10.0, 4.0, 0.4, 6.0]))  # after 4 steps in all
    row = resumed.close(4)
    assert row == pytest.approx(
        {"J": 2.5, "L": 1.0, "clf": 0.1, "U": 1.5, "seconds": 3.0, "steps_per_s": 4 / 3.0}
    )
    assert resumed.sums.tolist() == [0.0] * 4 and resumed.seconds == 0.0  # the next epoch's


def test_a_test_log_likelihood_of_grey_bernoulli_images_is_refused_before_any_file_is_written(
    tmp_path,
):
    config, data = tiny_run(eval_iw_samples=3)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, test_inputs="grey"))
    with pytest.raises(AdgmError, match="eval_iw_samples needs binary test images"):
        Trainer(config, tmp_path / "run", data)
    assert not (tmp_path / "run").exists()


def test_grey_test_inputs_change_nothing_for_gaussian_data_so_the_likelihood_is_taken(tmp_path):
    config, data = tiny_run(epochs=1, eval_iw_samples=3)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, test_inputs="grey"))
    standardised = (data.x_unlabelled - data.x_unlabelled.mean(0)) / data.x_unlabelled.std(0)
    gaussian = dataclasses.replace(data, likelihood="gaussian", x_unlabelled=standardised)
    trainer = Trainer(config, tmp_path, gaussian)
    trainer.start()
    trainer.fit(log=lambda _: None)
    assert np.isfinite(read_metrics(tmp_path)[-1]["test_log_likelihood"])


def test_deterministic_runs_the_steps_with_deterministic_kernels_then_restores(
    tmp_path, monkeypatch
):
    """--deterministic: every step under torch's deterministic algorithms, with cuBLAS's fixed
    workspace; the caller's settings as they were afterwards; without it, neither."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    assert not torch.are_deterministic_algorithms_enabled()
    for wanted in (True, False):
        config, data = tiny_run(epochs=1, deterministic=wanted)
        trainer = Trainer(config, tmp_path / str(wanted), data)
        trainer.start()
        seen = []
        original_step = trainer.loop.step_once

        def step_and_look(*args, original_step=original_step, seen=seen, **kwargs):
            seen.append(
                (
                    torch.are_deterministic_algorithms_enabled(),
                    os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
                )
            )
            return original_step(*args, **kwargs)

        trainer.loop.step_once = step_and_look
        trainer.fit(log=lambda _: None)
        expected = (True, ":4096:8") if wanted else (False, None)
        assert seen and set(seen) == {expected}
        assert not torch.are_deterministic_algorithms_enabled()
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_deterministic_kernels_keep_a_callers_own_settings(monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    torch.use_deterministic_algorithms(True)
    try:
        with deterministic_kernels(True):
            assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
        assert torch.are_deterministic_algorithms_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    finally:
        torch.use_deterministic_algorithms(False)


def test_a_run_may_resume_with_or_without_deterministic_kernels(tmp_path):
    """How to compute, not what: switching --deterministic on resume is allowed, and on a CPU
    (repeatable either way) the resumed run equals the uninterrupted one."""
    config, data = tiny_run(epochs=2)
    straight = Trainer(config, tmp_path / "straight", data)
    straight.start()
    straight.fit(log=lambda _: None)
    first = Trainer(
        dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=1)),
        tmp_path / "switched",
        data,
    )
    first.start()
    first.fit(log=lambda _: None)
    switched = dataclasses.replace(
        config, train=dataclasses.replace(config.train, deterministic=True)
    )
    resumed = Trainer(switched, tmp_path / "switched", data)
    resumed.resume()
    resumed.fit(log=lambda _: None)
    assert comparable(read_metrics(tmp_path / "switched")) == comparable(
        read_metrics(tmp_path / "straight")
    )
