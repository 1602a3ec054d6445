"""The run page's own view of a landscape or a classification run, as plain numbers (numpy only).

- Paths (task=landscape, 2-D surfaces): one panel per landscape (cells on equal saved surfaces
  share one, as paths.png does), the surface as log10(loss - its lowest drawn value) on at most
  MAX_SURFACE x MAX_SURFACE points, each particle's positions at the kept frames (far outside
  the domain, a diverging particle: not drawn) and the known minima. A 1-D surface (`mean`,
  `line`) gets no such view: its rendered figure is linked as before.
- Boundaries (task=classification): per cell the mean p(class 1) over every bee still finite at
  each kept frame on the dataset's grid, and each shown bee's p = 0.5 contour as line segments,
  found here by marching squares on its logits (the same linear interpolation along grid edges
  as contourpy's): a boundary crosses ~2 x side cells, so its segments are a fifth of the
  side^2 logits the page would otherwise carry.

Both keep bees and frames as numbers.plan_sizes does (frames before the 11th-50th bee, then fewer
frames, then fewer bees) within numbers.MAX_VALUES numbers, packed as uint16 (numbers.pack16).
"""

from __future__ import annotations

import numpy as np

from swarmcli.report.numbers import MAX_BEES, MAX_VALUES, MIN_FRAMES, pack16, sig, spread

MAX_SURFACE = 101  # surface points a side: a heat map image, smoothed when drawn
FAR = 1.0  # as render/landscape.py: beyond this many domain widths outside, not drawn


def plan(n_cells: int, bees: int, frames: int, per_frame: float, per_bee_frame: float):
    """(bees, frames) kept per cell so n_cells x frames x (per_frame + bees x per_bee_frame)
    numbers stay within MAX_VALUES."""
    def most_frames(b: int) -> int:
        return int(MAX_VALUES // max(1.0, n_cells * (per_frame + b * per_bee_frame)))

    b = min(bees, MAX_BEES)
    while b > min(bees, 10) and most_frames(b) < min(frames, MIN_FRAMES):
        b -= 1
    while b > 1 and most_frames(b) < 2:
        b -= 1
    return b, max(2, min(frames, most_frames(b)))


def view(run) -> tuple[dict | None, np.ndarray | None]:
    """(the task's view, the recorded frames it keeps) or (None, None): regression has the hive."""
    if run.task == "landscape" and run.cells and run.cells[0].info.get("dims", 2) == 2:
        return landscape_view(run)
    if run.task == "classification" and run.cells and "ypred" in run.manifest["record"]:
        return classification_view(run)
    return None, None


# -- landscape ------------------------------------------------------------------------------

def landscapes(cells) -> list[list]:
    """Cells grouped by equal saved surface arrays (render/landscape.py's grouping)."""
    groups: dict[bytes, list] = {}
    for c in cells:
        key = b"".join(np.ascontiguousarray(c.array(n)).tobytes()
                       for n in ("surface_x", "surface_y", "surface_z"))
        groups.setdefault(key, []).append(c)
    return list(groups.values())


def visible(pos: np.ndarray, domain: tuple[float, ...]) -> np.ndarray:
    """Positions far outside the domain, or not finite, as NaN: the path stops where it leaves."""
    lo, hi = np.asarray(domain[0::2]), np.asarray(domain[1::2])
    margin = FAR * (hi - lo)
    out = np.array(pos, dtype=np.float64)
    far = ~np.isfinite(out).all(-1) | ((out < lo - margin) | (out > hi + margin)).any(-1)
    out[far] = np.nan
    return out


def log_surface(z: np.ndarray) -> tuple[np.ndarray, float]:
    """log10(z - min z), floored as paths.png's contour levels are; and the lowest drawn z."""
    z = np.where(np.isfinite(z), np.asarray(z, dtype=np.float64), np.nan)
    low = float(np.nanmin(z))
    shifted = z - low
    hi = float(np.nanmax(shifted))
    lo = max(float(np.nanpercentile(shifted, 0.5)), hi * 1e-6, np.finfo(np.float64).tiny)
    return np.log10(np.clip(shifted, lo, max(hi, lo))), low


def landscape_view(run) -> tuple[dict, np.ndarray]:
    cells = run.cells
    groups = landscapes(cells)
    bees = max(c.info["bees"] for c in cells)
    nb, nf = plan(len(cells), bees, len(run.frames), 0, 2)
    frames = spread(len(run.frames), nf)
    panels, paths = [], {}
    for g in groups:
        c0 = g[0]
        x, y = np.asarray(c0.array("surface_x")), np.asarray(c0.array("surface_y"))
        z = np.asarray(c0.array("surface_z"))
        ix, iy = spread(len(x), MAX_SURFACE), spread(len(y), MAX_SURFACE)
        logz, low = log_surface(z[np.ix_(iy, ix)])
        domain = (float(x[0]), float(x[-1]), float(y[0]), float(y[-1]))
        name = c0.info.get("surface", "")
        name = c0.info.get("expr") if name == "expr" else name
        start = c0.info.get("start")
        panels.append({"cells": [c.index for c in g], "domain": list(domain),
                       "logz": pack16(logz), "zmin": low, "surface": str(name or ""),
                       "minima": [sig(m, 6) for m in np.asarray(c0.array("minima"))],
                       "start": sig(start, 6) if start is not None else None})
        for c in g:
            pos = visible(np.asarray(c.array("position"))[:nb][:, frames], domain)
            paths[c.index] = pack16(np.transpose(pos, (1, 0, 2)))  # [frame, bee, 2]
    return {"kind": "paths", "panels": panels, "paths": paths,
            "bees": nb, "bees_total": bees}, frames


# -- classification -------------------------------------------------------------------------

def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * np.clip(z, -50, 50)))


def mean_probability(logits: np.ndarray) -> np.ndarray:
    """[frames, side, side] from [bees, frames, side, side]: the mean of sigmoid(logit) over the
    bees whose grid is all finite at that frame (render/boundaries.py's); NaN when none is."""
    live = np.isfinite(logits).all(axis=(2, 3))  # [bees, frames]
    p = np.where(live[:, :, None, None], sigmoid(np.nan_to_num(logits)), 0.0).sum(0)
    n = live.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n[:, None, None] > 0, p / n[:, None, None], np.nan)


def contour_segments(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Marching squares at level 0 on z [..., rows, cols] (a grid with all-finite values; any
    other is skipped): the segments [n, 4] (col0, row0, col1, row1 in grid units) ordered by the
    leading indices, and how many each leading index has (shape z.shape[:-2])."""
    lead = z.shape[:-2]
    ok = np.isfinite(z).all(axis=(-2, -1))[..., None, None]
    a, b = z[..., :-1, :-1], z[..., :-1, 1:]  # corners: a bottom-left, b bottom-right,
    c, d = z[..., 1:, 1:], z[..., 1:, :-1]  # c top-right, d top-left (rows grow upwards)
    pa, pb, pc, pd = a > 0, b > 0, c > 0, d > 0
    rows, cols = np.indices(a.shape[-2:])

    def cross(u, v):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.clip(u / (u - v), 0.0, 1.0)

    # the point where each cell edge crosses 0: bottom, right, top, left
    edges = [(cols + cross(a, b), rows + 0.0), (cols + 1.0, rows + cross(b, c)),
             (cols + cross(d, c), rows + 1.0), (cols + 0.0, rows + cross(a, d))]
    cut = [pa != pb, pb != pc, pd != pc, pa != pd]
    n_cut = sum(m.astype(int) for m in cut)
    two = (n_cut == 2) & ok
    saddle = (n_cut == 4) & ok
    centre = (a + b + c + d) > 0
    side_pairs = saddle & (pa == centre)  # the positive diagonal joined: cut off b's and d's
    pieces = []  # (mask, edge i, edge j)
    for i in range(4):
        for j in range(i + 1, 4):
            pieces.append((two & cut[i] & cut[j], i, j))
    pieces += [(side_pairs, 0, 1), (side_pairs, 2, 3),
               (saddle & ~side_pairs, 0, 3), (saddle & ~side_pairs, 1, 2)]
    keys, segs = [], []
    for mask, i, j in pieces:
        if not mask.any():
            continue
        keys.append(np.ravel_multi_index(np.nonzero(mask), mask.shape))
        ei, ej = edges[i], edges[j]
        segs.append(np.stack([np.broadcast_to(ei[0], mask.shape)[mask],
                              np.broadcast_to(ei[1], mask.shape)[mask],
                              np.broadcast_to(ej[0], mask.shape)[mask],
                              np.broadcast_to(ej[1], mask.shape)[mask]], axis=1))
    if not segs:
        return np.zeros((0, 4)), np.zeros(lead, int)
    key = np.concatenate(keys)
    order = np.argsort(key, kind="stable")
    seg = np.concatenate(segs)[order]
    per = a.shape[-2] * a.shape[-1]
    counts = np.bincount(key // per, minlength=int(np.prod(lead)))
    return seg, counts.reshape(lead)


def classification_view(run) -> tuple[dict, np.ndarray]:
    cells = run.cells
    n = len(run.y)
    side = int(run.manifest["grid"])
    bees = max(c.info["bees"] for c in cells)

    def logits(c, shown, frames):
        yp = np.asarray(c.ypred[:shown][:, frames, n:], dtype=np.float64)
        return yp.reshape(yp.shape[0], yp.shape[1], side, side)

    # what one bee's boundary costs, measured on the first cell's last frame
    _, counts = contour_segments(logits(cells[0], min(bees, MAX_BEES), [-1])[:, 0])
    per_bee_frame = 4 * max(1.0, float(counts.mean()))
    nb, nf = plan(len(cells), bees, len(run.frames), side * side, per_bee_frame)
    frames = spread(len(run.frames), nf)
    out = {}
    for c in cells:
        z = logits(c, c.info["bees"], frames)
        seg, counts = contour_segments(np.transpose(z[:nb], (1, 0, 2, 3)))  # [frame, bee]
        out[c.index] = {"mean": pack16(mean_probability(z)),  # [frame, side, side]
                        "segments": pack16(seg), "counts": counts.tolist()}
    test, val = run.load("test_mask").astype(bool), run.load("val_mask").astype(bool)
    return {"kind": "boundaries", "side": side, "extent": [float(v) for v in
                                                            run.manifest["extent"]],
            "points": {"x": sig(run.x[:, 0], 5), "y": sig(run.x[:, 1], 5),
                       "label": np.asarray(run.y).astype(int).tolist(),
                       "test": test.tolist(), "val": val.tolist()},
            "cells": out, "bees": nb, "bees_total": bees}, frames
