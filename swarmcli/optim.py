"""Batched optimizers with per-bee hyper-parameters.

`torch.optim` takes one scalar lr per parameter group; here every hyper-parameter is a [bees, 1]
tensor, so cells that differ only in lr, momentum or betas train in one batch. Each optimizer
steps a flat parameter buffer [bees, P] with its flat gradient in a handful of in-place kernels and
follows `torch.optim`'s arithmetic operation for operation (tests hold it to that, bee for bee).

A bee that is not `alive` (diverged) is frozen: its gradient is zeroed and its step size is 0.
"""

from __future__ import annotations

import torch


class BatchedOptimizer:
    """Per-bee hyper-parameters are kept in float64 and cast once per step, as torch.optim casts
    its Python-float hyper-parameters to the parameter dtype."""

    hyper: tuple[str, ...] = ()

    def __init__(self, params: torch.Tensor, **hp: torch.Tensor):
        self.hp = {k: v.to(device=params.device, dtype=torch.float64).reshape(-1, 1)
                   for k, v in hp.items() if k in self.hyper}
        self.dtype = params.dtype
        self.t = 0

    def h(self, name: str) -> torch.Tensor:
        return self.hp[name].to(self.dtype)

    def __repr__(self):
        return f"{type(self).__name__}(bees={len(next(iter(self.hp.values())))}, t={self.t})"


class SGD(BatchedOptimizer):
    hyper = ("lr", "momentum", "dampening", "weight_decay")

    def __init__(self, params, nesterov: bool = False, **hp):
        super().__init__(params, **hp)
        self.nesterov = nesterov
        mom = self.hp["momentum"]
        self.hp["dampening"] = torch.where(mom > 0, self.hp["dampening"], 0.0)  # as torch.optim
        self.use_wd = bool((self.hp["weight_decay"] != 0).any())
        self.use_momentum = bool((mom != 0).any())
        self.buf = torch.zeros_like(params) if self.use_momentum else None
        self.neg_lr = -self.h("lr")
        self.mom = self.h("momentum")
        self.one_minus_damp = (1 - self.hp["dampening"]).to(self.dtype)
        self.wd = self.h("weight_decay")

    def step(self, p: torch.Tensor, g: torch.Tensor, alive: torch.Tensor) -> None:
        self.t += 1
        d = g.addcmul(p, self.wd) if self.use_wd else g
        d = torch.where(alive, d, 0.0)
        if self.use_momentum:
            if self.t == 1:
                self.buf.copy_(d)
            else:
                self.buf.mul_(self.mom).addcmul_(d, self.one_minus_damp)
            d = d.addcmul(self.buf, self.mom) if self.nesterov else self.buf
        p.addcmul_(d, self.neg_lr * alive)


class Adam(BatchedOptimizer):
    hyper = ("lr", "beta1", "beta2", "eps", "weight_decay")

    def __init__(self, params, **hp):
        super().__init__(params, **hp)
        self.m = torch.zeros_like(params)
        self.v = torch.zeros_like(params)
        self.use_wd = bool((self.hp["weight_decay"] != 0).any())
        self.b1, self.b2 = self.h("beta1"), self.h("beta2")
        self.one_minus_b1, self.one_minus_b2 = (1 - self.hp["beta1"]).to(self.dtype), (
            1 - self.hp["beta2"]).to(self.dtype)
        self.eps, self.wd = self.h("eps"), self.h("weight_decay")

    def step(self, p, g, alive):
        self.t += 1
        d = g.addcmul(p, self.wd) if self.use_wd else g
        d = torch.where(alive, d, 0.0)
        self.m.lerp_(d, self.one_minus_b1)
        self.v.mul_(self.b2).addcmul_(d, d * self.one_minus_b2)
        hp = self.hp
        step_size = (hp["lr"] / (1 - hp["beta1"] ** self.t)).to(self.dtype)
        bc2_sqrt = ((1 - hp["beta2"] ** self.t) ** 0.5).to(self.dtype)
        denom = (self.v.sqrt() / bc2_sqrt).add_(self.eps)
        p.addcdiv_(self.m * (-step_size * alive), denom)  # torch: p + (-step * m) / denom


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def hyper_parameters(name: str, optim_cfgs) -> dict[str, torch.Tensor]:
    """Stack each bee's hyper-parameters (one OptimConfig per bee) into [bees] float64 tensors."""
    get = {
        "lr": lambda o: o.lr, "momentum": lambda o: o.momentum, "dampening": lambda o: o.dampening,
        "weight_decay": lambda o: o.weight_decay, "beta1": lambda o: o.betas[0],
        "beta2": lambda o: o.betas[1], "eps": lambda o: o.eps,
    }
    return {k: torch.tensor([get[k](o) for o in optim_cfgs], dtype=torch.float64)
            for k in OPTIMIZERS[name].hyper}
