"""The loss of every bee and its gradient with respect to the flat parameters, two ways: by
hand (`hand_derived`: a forward and backward pass of a few batched kernels per layer and no
autograd graph, for plain MLPs) and by torch.autograd (`by_autograd`: the reference the
hand-derived one is tested against)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from swarmcli import nn


# Per-point losses of a prediction p against y, and their derivatives with respect to p times a
# scale s (1 / points, for the mean). bce takes p as a logit, in the form torch's
# binary_cross_entropy_with_logits computes, (1 - y) p - log sigmoid(p): stable for any p (no
# exp overflows), and broadcasting y over the bees; its derivative is sigmoid(p) - y.
def _bce(p, y, d):
    return (1 - y) * p - torch.nn.functional.logsigmoid(p)


LOSSES = {
    "mse": (lambda p, y, d: (p - y).square(), lambda p, y, d, s: (p - y) * (2 * s)),
    "mae": (lambda p, y, d: (p - y).abs(), lambda p, y, d, s: torch.sign(p - y) * s),
    "huber": (lambda p, y, d: _huber(p - y, d), lambda p, y, d, s: (p - y).clamp(-d, d) * s),
    "bce": (_bce, lambda p, y, d, s: (torch.sigmoid(p) - y) * s),
}


def _huber(r, d):
    return torch.where(r.abs() < d, 0.5 * r.square(), d * (r.abs() - 0.5 * d))


@dataclass
class LossInputs:
    """What one chunk's loss and gradient need, as tensors on the chunk's device."""

    x: torch.Tensor  # [1, points, in_dim], or [bees, points, in_dim]: each bee its own batch
    y: torch.Tensor
    act: nn.Activation | nn.Mixed
    mask: torch.Tensor | None  # [bees, 1, width]: 1 for a cell's own units, 0 for its padding
    loss: str
    delta: float  # huber's
    train_weight: torch.Tensor | None  # [1, points, 1] 1.0 for training points; None: all
    n_train: int
    l1: float
    l2: float

    def point_loss(self, pred):
        return LOSSES[self.loss][0](pred, self.y, self.delta)

    def mean_train(self, point_loss):
        if self.train_weight is None:
            return point_loss.mean(dim=(1, 2))
        return (point_loss * self.train_weight).sum(dim=(1, 2)) / self.n_train

    def penalty(self, params):
        total = 0
        for w, _ in params:
            if self.l1:
                total = total + self.l1 * w.abs().sum(dim=(1, 2))
            if self.l2:
                total = total + self.l2 * w.square().sum(dim=(1, 2))
        return total


def by_autograd(flat, layout, inputs: LossInputs, grad_out):
    """Reference gradient: build the graph with torch.autograd."""
    p = flat.detach().requires_grad_(True)
    params = layout.views(p)
    pred = nn.forward(params, inputs.x, inputs.act, inputs.mask)
    point = inputs.point_loss(pred)
    loss = inputs.mean_train(point)
    (g,) = torch.autograd.grad((loss + inputs.penalty(params)).sum(), p)  # each bee its own
    grad_out.copy_(g)
    return point.detach(), pred.detach()


def hand_derived(flat, layout, inputs: LossInputs, grad_out):
    """Hand-derived forward and backward of an MLP's loss, a few batched kernels per layer.

    Activations are laid out [bees, units, points], points innermost: broadcasting a bee's
    per-unit weight along the points, and summing over the points, then run along contiguous
    memory (torch's CPU kernels run several times faster so than along the short unit axis),
    and the first layer's weight gradient is one matrix-vector product for all bees."""
    params = layout.layers(flat)
    grads = layout.layers(grad_out)
    last = len(params) - 1
    act, x = inputs.act, inputs.x.mT  # [1 or bees, in_dim, points]
    one_input = x.shape[1] == 1
    mask = None if inputs.mask is None else inputs.mask.mT  # [bees, width, 1]
    zs, hs = [], [x]
    h = x
    for i, (_, _, wt, bt) in enumerate(params):
        if i == 0:  # fan_in 1: an outer product
            z = wt * x + bt if one_input else torch.matmul(wt, x) + bt
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
    y = inputs.y.mT
    point = LOSSES[inputs.loss][0](pred, y, inputs.delta)
    g = LOSSES[inputs.loss][1](pred, y, inputs.delta, 1.0 / inputs.n_train)
    if inputs.train_weight is not None:
        g = g * inputs.train_weight.mT
    for i in range(last, -1, -1):
        w = params[i][0]
        gw, gb = grads[i][:2]
        gb.copy_(g.sum(dim=2).unsqueeze(1))
        if i == 0:  # every bee's and unit's sum over points of g * x
            n, units, pts = g.shape
            if x.shape[0] == 1 and one_input:  # shared points: one matrix-vector product
                gw.copy_(torch.mv(g.reshape(n * units, pts), x.reshape(pts)).view(n, 1, units))
            elif x.shape[0] == 1:  # shared points, in_dim inputs: one matrix product
                gw.copy_(torch.mm(g.reshape(n * units, pts), x[0].mT).view(n, units, -1).mT)
            elif one_input:  # each bee its own mini-batch
                gw.copy_(torch.bmm(g, x.mT).view(n, 1, units))
            else:
                gw.copy_(torch.bmm(x, g.mT))
            break
        gw.copy_(torch.bmm(hs[i], g.mT))
        g = w * g if i == last else torch.bmm(w, g)  # fan_out 1: an outer product
        g = act.chain(g, zs[i - 1], hs[i])
    for (w, *_), (gw, *_) in zip(params, grads):
        if inputs.l1:
            gw.add_(torch.sign(w), alpha=inputs.l1)
        if inputs.l2:
            gw.add_(w, alpha=2 * inputs.l2)
    return point.mT, pred.mT
