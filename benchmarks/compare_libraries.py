"""One training step of adgm's M2 and ADGM against M2 written with Pyro, timed in one process.

A step is the work of one batch of the paper's setup: 100 labelled + 100 unlabelled binary
images, paper sizes (two 500-unit ReLU layers per network, 100-unit z), 1 Monte Carlo sample,
fp32, Adam. The cases are interleaved (one step of each in turn, --repeats rounds after
--warmup rounds) and the median is printed with its ratio to adgm's M2.

Pyro's M2 is written with its public API as its semi-supervised VAE tutorial builds it: a model
p(y) p(z) p(x|y,z) and a guide q(y|x) q(z|x,y) with y enumerated in parallel
(``config_enumerate`` + ``TraceEnum_ELBO``), and the auxiliary classification loss
alpha * -log q(y|x) on the labelled images as a second model/guide pair. Two ways to step it:

- ``pyro svi (tutorial)``: the tutorial's loop, ``SVI.step`` on the labelled batch, on the
  unlabelled batch and on the auxiliary loss (three Adam updates per batch, as users run it);
- ``pyro one loss``: the three ``differentiable_loss`` terms summed and one ``torch.optim.Adam``
  step, the same work as adgm's single step.

    pip install -e '.[bench]' && python benchmarks/compare_libraries.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from torch import nn

from adgm.config import ModelConfig
from adgm.cpu import flush_denormals, keep_freed_memory
from adgm.models import build_model
from adgm.objectives import objective

ALPHA = 600.0  # 0.01 N with N = 60,000


def mlp(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, 500), nn.ReLU(), nn.Linear(500, 500), nn.ReLU(), nn.Linear(500, n_out)
    )


def concat_last(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[a, b] along the last axis, the leading axes broadcast (y may carry an enumeration axis)."""
    shape = torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    return torch.cat([a.expand(shape + a.shape[-1:]), b.expand(shape + b.shape[-1:])], -1)


class PyroM2(nn.Module):
    """M2 for Pyro: networks for q(y|x), q(z|x,y) and p(x|z,y); see the module docstring."""

    def __init__(self, x_dim: int = 784, z_dim: int = 100, n_classes: int = 10):
        super().__init__()
        self.z_dim, self.n_classes = z_dim, n_classes
        self.encoder_y = mlp(x_dim, n_classes)
        self.encoder_z = mlp(x_dim + n_classes, 2 * z_dim)
        self.decoder = mlp(z_dim + n_classes, x_dim)

    def model(self, xs, ys=None):
        import pyro
        import pyro.distributions as dist

        pyro.module("m2", self)
        batch = xs.shape[0]
        with pyro.plate("data", batch):
            prior = torch.zeros(batch, self.z_dim)
            zs = pyro.sample("z", dist.Normal(prior, torch.ones_like(prior)).to_event(1))
            uniform = torch.full((batch, self.n_classes), 1.0 / self.n_classes)
            ys = pyro.sample("y", dist.OneHotCategorical(uniform), obs=ys)
            logits = self.decoder(concat_last(zs, ys))
            pyro.sample("x", dist.Bernoulli(logits=logits).to_event(1), obs=xs)

    def guide(self, xs, ys=None):
        import pyro
        import pyro.distributions as dist

        with pyro.plate("data", xs.shape[0]):
            if ys is None:
                probs = torch.softmax(self.encoder_y(xs), -1)
                ys = pyro.sample("y", dist.OneHotCategorical(probs))
            loc, logvar = self.encoder_z(concat_last(xs, ys)).chunk(2, -1)
            pyro.sample("z", dist.Normal(loc, torch.exp(0.5 * logvar)).to_event(1))

    def model_classify(self, xs, ys):
        import pyro
        import pyro.distributions as dist

        pyro.module("m2", self)
        with pyro.plate("data", xs.shape[0]), pyro.poutine.scale(scale=ALPHA):
            logits = self.encoder_y(xs)
            pyro.sample("y_aux", dist.OneHotCategorical(logits=logits), obs=ys)

    def guide_classify(self, xs, ys):
        pass


def pyro_cases(x_l, y_l, x_u):
    """The two Pyro steps: the tutorial's three SVI steps, and one summed loss."""
    import pyro
    from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO, config_enumerate
    from pyro.optim import Adam

    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    m2 = PyroM2()
    guide = config_enumerate(m2.guide, "parallel", expand=True)
    enum_elbo = TraceEnum_ELBO(max_plate_nesting=1)
    optim = Adam({"lr": 3e-4, "betas": (0.9, 0.999)})
    svi = SVI(m2.model, guide, optim, loss=enum_elbo)
    svi_aux = SVI(m2.model_classify, m2.guide_classify, optim, loss=Trace_ELBO())
    onehot = torch.nn.functional.one_hot(y_l, 10).float()

    def tutorial_step():
        svi.step(x_l, onehot)
        svi.step(x_u)
        svi_aux.step(x_l, onehot)

    twin = PyroM2()
    twin_guide = config_enumerate(twin.guide, "parallel", expand=True)
    aux_elbo = Trace_ELBO()
    torch_adam = torch.optim.Adam(twin.parameters(), lr=3e-4, fused=True)

    def one_loss_step():
        loss = (
            enum_elbo.differentiable_loss(twin.model, twin_guide, x_l, onehot)
            + enum_elbo.differentiable_loss(twin.model, twin_guide, x_u)
            + aux_elbo.differentiable_loss(twin.model_classify, twin.guide_classify, x_l, onehot)
        )
        torch_adam.zero_grad(set_to_none=True)
        loss.backward()
        torch_adam.step()

    return {"pyro svi (tutorial)": tutorial_step, "pyro one loss": one_loss_step}


def adgm_case(name: str, x_l, y_l, x_u):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name))
    adam = torch.optim.Adam(model.parameters(), lr=3e-4, fused=True)

    def step():
        loss = objective(model, x_l, y_l, x_u, alpha=ALPHA, n_samples=1).loss
        adam.zero_grad(set_to_none=True)
        loss.backward()
        adam.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    # The labelled ELBO observes y, so TraceEnum_ELBO has nothing to enumerate there and says so
    # on every step (the tutorial's loop does the same).
    warnings.filterwarnings("ignore", message="TraceEnum_ELBO found no sample sites")
    flush_denormals()  # as adgm train does
    keep_freed_memory()
    generator = torch.Generator().manual_seed(0)
    x_l = torch.bernoulli(torch.full((100, 784), 0.3), generator=generator)
    x_u = torch.bernoulli(torch.full((100, 784), 0.3), generator=generator)
    y_l = torch.arange(100) % 10
    cases = {
        "adgm m2": adgm_case("m2", x_l, y_l, x_u),
        "adgm adgm": adgm_case("adgm", x_l, y_l, x_u),
        **pyro_cases(x_l, y_l, x_u),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_number in range(args.warmup + args.repeats):
        for name, step in cases.items():
            start = time.perf_counter()
            step()
            if round_number >= args.warmup:
                times[name].append(time.perf_counter() - start)
    reference = statistics.median(times["adgm m2"])
    print(f"threads: {torch.get_num_threads()}, torch {torch.__version__}")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:>20}: {1000 * median:7.1f} ms/step  {median / reference:5.2f}x adgm's M2 step"
        )


if __name__ == "__main__":
    main()
