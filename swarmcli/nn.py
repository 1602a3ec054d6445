"""Batched MLPs: every bee's layer l is one slice of W[l]: [bees, fan_in, fan_out] and
b[l]: [bees, 1, fan_out], so a whole swarm runs forward and backward as a few batched kernels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Activation:
    """An activation and its derivative, written from the pre-activation z and output a
    so the fused backward pass reuses what the forward pass already computed."""

    name: str
    fn: object  # z -> a
    grad: object  # (z, a) -> da/dz

    def __repr__(self):
        return f"Activation({self.name})"


LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU's default

ACTIVATIONS = {
    a.name: a
    for a in [
        Activation("relu", torch.relu, lambda z, a: (z > 0).to(z.dtype)),
        Activation("tanh", torch.tanh, lambda z, a: 1 - a * a),
        Activation("tanhshrink", lambda z: z - torch.tanh(z), lambda z, a: (z - a).square()),
        Activation("sigmoid", torch.sigmoid, lambda z, a: a * (1 - a)),
        Activation(
            "leaky_relu",
            lambda z: torch.nn.functional.leaky_relu(z, LEAKY_SLOPE),
            lambda z, a: torch.where(z > 0, 1.0, z.new_full((), LEAKY_SLOPE)),
        ),
        Activation("identity", lambda z: z, lambda z, a: torch.ones_like(z)),
    ]
}

TORCH_MODULES = {  # the plain torch.nn module each activation must agree with
    "relu": torch.nn.ReLU,
    "tanh": torch.nn.Tanh,
    "tanhshrink": torch.nn.Tanhshrink,
    "sigmoid": torch.nn.Sigmoid,
    "leaky_relu": torch.nn.LeakyReLU,
    "identity": torch.nn.Identity,
}

INITS = ("default",)


def layer_shapes(depth: int, width: int) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of each layer of a 1 -> width x depth -> 1 MLP."""
    sizes = [1] + [width] * depth + [1]
    return list(zip(sizes[:-1], sizes[1:]))


def _generator(seed: int, layer: int, shape: tuple[int, int], part: int) -> torch.Generator:
    key = np.random.SeedSequence([seed, layer, *shape, part]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(key) & (2**63 - 1))


def init_params(
    seed: int, depth: int, width: int, bees: int, init: str = "default"
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Initial (W, b) of every layer for `bees` bees, in float64 on the CPU.

    Each tensor is drawn from its own generator seeded by (seed, layer, shape), with the bee axis
    outermost: bee i's weights depend only on (seed, shapes, i), so cells of the same shape start
    paired and 10 bees are the prefix of 500. Drawn once in float64, so float32 and CUDA runs
    start from the rounding of the same numbers."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}")
    params = []
    for layer, (fan_in, fan_out) in enumerate(layer_shapes(depth, width)):
        bound = 1.0 / fan_in**0.5  # torch.nn.Linear.reset_parameters
        shape = (fan_in, fan_out)
        w = torch.rand(bees, fan_in, fan_out, generator=_generator(seed, layer, shape, 0),
                       dtype=torch.float64)
        b = torch.rand(bees, 1, fan_out, generator=_generator(seed, layer, shape, 1),
                       dtype=torch.float64)
        params.append((w * 2 * bound - bound, b * 2 * bound - bound))
    return params


def pad_params(params, width: int):
    """Zero-pad hidden units up to `width` so cells of different width share one batch.

    Padded units start at zero and, masked in the forward pass, get zero gradient: they stay zero
    and change nothing, which keeps the padded batch exact."""
    out = []
    last = len(params) - 1
    for layer, (w, b) in enumerate(params):
        fi = 1 if layer == 0 else width
        fo = 1 if layer == last else width
        wp = w.new_zeros(w.shape[0], fi, fo)
        bp = b.new_zeros(b.shape[0], 1, fo)
        wp[:, : w.shape[1], : w.shape[2]] = w
        bp[:, :, : b.shape[2]] = b
        out.append((wp, bp))
    return out


def forward(params, x: torch.Tensor, activation: Activation, mask=None) -> torch.Tensor:
    """Predictions [bees, points, 1] for inputs x: [1 or bees, points, 1] (autograd-friendly)."""
    h = x
    for i, (w, b) in enumerate(params):
        h = torch.baddbmm(b, h.expand(w.shape[0], -1, -1), w)
        if i < len(params) - 1:
            h = activation.fn(h)
            if mask is not None:
                h = h * mask
    return h


def activation_curves(names, x=None):
    """Each activation and its derivative on a grid (autograd), saved so renderers need no torch."""
    x = torch.linspace(-5, 5, 401, dtype=torch.float64) if x is None else x
    out = {"x": x.numpy()}
    for name in names:
        z = x.clone().requires_grad_(True)
        a = ACTIVATIONS[name].fn(z)
        (g,) = torch.autograd.grad(a.sum(), z)
        out[name] = a.detach().numpy()
        out[name + "_grad"] = g.numpy()
    return out
