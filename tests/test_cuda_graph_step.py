"""CudaGraphStep on a CPU, with a stand-in for the CUDA graph calls that keeps their semantics:
a capture runs nothing, a replay runs the recorded step on whatever its static inputs hold.

What a GPU adds (the recorded kernels themselves) is checked by benchmarks/cuda_graph_check.py
on one; here: that stepping through captures and replays trains exactly as eager steps do
(warm-up, the captured step not lost or doubled, each batch copied in, the step number passed),
that a new learning rate or batch shape is recorded anew, and that a failed capture falls back.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from adgm.config import ModelConfig, TrainConfig
from adgm.cuda_graph_step import CudaGraphStep
from adgm.distributed import ProcessGroup
from adgm.models import build_model
from adgm.optimisation import OptimisationStep, TrainingDiverged

CPU = torch.device("cpu")


class StandInGraphs:
    """TorchCudaGraphs' two calls on a CPU. capture(record) traces the step to learn nothing
    but that it runs, then puts back every state the trace touched (weights, Adam's moments and
    step counts, the divergence flag, the RNG): a CUDA capture launches no kernel. The replay
    it returns runs the step again, on the capture's static inputs."""

    def __init__(self, optimisation: OptimisationStep, fail: bool = False):
        self.optimisation = optimisation
        self.fail = fail
        self.captures = 0
        self.side_streams = 0

    @contextlib.contextmanager
    def side_stream(self):
        self.side_streams += 1
        yield

    def capture(self, record):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing\nsecond line")
        self.captures += 1
        tensors = [*self.optimisation.parameters, self.optimisation.update.first_bad_step]
        for state in self.optimisation.optimizer.state.values():
            tensors += [value for value in state.values() if torch.is_tensor(value)]
        saved = [t.detach().clone() for t in tensors]
        rng = torch.get_rng_state()
        record()
        with torch.no_grad():
            for tensor, value in zip(tensors, saved, strict=True):
                tensor.copy_(value)
        torch.set_rng_state(rng)
        return record


def tiny_optimisation(seed: int = 0) -> OptimisationStep:
    torch.manual_seed(seed)
    model = build_model(
        ModelConfig(name="sdgm", hidden=(16,), z_dim=2, a_dim=3, x_dim=12, n_classes=3)
    )
    return OptimisationStep(
        model,
        TrainConfig(mc_samples=2),
        alpha=1.0,
        n_unlabelled=50,
        group=ProcessGroup(),
        device=CPU,
    )


def batches(n_steps: int, shapes=None):
    """Binary batches (x_l (6, 12), y_l (6,), x_u (B_u, 12)); B_u from shapes (default 10)."""
    generator = torch.Generator().manual_seed(1)
    for step in range(n_steps):
        n_unlabelled = shapes[step] if shapes else 10
        x_l = torch.bernoulli(torch.full((6, 12), 0.4), generator=generator)
        x_u = torch.bernoulli(torch.full((n_unlabelled, 12), 0.4), generator=generator)
        yield x_l, torch.arange(6) % 3, x_u


def train(step, n_steps: int, *, shapes=None, lr_at=None, optimisation=None):
    """The loss of each step and the weights after n_steps of `step` (lr_at: {step: lr})."""
    torch.manual_seed(5)
    losses = []
    for number, (x_l, y_l, x_u) in enumerate(batches(n_steps, shapes), start=1):
        if lr_at and number in lr_at:
            optimisation.set_lr(lr_at[number])
        losses.append(float(step(x_l, y_l, x_u, number=number).loss.detach()))
    weights = [p.detach().clone() for p in optimisation.parameters]
    return losses, weights


def eager_and_graphed(n_steps: int, *, fail: bool = False, **schedule):
    """(losses, weights) of eager steps and of graphed steps from the same start, the stand-in
    backend and the CudaGraphStep."""
    eager = tiny_optimisation()
    expected = train(eager, n_steps, optimisation=eager, **schedule)
    graphed = tiny_optimisation()
    backend = StandInGraphs(graphed, fail=fail)
    step = CudaGraphStep(
        graphed._step, lr_of=lambda: graphed.lr, device=CPU, backend=backend, warmup_steps=2
    )
    got = train(step, n_steps, optimisation=graphed, **schedule)
    return expected, got, step, backend


def assert_same_training(expected, got):
    assert got[0] == expected[0]  # every step's loss
    for want, have in zip(expected[1], got[1], strict=True):
        assert torch.equal(want, have)


def test_replayed_steps_train_exactly_as_eager_steps():
    expected, got, step, backend = eager_and_graphed(8)
    assert_same_training(expected, got)
    assert backend.side_streams == 2 and backend.captures == 1  # warm-up, then one capture
    assert step.replays == 6  # the captured step itself is a replay: nothing lost or doubled
    assert len(set(expected[0])) == 8  # the batches differ: each one was copied in


def test_a_new_learning_rate_is_recorded_anew():
    expected, got, step, backend = eager_and_graphed(8, lr_at={6: 1e-4})
    assert_same_training(expected, got)
    assert backend.captures == 2 and step.captured_lr == 1e-4 and step.replays == 6


def test_each_batch_shape_gets_its_capture_and_beyond_the_limit_steps_run_eagerly():
    shapes = [10, 10, 10, 10, 7, 10, 7, 4, 10]  # 4: a third shape, over max_captures = 2
    expected, got, step, backend = eager_and_graphed(len(shapes), shapes=shapes)
    assert_same_training(expected, got)
    assert backend.captures == 2 and step.replays == 6  # steps 3-7 and 9; step 8 ran eagerly


def test_a_failed_capture_is_said_once_and_training_goes_on_eagerly(capsys):
    expected, got, step, backend = eager_and_graphed(6, fail=True)
    assert_same_training(expected, got)
    assert step.replays == 0 and backend.captures == 0
    err = capsys.readouterr().err
    assert err == (
        "adgm: CUDA graph capture failed (RuntimeError: operation not permitted when stream "
        "is capturing); training on without graphs\n"
    )


def test_a_diverged_replayed_step_is_reported_with_its_own_number():
    optimisation = tiny_optimisation()
    step = CudaGraphStep(
        optimisation._step,
        lr_of=lambda: optimisation.lr,
        device=CPU,
        backend=StandInGraphs(optimisation),
        warmup_steps=1,
    )
    for number, (x_l, y_l, x_u) in enumerate(batches(6), start=1):
        if number == 4:
            x_u = x_u * float("nan")
        step(x_l, y_l, x_u, number=number)
    assert step.replays == 5
    with pytest.raises(TrainingDiverged, match="first bad step 4"):
        optimisation.raise_if_diverged(lambda k: f"first bad step {k}")


def test_cuda_graphs_refuse_several_processes():
    model = build_model(ModelConfig(name="m2", hidden=(8,), z_dim=2, x_dim=12, n_classes=3))
    with pytest.raises(Exception, match="--cuda-graphs trains one process"):
        OptimisationStep(
            model,
            TrainConfig(cuda_graphs=True, device="cuda"),
            alpha=1.0,
            n_unlabelled=50,
            group=ProcessGroup(rank=0, world_size=2),
            device=torch.device("cuda"),
        )


@pytest.mark.parametrize("model_name", ["m2", "adgm", "adgm-det", "adgm-gen", "sdgm"])
@pytest.mark.parametrize("authors_terms", [False, True])
def test_the_loss_and_its_gradients_need_no_value_from_the_device(model_name, authors_terms):
    """What a CUDA graph capture needs of the objective: no host sync (.item(), a tensor's
    truth value, shapes that depend on values). On the meta device, which holds no values,
    any of them raises."""
    from adgm.distributed import ObjectiveModule

    config = ModelConfig(name=model_name, hidden=(8, 8), z_dim=2, a_dim=3, x_dim=12, n_classes=3)
    objective = ObjectiveModule(
        build_model(config).to("meta"),
        alpha=1.0,
        n_samples=2,
        analytic_kl=not authors_terms,
        classification_term="mean-log" if authors_terms else "log-mean",
        weight_prior_scale=0.01 if authors_terms else 0.0,
    )
    x_l, x_u = torch.empty(6, 12, device="meta"), torch.empty(10, 12, device="meta")
    terms = objective(x_l, torch.empty(6, dtype=torch.long, device="meta"), x_u)
    terms.loss.backward()
    assert terms.loss.device.type == "meta"


def test_a_step_returns_its_terms_without_their_autograd_graph():
    """A returned loss that kept its graph would keep the step's nodes, the parameters' gradient
    accumulators among them, alive into the next step (on a GPU with CUDA graphs each warm-up
    step has a stream of its own, and torch warns at every backward that meets a stale one)."""
    optimisation = tiny_optimisation()
    x_l, y_l, x_u = next(batches(1))
    terms = optimisation(x_l, y_l, x_u, number=1)
    assert all(term.grad_fn is None and not term.requires_grad for term in terms)
    assert torch.isfinite(torch.stack(list(terms))).all()
