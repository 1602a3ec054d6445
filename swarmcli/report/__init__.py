"""`swarm report`: one self-contained HTML page per run (RUN_DIR/report.html) or per multirun
(MULTIRUN_DIR/report.html), opened offline in any browser and sent on as one file.

`data.py` reads a run into plain numbers (numpy and results/ only, never torch), `sweep.py` a
multirun through collect/, `page.py` fills the jinja2 templates in `templates/` (the canvas
drawer and the page scripts inlined).
"""

from __future__ import annotations

from pathlib import Path

from swarmcli.errors import SwarmError
from swarmcli.report.page import PAGE, write_run_page

__all__ = ["PAGE", "write_report", "write_run_page"]


def is_multirun(path: Path) -> bool:
    return (Path(path) / "multirun.yaml").is_file()


def write_report(path) -> list[Path]:
    """The page for a run dir, or for a multirun dir the sweep page and each job's page."""
    path = Path(path)
    if not path.is_dir():
        raise SwarmError(f"swarm report: {path} is not a directory; give a run dir of `swarm "
                         f"run` or a multirun dir of `swarm run -m`")
    if is_multirun(path):
        from swarmcli.report.sweep import write_sweep_page

        return write_sweep_page(path)
    return [write_run_page(path)]
