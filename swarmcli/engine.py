"""The training loop: one batch of bees, full batch, one optimizer step per epoch.

All parameters of a batch live in one flat buffer [bees, P]; each layer's W [bees, in, out] and
b [bees, 1, out] are views into it, so the optimizer updates everything in a few kernels. The
gradient comes from a hand-derived backward pass (`fused`, the default: a few batched kernels per
layer, no autograd graph) or from autograd (`autograd`, kept as the reference the fused path is
tested against). Bees are independent, so a large batch trains chunk by chunk (each chunk all
epochs), which keeps the working set in cache and memory bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from swarmcli import nn, optim


@dataclass
class Batch:
    """Plain data the engine needs: cells that share depth, activation, optimizer and data.

    Per-cell lists (`widths`, `hyper`) are expanded to per-bee tensors here."""

    depth: int
    widths: list[int]
    bees: int
    activation: str
    optimizer: str
    hyper: dict[str, list[float]]  # per cell
    x: np.ndarray
    y: np.ndarray
    epochs: int
    seed: int
    init: str = "default"
    nesterov: bool = False
    record: tuple[str, ...] = ("ypred",)
    frames: list[int] = field(default_factory=list)  # epochs to record, 0 = initial state
    device: str = "cpu"
    dtype: str = "float32"

    @property
    def width(self) -> int:
        return max(self.widths)

    @property
    def total_bees(self) -> int:
        return self.bees * len(self.widths)


@dataclass
class BatchResult:
    loss: np.ndarray  # [bees, epochs + 1]
    diverged_epoch: np.ndarray  # [bees], -1 if the bee never diverged
    ypred: np.ndarray | None = None  # [bees, frames, points]
    weights: list[np.ndarray] = field(default_factory=list)  # per layer [bees, frames, in, out]
    biases: list[np.ndarray] = field(default_factory=list)  # per layer [bees, frames, out]


class Layout:
    """Where each layer's W and b sit in the flat [bees, P] buffer."""

    def __init__(self, shapes: list[tuple[int, int]]):
        self.shapes = shapes
        self.slices = []
        off = 0
        for fi, fo in shapes:
            self.slices.append(((off, off + fi * fo), (off + fi * fo, off + fi * fo + fo)))
            off += fi * fo + fo
        self.size = off

    def views(self, flat: torch.Tensor):
        """(W, b) views [bees, in, out], [bees, 1, out] into a flat [bees, P] tensor."""
        n = flat.shape[0]
        return [(flat[:, w0:w1].view(n, fi, fo), flat[:, b0:b1].view(n, 1, fo))
                for ((w0, w1), (b0, b1)), (fi, fo) in zip(self.slices, self.shapes)]

    def __repr__(self):
        return f"Layout(shapes={self.shapes}, P={self.size})"


def autograd_loss_and_grad(flat, layout, x, y, act, mask, grad_out):
    """Reference gradient: build the graph with torch.autograd."""
    p = flat.detach().requires_grad_(True)
    pred = nn.forward(layout.views(p), x, act, mask)
    loss = (pred - y).square().mean(dim=(1, 2))
    (g,) = torch.autograd.grad(loss.sum(), p)  # sum of per-bee means: each bee its own gradient
    grad_out.copy_(g)
    return loss.detach(), pred.detach()


def fused_loss_and_grad(flat, layout, x, y, act, mask, grad_out):
    """Hand-derived forward and backward of the MSE of an MLP, a few batched kernels per layer."""
    params = layout.views(flat)
    grads = layout.views(grad_out)
    last = len(params) - 1
    zs, hs = [], [x]
    h = x
    for i, (w, b) in enumerate(params):
        if i == 0:
            z = torch.addcmul(b, x, w)  # fan_in 1: an outer product, no matmul needed
        else:
            z = torch.baddbmm(b, h, w)
        if i == last:
            pred = z
            break
        h = act.fn(z)
        if mask is not None:
            h = h * mask
        zs.append(z)
        hs.append(h)
    r = pred - y
    loss = r.square().mean(dim=(1, 2))
    g = r * (2.0 / r.shape[1])  # d(mean square)/d pred
    for i in range(last, -1, -1):
        w = params[i][0]
        gw, gb = grads[i]
        gb.copy_(g.sum(dim=1, keepdim=True))
        if i == 0:
            gw.copy_((g * x).sum(dim=1, keepdim=True))
            break
        gw.copy_(torch.bmm(hs[i].transpose(1, 2), g))
        g = torch.bmm(g, w.transpose(1, 2))
        g.mul_(act.grad(zs[i - 1], hs[i]))
    return loss, pred


GRADIENTS = {"fused": fused_loss_and_grad, "autograd": autograd_loss_and_grad}


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
        params = nn.init_params(batch.seed, batch.depth, width, batch.bees, batch.init)
        params = nn.pad_params(params, batch.width)
        cells.append(torch.cat([t.reshape(batch.bees, -1) for wb in params for t in wb], dim=1))
    return torch.cat(cells)


def record_bytes(batch: Batch) -> int:
    """Bytes the recordings of a batch take on the host (float32 or float64 per value)."""
    item = 4 if batch.dtype == "float32" else 8
    per_frame = 0
    shapes = nn.layer_shapes(batch.depth, batch.width)
    if "ypred" in batch.record:
        per_frame += len(batch.x)
    if "weights" in batch.record:
        per_frame += sum(fi * fo for fi, fo in shapes)
    if "biases" in batch.record:
        per_frame += sum(fo for _, fo in shapes)
    return batch.total_bees * item * (per_frame * len(batch.frames) + batch.epochs + 1)


def train(batch: Batch, gradient: str = "fused", chunk_bees: int | None = None,
          on_epochs=None) -> BatchResult:
    """Train every bee of the batch; return per-bee recordings as numpy arrays.

    `on_epochs(n)` is called as training advances by n bee-epochs (for a progress bar)."""
    device = resolve_device(batch.device)
    dtype = getattr(torch, batch.dtype)
    layout = Layout(nn.layer_shapes(batch.depth, batch.width))
    n_bees, n_frames, n_points = batch.total_bees, len(batch.frames), len(batch.x)
    flat0 = initial_flat(batch, layout)
    hyper = {k: torch.tensor(v, dtype=torch.float64).repeat_interleave(batch.bees)
             for k, v in batch.hyper.items()}
    widths = torch.tensor(batch.widths).repeat_interleave(batch.bees)

    res = BatchResult(loss=np.empty((n_bees, batch.epochs + 1), dtype=batch.dtype),
                      diverged_epoch=np.full(n_bees, -1, dtype=np.int64))
    if "ypred" in batch.record:
        res.ypred = np.empty((n_bees, n_frames, n_points), dtype=batch.dtype)
    for fi, fo in layout.shapes:
        if "weights" in batch.record:
            res.weights.append(np.empty((n_bees, n_frames, fi, fo), dtype=batch.dtype))
        if "biases" in batch.record:
            res.biases.append(np.empty((n_bees, n_frames, fo), dtype=batch.dtype))

    chunk = chunk_bees or default_chunk(batch, device)
    for lo in range(0, n_bees, chunk):
        hi = min(lo + chunk, n_bees)
        _train_chunk(batch, gradient, device, dtype, layout, flat0[lo:hi],
                     {k: v[lo:hi] for k, v in hyper.items()}, widths[lo:hi], res, lo, on_epochs)
    return res


def default_chunk(batch: Batch, device: str) -> int:
    """Bees per chunk: all of them on a GPU; on a CPU, enough that one activation tensor
    [bees, points, width] stays around a few MB, to keep the epoch loop in cache."""
    if device != "cpu":
        return batch.total_bees
    per_bee = len(batch.x) * batch.width * (4 if batch.dtype == "float32" else 8)
    return max(1, min(batch.total_bees, (4 << 20) // per_bee))


def _train_chunk(batch, gradient, device, dtype, layout, flat0, hyper, widths, res, lo, on_epochs):
    n = flat0.shape[0]
    flat = flat0.to(device=device, dtype=dtype).contiguous()
    grad = torch.zeros_like(flat)
    x = torch.as_tensor(batch.x, dtype=dtype, device=device).reshape(1, -1, 1)
    y = torch.as_tensor(batch.y, dtype=dtype, device=device).reshape(1, -1, 1)
    act = nn.ACTIVATIONS[batch.activation]
    mask = None
    if len(set(batch.widths)) > 1:
        mask = (torch.arange(batch.width) < widths[:, None]).to(device=device, dtype=dtype)
        mask = mask.reshape(n, 1, batch.width)
    kwargs = {"nesterov": batch.nesterov} if batch.optimizer == "sgd" else {}
    opt = optim.OPTIMIZERS[batch.optimizer](flat, **kwargs, **hyper)
    step_grad = GRADIENTS[gradient]
    alive = torch.ones(n, 1, dtype=torch.bool, device=device)
    first_bad = torch.full((n,), -1, dtype=torch.int64, device=device)

    loss_rec = torch.empty(batch.epochs + 1, n, dtype=dtype, device=device)
    frame_of = {e: f for f, e in enumerate(batch.frames)}
    ypred_rec = torch.empty(n, len(batch.frames), len(batch.x), dtype=dtype, device=device) \
        if res.ypred is not None else None
    views = layout.views(flat)

    for epoch in range(batch.epochs + 1):
        if epoch < batch.epochs:
            loss, pred = step_grad(flat, layout, x, y, act, mask, grad)
        else:
            with torch.no_grad():
                pred = nn.forward(views, x, act, mask)
                loss = (pred - y).square().mean(dim=(1, 2))
        loss_rec[epoch] = loss
        finite = torch.isfinite(loss).unsqueeze(1)
        first_bad.masked_fill_((alive & ~finite).squeeze(1), epoch)
        alive &= finite
        f = frame_of.get(epoch)
        if f is not None:
            if ypred_rec is not None:
                ypred_rec[:, f] = pred.squeeze(2)
            for i, (w, b) in enumerate(views):
                if res.weights:
                    res.weights[i][lo:lo + n, f] = w.cpu().numpy()
                if res.biases:
                    res.biases[i][lo:lo + n, f] = b.squeeze(1).cpu().numpy()
        if epoch < batch.epochs:
            opt.step(flat, grad, alive)
        if on_epochs is not None:
            on_epochs(n)

    res.loss[lo:lo + n] = loss_rec.T.cpu().numpy()
    res.diverged_epoch[lo:lo + n] = first_bad.cpu().numpy()
    if ypred_rec is not None:
        res.ypred[lo:lo + n] = ypred_rec.cpu().numpy()
