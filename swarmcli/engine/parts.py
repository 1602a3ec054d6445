"""The engine's input: a `CellGroup` of a few small frozen parts, built from the config in one
place (`plan.py`) and read by the engine without any config in sight.

A group is the cells that train together (grid.groups): they share every part, and differ only
in what the parts hold per cell (widths, activations, optimizer hyper-parameters), which the
engine turns into per-bee tensors. A new kind of task is a new part, not new flags on old ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swarmcli.choices import LEAKY_SLOPE


@dataclass(frozen=True)
class Network:
    """An MLP in_dim -> width x depth -> 1 per cell; narrower cells are zero-padded to the
    widest. in_dim is 1 for a 1-D target, 2 for a plane to classify."""

    depth: int
    widths: tuple[int, ...]  # one per cell
    activations: tuple[str, ...]  # one per cell
    init: str = "default"
    init_std: float = 0.1  # init=normal
    init_bounds: tuple[float, float] = (-0.1, 0.1)  # init=uniform
    leaky_slope: float = LEAKY_SLOPE
    dropout: float = 0.0
    batch_norm: bool = False
    in_dim: int = 1

    @property
    def width(self) -> int:
        return max(self.widths)

    @property
    def plain(self) -> bool:
        """No dropout or batch norm: the hand-derived backward covers it."""
        return not (self.dropout or self.batch_norm)


@dataclass(frozen=True, eq=False)
class Data:
    """Every point, training and held out; where predictions are recorded; how it is fed."""

    x: np.ndarray  # [points] (in_dim 1) or [points, in_dim]
    y: np.ndarray  # [points]: the target, or 0/1 class labels
    val_mask: np.ndarray | None = None  # True for points held out for validation
    eval_x: np.ndarray | None = None  # where predictions are recorded; None: at x
    batch_size: int | None = None  # None: full batch, one step per epoch

    @property
    def n_eval(self) -> int:
        return len(self.x if self.eval_x is None else self.eval_x)


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule with every parameter filled in and checked (schedules.resolve)."""

    name: str = "constant"
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Optimizer:
    name: str
    hyper: dict  # per-bee hyper-parameter name (optim.OPTIMIZERS[name].hyper) -> one per cell
    flags: dict = field(default_factory=dict)  # shared by the group (nesterov, centered)
    schedule: Schedule = Schedule()


@dataclass(frozen=True)
class Loss:
    kind: str = "mse"  # mse | mae | huber | bce (on logits), over the training points
    huber_delta: float = 1.0
    l1: float = 0.0  # penalty on the sum of |W| (weights, not biases)
    l2: float = 0.0  # penalty on the sum of W^2


@dataclass(frozen=True)
class Stopping:
    """Early stopping on the validation loss (needs Data.val_mask); None: train every epoch."""

    patience: int | None = None
    min_delta: float = 0.0  # an improvement must beat the best by more than this


@dataclass(frozen=True)
class Recording:
    what: tuple[str, ...] = ("ypred",)  # of choices.RECORDABLE; the loss is always kept
    frames: tuple[int, ...] = ()  # epochs to record, 0 = the initial state


@dataclass(frozen=True)
class Runtime:
    device: str = "cpu"  # auto | cpu | cuda
    dtype: str = "float32"
    compile: bool = False  # torch.compile each epoch: one graph of fused kernels per epoch
    native: bool = False  # train in the C kernel (engine/native.py) instead of the torch loop
    chunk_bytes: int = 4 << 20  # on a CPU, bees train in chunks whose activations take this


@dataclass(frozen=True)
class CellGroup:
    network: Network
    data: Data
    optimizer: Optimizer
    bees: int  # per cell
    epochs: int
    seed: int  # bee i of every cell starts from the same draw (pairing across cells)
    loss: Loss = Loss()
    stopping: Stopping = Stopping()
    recording: Recording = Recording()
    runtime: Runtime = Runtime()

    @property
    def cells(self) -> int:
        return len(self.network.widths)

    @property
    def total_bees(self) -> int:
        return self.bees * self.cells
