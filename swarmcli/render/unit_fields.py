"""The per-unit view of a classification run: one bee of each cell with one hidden layer, its
hidden units drawn as the 2-D fields w2_j * act(w1_j . x + b1_j) on the run's grid, whose sum
plus b2 is the bee's logit, with each unit's line w1_j . x + b1_j = 0 (for ReLU the fold where
the unit switches on); a last, larger panel draws that sum, the bee's p = 0.5 boundary and the
data. One shared, zero-centred colour scale per figure (red: toward class 1, as the
boundaries' heat map). Drawn from the recorded weights and biases with numpy alone, using the
regression view's activation twins (units.ACTIVATIONS).

A still per cell and render.epochs value, each with its own scale; the animation keeps one
scale over every frame (so its colour bar never moves).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from swarmcli.render import boundaries, data, scenes, style, units
from swarmcli.render.boundaries import Plane
from swarmcli.results import CellResult, Run

MAX_UNITS = 8  # wider cells show the units with the largest contribution at the last epoch
CMAP = boundaries.PROB_CMAP  # blue (toward class 0) - white (0) - red (toward class 1)
UNIT_LINE = "#222222"
FOLDS = "0.15"
FIELD_ALPHA = 0.7  # every panel alike (the colour bar too): points stay visible on any field
UNITS_SHARE = 0.5  # of the figure's width; the sum panel has the rest
SCALE_FRAMES = 200  # an animation's fixed colour scale is read from at most this many frames


def cells_drawn(run: Run) -> tuple[list[CellResult], list[tuple[CellResult, str]]]:
    """(the cells the view draws, (cell, why not) for the others): one hidden layer and an
    activation with a numpy twin."""
    drawn, skipped = [], []
    for cell in run.cells:
        depth, act = int(cell.info.get("depth", 1)), cell.info["activation"]
        if depth != 1:
            skipped.append((cell, f"{depth} hidden layers"))
        elif act not in units.ACTIVATIONS:
            skipped.append((cell, f"activation {act} has no numpy twin"))
        else:
            drawn.append(cell)
    return drawn, skipped


def skip_lines(run: Run, what: str = "units") -> list[str]:
    return [f"render.what={what} skips {data.cell_title(run, c)} ({why}): the per-unit view "
            f"draws one hidden layer only" for c, why in cells_drawn(run)[1]]


def fields(cell: CellResult, frame: int, plane: Plane, bee: int = 0, slope: float | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(each unit's contribution w2_j act(w1_j . x + b1_j) [width, side, side], their sum + b2,
    the bee's logit [side, side], each unit's pre-activation [width, side, side]) on the run's
    grid at one recorded frame, in float64. Row i, column j is the point (g0[j], g1[i])."""
    act = units.ACTIVATIONS[cell.info["activation"]]
    slope = units.leaky_slope(cell) if slope is None else slope
    w1 = np.asarray(cell.weights(0)[bee, frame], np.float64)  # [2, width]
    b1 = np.asarray(cell.biases(0)[bee, frame], np.float64)
    w2 = np.asarray(cell.weights(1)[bee, frame, :, 0], np.float64)
    b2 = float(cell.biases(1)[bee, frame, 0])
    gx, gy = np.meshgrid(plane.g0, plane.g1)
    pre = w1[0, :, None, None] * gx + w1[1, :, None, None] * gy + b1[:, None, None]
    with np.errstate(over="ignore", invalid="ignore"):
        parts = w2[:, None, None] * act(pre, slope)
    return parts, parts.sum(axis=0) + b2, pre


def hyperplane(w, b: float, extent) -> np.ndarray:
    """[2, 2]: the two ends of the line w[0] x + w[1] y + b = 0 inside the box extent
    (x0, x1, y0, y1); [0, 2] when it misses the box or w is 0."""
    a0, b0, a1, b1 = extent
    w0, w1 = float(w[0]), float(w[1])
    eps = 1e-12 * max(b0 - a0, b1 - a1)
    pts = []
    if w1 != 0:
        pts += [(x, -(b + w0 * x) / w1) for x in (a0, b0)]
    if w0 != 0:
        pts += [(-(b + w1 * y) / w0, y) for y in (a1, b1)]
    pts = np.array([p for p in pts if np.isfinite(p).all() and a0 - eps <= p[0] <= b0 + eps
                    and a1 - eps <= p[1] <= b1 + eps]).reshape(-1, 2)
    if len(pts) < 2:
        return np.empty((0, 2))
    d = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    i, j = np.unravel_index(d.argmax(), d.shape)
    return pts[[i, j]] if d[i, j] > 0 else np.empty((0, 2))


def largest(parts: np.ndarray, k: int) -> list[int]:
    """The k units of largest |contribution| on the grid, largest first (non-finite: last)."""
    size = np.nan_to_num(np.abs(parts).reshape(len(parts), -1).max(1), nan=-1.0, posinf=-1.0)
    return [int(j) for j in np.argsort(-size, kind="stable")[:k]]


def magnitude(*arrays: np.ndarray) -> float:
    """The colour scale's half-range: the largest finite |value| (1 if there is none)."""
    m = max((float(np.abs(a[np.isfinite(a)]).max(initial=0)) for a in arrays), default=0.0)
    return m if m > 0 else 1.0


def grid_shape(k: int, room: float, panel_aspect: float) -> tuple[int, int]:
    """(rows, cols) of k unit panels in an area of width/height `room`: panels closest to
    panel_aspect, few empty slots, never a whole empty row."""
    def cost(rows):
        cols = math.ceil(k / rows)
        empty = rows * cols - k
        return abs(math.log(room * rows / cols / panel_aspect)) + 0.4 * empty / k + (
            10 if empty >= cols else 0)
    rows = min(range(1, k + 1), key=cost)
    return rows, math.ceil(k / rows)


def suffix(run: Run, cell: CellResult) -> str:
    """'' for a run of one cell, else '_depth=1_activation=relu': the cell, in file names."""
    return "_" + data.slug(data.cell_title(run, cell)) if run.axes else ""


def scene(run: Run, cfg: dict, index: int = 0, animated: bool = False, bee: int = 0):
    """The view of the index-th cell cells_drawn gives: a small panel per unit (its field and
    line), the sum panel, one colour bar. `sc.units` are the units shown, `sc.unit_images`,
    `sc.unit_lines` and `sc.sum_image` what they are drawn with."""
    cell = cells_drawn(run)[0][index]
    plane = Plane(run)
    width, last = int(cell.info["width"]), len(run.frames) - 1
    shown = largest(fields(cell, last, plane, bee)[0], MAX_UNITS)
    k = len(shown)
    a0, b0, a1, b1 = plane.extent
    title = f"Bee {bee}'s hidden units w2·act(w1·x + b1)"
    if k < width:
        title += f" ({k} of {width}: the largest |contribution| at the end)"
    title += " and their sum + b2, its logit"
    if run.axes:
        title += f" ({data.cell_title(run, cell)})"
    sc = scenes.Scene(run, cfg, title, animated)
    rows, cols = grid_shape(k, scenes.aspect(cfg) * UNITS_SHARE,
                            float(np.clip((b0 - a0) / (b1 - a1), 0.8, 1.5)))
    left, right = sc.fig.add_gridspec(1, 2, width_ratios=[UNITS_SHARE, 1 - UNITS_SHARE])
    gs = left.subgridspec(rows, cols)
    kw = {"origin": "lower", "extent": plane.extent, "cmap": CMAP, "aspect": "auto",
          "interpolation": "bilinear", "zorder": 0, "alpha": FIELD_ALPHA}
    zero = np.zeros((plane.side, plane.side))
    panel_w = sc.size[0] * UNITS_SHARE / cols - 12
    sc.units, sc.unit_images, sc.unit_lines, notes, axs = shown, [], [], [], []
    for n, j in enumerate(shown):
        ax = sc.fig.add_subplot(gs[n // cols, n % cols])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlim(a0, b0)
        ax.set_ylim(a1, b1)
        text, size = sc.fit(f"unit {j}", panel_w, scenes.TITLE_PT, max_lines=1)
        ax.set_title(text, fontsize=size)
        sc.unit_images.append(sc.mover(ax.imshow(zero, **kw)))
        (line,) = ax.plot([], [], color=UNIT_LINE, lw=1.1, zorder=2)
        sc.unit_lines.append(sc.mover(line))
        notes.append(sc.mover(ax.text(0.03, 0.04, "", transform=ax.transAxes,
                                      fontsize=style.MIN_FONT, zorder=4, bbox=NOTE_BOX)))
        axs.append(ax)
    out = sc.fig.add_subplot(right)
    sc.sum_image = sc.mover(out.imshow(zero, **kw))
    kinked = cell.info["activation"] in units.KINKED
    folds = sc.mover(out.add_collection(LineCollection([], colors=FOLDS, linewidths=0.7,
                                                       linestyles="--", zorder=1)))
    boundary = sc.mover(out.add_collection(LineCollection([], colors=boundaries.BOUNDARY,
                                                          linewidths=1.8, zorder=2)))
    for points in boundaries.draw_points(out, plane):
        sc.mover(points)  # drawn after the field in each frame, so it never veils them
    out.set_xlim(a0, b0)
    out.set_ylim(a1, b1)
    out.set_xlabel("x1")
    out.set_ylabel("x2")
    out.set_title("their sum + b2: the bee's logit")
    sum_note = sc.mover(out.text(0.02, 0.03, "", transform=out.transAxes,
                                 fontsize=style.MIN_FONT, zorder=4, bbox=NOTE_BOX))
    bar = sc.fig.colorbar(sc.sum_image, ax=out, location="right", fraction=0.05,
                          shrink=0.8, pad=0.01)
    bar.set_label("contribution to the logit (same scale in every panel)")
    images = [*sc.unit_images, sc.sum_image]
    scale = None if not animated else fixed_scale(cell, plane, bee, shown)
    if scale is not None:
        for im in images:
            im.set_clim(-scale, scale)
    acc_name = "test_accuracy" if cell.has("test_accuracy") else "accuracy"
    acc = np.asarray(cell.array(acc_name))[bee]

    def update(frame, epoch):
        parts, logit, _ = fields(cell, frame, plane, bee)
        w1 = np.asarray(cell.weights(0)[bee, frame], np.float64)
        b1 = np.asarray(cell.biases(0)[bee, frame], np.float64)
        w2 = np.asarray(cell.weights(1)[bee, frame, :, 0], np.float64)
        m = scale or magnitude(parts[shown], logit)
        for j, im, line, note in zip(shown, sc.unit_images, sc.unit_lines, notes):
            im.set_data(parts[j])
            seg = hyperplane(w1[:, j], b1[j], plane.extent)
            line.set_data(seg[:, 0], seg[:, 1])
            note.set_text(f"w2 = {w2[j]:+.2g}")
        sc.sum_image.set_data(logit)
        if scale is None:
            for im in images:
                im.set_clim(-m, m)
        ok = np.isfinite(logit).all()
        boundary.set_segments(plane.contours(logit[None]) if ok else [])
        if kinked:
            folds.set_segments([s for j in range(width) if len(
                s := hyperplane(w1[:, j], b1[j], plane.extent))])
        word = "test" if acc_name == "test_accuracy" else "train"
        sum_note.set_text(f"{word} acc. {acc[frame]:.2f}" if ok else f"bee {bee} diverged")

    sc.on_update(update)
    sc.fig.legend(handles=legend(cell, plane, kinked), loc="outside lower center", ncols=3)
    return sc


NOTE_BOX = {"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8}


def fixed_scale(cell: CellResult, plane: Plane, bee: int, shown: list[int]) -> float:
    """One half-range for every frame of an animation: the largest |value| drawn over (at
    most SCALE_FRAMES of) the recorded frames."""
    n = cell.ypred.shape[1]
    picked = sorted(set(np.linspace(0, n - 1, min(n, SCALE_FRAMES)).astype(int)))
    out = 0.0
    for f in picked:
        parts, logit, _ = fields(cell, f, plane, bee)
        out = max(out, magnitude(parts[shown], logit))
    return out


def legend(cell: CellResult, plane: Plane, kinked: bool) -> list:
    act = cell.info["activation"]
    if kinked:
        what = "the unit's fold (flat on one side)"
    elif act in ("tanh", "sin", "identity", "tanhshrink"):
        what = "the unit is 0 there"
    else:
        what = "its pre-activation is 0"
    handles = [Line2D([], [], color=UNIT_LINE, lw=1.1, label=f"w1·x + b1 = 0: {what}")]
    if kinked:
        handles.append(Line2D([], [], color=FOLDS, lw=0.7, ls="--",
                              label="every unit's fold: the logit's kinks"))
    handles.append(Line2D([], [], color=boundaries.BOUNDARY, lw=1.8,
                          label="p = 0.5 (logit 0): the bee's boundary"))
    return handles + boundaries.point_handles(plane)


SCENES = {"unit_fields": scene}


def stills(run: Run, cfg: dict):
    """units{cell}_epochNNNN.png per drawn cell and render.epochs value."""
    frames = sorted({data.frame_index(run, e) for e in cfg["epochs"]})
    for i, cell in enumerate(cells_drawn(run)[0]):
        sc = scene(run, cfg, i)
        for f in frames:
            yield f"units{suffix(run, cell)}_epoch{int(run.frames[f]):04d}.png", sc.still(f)
