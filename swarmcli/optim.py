"""Batched optimizers with per-bee hyper-parameters.

`torch.optim` takes one scalar lr per parameter group; here every hyper-parameter is a [bees, 1]
tensor, so cells that differ only in lr, momentum, betas, ... train in one batch. Each optimizer
steps a flat parameter buffer [bees, P] with its flat gradient in a handful of in-place kernels and
follows the single-tensor (non-foreach) CPU path of `torch.optim` operation for operation, bee for
bee (tests hold it to float64 1e-10 and float32 1e-5 after 50 steps).

Per-bee hyper-parameters are kept in float64 (as torch.optim keeps Python floats), combined in
float64 (`lr / bias_correction`, ...) and cast to the parameter dtype where torch hands a Python
float to a kernel. Where torch skips work for a zero hyper-parameter (momentum, weight decay) the
batched formula reduces to the same arithmetic for the bees where it is zero. Flags (`nesterov`,
`centered`) are constructor keywords shared by the whole batch.

A bee that is not `alive` (diverged) is frozen: its gradient is zeroed and its step size is 0 (its
AdamW decay factor 1), so its parameters stay exactly as they were even when its gradient is NaN.
`set_lr` changes the per-bee lr for the coming steps, as an lr scheduler changes `group["lr"]`.

A step is two halves: `coefficients()` works out, in Python floats as torch.optim does, the
[bees, 1] factors that depend on the step count or lr (bias corrections, ...); `update()` is pure
tensor arithmetic with no Python number that changes between steps, so the engine can run it
inside one compiled graph with the rest of the epoch. Keyword arguments an optimizer does not use
are ignored, so a caller may pass every hyper-parameter and flag to any optimizer.
"""

from __future__ import annotations

import math

import torch

from swarmcli.choices import DEFAULTS

STEP_BLOCK = 256  # steps of Python-float factors (bias corrections...) worked out at once


def bias_correction(t: float, beta: float) -> float:
    """1 - beta^t, as torch.optim's Adam-family optimizers work it out."""
    return 1 - beta**t


# Valid range of each per-bee hyper-parameter as torch.optim checks it: [0, inf), betas [0, 1),
# dampening unchecked.
_RANGES = {"beta1": (0.0, 1.0), "beta2": (0.0, 1.0), "dampening": (-math.inf, math.inf)}


class BatchedOptimizer:
    """Base: per-bee hyper-parameters `self.per_bee[name]` [bees, 1] float64; `in_dtype(name)`
    casts one to the parameter dtype, `complement(name)` 1 - it. Subclasses cache what depends on
    lr in `_lr_changed`."""

    hyper: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def __init__(self, params: torch.Tensor, **hyper_values):
        missing = [k for k in self.hyper if k not in hyper_values]
        if missing:
            raise TypeError(f"{type(self).__name__} needs per-bee hyper-parameters {missing}")
        self.bees, self.dtype, self.device = params.shape[0], params.dtype, params.device
        self.per_bee = {k: self._per_bee(k, hyper_values[k]) for k in self.hyper}
        for k, v in self.per_bee.items():
            lo, hi = _RANGES.get(k, (0.0, math.inf))
            bad = ~torch.isfinite(v) | (v < lo) | (v >= hi)
            if bool(bad.any()):
                i = int(bad.nonzero()[0, 0])
                raise ValueError(f"invalid {k}={v[i, 0].item()!r} for bee {i}")
        self.t = 0
        self._unique: dict[tuple[str, ...], tuple[list, torch.Tensor]] = {}
        self._tables: dict = {}  # (fn, names) -> (first step, [STEP_BLOCK, combinations])
        self.use_wd = bool((self.per_bee["weight_decay"] != 0).any())  # every optimizer has one
        self.wd = self.in_dtype("weight_decay")
        self._lr_changed()

    def _per_bee(self, name: str, v) -> torch.Tensor:
        v = torch.as_tensor(v).to(device=self.device, dtype=torch.float64).reshape(-1, 1)
        if v.shape[0] == 1:
            v = v.expand(self.bees, 1)
        if v.shape[0] != self.bees:
            raise ValueError(f"{name} has {v.shape[0]} values for {self.bees} bees")
        return v.clone()

    def step(self, p: torch.Tensor, g: torch.Tensor, alive: torch.Tensor) -> None:
        """One optimizer step of every bee; `alive` [bees, 1] bool, False freezes a bee."""
        self.update(p, g, alive, *self.advance())

    def advance(self) -> tuple[torch.Tensor, ...]:
        """Count a step and return its coefficients, for an `update` the caller runs."""
        self.t += 1
        return self.coefficients()

    def coefficients(self) -> tuple[torch.Tensor, ...]:
        """This step's factors (self.t is the step number, from 1)."""
        return ()

    def update(self, p, g, alive, *coefficients) -> None:
        raise NotImplementedError

    def forget(self, dead: torch.Tensor) -> None:
        """Zero the state buffers ([bees, P]: momentum, running averages) of `dead` bees
        ([bees, 1] bool). Several steps without a check between them (mini-batches) can leave
        a dying bee's buffer at inf, and a frozen step is a product with 0: inf * 0 is NaN.
        With zero state every later step of a dead bee is exactly 0."""
        for t in vars(self).values():
            if isinstance(t, torch.Tensor) and t.dim() == 2 and t.shape[1] > 1 \
                    and t.shape[0] == self.bees:
                t.masked_fill_(dead, 0.0)

    def in_dtype(self, name: str) -> torch.Tensor:
        """A per-bee hyper-parameter cast to the parameters' dtype, as torch hands a kernel a
        Python float."""
        return self.per_bee[name].to(self.dtype)

    def complement(self, name: str) -> torch.Tensor:
        """1 - hyper-parameter, worked out in float64 (as Python floats in torch.optim)."""
        return (1 - self.per_bee[name]).to(self.dtype)

    def set_lr(self, lr: torch.Tensor) -> None:
        """Per-bee lr ([bees] or [bees, 1], float64) for the coming steps."""
        self.per_bee["lr"] = self._per_bee("lr", lr)
        self._lr_changed()

    def _lr_changed(self) -> None:
        self.neg_lr = -self.in_dtype("lr")

    def per_step_floats(self, fn, *names: str) -> torch.Tensor:
        """[bees, 1] float64: fn(step, *hyper) evaluated in Python floats once per distinct
        combination of the named hyper-parameters, as torch.optim evaluates `beta1 ** step` and
        the like. (torch's `x ** 3` is x * x * x and its vectorised pow is Sleef's, both a few
        ulps off Python's pow.)

        Worked out for a block of steps at a time and kept on the device: a step then copies
        nothing from the host, which on a GPU would wait for the queued work to finish."""
        if names not in self._unique:
            cols = torch.cat([self.per_bee[n] for n in names], dim=1)
            rows, inv = torch.unique(cols.cpu(), dim=0, return_inverse=True)
            self._unique[names] = rows.tolist(), inv.to(self.device)
        rows, inv = self._unique[names]
        key = (fn.__code__, names)  # the same lambda, written once, has one code object
        start, table = self._tables.get(key, (0, None))
        if table is None or not start <= self.t < start + STEP_BLOCK:
            start = self.t
            table = torch.tensor([[fn(float(t), *r) for r in rows]
                                  for t in range(start, start + STEP_BLOCK)],
                                 dtype=torch.float64).to(self.device)
            self._tables[key] = start, table
        return table[self.t - start][inv].reshape(-1, 1)

    def _l2(self, p: torch.Tensor, g: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
        """The gradient with L2 weight decay added (torch: grad.add(param, alpha=wd)), zeroed for
        dead bees."""
        d = g.addcmul(p, self.wd) if self.use_wd else g
        return torch.where(alive, d, 0.0)

    def __repr__(self):
        return f"{type(self).__name__}(bees={self.bees}, t={self.t})"


class SGD(BatchedOptimizer):
    """torch.optim.SGD. A bee with momentum 0 has dampening 0 and its buffer equals its gradient
    (0 * buf + 1 * grad), which is torch's momentum-free step."""

    hyper = ("lr", "momentum", "dampening", "weight_decay")
    flags = ("nesterov",)

    def __init__(self, params, nesterov: bool = False, **hyper_values):
        super().__init__(params, **hyper_values)
        mom = self.per_bee["momentum"]
        if nesterov and bool(((mom <= 0) | (self.per_bee["dampening"] != 0)).any()):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self.nesterov = nesterov
        self.per_bee["dampening"] = torch.where(mom != 0, self.per_bee["dampening"], 0.0)
        self.use_momentum = bool((mom != 0).any())
        self.buf = torch.zeros_like(params) if self.use_momentum else None
        self.mom = self.in_dtype("momentum")
        self.one_minus_damp = self.complement("dampening")
        # the first step's buffer is the gradient itself: 0 * (zero buffer) + 1 * d
        self.first = (torch.zeros_like(self.mom), torch.ones_like(self.mom))

    def coefficients(self):
        keep, take = self.first if self.t == 1 else (self.mom, self.one_minus_damp)
        return self.neg_lr, keep, take

    def update(self, p, g, alive, neg_lr, keep, take):
        d = self._l2(p, g, alive)
        if self.use_momentum:
            self.buf.mul_(keep).addcmul_(d, take)
            d = d.addcmul(self.buf, self.mom) if self.nesterov else self.buf
        p.addcmul_(d, neg_lr * alive)


class Adam(BatchedOptimizer):
    """torch.optim.Adam (L2 weight decay added to the gradient)."""

    hyper = ("lr", "beta1", "beta2", "eps", "weight_decay")
    decoupled = False

    def __init__(self, params, **hyper_values):
        super().__init__(params, **hyper_values)
        self.m = torch.zeros_like(params)
        self.v = torch.zeros_like(params)
        self.b2 = self.in_dtype("beta2")
        self.one_minus_b1, self.one_minus_b2 = self.complement("beta1"), self.complement("beta2")
        self.eps = self.in_dtype("eps")

    def _lr_changed(self):
        super()._lr_changed()
        if self.decoupled:  # torch: param.mul_(1 - lr * weight_decay)
            self.decay = (1 - self.per_bee["lr"] * self.per_bee["weight_decay"]).to(self.dtype)

    def coefficients(self):
        bc1 = self.per_step_floats(bias_correction, "beta1")
        step_size = (self.per_bee["lr"] / bc1).to(self.dtype)
        bc2_sqrt = self.per_step_floats(lambda t, b2: (1 - b2**t) ** 0.5, "beta2").to(self.dtype)
        decay = self.decay if self.decoupled else None
        return -step_size, bc2_sqrt, decay

    def update(self, p, g, alive, neg_step, bc2_sqrt, decay):
        if self.decoupled:
            if self.use_wd:
                p.mul_(torch.where(alive, decay, 1.0))
            d = torch.where(alive, g, 0.0)
        else:
            d = self._l2(p, g, alive)
        self.m.lerp_(d, self.one_minus_b1)
        self.v.mul_(self.b2).addcmul_(d, d * self.one_minus_b2)
        denom = (self.v.sqrt() / bc2_sqrt).add_(self.eps)
        p.addcdiv_(self.m * (neg_step * alive), denom)  # torch: p + (-step * m) / denom


class AdamW(Adam):
    """torch.optim.AdamW: decoupled weight decay p *= 1 - lr * weight_decay before the step."""

    decoupled = True


class RMSprop(BatchedOptimizer):
    """torch.optim.RMSprop. Bees with momentum 0 take torch's buffer-free step
    p + (-lr * grad) / avg, the others p + (-lr) * buf, even when both share a batch."""

    hyper = ("lr", "alpha", "eps", "weight_decay", "momentum")
    flags = ("centered",)

    def __init__(self, params, centered: bool = False, **hyper_values):
        super().__init__(params, **hyper_values)
        self.centered = centered
        mom = self.per_bee["momentum"]
        self.use_momentum = bool((mom > 0).any())
        self.mixed = self.use_momentum and bool((mom == 0).any())
        self.has_mom = mom > 0
        self.no_mom = ~self.has_mom
        self.square_avg = torch.zeros_like(params)
        self.grad_avg = torch.zeros_like(params) if centered else None
        self.buf = torch.zeros_like(params) if self.use_momentum else None
        self.alpha, self.one_minus_alpha = self.in_dtype("alpha"), self.complement("alpha")
        self.eps, self.mom = self.in_dtype("eps"), self.in_dtype("momentum")

    def coefficients(self):
        return (self.neg_lr,)

    def update(self, p, g, alive, neg_lr):
        d = self._l2(p, g, alive)
        self.square_avg.mul_(self.alpha).addcmul_(d, d * self.one_minus_alpha)
        if self.centered:
            self.grad_avg.lerp_(d, self.one_minus_alpha)
            avg = self.square_avg.addcmul(self.grad_avg, self.grad_avg, value=-1).sqrt_()
        else:
            avg = self.square_avg.sqrt()
        avg.add_(self.eps)
        neg_lr = neg_lr * alive
        if not self.use_momentum:
            p.addcdiv_(d * neg_lr, avg)
            return
        self.buf.mul_(self.mom).addcdiv_(d, avg)
        if self.mixed:  # each bee's update in torch's own kernel, a zero step for the others
            p.addcmul_(self.buf, neg_lr * self.has_mom)
            p.addcdiv_(d * (neg_lr * self.no_mom), avg)
        else:
            p.addcmul_(self.buf, neg_lr)


class Adagrad(BatchedOptimizer):
    """torch.optim.Adagrad: clr = lr / (1 + (step - 1) * lr_decay) with the current lr."""

    hyper = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params, **hyper_values):
        super().__init__(params, **hyper_values)
        self.sum = self.in_dtype("initial_accumulator_value").expand_as(params).clone()
        self.eps = self.in_dtype("eps")

    def coefficients(self):
        clr = self.per_bee["lr"] / (1 + (self.t - 1) * self.per_bee["lr_decay"])
        return ((-clr).to(self.dtype),)

    def update(self, p, g, alive, neg_clr):
        d = self._l2(p, g, alive)
        self.sum.addcmul_(d, d)
        std = self.sum.sqrt().add_(self.eps)
        p.addcdiv_(d * (neg_clr * alive), std)


class Adamax(BatchedOptimizer):
    """torch.optim.Adamax."""

    hyper = ("lr", "beta1", "beta2", "eps", "weight_decay")

    def __init__(self, params, **hyper_values):
        super().__init__(params, **hyper_values)
        self.m = torch.zeros_like(params)
        self.u = torch.zeros_like(params)
        self.b2, self.one_minus_b1 = self.in_dtype("beta2"), self.complement("beta1")
        self.eps = self.in_dtype("eps")

    def coefficients(self):
        clr = self.per_bee["lr"] / self.per_step_floats(bias_correction, "beta1")
        return ((-clr).to(self.dtype),)

    def update(self, p, g, alive, neg_clr):
        d = self._l2(p, g, alive)
        self.m.lerp_(d, self.one_minus_b1)
        torch.maximum(self.u.mul_(self.b2), d.abs().add_(self.eps), out=self.u)
        p.addcdiv_(self.m * (neg_clr * alive), self.u)


class NAdam(BatchedOptimizer):
    """torch.optim.NAdam (decoupled_weight_decay=False). torch keeps the running mu_product in a
    0-dim tensor of its scalar dtype (float32 unless the default dtype is float64), so it is
    rounded to that dtype after every step here too."""

    hyper = ("lr", "beta1", "beta2", "eps", "weight_decay", "momentum_decay")

    def __init__(self, params, **hyper_values):
        super().__init__(params, **hyper_values)
        self.m = torch.zeros_like(params)
        self.v = torch.zeros_like(params)
        scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
        self.mu_product = torch.ones(self.bees, 1, dtype=scalar, device=self.device)
        self.b2 = self.in_dtype("beta2")
        self.one_minus_b1, self.one_minus_b2 = self.complement("beta1"), self.complement("beta2")
        self.eps = self.in_dtype("eps")

    def coefficients(self):
        bc2 = self.per_step_floats(bias_correction, "beta2").to(self.dtype)
        mu = self.per_step_floats(lambda t, b1, md: b1 * (1.0 - 0.5 * (0.96 ** (t * md))),
                                  "beta1", "momentum_decay")
        mu_next = self.per_step_floats(
            lambda t, b1, md: b1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * md))), "beta1",
            "momentum_decay")
        self.mu_product.mul_(mu.to(self.mu_product.dtype))
        mu_product = self.mu_product.double()
        lr = self.per_bee["lr"]
        c_grad = -lr * (1.0 - mu) / (1.0 - mu_product)
        c_avg = (-lr * mu_next) / (1.0 - mu_product * mu_next)
        return bc2, c_grad.to(self.dtype), c_avg.to(self.dtype)

    def update(self, p, g, alive, bc2, c_grad, c_avg):
        d = self._l2(p, g, alive)
        self.m.lerp_(d, self.one_minus_b1)
        self.v.mul_(self.b2).addcmul_(d, d * self.one_minus_b2)
        denom = self.v.div(bc2).sqrt_().add_(self.eps)
        p.addcdiv_(d * (c_grad * alive), denom)
        p.addcdiv_(self.m * (c_avg * alive), denom)


OPTIMIZERS: dict[str, type[BatchedOptimizer]] = {
    "sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad,
    "adamax": Adamax, "nadam": NAdam,
}
# name -> the flags (constructor keywords shared by a batch) it takes
FLAGS: dict[str, tuple[str, ...]] = {n: c.flags for n, c in OPTIMIZERS.items() if c.flags}

def config_field(name: str) -> tuple[str, int | None]:
    """Where a per-bee hyper-parameter sits in OptimConfig: beta1 and beta2 are the two items of
    `betas`, every other one is the field of its own name."""
    return ("betas", int(name[-1]) - 1) if name in ("beta1", "beta2") else (name, None)


def hyper_parameters(name: str, optim_cfgs) -> dict[str, torch.Tensor]:
    """Stack each bee's hyper-parameters (one OptimConfig per bee, or per cell) into [n] float64
    tensors, the names `OPTIMIZERS[name].hyper`. A field that is None (or missing) takes torch's
    default for that optimizer (eps: adagrad 1e-10, others 1e-8; weight_decay: adamw 1e-2)."""
    out = {}
    for k in OPTIMIZERS[name].hyper:
        field, idx = config_field(k)
        vals = []
        for o in optim_cfgs:
            v = getattr(o, field, None)
            if v is None:
                v = DEFAULTS[name][field]
            vals.append(v if idx is None else v[idx])
        out[k] = torch.tensor([float(v) for v in vals], dtype=torch.float64)
    return out


def flags(name: str, optim_cfg) -> dict[str, bool]:
    """The batch-wide flags of optimizer `name` (nesterov, centered) from one OptimConfig."""
    out = {}
    for k in OPTIMIZERS[name].flags:
        v = getattr(optim_cfg, k, None)
        out[k] = bool(DEFAULTS[name][k] if v is None else v)
    return out
