"""The one look of every figure swarm draws: run stills, animation frames and `swarm collect`'s
plots all enter `matplotlib.rc_context(RC)` and get their Figure from `new_figure`.

Sizes are in points at the figure's dpi: at the default 960 x 720 px and dpi 100, 8 pt is 11 px,
the smallest text that stays legible in a video frame scaled down in a browser.
"""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MIN_FONT = 8.0  # points; tick labels and notes never go below this

RC = {
    "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9,
    "xtick.labelsize": MIN_FONT, "ytick.labelsize": MIN_FONT, "legend.fontsize": MIN_FONT,
    "legend.title_fontsize": MIN_FONT, "figure.titlesize": 12, "figure.labelsize": 9,
    "axes.spines.top": False, "axes.spines.right": False, "axes.titlepad": 4.0,
    "legend.frameon": False, "legend.handlelength": 1.6, "legend.borderaxespad": 0.3,
    "figure.constrained_layout.h_pad": 0.04, "figure.constrained_layout.w_pad": 0.04,
    "savefig.facecolor": "white", "figure.facecolor": "white",
    "grid.alpha": 0.3, "grid.linewidth": 0.6,
}

# roles that keep their colour in every figure, so a reader learns them once
TRAIN = "#1f4e79"  # training points, training loss, bees of a single colour
HELD_OUT = "#c8553d"  # held-out (validation) points and loss
TARGET = "0.62"  # the noiseless target curve
BEST = "#2a9d8f"  # cells that cannot be told apart from the best one
KINKS = "#d08c2e"  # the kink histogram
DERIVATIVE = "0.3"
DIVERGED = "firebrick"


def new_figure(width: int, height: int, dpi: int) -> Figure:
    """A figure of exactly width x height pixels (rounded down to even, as H.264 needs), laid
    out by constrained layout; never saved with bbox_inches='tight', which changes the size."""
    fig = Figure(figsize=(even(width) / dpi, even(height) / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def even(n: int) -> int:
    return max(2, int(n) // 2 * 2)
