"""Figures that change over epochs (hive grid, swarm + loss, swarm + kinks), built once with
their static parts drawn, plus `update(frame)` that moves only what changes.

The same scene gives a still (draw everything, save a PNG) and an animation (draw the static
background once, then per frame restore it and draw only the moving artists: blitting). Every
label is fitted to the room its panel has (layout.fit), so long setting names wrap instead of
running into the next panel.
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullFormatter

from swarmcli.render import data, layout, style
from swarmcli.results import CellResult, Run

COUNTER_PT = 11  # the "epoch N" counter of an animation, top right
TICK_ROOM = 48  # pixels a panel gives to its y tick labels and label
TITLE_PT = style.RC["axes.titlesize"]


def new_figure(cfg: dict) -> Figure:
    return style.new_figure(cfg["width"], cfg["height"], cfg["dpi"])


def aspect(cfg: dict) -> float:
    return cfg["width"] / cfg["height"]


class Canvas:
    """A figure of the asked pixel size whose titles and labels are fitted to the room they
    get; the base of every scene and still."""

    def __init__(self, run: Run, cfg: dict, title: str, reserve_px: float = 0):
        self.run, self.title = run, title
        self.fig = new_figure(cfg)
        self.dpi = cfg["dpi"]
        self.size = (style.even(cfg["width"]), style.even(cfg["height"]))
        # the title is centred, so it keeps clear of anything reserved on both sides
        self._title_px = self.size[0] - 2 * reserve_px - 24
        self.set_title(title)

    def set_title(self, text: str) -> None:
        text, size = self.fit(text, self._title_px, style.RC["figure.titlesize"])
        self.fig.suptitle(text, fontsize=size)

    def fit(self, text: str, px: float, size: float, max_lines: int = 2) -> tuple[str, float]:
        return layout.fit(text, px, size, self.dpi, max_lines=max_lines)

    def panel_px(self, rows: int, cols: int) -> tuple[float, float]:
        """Roughly the width and height of one panel's plotting area, in pixels."""
        w, h = self.size
        return w / cols - TICK_ROOM, (h - 90) / rows - 40

    def label_panel(self, ax, page: data.Page, r: int, c: int, cols: int | None = None) -> None:
        """The panel's title (its cell, or its column's value), fitted to the panel's width."""
        pw, _ = self.panel_px(page.rows, cols or page.cols)
        title = page.panel_title(self.run, r, c)
        if title:
            text, size = self.fit(title, pw, TITLE_PT, max_lines=3)
            ax.set_title(text, fontsize=size)

    def panels(self, page: data.Page, xlabel: str = "x", ylabel: str = "y"):
        """The page's grid of axes, places without a cell hidden: (ax, cell) for each cell,
        its panel titled, its row labelled and its outer edges given axis labels."""
        axs = self.fig.subplots(page.rows, page.cols, sharex=True, sharey=True, squeeze=False)
        for (r, c), ax in np.ndenumerate(axs):
            cell = page.cells.get((r, c))
            if cell is None:
                ax.set_axis_off()
                continue
            self.label_panel(ax, page, r, c)
            if c == page.cols - 1:
                self.row_label(ax, page, r)
            edge_labels(ax, page, r, c, xlabel, ylabel)
            yield ax, cell

    def row_label(self, ax, page: data.Page, r: int) -> None:
        """The row's value to the right of the row's last panel, read top to bottom (the
        left side holds the y axis)."""
        if not page.row_labels:
            return
        _, ph = self.panel_px(page.rows, page.cols)
        text, size = self.fit(page.row_labels[r], ph, TITLE_PT)
        ax.annotate(text, xy=(1, 0.5), xycoords="axes fraction", xytext=(6, 0),
                    textcoords="offset points", rotation=-90, ha="left", va="center",
                    fontsize=size)


class Scene(Canvas):
    """A figure plus the artists that move; `update(frame)` moves them to a recorded frame."""

    def __init__(self, run: Run, cfg: dict, title: str, animated: bool):
        self.is_animated = animated
        self.movers: list = []
        self._updates: list = []
        digits = len(str(run.epochs))
        self._counter_format = f"epoch {{:>{digits}}}"
        counter_px = layout.text_width("epoch " + "0" * digits, COUNTER_PT, cfg["dpi"],
                                       family="monospace")
        super().__init__(run, cfg, title, reserve_px=counter_px + 8)
        self.counter = self.mover(self.fig.text(0.995, 0.995, "", ha="right", va="top",
                                                fontsize=COUNTER_PT, family="monospace"))

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
            self.counter.set_text(self._counter_format.format(epoch))

    def still(self, frame: int) -> Figure:
        """The whole figure at one frame, its title naming the epoch."""
        self.update(frame)
        self.set_title(f"{self.title} at epoch {int(self.run.frames[frame])}")
        return self.fig

    def swarm_legend(self, bees: int) -> None:
        """One legend for the whole figure, below the panels: what the marks mean."""
        run = self.run
        handles = [Line2D([], [], color=style.TARGET, lw=1.6, label="target"),
                   Line2D([], [], ls="", marker="o", ms=4, color="k", mew=0,
                          label="training points")]
        if data.held_out(run).any():
            handles.append(Line2D([], [], ls="", marker="o", ms=5, mfc="none",
                                  mec=style.HELD_OUT, mew=1, label="held-out points"))
        color = data.bee_style(bees)["colors"][0]
        handles.append(Line2D([], [], color=color, lw=1.2,
                              label=f"one curve per bee ({bees} per panel)"))
        self.fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))

    # -- panels shared by the scenes ------------------------------------------------------

    def swarm_panel(self, ax, cell: CellResult) -> None:
        """Training points, held-out points (hollow), grey noiseless target, and one
        LineCollection of every bee's curve over the dense evaluation grid."""
        run = self.run
        x, y, ex = run.x, run.y, run.eval_x
        ax.plot(run.load("target_x"), run.load("target_y"), color=style.TARGET, lw=1.6,
                zorder=1)
        held = data.held_out(run)
        size = float(np.clip(400 / len(x), 3, 12))
        # points at the ends of the domain are drawn whole, not cut by the axes
        ax.scatter(x[~held], y[~held], s=size, color="k", lw=0, zorder=3, clip_on=False)
        if held.any():  # validation points: hollow, so a reader sees what was not trained on
            ax.scatter(x[held], y[held], s=size * 2.5, facecolors="none",
                       edgecolors=style.HELD_OUT, lw=1, zorder=3, clip_on=False)
        ax.set_xlim(min(x.min(), ex.min()), max(x.max(), ex.max()))
        ax.set_ylim(*data.y_limits(run))
        bees = int(cell.info["bees"])
        lines = self.mover(ax.add_collection(LineCollection([], zorder=2,
                                                            **data.bee_style(bees))))
        note = self.mover(ax.text(0.02, 0.03, "", transform=ax.transAxes,
                                  color=style.DIVERGED, fontsize=style.MIN_FONT))
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
        ax.yaxis.set_minor_formatter(NullFormatter())  # decades only: the panel is narrow
        ax.xaxis.set_major_locator(MaxNLocator(3))
        lines = self.mover(ax.add_collection(LineCollection([], **data.bee_style(loss.shape[0]))))
        self.on_update(lambda frame, epoch: lines.set_segments(
            seg[:, : np.searchsorted(keep, epoch, side="right")]))

    def turning_lines(self, ax) -> None:
        """Dashed lines where the target turns: where kinks are needed."""
        for tp in data.turning_points(self.run.load("target_x"), self.run.load("target_y")):
            ax.axvline(tp, color="0.4", ls="--", lw=0.8, zorder=0)

    def kink_panel(self, ax, cell: CellResult, counts: np.ndarray, edges: np.ndarray,
                   outside: np.ndarray, rows: int, cols: int) -> None:
        """Histogram of -b/w over every first-layer unit of every bee; one moving StepPatch."""
        self.turning_lines(ax)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(0, max(1.0, counts.max() * 1.08))
        pw, ph = self.panel_px(rows, cols)
        text, size = self.fit(f"units ({cell.info['bees']} bees x {cell.info['width']})", ph,
                              style.RC["axes.labelsize"])
        ax.set_ylabel(text, fontsize=size)
        text, size = self.fit("-bias / weight of first-layer units (kink position)", pw,
                              style.RC["axes.labelsize"])
        ax.set_xlabel(text, fontsize=size)
        bars = self.mover(ax.stairs(counts[0], edges, fill=True, color=style.KINKS,
                                    alpha=0.85))
        note = self.mover(ax.text(0.01, 0.97, "", transform=ax.transAxes, va="top",
                                  fontsize=style.MIN_FONT, color="0.3"))

        def update(frame, epoch):
            bars.set_data(counts[frame])
            n = int(outside[frame])
            note.set_text(f"{n} outside the domain" if n else "")

        self.on_update(update)


def edge_labels(ax, page: data.Page, r: int, c: int, xlabel: str, ylabel: str) -> None:
    """Tick labels and axis labels on the outer panels only: the bottom of each column (also
    above an empty slot of a wrapped grid) and the left of each row."""
    if (r + 1, c) not in page.cells:
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_xlabel(xlabel)
    if (r, c - 1) not in page.cells:
        ax.yaxis.set_tick_params(labelleft=True)
        ax.set_ylabel(ylabel)


def hive(run: Run, cfg: dict, page_index: int = 0, animated: bool = False) -> Scene:
    """Seed 000's hive plot: a grid of swarms, rows and columns by the first two swept axes."""
    page = data.pages(run, aspect(cfg))[page_index]
    sc = Scene(run, cfg, data.grid_title(run) + page.title, animated)
    for ax, cell in sc.panels(page):
        sc.swarm_panel(ax, cell)
    sc.swarm_legend(max(int(c.info["bees"]) for c in page.cells.values()))
    return sc


def swarm_loss(run: Run, cfg: dict, page_index: int = 0, animated: bool = False) -> Scene:
    """Seed 001: each cell's predictions beside its training loss curves growing in time."""
    page = data.pages(run, aspect(cfg) * 3 / 5)[page_index]  # a cell is 3 + 2 units wide
    sc = Scene(run, cfg, "Predictions and training loss" + page.title, animated)
    axs = sc.fig.subplots(page.rows, 2 * page.cols, squeeze=False,
                          gridspec_kw={"width_ratios": [3, 2] * page.cols})
    ylim = data.loss_limits([c.loss for c in run.cells])
    name = data.loss_name(run)
    for r in range(page.rows):
        for c in range(page.cols):
            pred, loss = axs[r, 2 * c], axs[r, 2 * c + 1]
            cell = page.cells.get((r, c))
            if cell is None:
                pred.set_axis_off()
                loss.set_axis_off()
                continue
            sc.label_panel(pred, page, r, c, cols=2 * page.cols)
            if c == page.cols - 1:
                sc.row_label(loss, page, r)
            if r == 0 or not page.row_labels:
                loss.set_title("training", fontsize=TITLE_PT)
            sc.swarm_panel(pred, cell)
            sc.loss_panel(loss, cell, ylim)
            bottom = (r + 1, c) not in page.cells
            pred.xaxis.set_tick_params(labelbottom=bottom)
            loss.xaxis.set_tick_params(labelbottom=bottom)
            if bottom:
                pred.set_xlabel("x")
                loss.set_xlabel("epoch")
            pred.set_ylabel("y" if c == 0 else "")
            loss.set_ylabel(name)
    sc.swarm_legend(max(int(c.info["bees"]) for c in page.cells.values()))
    return sc


def kinks(run: Run, cfg: dict, page_index: int = 0, animated: bool = False,
          with_swarm: bool = True) -> Scene:
    """Seed 002: where each first-layer ReLU bends (-b/w), histogrammed over all bees, under
    the swarm of curves so the clusters line up with the target's turning points."""
    page = data.pages(run, aspect(cfg))[page_index]
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
            top.set_ylabel("y")
        else:
            twin = hist.twinx()
            twin.plot(run.load("target_x"), run.load("target_y"), color=style.TARGET, lw=1.4)
            twin.set_ylabel("target", color="0.45")
            twin.spines["right"].set_visible(True)
            hist.set_zorder(twin.get_zorder() + 1)  # bars over the target curve
            hist.patch.set_visible(False)
        sc.kink_panel(hist, cell, counts, edges, outside, n * page.rows, page.cols)
        sc.label_panel(top, page, r, c)
        if c == page.cols - 1:
            sc.row_label(top, page, r)
    for (r, c), ax in np.ndenumerate(axs):
        if (r // n, c) not in page.cells:
            ax.set_axis_off()
    if with_swarm:
        sc.swarm_legend(max(int(c.info["bees"]) for c in page.cells.values()))
    return sc


SCENES = {"hive": hive, "swarm_loss": swarm_loss, "kinks": kinks}


def stills(name: str, scene, run: Run, cfg: dict, **kw):
    """One figure of `scene` per page and per render.epochs value, e.g. hive_epoch0150.png."""
    frames = sorted({data.frame_index(run, e) for e in cfg["epochs"]})
    for p, page in enumerate(data.pages(run, aspect(cfg))):
        sc = scene(run, cfg, p, animated=False, **kw)
        for f in frames:
            yield f"{name}{page.name}_epoch{int(run.frames[f]):04d}.png", sc.still(f)
