"""Batched MLPs: every bee's layer l is one slice of W[l]: [bees, fan_in, fan_out] and
b[l]: [bees, 1, fan_out], so a whole swarm runs forward and backward as a few batched kernels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from swarmcli import choices


@dataclass(frozen=True)
class Activation:
    """An activation and its derivative, written from the pre-activation z and output a
    so the fused backward pass reuses what the forward pass already computed."""

    name: str
    fn: object  # z -> a
    grad: object = None  # (z, a) -> da/dz
    backprop: object = None  # (g, z, a, out=None) -> g * da/dz in one kernel, where torch has one
    fn_out: object = None  # (z, out) -> fn(z) written into out, where torch has out= kernels

    def chain(self, g, z, a):
        """The gradient with respect to z, given the gradient g with respect to a."""
        return self.backprop(g, z, a) if self.backprop else g * self.grad(z, a)

    # The *_into forms write into `out`, a slice of a Mixed batch's buffer, with the same kernels
    # in the same order as fn and chain (so the same bits): each part of the bee axis lands in
    # place instead of in a tensor of its own that torch.cat then copies again.
    def fn_into(self, z, out):
        if self.fn_out:
            self.fn_out(z, out)
        else:
            out.copy_(self.fn(z))

    def chain_into(self, g, z, a, out):
        if self.backprop:
            self.backprop(g, z, a, out=out)
        else:
            torch.mul(g, self.grad(z, a), out=out)

    @property
    def zero_at_zero(self) -> bool:
        """act(0) == 0: a padded unit (zero weights in and out) then outputs exactly 0 and needs
        no mask."""
        return float(self.fn(torch.zeros(1, dtype=torch.float64))) == 0.0

    def __repr__(self):
        return f"Activation({self.name})"


_INV_SQRT_2PI = 0.3989422804014327
_SQRT1_2 = 0.7071067811865476


def _leaky(slope: float) -> Activation:
    return Activation("leaky_relu", lambda z: torch.nn.functional.leaky_relu(z, slope),
                      lambda z, a: torch.where(z > 0, 1.0, z.new_full((), slope)))


def _relu_backprop(g, z, a, out=None):  # keeps g where a > 0, in one kernel (torch's own)
    if out is None:
        return torch.ops.aten.threshold_backward(g, a, 0)
    return torch.ops.aten.threshold_backward.grad_input(g, a, 0, grad_input=out)


def _tanhshrink_out(z, out):  # z - tanh(z), tanh(z) computed in out
    torch.tanh(z, out=out)
    torch.sub(z, out, out=out)


def _gelu_grad(z, a):  # as torch's gelu_backward: Phi(z) + z * phi(z)
    return 0.5 * (1 + torch.erf(z * _SQRT1_2)) + z * (torch.exp(-0.5 * z * z) * _INV_SQRT_2PI)


def _silu_grad(z, a):  # as torch's silu_backward
    s = torch.sigmoid(z)
    return s * (1 + z * (1 - s))


def _softplus_grad(z, a):  # as torch's softplus_backward, beta 1, threshold 20
    e = torch.exp(z)
    return torch.where(z > 20, 1.0, e / (e + 1))


_IMPLEMENTED = {
    a.name: a
    for a in [
        # torch.relu is clamp_min(z, 0), the kernel relu's fn_out calls
        Activation("relu", torch.relu, backprop=_relu_backprop,
                   fn_out=lambda z, out: torch.clamp_min(z, 0, out=out)),
        Activation("tanh", torch.tanh, lambda z, a: 1 - a * a,
                   fn_out=lambda z, out: torch.tanh(z, out=out)),
        Activation("tanhshrink", lambda z: z - torch.tanh(z), lambda z, a: (z - a).square(),
                   fn_out=_tanhshrink_out),
        Activation("sigmoid", torch.sigmoid, lambda z, a: a * (1 - a),
                   fn_out=lambda z, out: torch.sigmoid(z, out=out)),
        _leaky(choices.LEAKY_SLOPE),
        Activation("identity", lambda z: z, lambda z, a: torch.ones_like(z)),
        Activation("elu", torch.nn.functional.elu, lambda z, a: torch.where(z > 0, 1.0, z.exp())),
        Activation("gelu", torch.nn.functional.gelu, _gelu_grad),
        Activation("silu", torch.nn.functional.silu, _silu_grad),
        Activation("softplus", torch.nn.functional.softplus, _softplus_grad),
        Activation("sin", torch.sin, lambda z, a: torch.cos(z)),
    ]
}
ACTIVATIONS = {name: _IMPLEMENTED[name] for name in choices.ACTIVATIONS}  # in the listed order


def activation(name: str, leaky_slope: float = choices.LEAKY_SLOPE) -> Activation:
    """The named activation; leaky_relu takes its negative slope from the config."""
    return _leaky(leaky_slope) if name == "leaky_relu" else ACTIVATIONS[name]


@dataclass(frozen=True)
class Mixed:
    """Different activations for consecutive runs of bees (the cells of one batch), each applied
    to its own slice of the bee axis: cells that differ only in activation train as one batch,
    one kernel per activation instead of one batch each."""

    parts: tuple[tuple[Activation, int], ...]  # (activation, bees), in bee order

    def _each(self, into, plain, *ts):
        """Each activation on its own run of bees. Eagerly, written through contiguous slice
        views into one buffer (`into`): no part tensors and no torch.cat, whose extra pass over
        the whole tensor cost up to half of `fn` once parts reach hundreds of bees (at W1's 30
        bees a part it is a wash; benchmarks/README.md). Under autograd (out= kernels have no
        backward) and torch.compile (Inductor fuses the cat) the parts are `plain` and cat."""
        if any(t.requires_grad for t in ts) or torch.compiler.is_compiling():
            return torch.cat([plain(act, *part) for act, part in self._slices(ts)])
        out = torch.empty_like(ts[0])
        for act, (*part, o) in self._slices([*ts, out]):
            into(act, *part, o)
        return out

    def _slices(self, ts):
        """(activation, its run of each tensor in ts), in bee order: views, never copies."""
        lo = 0
        for act, n in self.parts:
            yield act, [t[lo:lo + n] for t in ts]
            lo += n

    def fn(self, z):
        return self._each(Activation.fn_into, lambda act, z: act.fn(z), z)

    def chain(self, g, z, a):
        return self._each(Activation.chain_into, Activation.chain, g, z, a)

    @property
    def zero_at_zero(self) -> bool:
        return all(act.zero_at_zero for act, _ in self.parts)


def activation_of_bees(names: list[str], per_name: int, lo: int, hi: int,
                       leaky_slope: float = choices.LEAKY_SLOPE):
    """The activation of bees lo..hi-1 of a batch whose cells (`per_name` bees each) use
    `names`: one Activation when they share it, else a Mixed one."""
    parts = []
    for k, name in enumerate(names):
        n = min(hi, (k + 1) * per_name) - max(lo, k * per_name)
        if n <= 0:
            continue
        if parts and parts[-1][0] == name:
            parts[-1][1] += n
        else:
            parts.append([name, n])
    acts = tuple((activation(name, leaky_slope), n) for name, n in parts)
    return acts[0][0] if len(acts) == 1 else Mixed(acts)


class Sin(torch.nn.Module):
    def forward(self, z):
        return torch.sin(z)


TORCH_MODULES = {  # the plain torch.nn module each activation must agree with
    "relu": torch.nn.ReLU,
    "tanh": torch.nn.Tanh,
    "tanhshrink": torch.nn.Tanhshrink,
    "sigmoid": torch.nn.Sigmoid,
    "leaky_relu": torch.nn.LeakyReLU,
    "identity": torch.nn.Identity,
    "elu": torch.nn.ELU,
    "gelu": torch.nn.GELU,
    "silu": torch.nn.SiLU,
    "softplus": torch.nn.Softplus,
    "sin": Sin,
}

INITS = choices.INITS


def layer_shapes(depth: int, width: int, in_dim: int = 1) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of each layer of an in_dim -> width x depth -> 1 MLP."""
    sizes = [in_dim] + [width] * depth + [1]
    return list(zip(sizes[:-1], sizes[1:]))


def _generator(seed: int, layer: int, shape: tuple[int, int], part: int) -> torch.Generator:
    key = np.random.SeedSequence([seed, layer, *shape, part]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(key) & (2**63 - 1))


def _uniform(gen, shape, low, high):
    return torch.rand(shape, generator=gen, dtype=torch.float64) * (high - low) + low


def _normal(gen, shape, std):
    """N(0, std) by inverting the CDF of one uniform draw per value: unlike torch.randn, whose
    draws depend on the tensor's size, this keeps 10 bees the prefix of 500."""
    u = torch.rand(shape, generator=gen, dtype=torch.float64).clamp_min(1e-300)
    return torch.erfinv(2 * u - 1) * (std * 2**0.5)


def init_weight(init: str, gen, shape, fan_in: int, fan_out: int, std: float, bounds):
    if init == "default":  # torch.nn.Linear.reset_parameters: kaiming_uniform(a=sqrt(5))
        return _uniform(gen, shape, -(fan_in**-0.5), fan_in**-0.5)
    if init == "xavier_uniform":
        bound = (6 / (fan_in + fan_out)) ** 0.5
        return _uniform(gen, shape, -bound, bound)
    if init == "xavier_normal":
        return _normal(gen, shape, (2 / (fan_in + fan_out)) ** 0.5)
    if init == "kaiming_uniform":  # torch's default gain, sqrt(2) (ReLU)
        bound = (6 / fan_in) ** 0.5
        return _uniform(gen, shape, -bound, bound)
    if init == "kaiming_normal":
        return _normal(gen, shape, (2 / fan_in) ** 0.5)
    if init == "normal":
        return _normal(gen, shape, std)
    if init == "uniform":
        return _uniform(gen, shape, *bounds)
    if init == "zeros":
        return torch.zeros(shape, dtype=torch.float64)
    raise ValueError(f"unknown init {init!r}; choices: {', '.join(INITS)}")


def init_params(seed: int, depth: int, width: int, bees: int, init: str = "default",
                std: float = 0.1, bounds=(-0.1, 0.1),
                in_dim: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Initial (W, b) of every layer for `bees` bees, in float64 on the CPU.

    Each tensor is drawn from its own generator seeded by (seed, layer, shape), with the bee axis
    outermost: bee i's weights depend only on (seed, shapes, i), so cells of the same shape start
    paired and 10 bees are the prefix of 500. Drawn once in float64, so float32 and CUDA runs
    start from the rounding of the same numbers."""
    params = []
    for layer, (fan_in, fan_out) in enumerate(layer_shapes(depth, width, in_dim)):
        shape = (fan_in, fan_out)
        w = init_weight(init, _generator(seed, layer, shape, 0), (bees, fan_in, fan_out),
                        fan_in, fan_out, std, bounds)
        if init == "default":
            b = _uniform(_generator(seed, layer, shape, 1), (bees, 1, fan_out),
                         -(fan_in**-0.5), fan_in**-0.5)
        else:
            b = torch.zeros(bees, 1, fan_out, dtype=torch.float64)
        params.append((w, b))
    return params


def pad_params(params, width: int):
    """Zero-pad hidden units up to `width` so cells of different width share one batch.

    A padded unit has zero weights in and out, so its weights get zero gradient and stay zero:
    where act(0) = 0 it outputs exactly 0, elsewhere the engine masks its output. Either way it
    changes nothing, which keeps the padded batch exact."""
    out = []
    last = len(params) - 1
    for layer, (w, b) in enumerate(params):
        fi = w.shape[1] if layer == 0 else width  # the inputs are never padded
        fo = 1 if layer == last else width
        wp = w.new_zeros(w.shape[0], fi, fo)
        bp = b.new_zeros(b.shape[0], 1, fo)
        wp[:, : w.shape[1], : w.shape[2]] = w
        bp[:, :, : b.shape[2]] = b
        out.append((wp, bp))
    return out


class BatchNorm:
    """Batch norm over the points of each bee, per hidden unit (torch.nn.BatchNorm1d's maths):
    batch statistics while training, running statistics for evaluation."""

    def __init__(self, gamma: torch.Tensor, beta: torch.Tensor, momentum: float = 0.1,
                 eps: float = 1e-5):
        self.gamma, self.beta = gamma, beta  # [bees, 1, width], views into the flat parameters
        self.mean = torch.zeros_like(gamma, memory_format=torch.contiguous_format)
        self.var = torch.ones_like(gamma, memory_format=torch.contiguous_format)
        self.momentum, self.eps = momentum, eps

    def __call__(self, z: torch.Tensor, mode: str) -> torch.Tensor:
        """mode: "train" (batch stats, update running stats), "batch" (batch stats only), "eval"."""
        if mode == "eval":
            mean, var = self.mean, self.var
        else:
            mean = z.mean(dim=1, keepdim=True)
            var = z.var(dim=1, unbiased=False, keepdim=True)
            if mode == "train":
                n, m = z.shape[1], self.momentum
                with torch.no_grad():
                    self.mean.mul_(1 - m).add_(mean.detach() * m)
                    self.var.mul_(1 - m).add_(var.detach() * (n / (n - 1)) * m)
        scale = self.gamma / torch.sqrt(var + self.eps)  # torch's CPU kernel: z * a + (b - m a)
        return z * scale + (self.beta - mean * scale)


def forward(params, x: torch.Tensor, activation: Activation, mask=None, norms=None,
            norm_mode: str = "eval", drops=None) -> torch.Tensor:
    """Predictions [bees, points, 1] for inputs x: [1 or bees, points, in_dim] (autograd-friendly).

    mask: [bees, 1, width] hides padded units; norms: a BatchNorm per hidden layer; drops: a
    dropout mask per hidden layer, already scaled by 1 / (1 - p)."""
    h = x
    last = len(params) - 1
    for i, (w, b) in enumerate(params):
        h = torch.baddbmm(b, h.expand(w.shape[0], -1, -1), w)
        if i == last:
            return h
        if norms:
            h = norms[i](h, norm_mode)
        h = activation.fn(h)
        if mask is not None:
            h = h * mask
        if drops:
            h = h * drops[i]
    return h


def activation_curves(names, x=None):
    """Each activation and its derivative on a grid (autograd), saved so renderers need no torch."""
    x = torch.linspace(-5, 5, 401, dtype=torch.float64) if x is None else x
    out = {"x": x.numpy()}
    for name in names:
        z = x.clone().requires_grad_(True)
        a = activation(name).fn(z)
        (g,) = torch.autograd.grad(a.sum(), z)
        out[name] = a.detach().numpy()
        out[name + "_grad"] = g.numpy()
    return out
