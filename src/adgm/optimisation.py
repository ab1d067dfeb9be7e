"""One optimisation step of the semi-supervised objective; no epochs, data order or files.

A step on a batch of labelled points (x_l, y_l) and unlabelled points x_u is

    J = mean_l L(x_l, y_l) + alpha mean_l clf(x_l, y_l) + mean_u U(x_u)     (adgm.objectives)
    g = clip(dJ/dtheta)          total norm, then element-wise (adgm.update)
    theta <- Adam(theta, g)      one fused pass over the trained parameters

with the forward pass under bf16 autocast when the run asks for it, and the loss through DDP
when several processes train together (their gradients are averaged before the update). A
step whose loss or gradient is not finite, and every step after it, changes no weight until
``raise_if_diverged`` reports it. With ``train.cuda_graphs`` (one process on a CUDA device) the
steps after the first few are replays of a recorded CUDA graph (adgm.cuda_graph_step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from adgm.config import TrainConfig
from adgm.cpu import warn_if_bf16_is_slow
from adgm.cuda_graph_step import CudaGraphStep
from adgm.distributed import ObjectiveModule, ProcessGroup, data_parallel
from adgm.errors import AdgmError
from adgm.models.base import GenerativeClassifier
from adgm.objectives import Objective
from adgm.update import ClippedAdamUpdate


class TrainingDiverged(AdgmError):
    """A non-finite loss or gradient; that step and the ones after it changed no weight."""


class OptimisationStep:
    """The objective, the optimiser and the clipped update of one model; see the module doc.

    ``parameters`` are the ones trained: all of the model's, except q(a|x)'s when
    ``train.train_auxiliary`` is False (the authors' paper-era code left them as drawn).
    """

    def __init__(
        self,
        model: GenerativeClassifier,
        train: TrainConfig,
        *,
        alpha: float,
        n_unlabelled: int,
        group: ProcessGroup,
        device: torch.device,
    ):
        if not train.train_auxiliary:
            for param in model.auxiliary_encoder_parameters():
                param.requires_grad_(False)
        self.cuda_graphs = train.cuda_graphs
        if self.cuda_graphs and group.world_size > 1:
            raise AdgmError("--cuda-graphs trains one process; leave it out under torchrun")
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        # The fused kernel updates every parameter in one pass (the same Adam maths); it is also
        # what lets ClippedAdamUpdate skip a diverged step on the device. capturable: the step
        # may be recorded in a CUDA graph (its step counts already live on the device).
        self.optimizer = torch.optim.Adam(
            self.parameters,
            lr=train.lr,
            betas=(train.beta1, train.beta2),
            fused=True,
            capturable=self.cuda_graphs,
        )
        # The first steps of a graphed run are eager on purpose (adgm.cuda_graph_step): torch's
        # warning that a capturable optimiser steps uncaptured says nothing new.
        self.optimizer._warned_capturable_if_run_uncaptured = True
        self.update = ClippedAdamUpdate(
            self.optimizer,
            self.parameters,
            max_norm=train.clip_grad_norm,
            max_value=train.clip_grad_value,
        )
        loss = ObjectiveModule(
            model,
            alpha=alpha,
            n_samples=train.mc_samples,
            analytic_kl=train.analytic_kl,
            classification_term=train.classification_term,
            label_weights=train.label_weights,
            weight_prior_scale=1.0 / n_unlabelled if train.weight_prior else 0.0,
            weight_prior_on=train.weight_prior_on,
        )
        self.loss_module = data_parallel(loss, group, device)
        self.autocast_dtype = torch.bfloat16 if train.precision == "bf16" else None
        warn_if_bf16_is_slow(train.precision, device)
        self.device_type = device.type
        self.graphed = (
            CudaGraphStep(self._step, lr_of=lambda: self.lr, device=device)
            if self.cuda_graphs
            else None
        )

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def __call__(self, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor, *, number: int):
        """Step `number` (from 1) of the epoch on x_l (B_l, D), y_l (B_l,), x_u (B_u, D).

        Returns the terms of the loss (adgm.objectives.ObjectiveTerms: loss J and its means of
        L, clf and U), still on the device (with CUDA graphs: overwritten by the next step).
        """
        if self.graphed is not None:
            return self.graphed(x_l, y_l, x_u, number=number)
        return self._step(x_l, y_l, x_u, number)

    def _step(self, x_l, y_l, x_u, number: int | torch.Tensor):
        """The step itself, eager or being recorded: no host sync, state updated in place.

        Returns the terms detached: a returned loss with its autograd graph would keep that
        step's nodes alive into the next step (the caller holds it while the next one runs),
        among them the parameters' gradient accumulators, which remember the CUDA stream they
        were made on; with CUDA graphs each eager warm-up step runs on a stream of its own, and
        torch then warns of the mismatch at every backward that meets a stale one."""
        with self.autocast():
            terms = self.loss_module(x_l, y_l, x_u)  # DDP averages the gradients over ranks
        self.optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        self.update.step(terms.loss, number)
        return Objective(*(term.detach() for term in terms))

    def autocast(self):
        """The context of the training step's forward pass (diagnostics that recompute the loss
        use it too). bf16: autocast (matrix products in bf16; densities, sums and the parameters
        and their gradients stay fp32). fp32: nothing changes. With CUDA graphs autocast keeps
        no cache of cast weights (a recorded step must cast them afresh)."""
        dtype = self.autocast_dtype
        return torch.autocast(
            self.device_type,
            dtype=dtype,
            enabled=dtype is not None,
            cache_enabled=not self.cuda_graphs,
        )

    def raise_if_diverged(self, message: Callable[[int], str]) -> None:
        """Raise TrainingDiverged(message(first bad step)) if a step since the last call
        diverged; one host sync."""
        self.update.raise_if_diverged(TrainingDiverged, message)

    def state_dict(self) -> dict[str, Any]:
        """The optimiser's state (Adam's moments and step counts, the learning rate)."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)
        for group in self.optimizer.param_groups:  # how to compute, not state: ours, not saved
            group["fused"], group["foreach"] = True, None
            group["capturable"] = self.cuda_graphs
        if self.graphed is not None:  # the moments are new tensors: record the step anew
            self.graphed.forget()
