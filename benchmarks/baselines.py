"""The two ways of training many tiny MLPs that swarm's engine is measured against.

Both take the engine's own `CellGroup` (one or more cells that share depth, activation,
optimizer and data) and train every cell from the same initial weights the engine uses
(`nn.init_params` at each cell's own width), so every contender does identical work:

* `per_bee_loop`: what research code does today. For each bee, a fresh `torch.nn.Sequential`
  (Linear / activation) and a `torch.optim` optimizer, full batch, one step per epoch, the loss
  and predictions (and weights and biases, when the batch records them) copied into numpy every
  recorded epoch, one bee after another.
* `torch_func_ensemble`: the `torch.func` recipe for model ensembles. Per cell, the bees' modules
  are stacked with `stack_module_state`, `vmap(grad(...))` over `functional_call` gives every
  bee's gradient at once, and SGD (momentum) or Adam is written out with torch ops on the stacked
  tensors, following `torch.optim`'s arithmetic.

Both return a `Recording` that names the engine rows (cell * bees + bee) it holds, so a caller can
train a subset of the bees (`bees_per_cell`) and compare it with the engine's rows.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch
from torch.func import functional_call, grad, stack_module_state, vmap

from swarmcli import choices, nn
from swarmcli.engine.parts import CellGroup


@dataclass
class Recording:
    rows: np.ndarray  # engine rows (cell * batch.bees + bee) these results belong to
    loss: np.ndarray  # [n, epochs + 1]
    ypred: np.ndarray | None = None  # [n, frames, points]
    weights: list[np.ndarray] = field(default_factory=list)  # per layer [n, frames, in, out]
    biases: list[np.ndarray] = field(default_factory=list)  # per layer [n, frames, out]


def sequential(depth: int, width: int, activation: str) -> torch.nn.Sequential:
    """1 -> width x depth -> 1 with torch.nn modules, as a research notebook writes it."""
    sizes = [1] + [width] * depth + [1]
    layers = []
    for i, (fi, fo) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(fi, fo))
        if i < depth:
            layers.append(nn.TORCH_MODULES[activation]())
    return torch.nn.Sequential(*layers)


def load_bee(net: torch.nn.Sequential, init, bee: int) -> None:
    """Copy bee `bee`'s initial (W [in, out], b [1, out]) from `nn.init_params` into `net`."""
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, (w, b) in zip(linears, init):
            lin.weight.copy_(w[bee].T)  # nn.Linear keeps weight as [out, in]
            lin.bias.copy_(b[bee].reshape(-1))


def flat_view(group) -> SimpleNamespace:
    """The settings the baselines read, flattened from a CellGroup's parts (idempotent)."""
    if isinstance(group, SimpleNamespace):
        return group
    net, data, opt = group.network, group.data, group.optimizer
    return SimpleNamespace(
        depth=net.depth, widths=list(net.widths), width=net.width,
        activations=list(net.activations), init=net.init, init_std=net.init_std,
        init_bounds=net.init_bounds, leaky_slope=net.leaky_slope, dropout=net.dropout,
        batch_norm=net.batch_norm, x=data.x, y=data.y, val_mask=data.val_mask,
        batch_size=data.batch_size, optimizer=opt.name, hyper=opt.hyper, flags=opt.flags,
        schedule=opt.schedule.name, loss=group.loss.kind, l1=group.loss.l1, l2=group.loss.l2,
        patience=group.stopping.patience, record=group.recording.what,
        frames=list(group.recording.frames), dtype=group.runtime.dtype, bees=group.bees,
        epochs=group.epochs, seed=group.seed, total_bees=group.total_bees)


def cell_hyper(batch: CellGroup, k: int) -> dict[str, float]:
    return {name: float(vals[k]) for name, vals in batch.hyper.items()}


def nesterov(batch: CellGroup) -> bool:
    return bool(batch.flags.get("nesterov", False))


# Engine features the baselines do not implement, with the value that means "off".
PLAIN = {"loss": "mse", "l1": 0.0, "l2": 0.0, "dropout": 0.0, "batch_norm": False,
         "batch_size": None, "schedule": "constant", "val_mask": None, "patience": None,
         "leaky_slope": choices.LEAKY_SLOPE}


def check_plain(batch: CellGroup) -> None:
    """The baselines train plain full-batch MSE MLPs; refuse a batch that asks for more."""
    for name, off in PLAIN.items():
        value = getattr(batch, name)
        if not (value is off or (not isinstance(value, np.ndarray) and value == off)):
            raise ValueError(f"baselines do not implement {name}={value!r}")
    if batch.optimizer not in STACKED_OPTIMIZERS:
        raise ValueError(f"baselines do not implement optimizer {batch.optimizer!r}")


def initial_params(batch: CellGroup, width: int, bees: int):
    """The engine's initial weights for `bees` bees of a cell of `width` (nn.init_params)."""
    return nn.init_params(batch.seed, batch.depth, width, bees, batch.init, batch.init_std,
                          batch.init_bounds)


def torch_optimizer(name: str, params, hp: dict[str, float], nesterov: bool):
    if name == "sgd":
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"],
                               dampening=hp["dampening"], nesterov=nesterov,
                               weight_decay=hp["weight_decay"])
    if name == "adam":
        return torch.optim.Adam(params, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]),
                                eps=hp["eps"], weight_decay=hp["weight_decay"])
    raise ValueError(f"unknown optimizer {name!r}")


def _empty_recording(batch: CellGroup, rows: np.ndarray) -> Recording:
    n, n_frames, dtype = len(rows), len(batch.frames), batch.dtype
    rec = Recording(rows=rows, loss=np.empty((n, batch.epochs + 1), dtype=dtype))
    if "ypred" in batch.record:
        rec.ypred = np.empty((n, n_frames, len(batch.x)), dtype=dtype)
    for fi, fo in nn.layer_shapes(batch.depth, batch.width):
        # Hidden layers are stored at the batch's (widest) width, zero-padded like the engine's.
        if "weights" in batch.record:
            rec.weights.append(np.zeros((n, n_frames, fi, fo), dtype=dtype))
        if "biases" in batch.record:
            rec.biases.append(np.zeros((n, n_frames, fo), dtype=dtype))
    return rec


def bee_rows(batch: CellGroup, bees_per_cell: int | None) -> tuple[int, np.ndarray]:
    """Bees per cell trained when `bees_per_cell` (None: all) are asked for, and their rows in
    the batch."""
    batch = flat_view(batch)
    n = min(batch.bees, bees_per_cell or batch.bees)
    rows = np.concatenate([k * batch.bees + np.arange(n) for k in range(len(batch.widths))])
    return n, rows


def _setup(batch: CellGroup, bees_per_cell: int | None):
    """What both baselines start from: bees per cell, an empty recording, data as columns, and
    the frame index of each recorded epoch."""
    batch = flat_view(batch)
    check_plain(batch)
    n, rows = bee_rows(batch, bees_per_cell)
    dtype = getattr(torch, batch.dtype)
    xt = torch.as_tensor(batch.x, dtype=dtype).reshape(-1, 1)
    yt = torch.as_tensor(batch.y, dtype=dtype).reshape(-1, 1)
    return n, _empty_recording(batch, rows), dtype, xt, yt, {e: f for f, e in
                                                            enumerate(batch.frames)}


def per_bee_loop(batch: CellGroup, bees_per_cell: int | None = None) -> Recording:
    """Train the first `bees_per_cell` bees of every cell (all by default) one at a time."""
    batch = flat_view(batch)
    n, rec, dtype, xt, yt, frame_of = _setup(batch, bees_per_cell)
    r = 0
    for k, width in enumerate(batch.widths):
        init = initial_params(batch, width, n)
        hp = cell_hyper(batch, k)
        for bee in range(n):
            net = sequential(batch.depth, width, batch.activations[k]).to(dtype)
            load_bee(net, init, bee)
            linears = [m for m in net if isinstance(m, torch.nn.Linear)]
            opt = torch_optimizer(batch.optimizer, net.parameters(), hp, nesterov(batch))
            for epoch in range(batch.epochs + 1):
                pred = net(xt)
                loss = torch.nn.functional.mse_loss(pred, yt)
                rec.loss[r, epoch] = loss.item()
                f = frame_of.get(epoch)
                if f is not None:
                    if rec.ypred is not None:
                        rec.ypred[r, f] = pred.detach().numpy().reshape(-1)
                    for i, lin in enumerate(linears):
                        if rec.weights:
                            w = lin.weight.detach().numpy().T
                            rec.weights[i][r, f, :w.shape[0], :w.shape[1]] = w
                        if rec.biases:
                            b = lin.bias.detach().numpy()
                            rec.biases[i][r, f, :b.shape[0]] = b
                if epoch < batch.epochs:
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            r += 1
    return rec


class StackedSGD:
    """torch.optim.SGD's update (momentum, dampening, nesterov, weight decay) on stacked params."""

    def __init__(self, params: dict[str, torch.Tensor], hp: dict[str, float], nesterov: bool):
        self.hp, self.nesterov = hp, nesterov
        self.buf: dict[str, torch.Tensor] = {}

    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        lr, mom, damp, wd = (self.hp[k] for k in ("lr", "momentum", "dampening", "weight_decay"))
        for name, p in params.items():
            d = grads[name]
            if wd:
                d = d.add(p, alpha=wd)
            if mom:
                buf = self.buf.get(name)
                if buf is None:
                    buf = self.buf[name] = d.clone()
                else:
                    buf.mul_(mom).add_(d, alpha=1 - damp)
                d = d.add(buf, alpha=mom) if self.nesterov else buf
            p.add_(d, alpha=-lr)


class StackedAdam:
    """torch.optim.Adam's update (bias-corrected, L2 weight decay) on stacked params."""

    def __init__(self, params: dict[str, torch.Tensor], hp: dict[str, float], nesterov: bool):
        self.hp, self.t = hp, 0
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in params.items()}

    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        self.t += 1
        hp = self.hp
        b1, b2 = hp["beta1"], hp["beta2"]
        step_size = hp["lr"] / (1 - b1**self.t)
        bc2_sqrt = (1 - b2**self.t) ** 0.5
        for name, p in params.items():
            g = grads[name]
            if hp["weight_decay"]:
                g = g.add(p, alpha=hp["weight_decay"])
            m, v = self.m[name], self.v[name]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / bc2_sqrt).add_(hp["eps"])
            p.addcdiv_(m, denom, value=-step_size)


STACKED_OPTIMIZERS = {"sgd": StackedSGD, "adam": StackedAdam}


def torch_func_ensemble(batch: CellGroup, bees_per_cell: int | None = None) -> Recording:
    """Train every cell's bees together with torch.func, one cell after another."""
    batch = flat_view(batch)
    n, rec, dtype, xt, yt, frame_of = _setup(batch, bees_per_cell)
    for k, width in enumerate(batch.widths):
        init = initial_params(batch, width, n)
        models = []
        for bee in range(n):
            net = sequential(batch.depth, width, batch.activations[k]).to(dtype)
            load_bee(net, init, bee)
            models.append(net)
        stacked, buffers = stack_module_state(models)
        params = {name: p.detach() for name, p in stacked.items()}
        base = copy.deepcopy(models[0]).to("meta")
        del models

        def loss_and_pred(p, b, x, y, base=base):
            pred = functional_call(base, (p, b), (x,))
            loss = torch.nn.functional.mse_loss(pred, y)
            return loss, (loss, pred)

        grad_fn = vmap(grad(loss_and_pred, has_aux=True), in_dims=(0, 0, None, None))
        predict = vmap(lambda p, b, x, base=base: functional_call(base, (p, b), (x,)),
                       in_dims=(0, 0, None))
        opt = STACKED_OPTIMIZERS[batch.optimizer](params, cell_hyper(batch, k),
                                                 nesterov(batch))
        layer_names = [name[:-len(".weight")] for name in params if name.endswith(".weight")]
        s = slice(k * n, (k + 1) * n)
        for epoch in range(batch.epochs + 1):
            if epoch < batch.epochs:
                grads, (loss, pred) = grad_fn(params, buffers, xt, yt)
            else:
                pred = predict(params, buffers, xt)
                loss = (pred - yt).square().mean(dim=(1, 2))
            rec.loss[s, epoch] = loss.numpy()
            f = frame_of.get(epoch)
            if f is not None:
                if rec.ypred is not None:
                    rec.ypred[s, f] = pred.reshape(n, -1).numpy()
                for i, name in enumerate(layer_names):
                    if rec.weights:
                        w = params[name + ".weight"].transpose(1, 2).numpy()
                        rec.weights[i][s, f, :w.shape[1], :w.shape[2]] = w
                    if rec.biases:
                        b = params[name + ".bias"].numpy()
                        rec.biases[i][s, f, :b.shape[1]] = b
            if epoch < batch.epochs:
                opt.step(params, grads)
    return rec
