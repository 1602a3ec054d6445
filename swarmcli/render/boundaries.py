"""A classification run's figures (seed 003's decision boundaries, as swarms): per cell, each
bee's p = 0.5 contour drawn thin over the cell's mean probability and the data, at chosen
epochs and as an animation; accuracy bands over epochs; every bee's final test accuracy.

Only numpy and matplotlib: each bee's logits on the evaluation grid are in ypred (after the data
points, see classify.engine_data), and the contours come from contourpy, matplotlib's own.
For a classification run render.what's names mean: hive -> boundaries at render.epochs,
hive_animation -> their animation, loss -> accuracy bands, final_loss -> final accuracies.
"""

from __future__ import annotations

import contourpy
import matplotlib
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from swarmcli.render import data, scenes, style
from swarmcli.results import CellResult, Run

CLASS_COLORS = ("#2b6cb0", "#c0392b")  # class 0 blue, class 1 red (seed 003's bwr)
PROB_CMAP = "RdBu_r"  # mean p(class 1): blue 0 -> white 0.5 -> red 1
BOUNDARY = "#222222"
TEST_COLOR = "#e69f00"  # test accuracy, in the bands and the final accuracies
WHAT = {"hive": "boundaries", "hive_animation": "boundaries_animation", "loss": "accuracy",
        "final_loss": "final_accuracy", "units": "units", "units_animation": "units_animation"}
# (units, units_animation: the per-unit fields of render/unit_fields.py)


class Plane:
    """The run's points and grid, read once: where each array of a cell's ypred belongs."""

    def __init__(self, run: Run):
        self.x, self.y = run.x, run.y
        self.test = run.load("test_mask")
        self.val = run.load("val_mask")
        self.train = ~(self.test | self.val)
        self.n = len(self.y)
        self.side = int(run.manifest["grid"])
        a0, b0, a1, b1 = run.manifest["extent"]
        self.extent = (a0, b0, a1, b1)
        self.g0, self.g1 = np.linspace(a0, b0, self.side), np.linspace(a1, b1, self.side)

    def logits(self, cell: CellResult, frame: int) -> np.ndarray:
        """[bees, side, side] logits on the grid at a recorded frame."""
        yp = np.asarray(cell.ypred[:, frame, self.n:], dtype=np.float64)
        return yp.reshape(len(yp), self.side, self.side)

    def contours(self, logits: np.ndarray) -> list[np.ndarray]:
        """Every bee's p = 0.5 (logit 0) contour as line segments, all bees together."""
        segs = []
        for z in logits:
            if not np.isfinite(z).all():
                continue  # a diverged bee has no boundary to draw
            segs += [s for s in contourpy.contour_generator(self.g0, self.g1, z).lines(0.0)
                     if len(s) > 1]
        return segs


def mean_probability(logits: np.ndarray) -> np.ndarray:
    """[side, side]: the mean over the bees still alive (every logit finite) of sigmoid(logit);
    NaN (not drawn) when none is."""
    live = np.isfinite(logits).all(axis=(1, 2))
    if not live.any():
        return np.full(logits.shape[1:], np.nan)
    z = np.clip(logits[live], -50, 50)
    return (0.5 * (1 + np.tanh(0.5 * z))).mean(axis=0)  # sigmoid, never overflowing


def draw_points(ax, plane: Plane) -> list:
    """The data in its class colours: training points filled, test points hollow, validation
    points as hollow squares; returns the artists."""
    colors = np.array(CLASS_COLORS)[plane.y.astype(int)]
    size = float(np.clip(1500 / plane.n, 4, 18))
    tr = plane.train
    out = [ax.scatter(plane.x[tr, 0], plane.x[tr, 1], s=size, c=colors[tr], lw=0.4,
                      edgecolors="white", zorder=3)]
    for mask, marker in ((plane.test, "o"), (plane.val, "s")):
        if mask.any():
            out.append(ax.scatter(plane.x[mask, 0], plane.x[mask, 1], s=size * 1.6,
                                  marker=marker, facecolors="none", edgecolors=colors[mask],
                                  lw=1.1, zorder=3))
    return out


def point_handles(plane: Plane) -> list:
    """Legend entries for draw_points' marks."""
    handles = [Line2D([], [], ls="", marker="o", ms=5, color=CLASS_COLORS[k], mec="white",
                      label=f"class {k} (train)") for k in (0, 1)]
    if plane.test.any():
        handles.append(Line2D([], [], ls="", marker="o", ms=6, mfc="none", mec="0.3",
                              label="test (never trained on)"))
    if plane.val.any():
        handles.append(Line2D([], [], ls="", marker="s", ms=6, mfc="none", mec="0.3",
                              label="validation"))
    return handles


def boundary_panel(sc: scenes.Scene, ax, plane: Plane, cell: CellResult) -> None:
    """The cell's mean probability (heat map), each bee's boundary (thin lines) and the data:
    training points filled, test points hollow, validation points as squares."""
    a0, b0, a1, b1 = plane.extent
    img = sc.mover(ax.imshow(np.full((plane.side, plane.side), 0.5), origin="lower",
                             extent=plane.extent, cmap=PROB_CMAP, vmin=0, vmax=1, alpha=0.45,
                             aspect="auto", interpolation="bilinear", zorder=0))
    bees = int(cell.info["bees"])
    alpha = float(np.clip(3.0 / np.sqrt(bees), 0.12, 0.9))
    lines = sc.mover(ax.add_collection(LineCollection([], colors=BOUNDARY, linewidths=0.7,
                                                      alpha=alpha, zorder=2)))
    draw_points(ax, plane)
    ax.set_xlim(a0, b0)
    ax.set_ylim(a1, b1)
    note = sc.mover(ax.text(0.02, 0.03, "", transform=ax.transAxes, fontsize=style.MIN_FONT,
                            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none",
                                  "alpha": 0.8}, zorder=4))
    acc_name = "test_accuracy" if cell.has("test_accuracy") else "accuracy"
    acc = np.asarray(cell.array(acc_name))
    word = "test" if acc_name == "test_accuracy" else "train"

    def update(frame, epoch):
        z = plane.logits(cell, frame)
        img.set_data(mean_probability(z))
        lines.set_segments(plane.contours(z))
        live = ~data.diverged_by(cell, epoch)
        text = f"{word} acc. median {np.median(acc[live, frame]):.2f}" if live.any() else ""
        n = int((~live).sum())
        note.set_text(text + (f", {n} diverged" if n else ""))

    sc.on_update(update)


def boundaries(run: Run, cfg: dict, page_index: int = 0, animated: bool = False):
    """The hive of decision boundaries: rows and columns by the first two swept axes."""
    plane = Plane(run)
    page = data.pages(run, scenes.aspect(cfg))[page_index]
    by = " and ".join(data.short(a["name"]) for a in run.axes[:2])
    sc = scenes.Scene(run, cfg, f"Decision boundaries by {by}{page.title}" if by else
                      "Decision boundaries", animated)
    for ax, cell in sc.panels(page, "x1", "x2"):
        boundary_panel(sc, ax, plane, cell)
    bees = max(int(c.info["bees"]) for c in page.cells.values())
    handles = point_handles(plane)
    handles += [Line2D([], [], color=BOUNDARY, lw=0.9, label=f"p = 0.5, one per bee ({bees})"),
                Patch(color=matplotlib.colormaps[PROB_CMAP](0.8), alpha=0.45, lw=0,
                      label="mean p(class 1): blue 0, red 1")]
    sc.fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3))
    return sc


SCENES = {"boundaries": boundaries}


def stills(run: Run, cfg: dict):
    """boundaries{page}_epochNNNN.png at each of render.epochs."""
    yield from scenes.stills("boundaries", boundaries, run, cfg)


def accuracy_bands(acc: np.ndarray) -> tuple[np.ndarray, ...]:
    """q1, median, q3 of [bees, frames] accuracies over the bees that stayed finite."""
    a = np.where(np.isfinite(acc), acc, np.nan)
    return tuple(np.nanpercentile(a, [25, 50, 75], axis=0))


def accuracy(run: Run, cfg: dict):
    """Per cell: median accuracy over recorded epochs with its inter-quartile band, training
    points and test points: how fast a swarm separates the classes, and how far its bees agree
    on points they never saw."""
    page_list = data.pages(run, scenes.aspect(cfg))
    first = page_list[0]
    cv = scenes.Canvas(run, cfg, "Accuracy per cell: median over bees and inter-quartile band")
    axs = cv.fig.subplots(first.rows, first.cols, sharex=True, sharey=True, squeeze=False)
    epochs = np.asarray(run.frames)
    series = [("accuracy", style.TRAIN, "train"), ("val_accuracy", style.HELD_OUT, "validation"),
              ("test_accuracy", TEST_COLOR, "test")]
    shown = set()
    styles = ["-", "--", ":", "-."]
    for (r, c), ax in np.ndenumerate(axs):
        if not any((r, c) in p.cells for p in page_list):
            ax.set_axis_off()
            continue
        cv.label_panel(ax, first, r, c)
        if c == first.cols - 1:
            cv.row_label(ax, first, r)
        for k, page in enumerate(page_list):
            cell = page.cells.get((r, c))
            if cell is None:
                continue
            for name, color, _ in series:
                if cell.has(name):
                    q1, med, q3 = accuracy_bands(np.asarray(cell.array(name), float))
                    ax.fill_between(epochs, q1, q3, color=color, alpha=0.25, lw=0)
                    ax.plot(epochs, med, color=color, lw=1.3, ls=styles[k % len(styles)])
                    shown.add(name)
        ax.axhline(0.5, color="0.6", lw=0.7, ls=":")
        scenes.edge_labels(ax, first, r, c, "epoch", "accuracy")
    axs[0, 0].set_ylim(0.35, 1.02)
    handles = []
    for name, color, label in series:
        if name in shown:
            handles += [Line2D([], [], color=color, lw=1.4, label=f"{label}: median"),
                        Patch(color=color, alpha=0.25, lw=0, label="inter-quartile")]
    handles.append(Line2D([], [], color="0.6", lw=0.7, ls=":", label="chance"))
    cv.fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5))
    yield "accuracy.png", cv.fig


def final_accuracy(run: Run, cfg: dict):
    """Every bee's final test (or training) accuracy, one column of dots per cell, with the
    cell's median: the spread the init alone makes."""
    cells = run.cells
    name = "test_accuracy" if cells[0].has("test_accuracy") else "accuracy"
    cv = scenes.Canvas(run, cfg, f"Final {name.replace('_', ' ')} of every bee, per cell")
    ax = cv.fig.subplots()
    rng = np.random.default_rng(0)  # jitter only, the same on every render
    for i, cell in enumerate(cells):
        acc = np.asarray(cell.array(name), float)[:, -1]
        acc = acc[np.isfinite(acc)]
        ax.scatter(i + rng.uniform(-0.18, 0.18, acc.size), acc, s=14, color=TEST_COLOR,
                   alpha=0.7, lw=0)
        if acc.size:
            ax.plot([i - 0.3, i + 0.3], [np.median(acc)] * 2, color="k", lw=1.6)
    labels = [data.cell_title(run, c) for c in cells]
    pw = cv.size[0] / max(len(cells), 1) - 4
    ax.set_xticks(range(len(cells)), [cv.fit(t, pw, style.MIN_FONT, max_lines=3)[0]
                                      for t in labels], fontsize=style.MIN_FONT)
    ax.set_ylabel(name.replace("_", " "))
    ax.set_ylim(min(0.45, ax.get_ylim()[0]), 1.02)
    ax.grid(axis="y")
    cv.fig.legend(handles=[Line2D([], [], ls="", marker="o", ms=4, color=TEST_COLOR,
                                  label="one bee"),
                           Line2D([], [], color="k", lw=1.6, label="cell median")],
                  loc="outside lower center", ncols=2)
    yield "final_accuracy.png", cv.fig


STILLS = {"hive": stills, "loss": accuracy, "final_loss": final_accuracy}
