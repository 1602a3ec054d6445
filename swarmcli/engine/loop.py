"""The training loop: every bee of a cell group, one optimizer step per epoch (or per
mini-batch), recording as it goes.

Bees are independent, so a large group trains chunk by chunk (each chunk all epochs), which
keeps the working set in cache and memory bounded. Plain MLPs trained full batch take the
hand-derived gradient, with the optimizer step and the gradient of an epoch in one function
that torch.compile can make one graph; everything else (dropout, batch norm) goes through
autograd, mini-batch by mini-batch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from swarmcli import nn, optim, schedules
from swarmcli.engine import native, runtime
from swarmcli.engine.gradients import LOSSES, LossInputs, by_autograd, hand_derived
from swarmcli.engine.layout import Layout, initial_flat
from swarmcli.engine.parts import CellGroup


@dataclass
class GroupResult:
    loss: np.ndarray  # [bees, epochs + 1] training loss (penalties excluded)
    diverged_epoch: np.ndarray  # [bees], -1 if the bee never diverged
    stopped_epoch: np.ndarray  # [bees], -1 if the bee never stopped early
    val_loss: np.ndarray | None = None  # [bees, epochs + 1]
    ypred: np.ndarray | None = None  # [bees, frames, n_eval] (evaluation mode)
    ypred_train: np.ndarray | None = None  # [bees, frames, n_eval] with dropout active
    weights: list[np.ndarray] = field(default_factory=list)  # per layer [bees, frames, in, out]
    biases: list[np.ndarray] = field(default_factory=list)  # per layer [bees, frames, out]


def full_batch_epoch(gradient, flat, grad, layout, inputs: LossInputs, opt, coefficients,
                     active, alive):
    """One epoch of full-batch training: the optimizer step the previous epoch's gradient calls
    for (`coefficients` None before the first), then the loss and gradient at the new
    parameters; bees whose loss is not finite are marked dead in `alive` (in place)."""
    if coefficients is not None:
        opt.update(flat, grad, active, *coefficients)
    point, pred = gradient(flat, layout, inputs, grad)
    loss = inputs.mean_train(point)
    alive.logical_and_(torch.isfinite(loss).unsqueeze(1))
    return point, pred, loss


@functools.cache
def compiled_epoch():
    """`full_batch_epoch` under torch.compile: Inductor fuses each layer's elementwise work,
    reductions and the optimizer's arithmetic into a few loops, and an epoch is one call instead
    of a few dozen small kernels. The bee axis is dynamic: chunks of any size share a compile.

    Inductor's compiled kernels are cached on disk, by default under /tmp, which many machines
    empty at each boot; swarm keeps them in the user's cache folder instead (unless
    TORCHINDUCTOR_CACHE_DIR says where): measured on the default hive, 67-85 s the first time
    on a machine, 14-15 s in every later process (benchmarks/README.md, Compile cache)."""
    runtime.keep_compile_cache()
    return torch.compile(full_batch_epoch, dynamic=True)


def train(group: CellGroup, *, use_autograd: bool = False, chunk_bees: int | None = None,
          on_epochs=None, dropout_masks=None) -> GroupResult:
    """Train every bee of the group; return per-bee recordings as numpy arrays. A group marked
    `runtime.native` (plan.use_native) trains in the C kernel instead (engine/native.py).

    `use_autograd` takes the reference gradient where the hand-derived one would apply (tests,
    benchmarks); `on_epochs(n)` is called as training advances by n bee-epochs (a progress
    bar); `dropout_masks(epoch, step, layer, shape)` replaces the drawn dropout masks (tests)."""
    layout = Layout.of(group)
    if group.runtime.native and not use_autograd and dropout_masks is None:
        res = empty_result(group, layout)
        native.train(group, res, on_epochs)
        return res
    runtime.keep_freed_memory()
    device = runtime.resolve_device(group.runtime.device)
    flat0 = initial_flat(group)
    hyper = {k: torch.as_tensor(v, dtype=torch.float64).repeat_interleave(group.bees)
             for k, v in group.optimizer.hyper.items()}
    widths = torch.tensor(group.network.widths).repeat_interleave(group.bees)
    res = empty_result(group, layout)
    chunk = chunk_bees or runtime.default_chunk(group, device)
    for lo in range(0, group.total_bees, chunk):
        hi = min(lo + chunk, group.total_bees)
        trainer = ChunkTrainer(group, layout, flat0[lo:hi], {k: v[lo:hi] for k, v in
                               hyper.items()}, widths[lo:hi], lo, device, use_autograd,
                               dropout_masks)
        trainer.run(res, on_epochs)
    return res


def empty_result(group: CellGroup, layout: Layout) -> GroupResult:
    """The result arrays the chunks write into, in the run's dtype."""
    n, frames, rec = group.total_bees, len(group.recording.frames), group.recording.what
    n_eval = group.data.n_eval

    def empty(*shape):
        return np.empty(shape, dtype=group.runtime.dtype)

    res = GroupResult(loss=empty(n, group.epochs + 1),
                      diverged_epoch=np.full(n, -1, dtype=np.int64),
                      stopped_epoch=np.full(n, -1, dtype=np.int64))
    if group.data.val_mask is not None:
        res.val_loss = empty(n, group.epochs + 1)
    if "ypred" in rec:
        res.ypred = empty(n, frames, n_eval)
        if group.network.dropout:
            res.ypred_train = empty(n, frames, n_eval)
    for fi, fo in layout.shapes:
        if "weights" in rec:
            res.weights.append(empty(n, frames, fi, fo))
        if "biases" in rec:
            res.biases.append(empty(n, frames, fo))
    return res


class ChunkTrainer:
    """One chunk of bees trained through every epoch."""

    def __init__(self, group: CellGroup, layout: Layout, flat0, hyper, widths, lo: int,
                 device: str, use_autograd: bool = False, dropout_masks=None):
        self.group, self.layout, self.lo = group, layout, lo
        net, data = group.network, group.data
        dtype = getattr(torch, group.runtime.dtype)
        n = self.n = flat0.shape[0]
        self.flat = flat0.to(device=device, dtype=dtype).contiguous()
        self.grad = torch.zeros_like(self.flat)
        self.views = layout.views(self.flat)
        self.norms = [nn.BatchNorm(g, b) for g, b in layout.norm_views(self.flat)]
        act = nn.activation_of_bees(net.activations, group.bees, lo, lo + n, net.leaky_slope)
        mask = None  # padded units have zero weights in and out: only act(0) != 0 makes them move
        if len(set(net.widths)) > 1 and not act.zero_at_zero:
            mask = (torch.arange(net.width) < widths[:, None]).to(device=device, dtype=dtype)
            mask = mask.reshape(n, 1, net.width)

        def column(a):  # [points] or [points, in_dim] -> [1, points, in_dim or 1]
            return torch.as_tensor(a, dtype=dtype, device=device).reshape(1, len(a), -1)

        train_weight, n_train = None, len(data.x)
        if data.val_mask is not None:
            train_weight, n_train = column(~data.val_mask), int((~data.val_mask).sum())
        loss = group.loss
        self.inputs = LossInputs(column(data.x), column(data.y), act, mask, loss.kind,
                                 loss.huber_delta, train_weight, n_train, loss.l1, loss.l2)
        self.eval_x = None if data.eval_x is None else column(data.eval_x)
        opt = group.optimizer
        self.opt = optim.OPTIMIZERS[opt.name](self.flat, **opt.flags, **hyper)
        self.base_lr = hyper["lr"].to(device)
        self.gradient = (by_autograd if use_autograd else hand_derived) if net.plain else None
        self.full_batch = self.gradient is not None and not data.batch_size
        self.epoch = compiled_epoch() if group.runtime.compile else full_batch_epoch
        self.train_idx = torch.nonzero(train_weight.reshape(-1) > 0).reshape(-1) \
            if train_weight is not None else torch.arange(len(data.x), device=device)
        self.drop = dropout_masks or (runtime.default_dropout_masks(group, device, dtype)
                                      if net.dropout else None)
        self.shuffle = runtime.shuffle_generators(group, lo, lo + n) if data.batch_size \
            else None

    def evaluate(self):
        """Predictions and per-point losses at the current parameters, evaluation mode."""
        with torch.no_grad():
            pred = nn.forward(self.views, self.inputs.x, self.inputs.act, self.inputs.mask,
                              self.norms, "eval")
            return self.inputs.point_loss(pred), pred

    def minibatch_steps(self, epoch: int, active):
        """Steps over the epoch's (mini-)batches: the hand-derived gradient on each bee's own
        batch of points where it applies, else autograd with dropout and batch norm in train
        mode."""
        net, inputs = self.group.network, self.inputs
        self.opt.forget(~active)
        idx = self.train_idx
        if self.shuffle is not None:
            order = torch.stack([idx[torch.randperm(len(idx), generator=g)]
                                 for g in self.shuffle])
            size = self.group.data.batch_size
        else:
            order, size = idx.unsqueeze(0), len(idx)
        for step, start in enumerate(range(0, order.shape[1], size)):
            sel = order[:, start:start + size]
            xb = inputs.x[0][sel]  # [bees, batch, in_dim]
            yb = inputs.y.reshape(-1)[sel].unsqueeze(-1)
            if self.gradient is not None:
                part = replace(inputs, x=xb, y=yb, train_weight=None, n_train=sel.shape[1])
                self.gradient(self.flat, self.layout, part, self.grad)
                self.opt.step(self.flat, self.grad, active)
                continue
            p = self.flat.detach().requires_grad_(True)
            params = self.layout.views(p)
            norms = [nn.BatchNorm(g, be) for g, be in self.layout.norm_views(p)]
            for nrm, old in zip(norms, self.norms):
                nrm.mean, nrm.var = old.mean, old.var  # running stats carry over
            drops = [self.drop(epoch, step, i, (self.n, xb.shape[1], net.width))
                     for i in range(net.depth)] if self.drop else None
            pred = nn.forward(params, xb, inputs.act, inputs.mask, norms, "train", drops)
            loss = LOSSES[inputs.loss][0](pred, yb, inputs.delta).mean(dim=(1, 2))
            (g,) = torch.autograd.grad((loss + inputs.penalty(params)).sum(), p)
            self.opt.step(self.flat, g, active)

    def recordings(self, res: GroupResult) -> dict[str, torch.Tensor]:
        """Tensors the loop writes into: on a CPU, views of the result arrays themselves (no
        copy); on a GPU, device buffers copied back once at the end (no host sync per epoch)."""
        lo, n = self.lo, self.n
        targets = {"loss": res.loss, "val_loss": res.val_loss, "ypred": res.ypred,
                   "ypred_train": res.ypred_train}
        targets |= {f"weights_{i}": a for i, a in enumerate(res.weights)}
        targets |= {f"biases_{i}": a for i, a in enumerate(res.biases)}
        self.targets = {k: a[lo:lo + n] for k, a in targets.items() if a is not None}
        if self.flat.device.type == "cpu":
            return {k: torch.from_numpy(a) for k, a in self.targets.items()}
        return {k: torch.empty(a.shape, dtype=self.flat.dtype, device=self.flat.device)
                for k, a in self.targets.items()}

    def step_to(self, epoch: int, active, alive):
        """Take the step from epoch - 1 to `epoch` (none for epoch 0); return the per-point
        losses, predictions and training loss at `epoch`."""
        schedule = self.group.optimizer.schedule
        coefficients = None
        if epoch > 0:
            if schedule.name != "constant":
                self.opt.set_lr(schedules.scheduled_lr(schedule.name, schedule.params,
                                                       self.base_lr, epoch - 1))
            if self.full_batch:
                coefficients = self.opt.advance()
            else:
                self.minibatch_steps(epoch - 1, active)
        if self.full_batch:  # the step, then this epoch's loss and gradient
            return self.epoch(self.gradient, self.flat, self.grad, self.layout, self.inputs,
                              self.opt, coefficients, active, alive)
        point, pred = self.evaluate()
        loss = self.inputs.mean_train(point)
        alive.logical_and_(torch.isfinite(loss).unsqueeze(1))
        return point, pred, loss

    def run(self, res: GroupResult, on_epochs) -> None:
        group, n, lo = self.group, self.n, self.lo
        device = self.flat.device
        alive = torch.ones(n, 1, dtype=torch.bool, device=device)
        stopper = EarlyStopping(group, n, device)
        active = alive  # bees the next step moves: alive, and not stopped early
        rec = self.recordings(res)
        frame_of = {e: f for f, e in enumerate(group.recording.frames)}
        if "val_loss" in rec:
            val_weight = 1.0 - self.inputs.train_weight
            n_val = len(group.data.x) - self.inputs.n_train

        for epoch in range(group.epochs + 1):
            point, pred, loss = self.step_to(epoch, active, alive)
            rec["loss"][:, epoch] = loss
            if "val_loss" in rec:
                val = (point * val_weight).sum(dim=(1, 2)) / n_val
                rec["val_loss"][:, epoch] = val
                if stopper.on:
                    active = alive & stopper.update(val, alive, epoch)
            f = frame_of.get(epoch)
            if f is not None:
                self.record(rec, f, pred)
            if on_epochs is not None:
                on_epochs(n)

        if device.type != "cpu":
            for k, t in rec.items():
                self.targets[k][...] = t.cpu().numpy()
        # a dead bee is frozen, so its loss stays non-finite from the epoch it died
        bad = ~np.isfinite(self.targets["loss"])
        res.diverged_epoch[lo:lo + n] = np.where(bad.any(axis=1), bad.argmax(axis=1), -1)
        res.stopped_epoch[lo:lo + n] = stopper.stopped.cpu().numpy()

    def record(self, rec: dict, f: int, pred) -> None:
        """Frame f: predictions (on the evaluation grid when there is one, so curves show what
        a bee does between and beyond its training points), weights and biases."""
        x = self.inputs.x if self.eval_x is None else self.eval_x
        act, mask, net = self.inputs.act, self.inputs.mask, self.group.network
        if "ypred" in rec:
            if self.eval_x is not None:
                with torch.no_grad():
                    pred = nn.forward(self.views, x, act, mask, self.norms, "eval")
            rec["ypred"][:, f] = pred.squeeze(2)
        if "ypred_train" in rec:
            with torch.no_grad():
                drops = [self.drop(-1, f, i, (self.n, x.shape[1], net.width))
                         for i in range(net.depth)]
                train_pred = nn.forward(self.views, x, act, mask, self.norms, "batch", drops)
            rec["ypred_train"][:, f] = train_pred.squeeze(2)
        for i, (w, bias) in enumerate(self.views):
            if f"weights_{i}" in rec:
                rec[f"weights_{i}"][:, f] = w
            if f"biases_{i}" in rec:
                rec[f"biases_{i}"][:, f] = bias.squeeze(1)


class EarlyStopping:
    """Per bee: the best validation loss so far and epochs since it improved by more than
    min_delta; a bee that waits `patience` epochs stops (its parameters freeze)."""

    def __init__(self, group: CellGroup, n: int, device):
        self.patience, self.min_delta = group.stopping.patience, group.stopping.min_delta
        self.on = self.patience is not None
        self.running = torch.ones(n, 1, dtype=torch.bool, device=device)
        self.stopped = torch.full((n,), -1, dtype=torch.int64, device=device)
        self.best = torch.full((n,), float("inf"), dtype=torch.float64, device=device)
        self.wait = torch.zeros(n, dtype=torch.int64, device=device)

    def update(self, val, alive, epoch: int):
        """Count this epoch's validation loss; return the bees still running [n, 1]."""
        better = val.double() < self.best - self.min_delta
        self.best = torch.where(better, val.double(), self.best)
        self.wait = torch.where(better, 0, self.wait + 1)
        stop = self.running.squeeze(1) & alive.squeeze(1) & (self.wait >= self.patience)
        self.stopped.masked_fill_(stop, epoch)
        self.running &= ~stop.unsqueeze(1)
        return self.running
