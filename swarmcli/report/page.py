"""Plain data -> one self-contained HTML file, through jinja2 templates shipped in the package.

Why a small hand-written canvas drawer (draw.js, 8 KB; with the page scripts and style 27 KB)
and not a plotting library's bundle, measured here (headless Chromium 156, 2 busy cores, three
loads each in two sessions, navigation start to everything drawn):
- plotly.js, the usual inlinable choice (the `plotly` 7.1.0 wheel's plotly.min.js), is 4.82 MB
  on its own, and a page holding only it and one 3-point line took 4.1-7.2 s to draw;
- the width_activation report with this drawer, 2.82 MB of which ~2.7 MB is data, took 0.6-1.3 s
  (weight_distribution, 2.85 MB: 0.4-1.0 s).
The bundle alone would nearly fill the ~5 MB budget and multiply the load time; lines, bands,
bars, dots and text on a canvas are all these figures need, and what the drawer draws is
checked against the saved arrays in headless Chromium (tests/test_report.py).
Scripts, styles and data are inlined; only figures already rendered are linked, from the
`figures/` folder beside the page. A Content-Security-Policy forbids any other source.
"""

from __future__ import annotations

import json
import math
from importlib.resources import files
from pathlib import Path

import jinja2

PAGE = "report.html"


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(files("swarmcli.report") / "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)


def _asset(name: str) -> str:
    return (files("swarmcli.report") / "templates" / name).read_text()


def finite(data):
    """NaN and inf -> None (JSON has neither; the page draws None as a gap)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def script_json(data) -> str:
    """JSON safe inside <script type="application/json">: no '</' can close the tag early."""
    return json.dumps(finite(data), separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def render(template: str, data: dict, scripts: list[str]) -> str:
    """The page's HTML: `template` filled from `data`, the data itself inlined as JSON."""
    return _env().get_template(template).render(
        d=data, data_json=script_json(data), css=_asset("report.css"),
        scripts=[_asset(s) for s in scripts])


def write_run_page(run_dir) -> Path:
    """RUN_DIR/report.html for one run."""
    from swarmcli.report.data import run_payload

    run_dir = Path(run_dir)
    html = render("run.html.j2", run_payload(run_dir),
                  ["draw.js", "run.js", "tasks.js", "explorer.js"])
    return _write(run_dir / PAGE, html)


def _write(path: Path, html: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
