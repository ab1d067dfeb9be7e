"""ClippedAdamUpdate against torch's clipping and Adam, and its handling of diverged steps."""

from __future__ import annotations

import pytest
import torch

from adgm.update import ClippedAdamUpdate


def parameters_and_gradients(seed: int, n_steps: int):
    """Three parameters and, per step, gradients of mixed sizes: large (norm clipping acts),
    small (it does not), with a few elements big enough for the value clipping."""
    generator = torch.Generator().manual_seed(seed)
    shapes = [(6, 4), (4,), (3, 5)]
    params = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]
    scales = [30.0, 0.01, 2.0, 0.3][:n_steps]
    grads = [
        [scale * torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]
        for scale in scales
    ]
    return params, grads


def make_adam(params):
    leaves = [torch.nn.Parameter(p.clone()) for p in params]
    return leaves, torch.optim.Adam(leaves, lr=0.01, fused=True)


@pytest.mark.parametrize("max_norm, max_value", [(5.0, 1.0), (5.0, None), (None, 0.5)])
def test_update_equals_torch_clipping_then_adam(max_norm, max_value):
    params, grads = parameters_and_gradients(0, 4)
    reference, reference_adam = make_adam(params)
    ours, our_adam = make_adam(params)
    update = ClippedAdamUpdate(our_adam, ours, max_norm=max_norm, max_value=max_value)
    for number, step_grads in enumerate(grads, start=1):
        for leaf, grad in zip(reference, step_grads):
            leaf.grad = grad.clone()
        if max_norm is not None:
            torch.nn.utils.clip_grad_norm_(reference, max_norm)
        if max_value is not None:
            torch.nn.utils.clip_grad_value_(reference, max_value)
        reference_adam.step()
        for leaf, grad in zip(ours, step_grads):
            leaf.grad = grad.clone()
        update.step(torch.tensor(1.0), number)
        for expected, got in zip(reference, ours):
            torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    update.raise_if_diverged(RuntimeError, str)  # nothing diverged: no error


def test_a_diverged_step_and_all_later_ones_change_nothing_until_the_check():
    params, grads = parameters_and_gradients(1, 4)
    leaves, adam = make_adam(params)
    update = ClippedAdamUpdate(adam, leaves, max_norm=5.0, max_value=1.0)

    def step(number, step_grads, loss=1.0):
        for leaf, grad in zip(leaves, step_grads):
            leaf.grad = grad.clone()
        update.step(torch.tensor(loss), number)

    step(1, grads[0])
    after_first = [leaf.detach().clone() for leaf in leaves]
    state_after_first = {k: v.clone() for k, v in adam.state[leaves[0]].items()}
    step(2, [g * float("nan") for g in grads[1]])  # a gradient is not finite
    step(3, grads[2])  # finite, but after a bad step: skipped as well
    step(4, grads[3], loss=float("inf"))
    for before, leaf in zip(after_first, leaves):
        assert torch.equal(before, leaf.detach())
    for key, value in adam.state[leaves[0]].items():
        assert torch.equal(state_after_first[key], value), key
    with pytest.raises(RuntimeError, match="first bad step: 2"):
        update.raise_if_diverged(RuntimeError, lambda k: f"first bad step: {k}")
    update.raise_if_diverged(RuntimeError, str)  # the check resets the flag
    step(5, grads[2])
    assert not torch.equal(after_first[0], leaves[0].detach())  # steps again


def test_update_needs_the_fused_adam():
    leaves = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="fused=True"):
        ClippedAdamUpdate(torch.optim.Adam(leaves), leaves, max_norm=1.0, max_value=None)


def test_the_divergence_flag_is_updated_in_place_from_a_step_number_tensor():
    """What a CUDA graph replay needs: the flag stays the same tensor (a replay writes where the
    capture wrote), and the step number may come as a tensor the caller fills in."""
    params, grads = parameters_and_gradients(1, 2)
    leaves, adam = make_adam(params)
    update = ClippedAdamUpdate(adam, leaves, max_norm=5.0, max_value=1.0)
    flag = update.first_bad_step
    number = torch.tensor(0)
    for step_number, loss in ((1, 1.0), (7, float("nan"))):
        number.fill_(step_number)
        for leaf, grad in zip(leaves, grads[step_number % 2]):
            leaf.grad = grad.clone()
        update.step(torch.tensor(loss), number)
    assert update.first_bad_step is flag and int(flag) == 7
    with pytest.raises(RuntimeError, match="first bad step: 7"):
        update.raise_if_diverged(RuntimeError, lambda k: f"first bad step: {k}")
