"""PNG figures: hive and kinks at chosen epochs (one still of a scene), loss bands per cell, every
cell's loss on one axis (compare), the final loss of every bee per cell sorted by median, and
the activation gallery.

Each builder yields (file name, Figure) and leaves saving to the caller, so tests can inspect a
finished figure (layout.problems) without writing it.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from swarmcli import stats
from swarmcli.render import data, scenes, style
from swarmcli.results import Run


def hive(run, cfg):
    yield from scenes.stills("hive", scenes.SCENES["hive"], run, cfg)


def kinks(run, cfg):
    yield from scenes.stills("kinks", scenes.SCENES["kinks"], run, cfg, with_swarm=False)


def cell_colors(n: int) -> list:
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def loss_bands(loss) -> tuple[np.ndarray, ...]:
    """min, q1, median, q3, max over live bees at each epoch (diverged bees drop out)."""
    a = data.positive(np.asarray(loss, dtype=np.float64))
    out = np.full((5, a.shape[1]), np.nan)
    ok = np.isfinite(a).any(axis=0)
    if ok.any():
        out[:, ok] = np.nanpercentile(a[:, ok], [0, 25, 50, 75, 100], axis=0)
    return tuple(out)


def all_losses(run: Run) -> list[np.ndarray]:
    """Every cell's training loss, and held-out loss where recorded (for shared y limits)."""
    out = [c.loss for c in run.cells]
    return out + [c.array("val_loss") for c in run.cells if c.has("val_loss")]


def loss(run: Run, cfg: dict):
    """Per cell: median loss over epochs, inter-quartile band and min-max envelope (log y),
    training in one colour and held-out points in another. Panels follow the hive grid; a
    third axis's values share a panel as line styles."""
    page_list = data.pages(run, scenes.aspect(cfg))
    first = page_list[0]
    has_val = any(c.has("val_loss") for c in run.cells)
    title = ("Loss per cell: median over bees, inter-quartile band, min-max envelope"
             + (" (training and held-out points)" if has_val else ""))
    cv = scenes.Canvas(run, cfg, title)
    axs = cv.fig.subplots(first.rows, first.cols, sharex=True, sharey=True, squeeze=False)
    styles = ["-", "--", ":", "-."]
    name = data.loss_name(run)
    for (r, c), ax in np.ndenumerate(axs):
        if not any((r, c) in p.cells for p in page_list):
            ax.set_axis_off()
            continue
        cv.label_panel(ax, first, r, c)
        if c == first.cols - 1:
            cv.row_label(ax, first, r)
        ax.set_yscale("log")
        notes = []
        for k, page in enumerate(page_list):
            cell = page.cells.get((r, c))
            if cell is None:
                continue
            ls = styles[k % len(styles)]
            band(ax, cell.loss, style.TRAIN, ls, envelope=True)
            if cell.has("val_loss"):
                band(ax, cell.array("val_loss"), style.HELD_OUT, ls, envelope=False)
            n = int(cell.info.get("diverged", 0))
            if n:
                notes.append(f"{n} diverged")
        if notes:
            ax.text(0.98, 0.95, ", ".join(notes), transform=ax.transAxes, ha="right",
                    va="top", color=style.DIVERGED, fontsize=style.MIN_FONT)
        scenes.edge_labels(ax, first, r, c, "epoch", name)
    axs[0, 0].set_ylim(*data.loss_limits(all_losses(run)))
    handles = [Line2D([], [], color=style.TRAIN, lw=1.4, label="training: median"),
               Patch(color=style.TRAIN, alpha=0.35, lw=0, label="inter-quartile"),
               Patch(color=style.TRAIN, alpha=0.12, lw=0, label="min-max")]
    if has_val:
        handles += [Line2D([], [], color=style.HELD_OUT, lw=1.4, label="held out: median"),
                    Patch(color=style.HELD_OUT, alpha=0.3, lw=0, label="inter-quartile")]
    if len(page_list) > 1:
        handles += [Line2D([], [], color="0.3", ls=styles[k % len(styles)],
                           label=p.title.strip(" ()")) for k, p in enumerate(page_list)]
    cv.fig.legend(handles=handles, loc="outside lower center",
                  ncols=min(len(handles), 5))
    yield "loss.png", cv.fig


def band(ax, loss, color, ls: str = "-", envelope: bool = True) -> None:
    """Median line over an inter-quartile band (and a fainter min-max envelope)."""
    lo, q1, med, q3, hi = loss_bands(loss)
    e = np.arange(med.size)
    if envelope:
        ax.fill_between(e, lo, hi, color=color, alpha=0.12, lw=0)
    ax.fill_between(e, q1, q3, color=color, alpha=0.3 if envelope else 0.22, lw=0)
    ax.plot(e, med, color=color, lw=1.3, ls=ls)


def compare(run: Run, cfg: dict):
    """Every cell's median loss on one axis, with its inter-quartile band: which setting learns
    fastest and ends lowest, at a glance. Training solid; held-out points dashed."""
    cells = run.cells
    has_val = any(c.has("val_loss") for c in cells)
    cv = scenes.Canvas(run, cfg, "Median loss of every cell (band: inter-quartile range "
                                 "over bees)")
    ax = cv.fig.subplots()
    colors = cell_colors(len(cells))
    legend_px = 0.26 * cv.size[0]
    handles = []
    for cell, color in zip(cells, colors):
        text, _ = cv.fit(data.cell_title(run, cell), legend_px, style.MIN_FONT)
        band(ax, cell.loss, color, envelope=False)
        handles.append(Line2D([], [], color=color, lw=2, label=text))
        if cell.has("val_loss"):
            ax.plot(loss_bands(cell.array("val_loss"))[2], color=color, lw=1.3, ls="--")
    # legend in the order the curves end, lowest last, so a name sits near its line's end
    ends = [np.nan_to_num(loss_bands(c.loss)[2][-1], nan=np.inf) for c in cells]
    handles = [handles[i] for i in sorted(range(len(cells)), key=lambda i: -ends[i])]
    if has_val:
        handles += [Line2D([], [], color="0.3", lw=1.3, label="training"),
                    Line2D([], [], color="0.3", lw=1.3, ls="--", label="held out")]
    ax.set_yscale("log")
    ax.set_ylim(*data.loss_limits(all_losses(run)))
    ax.set_xlim(0, max(run.epochs, 1))
    ax.set_xlabel("epoch")
    ax.set_ylabel(data.loss_name(run))
    ax.grid(alpha=0.3, which="major")
    lines = sum(h.get_label().count("\n") + 1 for h in handles)
    rows_fit = max(1, int((cv.size[1] - 80) / (style.MIN_FONT * cv.dpi / 72 * 1.7)))
    # beside the axes, not over the curves; constrained layout makes room for it
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              ncols=max(1, -(-lines // rows_fit)))
    yield "compare.png", cv.fig


def final_loss(run: Run, cfg: dict):
    """Every bee's final loss per cell, cells sorted by median (best on top), each median with
    its bootstrap 95% CI: the CI says whether a difference between cells is more than luck of
    the initial weights; the dots show that luck. Runs with held-out points show both."""
    cells = run.cells
    has_val = all(c.has("val_loss") for c in cells)
    series = [("training", style.TRAIN, [np.asarray(c.loss[:, -1], np.float64) for c in cells])]
    if has_val:
        series.append(("held out", style.HELD_OUT,
                       [np.asarray(c.array("val_loss")[:, -1], np.float64) for c in cells]))
    key = series[-1][2]  # sort by held-out loss when there is one: that is what generalises
    cis = [stats.median_ci(f) for f in key]
    order = sorted(range(len(cells)), key=lambda i: (np.nan_to_num(cis[i][0], nan=np.inf), i))
    tied = stats.compare_cells(key)
    cv = scenes.Canvas(run, cfg, "Final loss per cell, best "
                       + ("held-out " if has_val else "") + "median on top")
    ax = cv.fig.subplots()
    rng = np.random.default_rng(0)
    pos = {i: len(cells) - 1 - k for k, i in enumerate(order)}  # first in order on top
    offsets = [0.0] if not has_val else [0.18, -0.18]
    finite = []
    for (_, color, finals), off in zip(series, offsets):
        for i, f in enumerate(finals):
            live = data.positive(f)
            live = live[np.isfinite(live)]
            finite.append(live)
            spread = 0.3 if len(offsets) == 1 else 0.13
            ax.scatter(live, pos[i] + off + rng.uniform(-spread, spread, live.size),
                       s=float(np.clip(300 / max(live.size, 1), 4, 18)), color=color,
                       alpha=float(np.clip(4 / np.sqrt(max(live.size, 1)), 0.2, 0.8)), lw=0,
                       zorder=2)
            med, lo, hi = stats.median_ci(f)
            if np.isfinite(med):
                best_like = len(cells) > 1 and tied[i].tied_with_best and off == offsets[-1]
                ax.errorbar(med, pos[i] + off, xerr=[[med - lo], [max(hi - med, 0)]]
                            if np.isfinite(hi) else None, fmt="D", ms=5,
                            color="k" if not best_like else style.BEST, lw=2, capsize=4,
                            zorder=4)
    labels = []
    for i, c in enumerate(cells):
        n_div = int(np.sum(~np.isfinite(series[0][2][i])))
        labels.append(data.cell_title(run, c) + (f" ({n_div} diverged)" if n_div else ""))
    rows_px = (cv.size[1] - 120) / max(len(cells), 1)
    max_lines = max(1, min(3, int(rows_px // (style.MIN_FONT * cv.dpi / 72 * 1.25))))
    fitted = [cv.fit(t, 0.3 * cv.size[0], style.MIN_FONT + 0.5, max_lines) for t in labels]
    ax.set_yticks([pos[i] for i in range(len(cells))], [t for t, _ in fitted])
    for tick, (_, size) in zip(ax.get_yticklabels(), fitted):
        tick.set_fontsize(size)
    ax.set_ylim(-0.7, len(cells) - 0.3)
    ok = np.concatenate(finite) if finite else np.array([])
    if ok.size and ok.min() > 0 and ok.max() > 10 * ok.min():
        ax.set_xscale("log")
    ax.grid(axis="x", which="major", alpha=0.3)
    ax.set_xlabel(f"final {data.loss_name(run)} (epoch {run.epochs})")
    handles = [Line2D([], [], ls="", marker="o", ms=5, mew=0, color=color,
                      label=f"{name}: one dot per bee") for name, color, _ in series]
    handles.append(Line2D([], [], marker="D", ms=5, lw=2, color="k",
                          label="median and its 95% CI"))
    if len(cells) > 1:
        handles.append(Line2D([], [], marker="D", ms=5, lw=2, color=style.BEST,
                              label="best, or not clearly worse (Mann-Whitney, Holm)"))
    if not ok.size:
        cv.set_title("Final loss per cell: every bee diverged")
    cv.fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    yield "final_loss.png", cv.fig


def activations(run: Run, cfg: dict):
    """Each activation used in the run and its derivative (seed 000's gallery)."""
    curves = np.load(run.path / "activations.npz")
    names = [k for k in curves.files if k != "x" and not k.endswith("_grad")]
    x = curves["x"]
    rows, cols = data.wrap_grid(len(names), scenes.aspect(cfg))
    cv = scenes.Canvas(run, cfg, "Activation functions and their derivatives")
    axs = cv.fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    page = data.Page(rows, cols, {divmod(i, cols): n for i, n in enumerate(names)})
    for (r, c), ax in np.ndenumerate(axs):
        if (r, c) not in page.cells:
            ax.set_axis_off()
            continue
        name = page.cells[(r, c)]
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.plot(x, curves[name], color=style.TRAIN, lw=2)
        ax.plot(x, curves[name + "_grad"], color=style.DERIVATIVE, lw=1.5, ls="--")
        ax.set_title(name)
        scenes.edge_labels(ax, page, r, c, "x", "")
    cv.fig.legend(handles=[Line2D([], [], color=style.TRAIN, lw=2, label="activation f(x)"),
                           Line2D([], [], color=style.DERIVATIVE, lw=1.5, ls="--",
                                  label="derivative f'(x)")],
                  loc="outside lower center", ncols=2)
    yield "activations.png", cv.fig
