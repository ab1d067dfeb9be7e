"""One training step recorded once as a CUDA graph and replayed, to save the host's launches.

On a GPU a step of these small networks is bound by the host launching its kernels (README,
Speed: a 10 MC ADGM step takes 6.5 ms on an H100, 3.8x its FLOP floor). A CUDA graph records
every kernel of one step (forward, backward, gradient clipping, the fused Adam update) once and
replays them all with one launch. ``CudaGraphStep`` wraps an eager step function

    step(x_l (B_l, D), y_l (B_l,), x_u (B_u, D), number) -> terms (tensors)

that makes no host sync and keeps its state in tensors it updates in place (adgm.optimisation
and adgm.update are written so), and calls it in three ways:

1. the first ``warmup_steps`` steps run eagerly on a side stream: real steps, which also make
   what a capture cannot (cuBLAS handles, the optimiser's moments, the allocator's blocks);
2. the next step is captured with its batch copied into static input tensors. A capture runs
   nothing, so that step is then replayed like every later one;
3. each later step copies its batch into the static inputs and its number into a device tensor,
   then replays. The terms it returns are static outputs, overwritten by the next replay.

A replay repeats exactly what was recorded: the learning rate (a new capture is made when
``lr_of()`` changes, every lr_decay_every epochs), the optimiser's state tensors (``forget``
drops the captures, e.g. after the optimiser's state is loaded) and the batch's shapes (one
capture per shape seen, at most ``max_captures``; beyond that a batch runs eagerly). Noise drawn
from the default CUDA generator advances at each replay as it would in an eager step. If a
capture fails, the reason is said once on stderr and every step from then on runs eagerly.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch

StepFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, "int | torch.Tensor"], Any]


class TorchCudaGraphs:
    """The CUDA side of ``CudaGraphStep``: a side stream for eager steps and graph capture."""

    def __init__(self, device: torch.device):
        self.device = device

    @contextlib.contextmanager
    def side_stream(self) -> Iterator[None]:
        """Run the body on a fresh stream that waits for, and is waited for by, the current."""
        current = torch.cuda.current_stream(self.device)
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(current)
        with torch.cuda.stream(stream):
            yield
        current.wait_stream(stream)

    def capture(self, record: Callable[[], None]) -> Callable[[], None]:
        """Record the kernels `record()` launches (running none of them); returns the replay."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            record()
        return graph.replay


class _Capture:
    """One recorded step: its static inputs, step number, outputs and replay."""

    def __init__(self, inputs: tuple[torch.Tensor, ...], number: torch.Tensor):
        self.inputs = inputs
        self.number = number
        self.outputs: Any = None
        self.replay: Callable[[], None] | None = None


class CudaGraphStep:
    """Calls `step` eagerly, then through recorded CUDA graphs; see the module docstring.

    Args:
        step: the eager step (see the module docstring); its number (from 1) comes as an int
            when it runs eagerly and as a () long tensor on the device when it is recorded.
        lr_of: the learning rate the optimiser will use now; a change means a new capture.
        device: the CUDA device the step runs on.
        backend: ``TorchCudaGraphs(device)`` unless given (tests give a stand-in).
        warmup_steps: eager steps before the first capture.
        max_captures: captures kept at once (one per batch shape).
    """

    def __init__(
        self,
        step: StepFunction,
        *,
        lr_of: Callable[[], float],
        device: torch.device,
        backend: Any = None,
        warmup_steps: int = 3,
        max_captures: int = 2,
    ):
        self.step = step
        self.lr_of = lr_of
        self.device = device
        self.backend = backend if backend is not None else TorchCudaGraphs(device)
        self.warmup_left = warmup_steps
        self.max_captures = max_captures
        self.captures: dict[tuple, _Capture] = {}
        self.captured_lr: float | None = None
        self.failed: str | None = None  # why capturing failed, once it has
        self.replays = 0  # steps taken by replaying a capture (the rest ran eagerly)

    def forget(self) -> None:
        """Drop every capture: the next step records anew (after the optimiser's state or the
        parameters were replaced by other tensors)."""
        self.captures.clear()
        self.captured_lr = None

    def __call__(self, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor, *, number: int):
        """Step `number` (from 1) on this batch; returns the step's terms."""
        if self.failed is not None:
            return self.step(x_l, y_l, x_u, number)
        if self.warmup_left > 0:
            self.warmup_left -= 1
            with self.backend.side_stream():
                return self.step(x_l, y_l, x_u, number)
        if self.captured_lr != self.lr_of():
            self.forget()
        capture = self._capture_for(x_l, y_l, x_u)
        if capture is None:
            return self.step(x_l, y_l, x_u, number)
        for static, value in zip(capture.inputs, (x_l, y_l, x_u), strict=True):
            static.copy_(value)
        capture.number.fill_(number)
        capture.replay()
        self.replays += 1
        return capture.outputs

    def _capture_for(self, x_l, y_l, x_u) -> _Capture | None:
        """The capture for this batch's shapes, recorded now if there is none yet; None if
        there is no room for another or capturing failed."""
        key = tuple((tuple(t.shape), t.dtype) for t in (x_l, y_l, x_u))
        if key in self.captures:
            return self.captures[key]
        if len(self.captures) >= self.max_captures:
            return None
        capture = _Capture(
            tuple(t.clone() for t in (x_l, y_l, x_u)),
            torch.zeros((), dtype=torch.long, device=self.device),
        )

        def record() -> None:
            capture.outputs = self.step(*capture.inputs, capture.number)

        try:
            capture.replay = self.backend.capture(record)
        except Exception as exc:  # noqa: BLE001 - any failure: say it and train on eagerly
            self.failed = f"{type(exc).__name__}: {exc}".splitlines()[0]
            self.forget()
            print(
                f"adgm: CUDA graph capture failed ({self.failed}); training on without graphs",
                file=sys.stderr,
            )
            return None
        self.captures[key] = capture
        self.captured_lr = self.lr_of()
        return capture
