"""adgm.batch_order: an epoch stopped after any step continues with exactly the batches an
uninterrupted epoch would have given, and its state carries that to a fresh BatchOrder."""

from dataclasses import replace

import pytest
import torch

from adgm.batch_order import BatchOrder
from adgm.config import RunConfig
from adgm.distributed import ProcessGroup
from tests.test_data import synthetic_split


def order_for(data, seed=0, max_steps=None):
    config = RunConfig()
    config = replace(
        config,
        data=replace(config.data, labelled_batch=6, unlabelled_batch=10),
        train=replace(config.train, seed=seed, max_steps_per_epoch=max_steps),
    )
    return BatchOrder(config, data, ProcessGroup())


def same_batches(first, second):
    return len(first) == len(second) and all(
        torch.equal(a, b) for one, other in zip(first, second) for a, b in zip(one, other)
    )


@pytest.mark.parametrize("stopped_after", [1, 2, 3])
def test_an_epoch_replayed_from_a_step_gives_the_rest_of_the_same_epoch(stopped_after):
    data = synthetic_split()  # 40 unlabelled rows, batches of 10: four steps an epoch
    whole = order_for(data)
    epochs = [list(whole.batches(0)) for _ in range(2)]
    assert whole.steps_per_epoch() == 4 and not same_batches(epochs[0], epochs[1])

    stopped = order_for(data)
    first_steps = list(stopped.batches(0))[:stopped_after]
    state = stopped.state_dict()
    resumed = order_for(data, seed=1)  # another seed: everything must come from the state
    resumed.load_state_dict(state)
    rest = list(resumed.batches(stopped_after))
    assert same_batches(first_steps + rest, epochs[0])
    assert same_batches(list(resumed.batches(0)), epochs[1])  # and the next epoch follows


def test_max_steps_per_epoch_caps_the_epoch():
    order = order_for(synthetic_split(), max_steps=3)
    assert order.steps_per_epoch() == 3 and len(list(order.batches(0))) == 3
