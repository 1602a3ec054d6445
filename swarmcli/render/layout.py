"""Text that fits: labels of any length (paired axes, long optimizer settings) are wrapped or
shrunk to the room they have before drawing, and `problems(fig)` lists every text artist that
overlaps another, covers a foreign panel, or leaves the canvas (the figure tests use it).
"""

from __future__ import annotations

import functools
import itertools

from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.font_manager import FontProperties

from swarmcli.render.style import MIN_FONT


@functools.lru_cache(maxsize=8)
def _renderer(dpi: float) -> RendererAgg:
    return RendererAgg(1, 1, dpi)


def text_width(text: str, size: float, dpi: float, weight: str = "normal",
               family: str | None = None) -> float:
    """Pixel width of the widest line of `text` at `size` points."""
    r, fp = _renderer(dpi), FontProperties(size=size, weight=weight, family=family)
    return max(r.get_text_width_height_descent(line or " ", fp, ismath=False)[0]
               for line in text.split("\n"))


def wrap(text: str, max_px: float, size: float, dpi: float, weight: str = "normal") -> str:
    """Greedy line breaks after ', ' and spaces (between settings), so each line is at most
    max_px wide; only where a word alone is too wide, also after '=' and '_'
    ('init=xavier_uniform' -> 'init=', 'xavier_uniform'). A piece wider still keeps a line."""
    out = _wrap(text, max_px, size, dpi, weight, " ")
    if text_width(out, size, dpi, weight) > max_px:
        out = _wrap(text, max_px, size, dpi, weight, " =_")
    return out


def _wrap(text: str, max_px: float, size: float, dpi: float, weight: str, breaks: str) -> str:
    out = []
    for para in text.split("\n"):
        line = ""
        for piece in _pieces(para, breaks):
            trial = line + piece
            if line and text_width(trial.rstrip(), size, dpi, weight) > max_px:
                out.append(line.rstrip())
                line = piece.lstrip()
            else:
                line = trial
        out.append(line.rstrip())
    return "\n".join(out)


def _pieces(text: str, breaks: str) -> list[str]:
    """'a=1, b=2 c' -> ['a=1, ', 'b=2 ', 'c']: break points, each piece keeping its separator."""
    pieces, word = [], ""
    for ch in text:
        word += ch
        if ch in breaks:
            pieces.append(word)
            word = ""
    if word:
        pieces.append(word)
    return pieces


def fit(text: str, max_px: float, size: float, dpi: float, max_lines: int = 2,
        weight: str = "normal") -> tuple[str, float]:
    """(wrapped text, font size): wrapped to max_px in at most max_lines lines, shrinking the
    font towards MIN_FONT if it must; past that, the last line is cut short with an ellipsis."""
    s = size
    while True:
        wrapped = wrap(text, max_px, s, dpi, weight)
        lines = wrapped.split("\n")
        fits = len(lines) <= max_lines and text_width(wrapped, s, dpi, weight) <= max_px
        if fits or s <= MIN_FONT:
            break
        s = max(MIN_FONT, s - 0.5)
    if fits:
        return wrapped, s
    lines = [_cut(line, max_px, s, dpi, weight) for line in lines[:max_lines]]
    if len(wrapped.split("\n")) > max_lines:
        lines[-1] = _cut(lines[-1].rstrip("…") + "…", max_px, s, dpi, weight, force=True)
    return "\n".join(lines), s


def _cut(line: str, max_px: float, size: float, dpi: float, weight: str,
         force: bool = False) -> str:
    if not force and text_width(line, size, dpi, weight) <= max_px:
        return line
    body = line.rstrip("…")
    while body and text_width(body + "…", size, dpi, weight) > max_px:
        body = body[:-1]
    return body.rstrip(" ,") + "…"


# -- checking a finished figure -------------------------------------------------------------

def texts(fig) -> list[tuple[str, object, object]]:
    """(description, Text, owning Axes or None) of every visible, non-empty text the figure
    draws: suptitle and figure texts, figure legends, and per axes its titles, axis labels,
    offset texts, drawn tick labels, legend texts and annotations."""
    out, seen = [], set()

    def add(kind, t, ax=None):
        if t is not None and id(t) not in seen and t.get_visible() and t.get_text().strip():
            seen.add(id(t))
            out.append((f"{kind} {t.get_text()!r}", t, ax))

    for name in ("_suptitle", "_supxlabel", "_supylabel"):
        add(name.strip("_"), getattr(fig, name, None))
    for t in fig.texts:
        add("figure text", t)
    for leg in fig.legends:
        for t in [leg.get_title(), *leg.get_texts()]:
            add("figure legend", t)
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison and not ax.texts:
            continue
        for t in (ax.title, ax._left_title, ax._right_title):
            add("title", t, ax)
        for axis in (ax.xaxis, ax.yaxis):
            if not ax.axison or not axis.get_visible():
                continue
            add("axis label", axis.label, ax)
            add("offset text", axis.offsetText, ax)
            for tick in axis._update_ticks():  # only the ticks that will be drawn
                for lab in (tick.label1, tick.label2):
                    add("tick label", lab, ax)
        leg = ax.get_legend()
        if leg is not None:
            for t in [leg.get_title(), *leg.get_texts()]:
                add("legend", t, ax)
        for t in ax.texts:
            add("text", t, ax)
    return out


def problems(fig, tolerance: float = 0.5) -> list[str]:
    """Every text that leaves the canvas, overlaps another text, or lies on a panel it does not
    belong to (figure-level texts: on any panel). Empty when the figure reads cleanly."""
    fig.draw_without_rendering()  # lays the figure out (and places ticks) without pixels
    r = fig.canvas.get_renderer()
    found = texts(fig)
    boxes = [t.get_window_extent(r) for _, t, _ in found]
    canvas = fig.bbox
    out = []
    for (what, _, _), b in zip(found, boxes):
        if (b.x0 < canvas.x0 - tolerance or b.y0 < canvas.y0 - tolerance
                or b.x1 > canvas.x1 + tolerance or b.y1 > canvas.y1 + tolerance):
            out.append(f"{what} leaves the canvas")
    for (i, (wa, _, _)), (j, (wb, _, _)) in itertools.combinations(enumerate(found), 2):
        if _overlap(boxes[i], boxes[j], tolerance):
            out.append(f"{wa} overlaps {wb}")
    panels = [(ax, ax.get_window_extent(r)) for ax in fig.axes
              if ax.get_visible() and ax.axison]
    for (what, _, owner), b in zip(found, boxes):
        own = owner.get_window_extent(r) if owner is not None else None
        for ax, pb in panels:
            if ax is owner or (own is not None and _same(own, pb)):
                continue  # its own panel (or a twin on the same spot)
            if _overlap(b, pb, tolerance):
                out.append(f"{what} lies on another panel")
                break
    return out


def _overlap(a, b, tol: float) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > tol) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tol)


def _same(a, b) -> bool:
    return abs(a.x0 - b.x0) < 1 and abs(a.y0 - b.y0) < 1 and abs(a.x1 - b.x1) < 1 and abs(
        a.y1 - b.y1) < 1
