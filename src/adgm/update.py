"""One optimiser update as the authors' released code makes it, without a host sync.

The released code constrains the total gradient norm to c_n, then clips each element to
[-c_v, c_v]:

    g' = clamp(s g, -c_v, c_v),   s = min(1, c_n / (||g|| + 1e-6))     (||g|| over all parameters)

and Adam steps on g'. torch.nn.utils computes the same; here s stays a tensor on the device
(no host sync) and the clamp is one pass per gradient instead of two (clamp_min, clamp_max).

A step whose loss or gradient norm is not finite changes nothing: the fused Adam kernel skips
the step on the device (its ``found_inf``, the mechanism of torch.amp.GradScaler) and leaves the
parameters, moments and step counts as they were. The flag then stays up, so every later step is
skipped too, until ``raise_if_diverged`` (one host sync) reports the first bad step. Calling it
after every step gives the immediate check; a GPU run can call it every few dozen steps.

The step can be captured in a CUDA graph (adgm.cuda_graph_step): it makes no host sync, takes
its step number as a device tensor if asked, and updates its one piece of state,
``first_bad_step``, in place, so a replay reads and writes the same memory as the capture.
"""

from __future__ import annotations

import torch


class ClippedAdamUpdate:
    """Clip the gradients of `parameters` (norm, then value) and take a fused Adam step.

    Args:
        optimizer: a torch.optim.Adam with fused=True over `parameters`.
        max_norm: c_n, or None for no norm constraint.
        max_value: c_v, or None for no element-wise clipping.
    """

    def __init__(
        self,
        optimizer: torch.optim.Adam,
        parameters: list[torch.nn.Parameter],
        *,
        max_norm: float | None,
        max_value: float | None,
    ):
        if not all(group.get("fused") for group in optimizer.param_groups):
            raise ValueError("ClippedAdamUpdate needs torch.optim.Adam(..., fused=True)")
        self.optimizer = optimizer
        self.parameters = parameters
        self.max_norm = max_norm
        self.max_value = max_value
        device = parameters[0].device
        # The number of the first step that diverged since the last check (0: none).
        self.first_bad_step = torch.zeros((), dtype=torch.long, device=device)

    def step(self, loss: torch.Tensor, step_number: int | torch.Tensor) -> None:
        """Clip the gradients already computed for `loss` and update, unless anything diverged.

        step_number (from 1; an int, or a () long tensor on the device) names this step if it
        is the first to diverge.
        """
        grads = [p.grad for p in self.parameters if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads, foreach=True)
        finite = torch.isfinite(norm) & torch.isfinite(loss.detach())
        first_bad = (self.first_bad_step == 0) & ~finite
        self.first_bad_step.copy_(torch.where(first_bad, step_number, self.first_bad_step))
        if self.max_norm is not None:  # g * min(1, c_n / (||g|| + 1e-6)), s a device tensor
            torch.nn.utils.clip_grads_with_norm_(self.parameters, self.max_norm, norm, foreach=True)
        if self.max_value is not None:
            for grad in grads:
                grad.clamp_(-self.max_value, self.max_value)
        self.optimizer.found_inf = (self.first_bad_step > 0).float()
        self.optimizer.step()

    def raise_if_diverged(self, error: type[Exception], message) -> None:
        """One host sync: raise error(message(k)) if step k was the first to diverge.

        The steps from k on were skipped, so the parameters are as they were before step k.
        """
        first_bad = int(self.first_bad_step)
        if first_bad:
            self.first_bad_step.zero_()
            raise error(message(first_bad))
