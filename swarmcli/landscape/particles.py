"""Particles on a loss surface: a bee whose parameters are a point, moved by the same batched
per-bee optimizers (optim.py) and lr schedules (schedules.py) as the nets, so every optimizer,
hyper-parameter grid, paired axis and schedule works for landscapes unchanged.

The loss is the surface's formula run on torch tensors (or the data loss of `mean` and `line`)
and its gradient is exact, by autograd. The step order is the nets' (engine/loop.py): column e of
the loss is the loss after e steps, the step into epoch e uses the lr scheduled for epoch e - 1,
and a particle whose loss is not finite is frozen where it is.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass

import numpy as np
import torch

from swarmcli import formula, optim, schedules
from swarmcli.landscape.surfaces import Landscape

TORCH = formula.Ops(
    functions={"sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "arcsin": torch.asin,
               "asin": torch.asin, "arccos": torch.acos, "acos": torch.acos,
               "arctan": torch.atan, "atan": torch.atan, "sinh": torch.sinh,
               "cosh": torch.cosh, "tanh": torch.tanh, "exp": torch.exp, "log": torch.log,
               "log10": torch.log10, "log2": torch.log2, "sqrt": torch.sqrt,
               "abs": torch.abs, "sign": torch.sign, "floor": torch.floor, "ceil": torch.ceil},
    binary={ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
            ast.Div: operator.truediv, ast.Pow: operator.pow},
    unary={ast.UAdd: operator.pos, ast.USub: operator.neg},
    const=float)
assert set(TORCH.functions) == set(formula.FUNCTIONS)
assert set(TORCH.binary) == set(formula.BINARY) and set(TORCH.unary) == set(formula.UNARY)


def loss_function(land: Landscape, dtype: torch.dtype, device, cells: int = 1):
    """p [particles, dims] -> loss [particles], differentiable; `cells` copies of the particles
    (a group of cells) share data drawn per particle."""
    if land.expr is not None:
        f = formula.compile_formula(land.expr, "surface.expr", ("x", "y"))

        def surface(p):
            out = f.apply(TORCH, p[:, 0], p[:, 1])
            return torch.as_tensor(out, dtype=dtype, device=device).expand(p.shape[0])
        return surface
    xs = {k: torch.as_tensor(v, dtype=dtype, device=device) for k, v in land.samples.items()}
    xs = {k: v.repeat(cells, 1) if v.dim() == 2 else v.reshape(1, -1) for k, v in xs.items()}
    if land.name == "mean":
        return lambda p: ((p[:, :1] - xs["x"]) ** 2).mean(1)
    return lambda p: ((p[:, :1] * xs["x"] + p[:, 1:2] - xs["y"]) ** 2).mean(1)


def starts(land: Landscape, bees: int, spread: float, seed: int) -> np.ndarray:
    """[bees, dims] float64: particle i at start + spread * N(0, 1), the draw depending only on
    (seed, i), so 10 particles are the first 10 of 500 and every cell starts from the same
    points."""
    offsets = np.random.default_rng(seed).standard_normal((bees, land.dims))
    return land.start[None, :] + spread * offsets


@dataclass
class Descent:
    loss: np.ndarray  # [particles, epochs + 1]
    position: np.ndarray  # [particles, frames, dims]
    diverged_epoch: np.ndarray  # [particles], -1 if never


def descend(loss_fn, start: np.ndarray, name: str, hyper: dict, flags: dict, schedule,
            epochs: int, frames, dtype: str = "float64", device="cpu") -> Descent:
    """Every particle's path: `hyper` per-particle [particles] float64 tensors (optim.py's
    names), `schedule` a parts.Schedule (name, resolved params)."""
    dt = getattr(torch, dtype)
    p = torch.tensor(start, dtype=dt, device=device)  # a copy: the caller's start stays
    n = p.shape[0]
    opt = optim.OPTIMIZERS[name](p, **flags, **hyper)
    base_lr = torch.as_tensor(hyper["lr"], dtype=torch.float64).to(device)
    alive = torch.ones(n, 1, dtype=torch.bool, device=device)
    loss = torch.empty(n, epochs + 1, dtype=dt, device=device)
    frame_of = {e: f for f, e in enumerate(frames)}
    pos = torch.empty(n, len(frames), p.shape[1], dtype=dt, device=device)
    grad = torch.zeros_like(p)
    for epoch in range(epochs + 1):
        if epoch > 0:
            if schedule.name != "constant":
                opt.set_lr(schedules.scheduled_lr(schedule.name, schedule.params, base_lr,
                                                  epoch - 1))
            opt.step(p, grad, alive)
        q = p.detach().requires_grad_(True)
        with torch.enable_grad():
            value = loss_fn(q)
            if value.requires_grad:
                (grad,) = torch.autograd.grad(value.sum(), q)
            else:  # a constant surface: no slope anywhere
                grad = torch.zeros_like(p)
        value = value.detach()
        alive &= torch.isfinite(value).unsqueeze(1)
        loss[:, epoch] = value
        if epoch in frame_of:
            pos[:, frame_of[epoch]] = p
    loss_np = loss.cpu().numpy()
    bad = ~np.isfinite(loss_np)
    return Descent(loss_np, pos.cpu().numpy(),
                   np.where(bad.any(axis=1), bad.argmax(axis=1), -1).astype(np.int64))
