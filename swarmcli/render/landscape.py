"""Figures of a landscape run (task=landscape), from its saved arrays only (never torch):

- `hive` -> paths.png: the surface as contours on log-spaced levels with every particle's path
  and the minimum marked, one colour and legend entry per cell; cells on one landscape share a
  panel (seed 003's picture). The 1-D `mean` landscape is drawn as seed 004 draws it: the loss
  over mu, the GD iterates as stars on it, the empirical and the true mean marked.
- `loss` -> loss.png: each cell's loss per step (median over particles, inter-quartile band).
- `hive_animation` -> paths_animation.mp4 (.gif with render.format=gif): the swarm of particles
  moving, with fading tails.

The figure names of `render.what` keep their meaning ("the swarm of each cell", "its loss"), so
one set of keys serves both tasks; a name with no landscape figure is reported and skipped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import imageio_ffmpeg
import matplotlib
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D

from swarmcli.render import scenes, stills, style, video
from swarmcli.results import Run

TAIL = 12  # recorded frames a particle's fading tail spans in the animation
FAR = 1.0  # a point more than this many domain widths outside it (diverging) is not drawn


def title(run: Run, what: str, named: bool = True) -> str:
    """'WHAT on SURFACE: LESSON' (the surface left out where `what` names it)."""
    lesson = run.manifest.get("lesson") or ""
    s = run.manifest.get("surface", {})
    name = s.get("expr") or s.get("name", "surface")
    return what + (f" on {name}" if named else "") + (f": {lesson}" if lesson else "")


def landscapes(run: Run) -> list[list]:
    """Cells grouped by the landscape they move on (equal saved surface arrays)."""
    groups: dict[bytes, list] = {}
    for c in run.cells:
        key = b"".join(np.ascontiguousarray(c.array(n)).tobytes()
                       for n in ("surface_x", "surface_z") + (("surface_y",) if c.has(
                           "surface_y") else ()))
        groups.setdefault(key, []).append(c)
    return list(groups.values())


def label(c, named: bool = False) -> str:
    """The cell's axis values ("adam"), or with their short keys ("n=5") where no legend title
    names them."""
    if named:
        return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in c.labels.items()) or "swarm"
    return ", ".join(str(v) for v in c.labels.values()) or "swarm"


def visible(pos: np.ndarray, domain: tuple[float, ...]) -> np.ndarray:
    """Positions with points far outside the domain (a diverging particle) masked as NaN, so
    its line stops where it leaves."""
    lo, hi = np.asarray(domain[0::2]), np.asarray(domain[1::2])
    margin = FAR * (hi - lo)
    far = ~np.isfinite(pos).all(-1) | ((pos < lo - margin) | (pos > hi + margin)).any(-1)
    out = pos.astype(np.float64).copy()
    out[far] = np.nan
    return out


def contours(ax, cell) -> tuple[float, ...]:
    """The surface as contours on 25 log-spaced levels of (loss - its lowest drawn value), the
    minima as red stars; returns the drawn domain."""
    x, y, z = cell.array("surface_x"), cell.array("surface_y"), np.asarray(cell.array(
        "surface_z"), dtype=np.float64)
    z = np.where(np.isfinite(z), z, np.nan)
    shifted = z - np.nanmin(z)
    hi = np.nanmax(shifted)
    lo = max(np.nanpercentile(shifted, 0.5), hi * 1e-6, np.finfo(np.float64).tiny)
    if hi > lo:
        levels = np.geomspace(lo, hi, 25)
        ax.contour(x, y, np.maximum(shifted, lo), levels=levels, norm=LogNorm(lo, hi),
                   cmap="viridis", linewidths=0.7, zorder=1)
    m = np.asarray(cell.array("minima"))
    if m.size:
        ax.plot(m[:, 0], m[:, 1], "*", color="red", ms=13, mec="white", mew=0.6, zorder=5)
    domain = (float(x[0]), float(x[-1]), float(y[0]), float(y[-1]))
    ax.set_xlim(domain[:2])
    ax.set_ylim(domain[2:])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return domain


def grid_of(n: int) -> tuple[int, int]:
    cols = int(np.ceil(np.sqrt(n)))
    return int(np.ceil(n / cols)), cols


def paths(run: Run, cfg: dict):
    """paths.png: every particle's path over the contours (2-D) or seed 004's picture (1-D)."""
    if run.cells[0].info.get("dims", 2) == 1:
        yield "paths.png", mean_figure(run, cfg)
        return
    colors = dict(zip([c.index for c in run.cells], stills.cell_colors(len(run.cells))))
    groups = landscapes(run)
    cv = scenes.Canvas(run, cfg, title(run, "Particle paths", named=len(groups) == 1))
    rows, cols = grid_of(len(groups))
    axs = cv.fig.subplots(rows, cols, squeeze=False)
    for ax in axs.flat[len(groups):]:
        ax.set_axis_off()
    for ax, cells in zip(axs.flat, groups):
        domain = contours(ax, cells[0])
        for c in cells:
            pos = visible(np.asarray(c.array("position")), domain)
            many = pos.shape[0] > 3
            for b in range(pos.shape[0]):
                ax.plot(pos[b, :, 0], pos[b, :, 1], color=colors[c.index],
                        lw=0.7 if many else 1.5, alpha=0.5 if many else 0.95, zorder=3,
                        marker=None if many else ".", ms=3)
            end = pos[:, -1]
            ax.plot(end[:, 0], end[:, 1], "o", color=colors[c.index], ms=4, mec="black",
                    mew=0.4, zorder=4)
            div = np.asarray(c.diverged_epoch) >= 0
            if div.any():  # where a diverged particle was last seen
                inside = [p[np.isfinite(p).all(-1) & (p >= domain[0::2]).all(-1)
                            & (p <= domain[1::2]).all(-1)] for p in pos[div]]
                last = [p[-1] for p in inside if len(p)]
                if last:
                    last = np.asarray(last)
                    ax.plot(last[:, 0], last[:, 1], "x", color=style.DIVERGED, ms=7, mew=1.5,
                            zorder=6)
        start = cells[0].info.get("start")
        if start is None:  # the configured start: the centre of a spread
            start = np.asarray(cells[0].array("position"))[:, 0].mean(0)
        ax.plot(*start, "o", mfc="white", mec="black", ms=6, zorder=6)
        if len(groups) > 1:
            name = cells[0].info.get("surface", "")  # a shipped name, or the user's formula
            name = cells[0].info.get("expr") if name == "expr" else name
            text, size = cv.fit(str(name), cv.panel_px(rows, cols)[0],
                                style.RC["axes.titlesize"])
            ax.set_title(text, fontsize=size)
    handles = [Line2D([], [], color=colors[c.index], lw=2, label=label(c)) for c in run.cells]
    handles += [Line2D([], [], ls="", marker="*", color="red", ms=10, label="minimum"),
                Line2D([], [], ls="", marker="o", mfc="white", mec="black", label="start")]
    if any((np.asarray(c.diverged_epoch) >= 0).any() for c in run.cells):
        handles.append(Line2D([], [], ls="", marker="x", color=style.DIVERGED, mew=1.5,
                              label="diverged (last seen)"))
    axis = ", ".join(a["name"].rsplit(".", 1)[-1] for a in run.axes) or None
    cv.fig.legend(handles=handles, loc="outside right center", title=axis)
    yield "paths.png", cv.fig


def mean_figure(run: Run, cfg: dict):
    """Seed 004's picture per cell: l(mu) per sample (one curve per particle when each draws
    its own), the GD iterates as red stars on it, the empirical mean(s) blue, the true mean
    green."""
    cv = scenes.Canvas(run, cfg, title(run, "Gradient descent for a mean", named=False))
    rows, cols = grid_of(len(run.cells))
    axs = cv.fig.subplots(rows, cols, squeeze=False)
    for ax in axs.flat[len(run.cells):]:
        ax.set_axis_off()
    for ax, c in zip(axs.flat, run.cells):
        mu = np.asarray(c.array("surface_x"))
        curves = np.atleast_2d(np.asarray(c.array("surface_z")))
        xs = np.atleast_2d(np.asarray(c.array("samples_x")))
        pos = np.asarray(c.array("position"))[:, :, 0]  # [bees, frames]
        emp = np.asarray(c.array("minima"))[:, 0]
        true = float(c.info["true_mean"])
        alpha = 0.9 if curves.shape[0] == 1 else max(0.15, 1.5 / curves.shape[0])
        for k in range(curves.shape[0]):
            ax.plot(mu, curves[k], color=style.TRAIN, lw=1, alpha=alpha, zorder=2)
        for b in range(pos.shape[0]):
            row = xs[b % xs.shape[0]]
            lb = ((pos[b][:, None] - row) ** 2).mean(-1)
            ax.plot(pos[b], lb, "*", ls=":", color="red", ms=7 if pos.shape[0] < 5 else 4,
                    lw=0.8, alpha=min(1.0, 3 * alpha), zorder=3)
        emp_loss = [((e - xs[k % xs.shape[0]]) ** 2).mean() for k, e in enumerate(emp)]
        ax.plot(emp, emp_loss, "*", color="blue", ms=9 if len(emp) < 5 else 6, zorder=4)
        ax.axvline(true, color="green", ls="--", lw=1.2, zorder=1)
        spread = f", sd of empirical means {emp.std():.2g}" if len(emp) > 1 else ""
        text, size = cv.fit(f"{label(c, named=True)}{spread}", cv.panel_px(rows, cols)[0],
                            style.RC["axes.titlesize"])
        ax.set_title(text, fontsize=size)
        ax.set_xlabel("mu")
        ax.set_ylabel("loss l(mu) = mean (mu - x_i)^2")
        ax.set_xlim(mu[0], mu[-1])
    handles = [Line2D([], [], color=style.TRAIN, label="l(mu) of a sample"),
               Line2D([], [], color="red", marker="*", ls=":", label="GD iterates"),
               Line2D([], [], color="blue", marker="*", ls="", label="empirical mean"),
               Line2D([], [], color="green", ls="--", label="true mean")]
    cv.fig.legend(handles=handles, loc="outside lower center", ncols=4)
    return cv.fig


def loss(run: Run, cfg: dict):
    """loss.png: each cell's loss per step, median over its particles with the inter-quartile
    band; log y unless some loss is not positive (a surface that goes below zero)."""
    cv = scenes.Canvas(run, cfg, title(run, "Loss per step"))
    ax = cv.fig.subplots()
    colors = stills.cell_colors(len(run.cells))
    finite = [np.asarray(c.loss)[np.isfinite(c.loss)] for c in run.cells]
    log = all(f.size == 0 or f.min() > 0 for f in finite)
    for color, c in zip(colors, run.cells):
        a = np.where(np.isfinite(c.loss), np.asarray(c.loss, dtype=np.float64), np.nan)
        if not log:
            e = np.arange(a.shape[1])
            ok = np.isfinite(a).any(0)
            q = np.full((3, a.shape[1]), np.nan)
            q[:, ok] = np.nanpercentile(a[:, ok], [25, 50, 75], axis=0)
            ax.fill_between(e, q[0], q[2], color=color, alpha=0.25, lw=0)
            ax.plot(e, q[1], color=color, lw=1.3)
        else:
            stills.band(ax, a, color, envelope=False)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    handles = [Line2D([], [], color=col, lw=2, label=label(c))
               for col, c in zip(colors, run.cells)]
    axis = ", ".join(a["name"].rsplit(".", 1)[-1] for a in run.axes) or None
    cv.fig.legend(handles=handles, loc="outside right center", title=axis)
    yield "loss.png", cv.fig


def animation(run: Run, cfg: dict, path: Path) -> Path:
    """paths_animation.mp4 (or .gif): the particles of every cell moving over the contours, each
    with a tail of its last TAIL recorded positions fading out. Static parts are drawn once and
    blitted; frames go straight from the canvas to ffmpeg (a GIF: H.264 first, then one
    64-colour palette, as video.py's GIFs)."""
    gif = cfg["format"] == "gif"
    fps = min(cfg["fps"], video.GIF_FPS) if gif else cfg["fps"]
    tl = video.timeline(len(run.frames), fps, cfg["min_seconds"], cfg["max_seconds"],
                        cfg["frame_stride"], max_frames=video.GIF_MAX_FRAMES if gif else None)
    groups = landscapes(run)
    colors = dict(zip([c.index for c in run.cells], stills.cell_colors(len(run.cells))))
    with matplotlib.rc_context(style.RC):
        cv = scenes.Canvas(run, cfg, title(run, "Particles", named=len(groups) == 1))
        rows, cols = grid_of(len(groups))
        axs = cv.fig.subplots(rows, cols, squeeze=False)
        for ax in axs.flat[len(groups):]:
            ax.set_axis_off()
        movers = []  # (cell positions [bees, frames, 2], LineCollection, dots)
        for ax, cells in zip(axs.flat, groups):
            domain = contours(ax, cells[0])
            for c in cells:
                pos = visible(np.asarray(c.array("position")), domain)
                rgba = np.array(matplotlib.colors.to_rgba(colors[c.index]))
                tail = LineCollection([], linewidths=1.4, animated=True, zorder=3)
                dots, = ax.plot([], [], "o", color=colors[c.index], ms=4, mec="black",
                                mew=0.3, animated=True, zorder=4)
                ax.add_collection(tail)
                movers.append((pos, rgba, tail, dots))
        counter = cv.fig.text(0.01, 0.01, "", animated=True, fontsize=style.MIN_FONT)
        handles = [Line2D([], [], color=colors[c.index], lw=2, label=label(c))
                   for c in run.cells]
        cv.fig.legend(handles=handles, loc="outside right center")
        canvas = cv.fig.canvas
        canvas.draw()
        background = canvas.copy_from_bbox(cv.fig.bbox)
        size = canvas.get_width_height()
        tmp = path.with_name(f".{path.name}.tmp.mp4")
        writer = imageio_ffmpeg.write_frames(str(tmp), size, fps=tl.fps, pix_fmt_in="rgba",
                                             macro_block_size=2, quality=7)
        writer.send(None)
        try:
            for f in tl.frames:
                canvas.restore_region(background)
                lo = max(0, f - TAIL)
                for pos, rgba, tail, dots in movers:
                    seg = np.stack([pos[:, lo:f], pos[:, lo + 1:f + 1]], axis=2)  # [b, k, 2, 2]
                    k = seg.shape[1]
                    fade = np.tile(np.linspace(0.1, 0.9, k) if k else np.zeros(0),
                                   pos.shape[0])
                    color = np.repeat(rgba[None, :], fade.size, axis=0)
                    color[:, 3] = fade
                    tail.set_segments(seg.reshape(-1, 2, 2))
                    tail.set_color(color)
                    dots.set_data(pos[:, f, 0], pos[:, f, 1])
                    cv.fig.draw_artist(tail)
                    cv.fig.draw_artist(dots)
                counter.set_text(f"step {int(run.frames[f])}")
                cv.fig.draw_artist(counter)
                writer.send(bytes(canvas.buffer_rgba()))
            writer.close()
            if gif:
                to_gif(tmp, path)
            else:
                os.replace(tmp, path)
        finally:
            writer.close()
            tmp.unlink(missing_ok=True)
    return path


def to_gif(mp4: Path, path: Path) -> None:
    """An H.264 file as a GIF of one shared palette, written beside `path` and renamed."""
    tmp = path.with_name(f".{path.name}.tmp.gif")
    lavfi = (f"split[a][b];[a]palettegen=max_colors={video.GIF_COLORS}[p];"
             "[b][p]paletteuse=dither=none")
    try:
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(mp4),
                        "-lavfi", lavfi, "-loop", "0", str(tmp)], check=True,
                       stdin=subprocess.DEVNULL, capture_output=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


STILLS = {"hive": paths, "loss": loss}
ANIMATIONS = {"hive_animation": "paths_animation"}


def render(run: Run, what: list[str], cfg: dict, fig_dir: Path, out, save_png) -> list[Path]:
    """Draw the landscape figures asked for into fig_dir; print and return the paths."""
    written = []
    for w in what:
        if w in STILLS:
            with matplotlib.rc_context(style.RC):
                for name, fig in STILLS[w](run, cfg):
                    written.append(save_png(fig, fig_dir / name))
        elif w in ANIMATIONS and run.cells[0].info.get("dims", 2) == 2:
            written.append(animation(run, cfg, fig_dir / f"{ANIMATIONS[w]}.{cfg['format']}"))
        else:
            print(f"{w}: not drawn for this landscape run (it draws hive as paths.png, loss, "
                  f"and hive_animation for a 2-D surface)", file=out)
            continue
        print(f"wrote {written[-1]}", file=out, flush=True)
    return written

