"""What every figure needs from a saved run, in numpy: panel layout, frame lookup, masked
predictions, kink positions, and a line style that stays readable from 3 to 500 bees."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field

import numpy as np
import yaml

from swarmcli.results import CellResult, Run


def short(axis_name: str) -> str:
    """'model.width' -> 'width': the last part is what a reader knows the setting by."""
    return axis_name.rsplit(".", 1)[-1]


def axis_label(axis_name: str, label: str) -> str:
    """'width=3'; paired axes already label themselves ('depth=1, width=60')."""
    return label if "=" in label else f"{short(axis_name)}={label}"


def cell_title(run: Run, cell: CellResult) -> str:
    """'width=3, activation=relu': the cell's value on every swept axis."""
    return ", ".join(axis_label(a["name"], cell.labels[a["name"]]) for a in run.axes) or "swarm"


def grid_title(run: Run) -> str:
    """'Swarms by width and activation', after seed 000's 'Swarms By Width and Activation'."""
    names = [short(a["name"]) for a in run.axes[:2]]
    if not names:
        return f"Swarm of {run.cells[0].info['bees']} bees"
    return "Swarms by " + " and ".join(names)


@dataclass
class Page:
    """One figure's grid of panels: the first axis gives rows, the second columns; the others
    (if any) are fixed at one value per page."""

    rows: int
    cols: int
    cells: dict = field(default_factory=dict)  # (row, col) -> CellResult
    row_labels: list[str] = field(default_factory=list)  # empty: each panel has its own title
    col_labels: list[str] = field(default_factory=list)
    name: str = ""  # file-name suffix, e.g. "_depth=2"
    title: str = ""  # title suffix, e.g. " (depth=2)"

    def panel_title(self, run: Run, r: int, c: int) -> str:
        cell = self.cells.get((r, c))
        if self.row_labels or cell is None:
            return self.col_labels[c] if (r == 0 and self.col_labels) else ""
        return cell_title(run, cell) if run.axes else ""


def pages(run: Run, aspect: float = 4 / 3) -> list[Page]:
    """The panel grids of a run: one panel (no axes), one axis wrapped into the near-square grid
    that suits a canvas of width/height `aspect`, rows x columns (two axes), one page per
    combination of the third and later axes' values."""
    axes = run.axes
    if not axes:
        return [Page(1, 1, {(0, 0): run.cells[0]})]
    if len(axes) == 1:
        rows, cols = wrap_grid(len(axes[0]["labels"]), aspect)
        page = Page(rows, cols)
        for c in run.cells:
            page.cells[divmod(c.info["position"][0], cols)] = c
        return [page]
    a0, a1, rest = axes[0], axes[1], axes[2:]
    out = []
    for fixed in itertools.product(*(range(len(a["labels"])) for a in rest)):
        fixed_labels = [axis_label(a["name"], a["labels"][i]) for a, i in zip(rest, fixed)]
        page = Page(len(a0["labels"]), len(a1["labels"]),
                    row_labels=[axis_label(a0["name"], v) for v in a0["labels"]],
                    col_labels=[axis_label(a1["name"], v) for v in a1["labels"]],
                    name="".join("_" + slug(v) for v in fixed_labels),
                    title=f" ({', '.join(fixed_labels)})" if fixed_labels else "")
        for c in run.cells:
            pos = c.info["position"]
            if tuple(pos[2:]) == fixed:
                page.cells[(pos[0], pos[1])] = c
        if page.cells:
            out.append(page)
    return out


PANEL_ASPECT = 4 / 3  # width / height a swarm panel reads best at (seed 000's panels)


def wrap_grid(n: int, aspect: float = 4 / 3) -> tuple[int, int]:
    """(rows, cols) for n panels on a canvas of width/height `aspect`: panels closest to
    PANEL_ASPECT, a few empty slots allowed (3 panels on 4:3 -> 2 x 2, not 3 tall strips)."""
    def cost(cols):
        rows = math.ceil(n / cols)
        empty = rows * cols - n
        return abs(math.log(aspect * rows / cols / PANEL_ASPECT)) + 0.4 * empty / n + (
            10 if empty >= cols else 0)  # never a whole empty row
    cols = min(range(1, n + 1), key=cost)
    return math.ceil(n / cols), cols


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9=.+-]+", "_", text).strip("_")


def frame_index(run: Run, epoch: int) -> int:
    """render.epochs value -> recorded frame: an epoch (the nearest recorded one), or counted
    from the end when negative (-1 = last frame)."""
    n = len(run.frames)
    if epoch < 0:
        if -epoch > n:
            raise IndexError(f"render.epochs={epoch}: the run recorded only {n} frames")
        return n + epoch
    if epoch > run.frames[-1]:
        raise IndexError(f"render.epochs={epoch} is past the last recorded epoch "
                         f"{int(run.frames[-1])}")
    return int(np.abs(run.frames - epoch).argmin())


def diverged_by(cell: CellResult, epoch: int) -> np.ndarray:
    """Bees whose loss went non-finite at or before `epoch`; figures leave them out."""
    d = np.asarray(cell.diverged_epoch)
    return (d >= 0) & (d <= epoch)


class FrameBlocks:
    """Frames of a [bees, frames, ...] array, read a block of frames at a time: one frame
    alone is `bees` scattered reads of the memory-mapped file, a block is `bees` runs."""

    def __init__(self, array: np.ndarray, block: int = 32):
        self.array, self.block, self.start, self.data = array, block, -1, None

    def __getitem__(self, frame: int) -> np.ndarray:
        if self.data is None or not self.start <= frame < self.start + self.block:
            self.start = frame
            self.data = np.array(self.array[:, frame:frame + self.block], dtype=np.float64)
        return self.data[:, frame - self.start]


def ypred_at(run: Run, cell: CellResult, frame: int, blocks: FrameBlocks | None = None):
    """[bees, points] predictions at one recorded frame; diverged bees are NaN (not drawn)."""
    y = (blocks or FrameBlocks(cell.ypred, 1))[frame].copy()
    y[diverged_by(cell, int(run.frames[frame]))] = np.nan
    return y


def kink_counts(run: Run, cell: CellResult, bins: int = 100):
    """Per recorded frame: histogram counts of kink positions over the target's domain, and
    how many kinks fall outside it. Diverged bees and units with w=0 are left out."""
    edges = np.linspace(float(run.x.min()), float(run.x.max()), bins + 1)
    w, b = FrameBlocks(cell.weights(0)), FrameBlocks(cell.biases(0))
    counts = np.zeros((len(run.frames), bins), dtype=np.int64)
    outside = np.zeros(len(run.frames), dtype=np.int64)
    for f, epoch in enumerate(run.frames):
        with np.errstate(divide="ignore", invalid="ignore"):
            k = (-b[f] / w[f][:, 0, :])[~diverged_by(cell, int(epoch))]
        k = k[np.isfinite(k)]
        counts[f] = np.histogram(k, edges)[0]
        outside[f] = k.size - counts[f].sum()
    return counts, edges, outside


def turning_points(tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    """x where the target's slope changes sign (numerically, on its fine grid)."""
    s = np.sign(np.diff(ty))
    nz = np.flatnonzero(s)
    flips = nz[1:][s[nz[1:]] != s[nz[:-1]]]
    return tx[flips]


def loss_name(run: Run) -> str:
    """'MSE loss' from the run's saved config (train.loss), or plain 'loss' when the run has
    no readable .hydra/config.yaml (e.g. copied without it)."""
    try:
        cfg = yaml.safe_load((run.path / ".hydra" / "config.yaml").read_text())
        name = str(cfg["train"]["loss"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return "loss"
    return {"mse": "MSE loss", "mae": "MAE loss", "huber": "Huber loss"}.get(name, f"{name} loss")


def held_out(run: Run) -> np.ndarray:
    """Which points were held out for validation (runs without a split: none)."""
    path = run.path / "val_mask.npy"
    return np.load(path).astype(bool) if path.exists() else np.zeros(len(run.x), dtype=bool)


def y_limits(run: Run) -> tuple[float, float]:
    """Fixed over epochs and cells: the data's range plus room for bees that overshoot."""
    y = np.concatenate([run.y, run.load("target_y")])
    lo, hi = float(y.min()), float(y.max())
    pad = 0.35 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def bee_style(n: int) -> dict:
    """Colour per bee for a few bees; one colour, thinner and fainter lines for many, so 500
    bees read as a density rather than a solid block."""
    alpha = float(np.clip(2.5 / math.sqrt(n), 0.05, 0.9))
    lw = float(np.clip(2.0 / n ** 0.25, 0.4, 1.5))
    colors = [f"C{i}" for i in range(n)] if n <= 10 else ["#1f4e79"]
    return {"colors": colors, "alpha": alpha, "linewidths": lw}


def loss_limits(losses: list[np.ndarray]) -> tuple[float, float]:
    """Log-scale limits for [bees, epochs] losses: from the lowest to the initial loss or the
    99th percentile, whichever is higher, so a few early spikes don't squash the rest."""
    losses = [positive(np.asarray(a, dtype=np.float64)) for a in losses]
    ok = [a for a in losses if np.isfinite(a).any()]
    if not ok:
        return 1e-3, 1.0
    lo = min(np.nanmin(a) for a in ok)
    hi = max(max(np.nanmax(a[:, 0], initial=0), np.nanpercentile(a, 99)) for a in ok)
    return lo / 1.5, max(hi, lo * 10) * 1.5


def positive(a: np.ndarray) -> np.ndarray:
    """Losses for a log axis: non-finite -> NaN (not drawn), exact zeros nudged up."""
    a = np.where(np.isfinite(a), a, np.nan)
    return np.maximum(a, np.finfo(np.float32).tiny)
