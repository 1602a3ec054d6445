"""The plain per-bee way: one torch.nn.Sequential and one torch.optim optimizer per bee.

The batched engine is tested against this, bee for bee, from the same initial weights."""

from __future__ import annotations

import numpy as np
import torch

from swarmcli import nn


class FixedDropout(torch.nn.Module):
    """Dropout whose masks are injected, so the reference drops exactly what the engine drops."""

    def __init__(self):
        super().__init__()
        self.mask = None

    def forward(self, h):
        return h * self.mask if self.training and self.mask is not None else h


def sequential(depth, width, activation, batch_norm=False, dropout=False, slope=0.01, in_dim=1):
    sizes = [in_dim] + [width] * depth + [1]
    layers = []
    for i, (fi, fo) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(fi, fo))
        if i < depth:
            if batch_norm:
                layers.append(torch.nn.BatchNorm1d(fo))
            act = nn.TORCH_MODULES[activation]
            layers.append(act(slope) if activation == "leaky_relu" else act())
            if dropout:
                layers.append(FixedDropout())
    return torch.nn.Sequential(*layers)


def torch_optimizer(name: str, params, h: dict):
    """torch.optim's optimizer `name` with one bee's hyper-parameters (engine names)."""
    betas = (h.get("beta1"), h.get("beta2"))
    make = {
        "sgd": lambda: torch.optim.SGD(params, lr=h["lr"], momentum=h["momentum"],
                                       dampening=h["dampening"], nesterov=h["nesterov"],
                                       weight_decay=h["weight_decay"]),
        "adam": lambda: torch.optim.Adam(params, lr=h["lr"], betas=betas, eps=h["eps"],
                                         weight_decay=h["weight_decay"]),
        "adamw": lambda: torch.optim.AdamW(params, lr=h["lr"], betas=betas, eps=h["eps"],
                                           weight_decay=h["weight_decay"]),
        "adamax": lambda: torch.optim.Adamax(params, lr=h["lr"], betas=betas, eps=h["eps"],
                                             weight_decay=h["weight_decay"]),
        "nadam": lambda: torch.optim.NAdam(params, lr=h["lr"], betas=betas, eps=h["eps"],
                                           weight_decay=h["weight_decay"],
                                           momentum_decay=h["momentum_decay"]),
        "rmsprop": lambda: torch.optim.RMSprop(params, lr=h["lr"], alpha=h["alpha"],
                                               eps=h["eps"], weight_decay=h["weight_decay"],
                                               momentum=h["momentum"], centered=h["centered"]),
        "adagrad": lambda: torch.optim.Adagrad(
            params, lr=h["lr"], lr_decay=h["lr_decay"], weight_decay=h["weight_decay"],
            initial_accumulator_value=h["initial_accumulator_value"], eps=h["eps"]),
    }
    return make[name]()


LOSSES = {"mse": torch.nn.functional.mse_loss, "mae": torch.nn.functional.l1_loss,
          "huber": torch.nn.functional.huber_loss,
          "bce": torch.nn.functional.binary_cross_entropy_with_logits}


def train_one_bee(init, x, y, depth, width, activation, optimizer, hyper, epochs, dtype,
                  loss="mse", l1=0.0, l2=0.0, batch_norm=False, masks=None, perms=None,
                  batch_size=None, val=None):  # x: [points] or [points, in_dim]
    """Loss [epochs + 1] and eval-mode ypred [epochs + 1, points] of one bee, epoch 0 = initial.

    masks(epoch, step, layer) -> this bee's dropout mask; perms[epoch] -> this bee's order of
    the training points; val: boolean mask of held-out points (loss is then on the others, and
    the validation loss is returned too)."""
    in_dim = 1 if np.ndim(x) == 1 else np.shape(x)[1]
    net = sequential(depth, width, activation, batch_norm, masks is not None,
                     in_dim=in_dim).to(dtype)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, (w, b) in zip(linears, init):
            lin.weight.copy_(w.T)  # the engine stores W as [in, out]; nn.Linear as [out, in]
            lin.bias.copy_(b.reshape(-1))
    opt = torch_optimizer(optimizer, net.parameters(), hyper)
    xt = torch.as_tensor(x, dtype=dtype).reshape(len(x), in_dim)
    yt = torch.as_tensor(y, dtype=dtype).reshape(-1, 1)
    train = np.ones(len(x), bool) if val is None else ~val
    tr_idx = torch.as_tensor(np.nonzero(train)[0])
    lossfn = LOSSES[loss]
    drops = [m for m in net if isinstance(m, FixedDropout)]

    def penalty():
        return sum(l1 * lin.weight.abs().sum() + l2 * lin.weight.square().sum()
                   for lin in linears)

    losses, vals, preds = [], [], []
    for epoch in range(epochs + 1):
        net.eval()
        with torch.no_grad():
            pred = net(xt)
        losses.append(lossfn(pred[tr_idx], yt[tr_idx]).item())
        if val is not None:
            vals.append(lossfn(pred[torch.as_tensor(val)], yt[torch.as_tensor(val)]).item())
        preds.append(pred.reshape(-1).numpy().copy())
        if epoch == epochs:
            break
        net.train()
        order = tr_idx if perms is None else tr_idx[perms[epoch]]
        size = batch_size or len(order)
        for step, start in enumerate(range(0, len(order), size)):
            sel = order[start:start + size]
            for layer, d in enumerate(drops):
                d.mask = masks(epoch, step, layer)
            opt.zero_grad()
            out = lossfn(net(xt[sel]), yt[sel]) + penalty()
            out.backward()
            opt.step()
    result = (np.array(losses), np.stack(preds))
    return result + (np.array(vals),) if val is not None else result
