"""Figures that change over epochs (hive grid, swarm + loss, swarm + kinks), built once with
their static parts drawn, plus `update(frame)` that moves only what changes.

The same scene gives a still (draw everything, save a PNG) and an animation (draw the static
background once, then per frame restore it and draw only the moving artists: blitting).
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from swarmcli.render import data
from swarmcli.results import CellResult, Run

STYLE = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7,
         "ytick.labelsize": 7, "legend.fontsize": 7, "figure.titlesize": 12,
         "axes.spines.top": False, "axes.spines.right": False}


def even(n: int) -> int:
    """H.264 yuv420p needs even pixel sizes."""
    return max(2, int(n) // 2 * 2)


def new_figure(cfg: dict) -> Figure:
    """A figure of exactly cfg width x height pixels (no bbox_inches='tight', ever)."""
    dpi = cfg["dpi"]
    fig = Figure(figsize=(even(cfg["width"]) / dpi, even(cfg["height"]) / dpi), dpi=dpi,
                 layout="constrained")
    FigureCanvasAgg(fig)
    return fig


class Scene:
    """A figure plus the artists that move; `update(frame)` moves them to a recorded frame."""

    def __init__(self, run: Run, cfg: dict, title: str, animated: bool):
        self.run, self.title, self.is_animated = run, title, animated
        self.fig = new_figure(cfg)
        self.fig.suptitle(title)
        self.movers: list = []
        self._updates: list = []
        self.counter = self.mover(self.fig.text(0.995, 0.995, "", ha="right", va="top",
                                                fontsize=11, family="monospace"))

    def mover(self, artist):
        artist.set_animated(self.is_animated)
        self.movers.append(artist)
        return artist

    def on_update(self, fn) -> None:
        self._updates.append(fn)

    def update(self, frame: int) -> None:
        epoch = int(self.run.frames[frame])
        for fn in self._updates:
            fn(frame, epoch)
        if self.is_animated:
            self.counter.set_text(f"epoch {epoch:>{len(str(self.run.epochs))}}")

    def still(self, frame: int) -> Figure:
        """The whole figure at one frame, its title naming the epoch."""
        self.update(frame)
        self.fig.suptitle(f"{self.title} at epoch {int(self.run.frames[frame])}")
        return self.fig

    # -- panels shared by the scenes ------------------------------------------------------

    def swarm_panel(self, ax, cell: CellResult) -> None:
        """Training points, grey noiseless target, and one LineCollection of every bee."""
        run = self.run
        x, y = run.x, run.y
        ax.plot(run.load("target_x"), run.load("target_y"), color="0.65", lw=1.6, zorder=1)
        held = data.held_out(run)
        size = float(np.clip(400 / len(x), 2, 10))
        ax.scatter(x[~held], y[~held], s=size, color="k", lw=0, zorder=3)
        if held.any():  # validation points: hollow, so a reader sees what was not trained on
            ax.scatter(x[held], y[held], s=size * 2, facecolors="none", edgecolors="k",
                       lw=0.6, zorder=3, label="held out")
            if ax is self.fig.axes[0]:
                ax.legend(loc="upper left", handletextpad=0.2, borderpad=0.3)
        ax.set_xlim(x.min(), x.max())
        ax.set_ylim(*data.y_limits(run))
        bees = int(cell.info["bees"])
        lines = self.mover(ax.add_collection(LineCollection([], zorder=2,
                                                            **data.bee_style(bees))))
        note = self.mover(ax.text(0.02, 0.03, "", transform=ax.transAxes, color="firebrick",
                                  fontsize=7))
        ex = run.eval_x
        xs = np.broadcast_to(ex.astype(np.float64), (bees, len(ex)))
        blocks = data.FrameBlocks(cell.ypred)

        def update(frame, epoch):
            yp = data.ypred_at(run, cell, frame, blocks)
            lines.set_segments(np.stack([xs, yp], axis=-1))
            n = int(data.diverged_by(cell, epoch).sum())
            note.set_text(f"{n} diverged" if n else "")

        self.on_update(update)

    def loss_panel(self, ax, cell: CellResult, ylim: tuple[float, float]) -> None:
        """Each bee's training loss from epoch 0 up to the current frame, on a log scale."""
        loss = data.positive(np.asarray(cell.loss, dtype=np.float64))
        epochs = loss.shape[1] - 1
        keep = np.unique(np.concatenate([np.linspace(0, epochs, 1500).astype(int),
                                         self.run.frames]))  # <=1500 points/curve + every frame
        seg = np.stack([np.broadcast_to(keep, (loss.shape[0], keep.size)), loss[:, keep]], -1)
        ax.set_xlim(0, max(epochs, 1))
        ax.set_yscale("log")
        ax.set_ylim(*ylim)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(3))
        lines = self.mover(ax.add_collection(LineCollection([], **data.bee_style(loss.shape[0]))))
        self.on_update(lambda frame, epoch: lines.set_segments(
            seg[:, : np.searchsorted(keep, epoch, side="right")]))

    def turning_lines(self, ax) -> None:
        """Dashed lines where the target turns: where kinks are needed."""
        for tp in data.turning_points(self.run.load("target_x"), self.run.load("target_y")):
            ax.axvline(tp, color="0.4", ls="--", lw=0.8, zorder=0)

    def kink_panel(self, ax, cell: CellResult, counts: np.ndarray, edges: np.ndarray,
                   outside: np.ndarray) -> None:
        """Histogram of -b/w over every first-layer unit of every bee; one moving StepPatch."""
        self.turning_lines(ax)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(0, max(1.0, counts.max() * 1.08))
        ax.set_ylabel(f"units ({cell.info['bees']} bees x {cell.info['width']})")
        ax.set_xlabel("-bias / weight of first-layer units (kink position)")
        bars = self.mover(ax.stairs(counts[0], edges, fill=True, color="#c8553d", alpha=0.85))
        note = self.mover(ax.text(0.01, 0.97, "", transform=ax.transAxes, va="top",
                                  fontsize=7, color="0.3"))

        def update(frame, epoch):
            bars.set_data(counts[frame])
            n = int(outside[frame])
            note.set_text(f"{n} outside the domain" if n else "")

        self.on_update(update)


def hive(run: Run, cfg: dict, page_index: int = 0, animated: bool = False) -> Scene:
    """Seed 000's hive plot: a grid of swarms, rows and columns by the first two swept axes."""
    page = data.pages(run)[page_index]
    sc = Scene(run, cfg, data.grid_title(run) + page.title, animated)
    axs = sc.fig.subplots(page.rows, page.cols, sharex=True, sharey=True, squeeze=False)
    for (r, c), ax in np.ndenumerate(axs):
        label_panel(ax, page, run, r, c)
        cell = page.cells.get((r, c))
        if cell is None:
            ax.set_axis_off()
        else:
            sc.swarm_panel(ax, cell)
    return sc


def label_panel(ax, page: data.Page, run: Run, r: int, c: int) -> None:
    ax.set_title(page.panel_title(run, r, c))
    if c == 0 and page.row_labels:
        ax.set_ylabel(page.row_labels[r], fontsize=9)


def swarm_loss(run: Run, cfg: dict, page_index: int = 0, animated: bool = False) -> Scene:
    """Seed 001: each cell's predictions beside its training loss curves growing in time."""
    page = data.pages(run)[page_index]
    sc = Scene(run, cfg, "Predictions and training loss" + page.title, animated)
    axs = sc.fig.subplots(page.rows, 2 * page.cols, squeeze=False,
                          gridspec_kw={"width_ratios": [3, 2] * page.cols})
    ylim = data.loss_limits([c.loss for c in run.cells])
    for r in range(page.rows):
        for c in range(page.cols):
            pred, loss = axs[r, 2 * c], axs[r, 2 * c + 1]
            label_panel(pred, page, run, r, c)
            cell = page.cells.get((r, c))
            if cell is None:
                pred.set_axis_off()
                loss.set_axis_off()
                continue
            if r == 0 or not page.row_labels:
                loss.set_title("training loss")
            sc.swarm_panel(pred, cell)
            sc.loss_panel(loss, cell, ylim)
            if r < page.rows - 1 and page.row_labels:
                loss.set_xlabel("")
    return sc


def kinks(run: Run, cfg: dict, page_index: int = 0, animated: bool = False,
          with_swarm: bool = True) -> Scene:
    """Seed 002: where each first-layer ReLU bends (-b/w), histogrammed over all bees, under
    the swarm of curves so the clusters line up with the target's turning points."""
    page = data.pages(run)[page_index]
    title = "Kink positions (-bias/weight) of first-layer units" + page.title
    sc = Scene(run, cfg, title, animated)
    n, ratios = (2, [3, 2]) if with_swarm else (1, [1])
    axs = sc.fig.subplots(n * page.rows, page.cols, squeeze=False, sharex="col",
                          gridspec_kw={"height_ratios": ratios * page.rows})
    for (r, c), cell in page.cells.items():
        top, hist = axs[n * r, c], axs[n * r + n - 1, c]
        counts, edges, outside = data.kink_counts(run, cell)
        if with_swarm:
            sc.swarm_panel(top, cell)
            sc.turning_lines(top)
        else:
            twin = hist.twinx()
            twin.plot(run.load("target_x"), run.load("target_y"), color="0.55", lw=1.4)
            twin.set_ylabel("target", color="0.45")
            twin.spines["right"].set_visible(True)
            hist.set_zorder(twin.get_zorder() + 1)  # bars over the target curve
            hist.patch.set_visible(False)
        sc.kink_panel(hist, cell, counts, edges, outside)
        label_panel(top, page, run, r, c)
    for (r, c), ax in np.ndenumerate(axs):
        if (r // n, c) not in page.cells:
            ax.set_axis_off()
    return sc


SCENES = {"hive": hive, "swarm_loss": swarm_loss, "kinks": kinks}
