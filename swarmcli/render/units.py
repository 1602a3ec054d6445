"""The per-unit view (seed 004's "composing activation functions", with real training): one bee
of each cell with one hidden layer, its hidden units drawn as the curves w2_j * act(w1_j x + b1_j)
whose sum plus b2 is its output, over epochs; for ReLU each unit's kink (x = -b1_j / w1_j) is
marked on the output curve. Drawn from the recorded weights and biases with numpy alone.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from swarmcli.render import data, scenes, style
from swarmcli.results import CellResult, Run

_erf = np.vectorize(math.erf, otypes=[float])


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))


# numpy twins of nn.py's activations (slope: leaky_relu's from the run's config, at draw time)
ACTIVATIONS = {
    "relu": lambda z, s: np.maximum(z, 0),
    "tanh": lambda z, s: np.tanh(z),
    "tanhshrink": lambda z, s: z - np.tanh(z),
    "sigmoid": lambda z, s: _sigmoid(z),
    "leaky_relu": lambda z, s: np.where(z > 0, z, s * z),
    "identity": lambda z, s: z,
    "elu": lambda z, s: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "gelu": lambda z, s: 0.5 * z * (1 + _erf(z / math.sqrt(2))),
    "silu": lambda z, s: z * _sigmoid(z),
    "softplus": lambda z, s: np.where(z > 20, z, np.log1p(np.exp(np.minimum(z, 20)))),
    "sin": lambda z, s: np.sin(z),
}
KINKED = ("relu", "leaky_relu")  # a kink where the unit's input crosses 0


def unit_curves(cell: CellResult, frame: int, x: np.ndarray, bee: int = 0,
                slope: float = 0.01) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(each unit's contribution [width, points], the output [points], each unit's kink
    position [width], NaN where the unit is flat) of one bee at one recorded frame."""
    act = ACTIVATIONS[cell.info["activation"]]
    w1 = np.asarray(cell.weights(0)[bee, frame, 0], np.float64)  # [width]
    b1 = np.asarray(cell.biases(0)[bee, frame], np.float64)
    w2 = np.asarray(cell.weights(1)[bee, frame, :, 0], np.float64)
    b2 = float(cell.biases(1)[bee, frame, 0])
    parts = w2[:, None] * act(w1[:, None] * x[None, :] + b1[:, None], slope)
    with np.errstate(divide="ignore", invalid="ignore"):
        kinks = np.where(w1 != 0, -b1 / w1, np.nan)
    return parts, parts.sum(axis=0) + b2, kinks


def units(run: Run, cfg: dict, page_index: int = 0, animated: bool = False, bee: int = 0):
    """A panel per cell: bee `bee`'s unit curves (thin, one colour each), their sum (the
    output, bold), the target and training points, the kinks as dots on the output."""
    page = data.pages(run, scenes.aspect(cfg))[page_index]
    sc = scenes.Scene(run, cfg, f"Bee {bee}'s hidden units: the curves its output is the sum of"
                      + page.title, animated)
    x = np.sort(np.asarray(run.eval_x, np.float64))
    for ax, cell in sc.panels(page):
        ax.plot(run.load("target_x"), run.load("target_y"), color=style.TARGET, lw=1.6)
        ax.scatter(run.x, run.y, s=6, color="0.55", lw=0, zorder=1)
        ax.set_xlim(x[0], x[-1])
        ax.set_ylim(*data.y_limits(run))
        if int(cell.info.get("depth", 1)) != 1 or cell.info["activation"] not in ACTIVATIONS:
            ax.text(0.5, 0.5, "one hidden layer only", transform=ax.transAxes, ha="center",
                    fontsize=style.MIN_FONT, color="0.3")
            continue
        unit_panel(sc, ax, cell, x, bee, leaky_slope(cell))
    sc.fig.legend(handles=[
        Line2D([], [], color="C0", lw=0.9, label="one hidden unit: w2 act(w1 x + b1)"),
        Line2D([], [], color="k", lw=1.8, label="their sum + b2: the output"),
        Line2D([], [], ls="", marker="o", ms=4, color=style.KINKS, label="ReLU kinks"),
        Line2D([], [], color=style.TARGET, lw=1.6, label="target")],
        loc="outside lower center", ncols=4)
    return sc


def unit_panel(sc: scenes.Scene, ax, cell: CellResult, x: np.ndarray, bee: int,
               slope: float) -> None:
    width = int(cell.info["width"])
    colors = [f"C{j % 10}" for j in range(width)]
    parts_lines = sc.mover(ax.add_collection(LineCollection([], colors=colors, linewidths=0.9,
                                                            alpha=0.8, zorder=2)))
    (out_line,) = ax.plot([], [], color="k", lw=1.8, zorder=3)
    sc.mover(out_line)
    kinked = cell.info["activation"] in KINKED
    dots = sc.mover(ax.scatter([], [], s=16, color=style.KINKS, zorder=4, lw=0))

    def update(frame, epoch):
        parts, out, kinks = unit_curves(cell, frame, x, bee, slope)
        parts_lines.set_segments(np.stack([np.broadcast_to(x, parts.shape), parts], axis=-1))
        out_line.set_data(x, out)
        if kinked:
            k = kinks[np.isfinite(kinks) & (kinks >= x[0]) & (kinks <= x[-1])]
            dots.set_offsets(np.column_stack([k, np.interp(k, x, out)]) if k.size
                             else np.empty((0, 2)))

    sc.on_update(update)


def leaky_slope(cell: CellResult) -> float:
    """The cell's model.leaky_slope (swarm.json); torch's 0.01 for runs that predate it."""
    return float(cell.info.get("leaky_slope", 0.01))


SCENES = {"units": units}


def stills(run: Run, cfg: dict):
    """units{page}_epochNNNN.png at each of render.epochs."""
    yield from scenes.stills("units", units, run, cfg)
