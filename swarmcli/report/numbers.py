"""The report's number budget and packing, shared by the run page (data.py) and the task views
(tasks.py): how many bees, frames and points a page keeps, and floats as uint16 codes in base64
(2.7 bytes a number, resolution range / 65534: far below a pixel)."""

from __future__ import annotations

import base64
import math

import numpy as np

MAX_BEES = 50  # curves per cell (hover needs a line per bee; 500 lines are only a smear)
MAX_POINTS = 128  # x-values per curve: ~5 px apart on a 640 px wide panel
MAX_VALUES = 1_000_000  # predictions in the page over all cells: ~2.7 MB
MAX_EPOCHS = 300  # loss curves' epochs
MAX_LOSS_VALUES = 150_000  # per-bee loss numbers over all cells (~7 bytes each as JSON)
MIN_FRAMES = 60  # a slider with fewer steps jumps; bees beyond 10 a cell give way to frames
KINK_BINS = 60
NAN16 = 65535  # the uint16 code for "not drawn" (a diverged bee)


def sig(a, digits: int = 4) -> list:
    """Numbers for JSON at `digits` significant digits; NaN and inf become None (not drawn)."""
    out = []
    for v in np.asarray(a, dtype=np.float64).ravel():
        out.append(float(f"{v:.{digits}g}") if math.isfinite(v) else None)
    return out


def spread(n: int, k: int) -> np.ndarray:
    """k indices evenly over range(n), first and last included (all of them if k >= n)."""
    if k >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max(k, 2)).round().astype(int))


def pack16(a: np.ndarray) -> dict:
    """A float array as uint16 codes over its finite range, base64: {lo, hi, shape, b64}."""
    a = np.asarray(a, dtype=np.float64)
    fin = np.isfinite(a)
    lo = float(a[fin].min()) if fin.any() else 0.0
    hi = float(a[fin].max()) if fin.any() else 1.0
    span = hi - lo or 1.0
    q = np.full(a.shape, NAN16, dtype="<u2")
    q[fin] = np.round((a[fin] - lo) / span * (NAN16 - 1)).astype("<u2")
    return {"lo": lo, "hi": lo + span, "shape": list(a.shape),
            "b64": base64.b64encode(q.tobytes()).decode("ascii")}


def unpack16(p: dict) -> np.ndarray:
    """pack16's inverse (what the page's decoder does), for tests and readers of the page."""
    q = np.frombuffer(base64.b64decode(p["b64"]), dtype="<u2").reshape(p["shape"])
    out = p["lo"] + q.astype(np.float64) * (p["hi"] - p["lo"]) / (NAN16 - 1)
    out[q == NAN16] = np.nan
    return out


def plan_sizes(n_cells: int, bees: int, frames: int, points: int) -> tuple[int, int, int]:
    """(bees, frames, points) kept per cell within the budgets above."""
    b, p = min(bees, MAX_BEES), min(points, MAX_POINTS)
    # Scrubbing wants frames more than a 50th bee: down to 10 bees for MIN_FRAMES frames, then
    # fewer frames (two at worst), then fewer bees (a sweep of hundreds of cells).
    fit = MAX_VALUES // max(1, n_cells * p * min(frames, MIN_FRAMES))
    b = min(b, max(min(b, 10), fit))
    b = max(1, min(b, MAX_VALUES // max(1, n_cells * p * min(frames, 2))))
    f = min(frames, max(2, MAX_VALUES // max(1, n_cells * b * p)))
    return b, f, p
