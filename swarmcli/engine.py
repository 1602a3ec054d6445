"""The training loop: one batch of bees, one optimizer step per epoch (or per mini-batch).

All parameters of a batch live in one flat buffer [bees, P]; each layer's W [bees, in, out] and
b [bees, 1, out] (and batch-norm gamma, beta) are views into it, so the optimizer updates
everything in a few kernels. Plain MLPs take the `fused` path: a hand-derived forward and backward
pass, a few batched kernels per layer and no autograd graph; the `autograd` path is the reference
the fused path is tested against, and trains what the fused path does not (dropout, batch norm,
mini-batches). Bees are independent, so a large batch trains chunk by chunk (each chunk all
epochs), which keeps the working set in cache and memory bounded.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from swarmcli import nn, optim, schedules


@dataclass
class Batch:
    """Plain data the engine needs: cells that share everything but width and optimizer
    hyper-parameters. Per-cell lists (`widths`, `hyper`) become per-bee tensors here."""

    depth: int
    widths: list[int]
    bees: int
    activation: str | list[str]  # one for every cell, or one per cell
    optimizer: str
    hyper: dict[str, list[float]]  # per cell (lists or [cells] tensors)
    x: np.ndarray  # every point, training and validation
    y: np.ndarray
    epochs: int
    seed: int
    init: str = "default"
    init_std: float = 0.1
    init_bounds: tuple[float, float] = (-0.1, 0.1)
    leaky_slope: float = nn.LEAKY_SLOPE
    flags: dict = field(default_factory=dict)  # optimizer flags shared by the batch (nesterov...)
    schedule: str = "constant"
    schedule_params: dict = field(default_factory=dict)
    loss: str = "mse"
    huber_delta: float = 1.0
    l1: float = 0.0  # penalty on the sum of |W| (weights, not biases)
    l2: float = 0.0  # penalty on the sum of W^2
    dropout: float = 0.0
    batch_norm: bool = False
    batch_size: int | None = None  # None: full batch
    val_mask: np.ndarray | None = None  # points held out for validation
    patience: int | None = None  # early stopping on validation loss
    min_delta: float = 0.0
    record: tuple[str, ...] = ("ypred",)
    frames: list[int] = field(default_factory=list)  # epochs to record, 0 = initial state
    eval_x: np.ndarray | None = None  # where ypred is recorded; None: at x
    device: str = "cpu"
    dtype: str = "float32"
    compile: bool = False  # torch.compile each epoch: one graph of fused kernels per epoch

    @property
    def width(self) -> int:
        return max(self.widths)

    @property
    def activations(self) -> list[str]:
        """The activation of each cell."""
        a = self.activation
        return [a] * len(self.widths) if isinstance(a, str) else list(a)

    @property
    def n_eval(self) -> int:
        """Points of each recorded prediction."""
        return len(self.x if self.eval_x is None else self.eval_x)

    @property
    def total_bees(self) -> int:
        return self.bees * len(self.widths)

    @property
    def fused_ok(self) -> bool:
        """The hand-derived backward covers plain MLPs, full batch or mini-batches."""
        return not (self.dropout or self.batch_norm)


@dataclass
class BatchResult:
    loss: np.ndarray  # [bees, epochs + 1] training loss (penalties excluded)
    diverged_epoch: np.ndarray  # [bees], -1 if the bee never diverged
    stopped_epoch: np.ndarray  # [bees], -1 if the bee never stopped early
    val_loss: np.ndarray | None = None  # [bees, epochs + 1]
    ypred: np.ndarray | None = None  # [bees, frames, n_eval] (evaluation mode)
    ypred_train: np.ndarray | None = None  # [bees, frames, n_eval] with dropout active
    weights: list[np.ndarray] = field(default_factory=list)  # per layer [bees, frames, in, out]
    biases: list[np.ndarray] = field(default_factory=list)  # per layer [bees, frames, out]


class Layout:
    """Where each tensor sits in the flat [bees, P] buffer: per layer W then b, then batch-norm
    gamma and beta of each hidden layer."""

    def __init__(self, shapes: list[tuple[int, int]], batch_norm: bool = False):
        self.shapes = shapes
        self.entries = []  # (offset, shape)
        off = 0
        for fi, fo in shapes:
            for shape in ((fi, fo), (1, fo)):
                self.entries.append((off, shape))
                off += shape[0] * shape[1]
        self.norm_entries = []
        if batch_norm:
            for _, fo in shapes[:-1]:
                for _ in range(2):
                    self.norm_entries.append((off, (1, fo)))
                    off += fo
        self.size = off
        self._layers: dict = {}

    def _view(self, flat, entry):
        off, (a, b) = entry
        return flat[:, off:off + a * b].view(flat.shape[0], a, b)

    def views(self, flat: torch.Tensor):
        """(W, b) views [bees, in, out], [bees, 1, out] into a flat [bees, P] tensor."""
        v = [self._view(flat, e) for e in self.entries]
        return list(zip(v[0::2], v[1::2]))

    def layers(self, flat: torch.Tensor):
        """(W, b, W^T, b^T) views of each layer, built once per buffer: the fused path's
        persistent parameter and gradient buffers then cost no view ops per epoch (a buffer's
        views keep its memory, so no other buffer can reuse its address). Under torch.compile
        views are free, and built inside the graph."""
        if torch.compiler.is_compiling():
            return [(w, b, w.mT, b.mT) for w, b in self.views(flat)]
        key = (flat.data_ptr(), flat.shape, flat.stride(), flat.dtype, flat.device)
        if key not in self._layers:
            self._layers[key] = [(w, b, w.mT, b.mT) for w, b in self.views(flat)]
        return self._layers[key]

    def norm_views(self, flat: torch.Tensor):
        """(gamma, beta) of each hidden layer, [bees, 1, width] each."""
        v = [self._view(flat, e) for e in self.norm_entries]
        return list(zip(v[0::2], v[1::2]))

    def __repr__(self):
        return f"Layout(shapes={self.shapes}, P={self.size})"


# Per-point losses, and their derivatives with respect to the prediction (r = pred - y) times a
# scale (1 / points, for the mean).
LOSSES = {
    "mse": (lambda r, d: r.square(), lambda r, d, s: r * (2 * s)),
    "mae": (lambda r, d: r.abs(), lambda r, d, s: torch.sign(r) * s),
    "huber": (lambda r, d: torch.where(r.abs() < d, 0.5 * r.square(), d * (r.abs() - 0.5 * d)),
              lambda r, d, s: r.clamp(-d, d) * s),
}


@dataclass
class Problem:
    """What one chunk's loss and gradient need, on the chunk's device."""

    x: torch.Tensor  # [1, points, 1]
    y: torch.Tensor
    act: nn.Activation | nn.Mixed
    mask: torch.Tensor | None  # [bees, 1, width] for padded cells
    loss: str
    delta: float
    train_w: torch.Tensor | None  # [1, points, 1] 1.0 for training points; None: all
    n_train: int
    l1: float
    l2: float

    def point_loss(self, pred):
        return LOSSES[self.loss][0](pred - self.y, self.delta)

    def mean_train(self, point_loss):
        if self.train_w is None:
            return point_loss.mean(dim=(1, 2))
        return (point_loss * self.train_w).sum(dim=(1, 2)) / self.n_train

    def penalty(self, params):
        total = 0
        for w, _ in params:
            if self.l1:
                total = total + self.l1 * w.abs().sum(dim=(1, 2))
            if self.l2:
                total = total + self.l2 * w.square().sum(dim=(1, 2))
        return total


def autograd_loss_and_grad(flat, layout, prob: Problem, grad_out):
    """Reference gradient: build the graph with torch.autograd."""
    p = flat.detach().requires_grad_(True)
    params = layout.views(p)
    pred = nn.forward(params, prob.x, prob.act, prob.mask)
    point = prob.point_loss(pred)
    loss = prob.mean_train(point)
    (g,) = torch.autograd.grad((loss + prob.penalty(params)).sum(), p)  # each bee its own grad
    grad_out.copy_(g)
    return point.detach(), pred.detach()


def fused_loss_and_grad(flat, layout, prob: Problem, grad_out):
    """Hand-derived forward and backward of an MLP's loss, a few batched kernels per layer.

    Activations are laid out [bees, units, points], points innermost: broadcasting a bee's
    per-unit weight along the points, and summing over the points, then run along contiguous
    memory (torch's CPU kernels run several times faster so than along the short unit axis),
    and the first layer's weight gradient is one matrix-vector product for all bees."""
    params = layout.layers(flat)
    grads = layout.layers(grad_out)
    last = len(params) - 1
    act, x = prob.act, prob.x.mT  # [1, 1, points]
    mask = None if prob.mask is None else prob.mask.mT  # [bees, width, 1]
    zs, hs = [], [x]
    h = x
    for i, (_, _, wt, bt) in enumerate(params):
        if i == 0:  # fan_in 1: an outer product
            z = wt * x + bt
        else:
            z = torch.bmm(wt, h) + bt
        if i == last:
            pred = z  # [bees, 1, points]
            break
        h = act.fn(z)
        if mask is not None:
            h = h * mask
        zs.append(z)
        hs.append(h)
    r = pred - prob.y.mT
    point = LOSSES[prob.loss][0](r, prob.delta)
    g = LOSSES[prob.loss][1](r, prob.delta, 1.0 / prob.n_train)
    if prob.train_w is not None:
        g = g * prob.train_w.mT
    for i in range(last, -1, -1):
        w = params[i][0]
        gw, gb = grads[i][:2]
        gb.copy_(g.sum(dim=2).unsqueeze(1))
        if i == 0:  # every bee's and unit's sum over points of g * x
            n, units, pts = g.shape
            if x.shape[0] == 1:  # shared points: one matrix-vector product for all bees
                gw.copy_(torch.mv(g.reshape(n * units, pts), x.reshape(pts)).view(n, 1, units))
            else:  # each bee its own mini-batch
                gw.copy_(torch.bmm(g, x.mT).view(n, 1, units))
            break
        gw.copy_(torch.bmm(hs[i], g.mT))
        g = w * g if i == last else torch.bmm(w, g)  # fan_out 1: an outer product
        g = act.chain(g, zs[i - 1], hs[i])
    for (w, *_), (gw, *_) in zip(params, grads):
        if prob.l1:
            gw.add_(torch.sign(w), alpha=prob.l1)
        if prob.l2:
            gw.add_(w, alpha=2 * prob.l2)
    return point.mT, pred.mT


GRADIENTS = {"fused": fused_loss_and_grad, "autograd": autograd_loss_and_grad}


def full_batch_epoch(gradient, flat, grad, layout, prob: Problem, opt, coefficients, active,
                     alive):
    """One epoch of full-batch training: the optimizer step the previous epoch's gradient calls
    for (`coefficients` None before the first), then the loss and gradient at the new
    parameters; bees whose loss is not finite are marked dead in `alive` (in place)."""
    if coefficients is not None:
        opt.update(flat, grad, active, *coefficients)
    point, pred = gradient(flat, layout, prob, grad)
    loss = prob.mean_train(point)
    alive.logical_and_(torch.isfinite(loss).unsqueeze(1))
    return point, pred, loss


@functools.cache
def compiled_epoch():
    """`full_batch_epoch` under torch.compile: Inductor fuses each layer's elementwise work,
    reductions and the optimizer's arithmetic into a few loops, and an epoch is one call instead
    of a few dozen small kernels. The bee axis is dynamic: chunks of any size share a compile."""
    return torch.compile(full_batch_epoch, dynamic=True)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is available (choices: auto, cpu)")
    return device


def initial_flat(batch: Batch, layout: Layout) -> torch.Tensor:
    """Each cell's bees drawn at the cell's own width (so pairing holds), padded to the batch's."""
    cells = []
    for width in batch.widths:
        params = nn.init_params(batch.seed, batch.depth, width, batch.bees, batch.init,
                                batch.init_std, batch.init_bounds)
        params = nn.pad_params(params, batch.width)
        parts = [t.reshape(batch.bees, -1) for wb in params for t in wb]
        if batch.batch_norm:  # gamma 1, beta 0, as torch.nn.BatchNorm1d
            for _ in range(batch.depth):
                parts += [torch.ones(batch.bees, batch.width, dtype=torch.float64),
                          torch.zeros(batch.bees, batch.width, dtype=torch.float64)]
        cells.append(torch.cat(parts, dim=1))
    return torch.cat(cells)


def record_bytes(batch: Batch) -> int:
    """Bytes the recordings of a batch take on the host."""
    item = 4 if batch.dtype == "float32" else 8
    per_frame = 0
    shapes = nn.layer_shapes(batch.depth, batch.width)
    if "ypred" in batch.record:
        per_frame += batch.n_eval * (2 if batch.dropout else 1)
    if "weights" in batch.record:
        per_frame += sum(fi * fo for fi, fo in shapes)
    if "biases" in batch.record:
        per_frame += sum(fo for _, fo in shapes)
    per_epoch = 2 if batch.val_mask is not None else 1
    return batch.total_bees * item * (per_frame * len(batch.frames)
                                      + per_epoch * (batch.epochs + 1))


def default_dropout_masks(batch: Batch, device, dtype):
    """Masks drawn from generators seeded by the run's seed: reproducible. Recording
    (epoch -1: the train-mode predictions of a frame) draws from a generator of its own, so what
    and where a run records never changes how it trains."""
    train_gen = torch.Generator(device=device).manual_seed(batch.seed * 7919 + 17)
    record_gen = torch.Generator(device=device).manual_seed(batch.seed * 7919 + 18)
    keep = 1.0 - batch.dropout

    def draw(epoch: int, step: int, layer: int, shape) -> torch.Tensor:
        gen = record_gen if epoch < 0 else train_gen
        u = torch.rand(shape, generator=gen, device=device, dtype=dtype)
        return (u >= batch.dropout).to(dtype) / keep

    return draw


def shuffle_generators(batch: Batch, lo: int, hi: int):
    """One generator per bee, seeded by (seed, bee index in its cell): each bee its own order."""
    gens = []
    for i in range(lo, hi):
        key = np.random.SeedSequence([batch.seed, 2, i % batch.bees]).generate_state(1)[0]
        gens.append(torch.Generator().manual_seed(int(key)))
    return gens


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed buffers for reuse. By default it returns a freed buffer of more
    than 128 KB to the OS (or trims the heap), and the next epoch faults the memory back in page
    by page: measured here up to a million page faults and 2-5x the time per run for 5,000 bees,
    depending on the heap's history. Only on glibc (Linux); elsewhere nothing changes."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def train(batch: Batch, gradient: str = "fused", chunk_bees: int | None = None,
          on_epochs=None, dropout_masks=None) -> BatchResult:
    """Train every bee of the batch; return per-bee recordings as numpy arrays.

    `on_epochs(n)` is called as training advances by n bee-epochs (for a progress bar);
    `dropout_masks(epoch, step, layer, shape)` replaces the drawn dropout masks (tests)."""
    keep_freed_memory()
    device = resolve_device(batch.device)
    n_bees, n_frames, n_points = batch.total_bees, len(batch.frames), batch.n_eval
    layout = Layout(nn.layer_shapes(batch.depth, batch.width), batch.batch_norm)
    flat0 = initial_flat(batch, layout)
    hyper = {k: torch.as_tensor(v, dtype=torch.float64).repeat_interleave(batch.bees)
             for k, v in batch.hyper.items()}
    widths = torch.tensor(batch.widths).repeat_interleave(batch.bees)

    def empty(*shape):
        return np.empty(shape, dtype=batch.dtype)

    res = BatchResult(loss=empty(n_bees, batch.epochs + 1),
                      diverged_epoch=np.full(n_bees, -1, dtype=np.int64),
                      stopped_epoch=np.full(n_bees, -1, dtype=np.int64))
    if batch.val_mask is not None:
        res.val_loss = empty(n_bees, batch.epochs + 1)
    if "ypred" in batch.record:
        res.ypred = empty(n_bees, n_frames, n_points)
        if batch.dropout:
            res.ypred_train = empty(n_bees, n_frames, n_points)
    for fi, fo in layout.shapes:
        if "weights" in batch.record:
            res.weights.append(empty(n_bees, n_frames, fi, fo))
        if "biases" in batch.record:
            res.biases.append(empty(n_bees, n_frames, fo))

    chunk = chunk_bees or default_chunk(batch, device)
    for lo in range(0, n_bees, chunk):
        hi = min(lo + chunk, n_bees)
        _Chunk(batch, gradient, device, layout, flat0[lo:hi], {k: v[lo:hi] for k, v in
               hyper.items()}, widths[lo:hi], lo, dropout_masks).run(res, on_epochs)
    return res


def default_chunk(batch: Batch, device: str) -> int:
    """Bees per chunk: all of them on a GPU; on a CPU, enough that one activation tensor
    [bees, width, points] stays around a few MB, to keep the epoch loop in cache."""
    if device != "cpu":
        return batch.total_bees
    per_bee = len(batch.x) * batch.width * (4 if batch.dtype == "float32" else 8)
    return max(1, min(batch.total_bees, (4 << 20) // per_bee))


class _Chunk:
    """One chunk of bees trained through every epoch."""

    def __init__(self, batch, gradient, device, layout, flat0, hyper, widths, lo, dropout_masks):
        self.batch, self.layout, self.lo = batch, layout, lo
        dtype = getattr(torch, batch.dtype)
        n = self.n = flat0.shape[0]
        self.flat = flat0.to(device=device, dtype=dtype).contiguous()
        self.grad = torch.zeros_like(self.flat)
        self.views = layout.views(self.flat)
        self.norms = [nn.BatchNorm(g, b) for g, b in layout.norm_views(self.flat)]
        act = nn.activation_of_bees(batch.activations, batch.bees, lo, lo + n, batch.leaky_slope)
        mask = None  # padded units have zero weights in and out: only act(0) != 0 makes them move
        if len(set(batch.widths)) > 1 and not act.zero_at_zero:
            mask = (torch.arange(batch.width) < widths[:, None]).to(device=device, dtype=dtype)
            mask = mask.reshape(n, 1, batch.width)
        train_w = None
        n_train = len(batch.x)
        if batch.val_mask is not None:
            tw = torch.as_tensor(~batch.val_mask, dtype=dtype, device=device).reshape(1, -1, 1)
            train_w, n_train = tw, int((~batch.val_mask).sum())
        t = lambda a: torch.as_tensor(a, dtype=dtype, device=device).reshape(1, -1, 1)  # noqa: E731
        self.prob = Problem(t(batch.x), t(batch.y), act, mask, batch.loss, batch.huber_delta,
                            train_w, n_train, batch.l1, batch.l2)
        self.eval_x = None if batch.eval_x is None else t(batch.eval_x)
        self.opt = optim.OPTIMIZERS[batch.optimizer](self.flat, **batch.flags, **hyper)
        self.base_lr = hyper["lr"].to(device)
        self.schedule = schedules.resolve(batch.schedule, batch.schedule_params, batch.epochs)
        self.gradient = GRADIENTS[gradient] if batch.fused_ok else None
        self.full_batch = self.gradient is not None and not batch.batch_size
        self.epoch = compiled_epoch() if batch.compile else full_batch_epoch
        self.train_idx = torch.nonzero(train_w.reshape(-1) > 0).reshape(-1) if train_w is not None \
            else torch.arange(len(batch.x), device=device)
        self.drop = dropout_masks or (default_dropout_masks(batch, device, dtype)
                                      if batch.dropout else None)
        self.shuffle = shuffle_generators(batch, lo, lo + n) if batch.batch_size else None

    def evaluate(self):
        """Predictions and per-point losses at the current parameters, evaluation mode."""
        with torch.no_grad():
            pred = nn.forward(self.views, self.prob.x, self.prob.act, self.prob.mask,
                              self.norms, "eval")
            return self.prob.point_loss(pred), pred

    def minibatch_steps(self, epoch: int, active):
        """Steps over the epoch's (mini-)batches: the fused gradient on each bee's own batch of
        points where it applies, else autograd with dropout and batch norm in train mode."""
        b, prob = self.batch, self.prob
        idx = self.train_idx
        if self.shuffle is not None:
            order = torch.stack([idx[torch.randperm(len(idx), generator=g)]
                                 for g in self.shuffle])
            size = b.batch_size
        else:
            order, size = idx.unsqueeze(0), len(idx)
        for step, start in enumerate(range(0, order.shape[1], size)):
            sel = order[:, start:start + size]
            xb = prob.x.reshape(-1)[sel].unsqueeze(-1)
            yb = prob.y.reshape(-1)[sel].unsqueeze(-1)
            if self.gradient is not None:
                part = dataclasses.replace(prob, x=xb, y=yb, train_w=None, n_train=sel.shape[1])
                self.gradient(self.flat, self.layout, part, self.grad)
                self.opt.step(self.flat, self.grad, active)
                continue
            p = self.flat.detach().requires_grad_(True)
            params = self.layout.views(p)
            norms = [nn.BatchNorm(g, be) for g, be in self.layout.norm_views(p)]
            for nrm, old in zip(norms, self.norms):
                nrm.mean, nrm.var = old.mean, old.var  # running stats carry over
            drops = [self.drop(epoch, step, i, (self.n, xb.shape[1], b.width))
                     for i in range(b.depth)] if self.drop else None
            pred = nn.forward(params, xb, prob.act, prob.mask, norms, "train", drops)
            loss = LOSSES[prob.loss][0](pred - yb, prob.delta).mean(dim=(1, 2))
            (g,) = torch.autograd.grad((loss + prob.penalty(params)).sum(), p)
            self.opt.step(self.flat, g, active)

    def recordings(self, res: BatchResult) -> dict[str, torch.Tensor]:
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

    def run(self, res: BatchResult, on_epochs) -> None:
        b, n, lo = self.batch, self.n, self.lo
        device = self.flat.device
        alive = torch.ones(n, 1, dtype=torch.bool, device=device)
        running = alive.clone()  # not stopped early
        active = alive  # bees the next step moves: alive, and running with early stopping
        stopped = torch.full((n,), -1, dtype=torch.int64, device=device)
        best = torch.full((n,), float("inf"), dtype=torch.float64, device=device)
        wait = torch.zeros(n, dtype=torch.int64, device=device)
        rec = self.recordings(res)
        frame_of = {e: f for f, e in enumerate(b.frames)}
        if "val_loss" in rec:
            val_w = 1.0 - self.prob.train_w
            n_val = len(b.x) - self.prob.n_train

        for epoch in range(b.epochs + 1):
            coefficients = None
            if epoch > 0:  # the step from epoch - 1 to epoch
                if b.schedule != "constant":
                    self.opt.set_lr(schedules.scheduled_lr(b.schedule, self.schedule,
                                                           self.base_lr, epoch - 1))
                if self.full_batch:
                    coefficients = self.opt.advance()
                else:
                    self.minibatch_steps(epoch - 1, active)
            if self.full_batch:  # the step, then this epoch's loss and gradient
                point, pred, loss = self.epoch(self.gradient, self.flat, self.grad, self.layout,
                                               self.prob, self.opt, coefficients, active, alive)
            else:
                point, pred = self.evaluate()
                loss = self.prob.mean_train(point)
                alive.logical_and_(torch.isfinite(loss).unsqueeze(1))
            rec["loss"][:, epoch] = loss
            if "val_loss" in rec:
                val = (point * val_w).sum(dim=(1, 2)) / n_val
                rec["val_loss"][:, epoch] = val
                if b.patience is not None:
                    better = val.double() < best - b.min_delta
                    best = torch.where(better, val.double(), best)
                    wait = torch.where(better, 0, wait + 1)
                    stop = running.squeeze(1) & alive.squeeze(1) & (wait >= b.patience)
                    stopped.masked_fill_(stop, epoch)
                    running &= ~stop.unsqueeze(1)
                    active = alive & running
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
        res.stopped_epoch[lo:lo + n] = stopped.cpu().numpy()

    def record(self, rec: dict, f: int, pred) -> None:
        """Frame f: predictions (on the evaluation grid when there is one, so curves show what
        a bee does between and beyond its training points), weights and biases."""
        x = self.prob.x if self.eval_x is None else self.eval_x
        if "ypred" in rec:
            if self.eval_x is not None:
                with torch.no_grad():
                    pred = nn.forward(self.views, x, self.prob.act, self.prob.mask, self.norms,
                                      "eval")
            rec["ypred"][:, f] = pred.squeeze(2)
        if "ypred_train" in rec:
            with torch.no_grad():
                drops = [self.drop(-1, f, i, (self.n, x.shape[1], self.batch.width))
                         for i in range(self.batch.depth)]
                train_pred = nn.forward(self.views, x, self.prob.act, self.prob.mask,
                                        self.norms, "batch", drops)
            rec["ypred_train"][:, f] = train_pred.squeeze(2)
        for i, (w, bias) in enumerate(self.views):
            if f"weights_{i}" in rec:
                rec[f"weights_{i}"][:, f] = w
            if f"biases_{i}" in rec:
                rec[f"biases_{i}"][:, f] = bias.squeeze(1)
