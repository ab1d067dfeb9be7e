"""Data-parallel training over several processes (``torchrun``), with DistributedDataParallel.

    torchrun --nproc-per-node 2 -m adgm train --out runs/ddp ...

Each of the W processes (ranks) takes its own shard of every epoch's shuffled unlabelled set
(rows rank, rank + W, ...) and the same labelled half, computes the loss of
``adgm.objectives.objective`` on it, and DDP averages the gradients. One step thus estimates the
gradient of mean_l L + alpha mean_l clf + mean_u U with W times as many unlabelled rows (and W
independent draws of the noise for the labelled rows): the same objective, in expectation, as a
single process. An epoch is still one pass over the unlabelled set, in 1/W as many steps.
Only rank 0 writes the run folder, metrics and checkpoints. Backend: gloo on CPU, nccl on GPU.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from adgm.models.base import GenerativeClassifier
from adgm.objectives import Objective, objective, weight_prior_penalty, weights_under_prior


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place: rank in 0..world_size-1 (world_size 1: not distributed)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def join_process_group(device: torch.device) -> ProcessGroup:
    """Join the group torchrun describes in $WORLD_SIZE / $RANK (once); else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return ProcessGroup()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return ProcessGroup(dist.get_rank(), dist.get_world_size())


def leave_process_group(*, finished: bool) -> None:
    """Shut the process group down at the end of a distributed run (no-op otherwise).

    finished: the run ended normally on this process, so every process reaches this point; they
    then wait for each other first. Without that wait, a process that tore gloo down while
    another still sent its last messages now and then died with SIGABRT ("terminate called
    without an active exception"). After an error the others may never arrive: no wait.
    """
    if dist.is_initialized():
        if finished:
            dist.barrier()
        gc.collect()  # whatever still held the group (a DDP module in a cycle) goes first
        dist.destroy_process_group()


def local_device(requested: str) -> str:
    """Under torchrun, 'cuda' means this process's own GPU, cuda:$LOCAL_RANK."""
    if requested == "cuda" and "LOCAL_RANK" in os.environ:
        return f"cuda:{os.environ['LOCAL_RANK']}"
    return requested


class ObjectiveModule(nn.Module):
    """The model with the step's loss as its forward pass, so that DDP can wrap it.

    forward(x_l (B_l, D), y_l (B_l,), x_u (B_u, D)) -> Objective (see adgm.objectives); with
    weight_prior_scale s > 0 the loss also has s/2 sum_W ||W||^2 (a N(0, I) prior on the weight
    matrices trained, s = 1/N as the authors' code; of the networks weight_prior_on names, or
    all: adgm.objectives.weights_under_prior).
    """

    def __init__(
        self,
        model: GenerativeClassifier,
        *,
        alpha: float,
        n_samples: int,
        analytic_kl: bool,
        classification_term: str = "log-mean",
        label_weights: str = "per-sample",
        weight_prior_scale: float = 0.0,
        weight_prior_on: str = "all",
    ):
        super().__init__()
        self.model = model
        self.alpha, self.n_samples, self.analytic_kl = alpha, n_samples, analytic_kl
        self.classification_term = classification_term
        self.label_weights = label_weights
        self.weight_prior_scale = weight_prior_scale  # 1 / N with the weight prior, else 0
        self.weight_prior_on = weight_prior_on
        if weight_prior_scale:  # a network the model lacks is an error now, not at the first step
            weights_under_prior(model, weight_prior_on)

    def forward(self, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor) -> Objective:
        terms = self.bound(x_l, y_l, x_u)
        if not self.weight_prior_scale:
            return terms
        return terms._replace(loss=terms.loss + self.prior_penalty())

    def bound(self, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor) -> Objective:
        """The objective without the prior on the weights."""
        return objective(
            self.model,
            x_l,
            y_l,
            x_u,
            alpha=self.alpha,
            n_samples=self.n_samples,
            analytic_kl=self.analytic_kl,
            classification_term=self.classification_term,
            label_weights=self.label_weights,
        )

    def prior_penalty(self) -> torch.Tensor:
        """s/2 sum_W ||W||^2, a scalar (s = weight_prior_scale)."""
        return self.weight_prior_scale * weight_prior_penalty(self.model, self.weight_prior_on)


def data_parallel(module: nn.Module, group: ProcessGroup, device: torch.device) -> nn.Module:
    """DDP around `module` when there are several processes; the module itself otherwise."""
    if group.world_size == 1:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)
