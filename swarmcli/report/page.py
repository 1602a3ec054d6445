"""Plain data -> one self-contained HTML file, through jinja2 templates shipped in the package.

Why a small hand-written canvas drawer (report.js, ~14 KB) and not a plotting library's bundle:
the page must open offline and stay under ~5 MB for the default width_activation run, and the
data alone takes ~2.7 MB there. plotly.js, the usual inlinable choice, is ~4.6 MB minified on
its own (the `plotly` wheel's plotly.min.js) and parses for ~0.5 s before drawing anything; the
drawer here draws lines, bands, bars and text on a canvas, which is all these figures need, and
its output is checked against the saved arrays in headless Chromium (tests/test_report.py).
Scripts, styles and data are inlined; only figures already rendered are linked, from the
`figures/` folder beside the page.
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
    html = render("run.html.j2", run_payload(run_dir), ["draw.js", "run.js", "explorer.js"])
    return _write(run_dir / PAGE, html)


def _write(path: Path, html: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
