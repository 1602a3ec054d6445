"""PNG figures: hive and kinks at chosen epochs (one still of a scene), loss bands, the final
loss of every bee per cell, and the activation gallery."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np

from swarmcli.render import data, scenes
from swarmcli.results import Run, atomic_write_bytes


def save(fig, path: Path) -> Path:
    """Render in memory, then write atomically: a figure is never half-written."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    atomic_write_bytes(path, buf.getvalue())
    return path


def scene_stills(name: str, run: Run, cfg: dict, out_dir: Path, **kw):
    """One PNG per page and per render.epochs value, e.g. hive_epoch0150.png."""
    frames = sorted({data.frame_index(run, e) for e in cfg["epochs"]})
    for p, page in enumerate(data.pages(run)):
        sc = scenes.SCENES[name](run, cfg, p, animated=False, **kw)
        for f in frames:
            epoch = int(run.frames[f])
            yield save(sc.still(f), out_dir / f"{name}{page.name}_epoch{epoch:04d}.png")


def hive(run, cfg, out_dir):
    yield from scene_stills("hive", run, cfg, out_dir)


def kinks(run, cfg, out_dir):
    yield from scene_stills("kinks", run, cfg, out_dir, with_swarm=False)


def cell_colors(n: int) -> list:
    return [matplotlib.colormaps["tab10"](i % 10) for i in range(n)]


def loss(run: Run, cfg: dict, out_dir: Path):
    """Per cell: median loss over epochs, inter-quartile band and min-max envelope (log y).
    Panels follow the hive grid; further axes are colours within a panel."""
    page_list = data.pages(run)
    first = page_list[0]
    fig = scenes.new_figure(cfg)
    axs = fig.subplots(first.rows, first.cols, sharex=True, sharey=True, squeeze=False)
    fig.suptitle("Training loss: median, inter-quartile band, min-max envelope")
    colors = cell_colors(len(page_list))
    for (r, c), ax in np.ndenumerate(axs):
        scenes.label_panel(ax, first, run, r, c)
        ax.set_yscale("log")
        notes = []
        for page, color in zip(page_list, colors):
            cell = page.cells.get((r, c))
            if cell is None:
                continue
            lo, q1, med, q3, hi = loss_bands(cell.loss)
            e = np.arange(med.size)
            ax.fill_between(e, lo, hi, color=color, alpha=0.12, lw=0)
            ax.fill_between(e, q1, q3, color=color, alpha=0.35, lw=0)
            ax.plot(e, med, color=color, lw=1.3, label=page.title.strip(" ()") or None)
            if cell.has("val_loss"):  # held-out points: the median, dashed
                ax.plot(e, loss_bands(cell.array("val_loss"))[2], color=color, lw=1.1, ls="--",
                        label="held out (median)" if page is page_list[0] else None)
            n = int(cell.info.get("diverged", 0))
            if n:
                notes.append(f"{n} diverged")
        if notes:
            ax.text(0.98, 0.95, ", ".join(notes), transform=ax.transAxes, ha="right",
                    va="top", color="firebrick", fontsize=7)
        if not any((r, c) in p.cells for p in page_list):
            ax.set_axis_off()
        if r == first.rows - 1:
            ax.set_xlabel("epoch")
    axs[0, 0].set_ylim(*data.loss_limits([c.loss for c in run.cells]))
    if axs[0, 0].get_legend_handles_labels()[0]:
        axs[0, 0].legend(loc="upper right")
    yield save(fig, out_dir / "loss.png")


def loss_bands(loss) -> tuple[np.ndarray, ...]:
    """min, q1, median, q3, max over live bees at each epoch (diverged bees drop out)."""
    a = data.positive(np.asarray(loss, dtype=np.float64))
    out = np.full((5, a.shape[1]), np.nan)
    ok = np.isfinite(a).any(axis=0)
    if ok.any():
        out[:, ok] = np.nanpercentile(a[:, ok], [0, 25, 50, 75, 100], axis=0)
    return tuple(out)


def final_loss(run: Run, cfg: dict, out_dir: Path):
    """Every bee's final loss per cell (jittered dots over a box): the box says which setting
    wins on average, the spread how much the initial weights (luck) matter."""
    fig = scenes.new_figure(cfg)
    ax = fig.subplots()
    cells = run.cells
    finals = [data.positive(np.asarray(c.loss[:, -1], dtype=np.float64)) for c in cells]
    live = [f[np.isfinite(f)] for f in finals]
    medians = [np.median(f) if f.size else np.inf for f in live]
    best = int(np.argmin(medians))
    rng = np.random.default_rng(0)
    pos = np.arange(len(cells))[::-1]  # first cell on top
    for i, (f, p) in enumerate(zip(live, pos)):
        color = "#c8553d" if i == best else "#1f4e79"
        jitter = rng.uniform(-0.28, 0.28, f.size)
        ax.scatter(f, p + jitter, s=float(np.clip(300 / max(f.size, 1), 3, 18)), color=color,
                   alpha=float(np.clip(4 / np.sqrt(max(f.size, 1)), 0.15, 0.8)), lw=0, zorder=2)
    ax.boxplot([f if f.size else [np.nan] for f in live], positions=pos, widths=0.6,
               orientation="horizontal", showfliers=False, manage_ticks=False, zorder=3,
               medianprops={"color": "k", "lw": 1.6}, boxprops={"lw": 1},
               whiskerprops={"lw": 1}, capprops={"lw": 1})
    labels = []
    for c, f, live_f in zip(cells, finals, live):
        n_div = f.size - live_f.size
        labels.append(data.cell_title(run, c) + (f"\n({n_div} diverged)" if n_div else ""))
    ax.set_yticks(pos, labels)
    ax.set_xlabel(f"final loss (epoch {run.epochs}), one dot per bee")
    if np.isfinite(medians[best]):
        ax.get_yticklabels()[best].set_color("#c8553d")
        ax.set_xscale("log")
        ax.grid(axis="x", which="major", alpha=0.3)
        fig.suptitle(f"Final loss per cell; best median: {data.cell_title(run, cells[best])} "
                     f"({medians[best]:.3g})")
    else:
        fig.suptitle("Final loss per cell: every bee diverged")
    yield save(fig, out_dir / "final_loss.png")


def activations(run: Run, cfg: dict, out_dir: Path):
    """Each activation used in the run and its derivative (seed 000's gallery)."""
    curves = np.load(run.path / "activations.npz")
    names = [k for k in curves.files if k != "x" and not k.endswith("_grad")]
    x = curves["x"]
    cols = min(len(names), 3)
    rows = -(-len(names) // cols)
    fig = scenes.new_figure(cfg)
    axs = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    fig.suptitle("Activation functions and their derivatives")
    for ax, name in zip(axs.flat, names):
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.plot(x, curves[name], color="#1f4e79", lw=2, label=name)
        ax.plot(x, curves[name + "_grad"], color="#c8553d", lw=1.5, ls="--", label="derivative")
        ax.set_title(name)
        ax.legend(loc="upper left")
    for ax in axs.flat[len(names):]:
        ax.set_axis_off()
    yield save(fig, out_dir / "activations.png")
