"""The plain per-bee way: one torch.nn.Sequential and one torch.optim optimizer per bee.

The batched engine is tested against this, bee for bee, from the same initial weights."""

from __future__ import annotations

import numpy as np
import torch

from swarmcli import nn


def sequential(depth: int, width: int, activation: str) -> torch.nn.Sequential:
    sizes = [1] + [width] * depth + [1]
    layers = []
    for i, (fi, fo) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(fi, fo))
        if i < depth:
            layers.append(nn.TORCH_MODULES[activation]())
    return torch.nn.Sequential(*layers)


def torch_optimizer(name: str, params, hyper: dict):
    if name == "sgd":
        return torch.optim.SGD(params, lr=hyper["lr"], momentum=hyper["momentum"],
                               dampening=hyper["dampening"], nesterov=hyper["nesterov"],
                               weight_decay=hyper["weight_decay"])
    if name == "adam":
        return torch.optim.Adam(params, lr=hyper["lr"], betas=(hyper["beta1"], hyper["beta2"]),
                                eps=hyper["eps"], weight_decay=hyper["weight_decay"])
    raise ValueError(name)


def train_one_bee(init, x, y, depth, width, activation, optimizer, hyper, epochs, dtype):
    """Loss [epochs + 1] and ypred [epochs + 1, points] of one bee, epoch 0 = initial state."""
    net = sequential(depth, width, activation).to(dtype)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, (w, b) in zip(linears, init):
            lin.weight.copy_(w.T)  # the engine stores W as [in, out]; nn.Linear as [out, in]
            lin.bias.copy_(b.reshape(-1))
    opt = torch_optimizer(optimizer, net.parameters(), hyper)
    xt = torch.as_tensor(x, dtype=dtype).reshape(-1, 1)
    yt = torch.as_tensor(y, dtype=dtype).reshape(-1, 1)
    losses, preds = [], []
    for epoch in range(epochs + 1):
        opt.zero_grad()
        pred = net(xt)
        loss = torch.nn.functional.mse_loss(pred, yt)
        losses.append(loss.item())
        preds.append(pred.detach().reshape(-1).numpy().copy())
        if epoch < epochs:
            loss.backward()
            opt.step()
    return np.array(losses), np.stack(preds)
