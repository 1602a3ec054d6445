"""The sweep page: a multirun read through collect/ (its jobs, merged table, heat maps, reruns),
each complete job's own run page written beside it and linked."""

from __future__ import annotations

import itertools
import shlex
from pathlib import Path

import numpy as np

from swarmcli.collect.plots import MAX_BOX_VALUES, MAX_HEATMAPS, heatmap_table
from swarmcli.collect.table import collect, distinct
from swarmcli.errors import SwarmError
from swarmcli.report.numbers import sig
from swarmcli.report.page import PAGE, _write, render, write_run_page


def _groups(result, swept: list[str]) -> list[dict]:
    """The collect table per (job, cell): swept values, bees, median final loss, diverged."""
    groups: dict[tuple, list[dict]] = {}
    for r in result.rows:
        groups.setdefault((r["job"], r["cell"]), []).append(r)
    out = []
    for (job, cell), rows in groups.items():
        final = np.array([r["final_loss"] if r["final_loss"] is not None and not r["diverged"]
                          else np.inf for r in rows], dtype=np.float64)
        out.append({"job": job, "cell": cell, "vals": [_plain(rows[0][k]) for k in swept],
                    "bees": len(rows), "median": float(np.median(final)),
                    "diverged": int(sum(bool(r["diverged"]) for r in rows)),
                    "dir": rows[0]["job_dir"]})
    return out


def _plain(v):
    return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)


def sweep_payload(multirun_dir, pages: dict[int, str]) -> dict:
    result = collect(multirun_dir)
    swept = list(result.swept)
    small = [k for k in swept if len(distinct(r[k] for r in result.rows)) <= MAX_BOX_VALUES]
    heat = []
    for x, y in list(itertools.combinations(small, 2))[:MAX_HEATMAPS]:
        xs, ys, med = heatmap_table(result, x, y)
        heat.append({"x": x, "y": y, "xs": [_plain(v) for v in xs],
                     "ys": [_plain(v) for v in ys], "median": [sig(row) for row in med]})
    root = result.multirun_dir
    jobs = [{"num": j.num, "state": j.state, "reason": j.reason,
             "dir": j.dir.relative_to(root).as_posix() if j.dir else None,
             "overrides": " ".join(j.overrides or []),
             "rerun": shlex.join(j.rerun) if j.rerun and not j.ok else "",
             "page": pages.get(j.num)} for j in result.jobs]
    return {"kind": "sweep", "name": root.name, "path": str(root), "swept": swept,
            "jobs": jobs, "groups": _groups(result, swept), "heatmaps": heat,
            "failed": [j for j in jobs if j["state"] != "complete"],
            "rerun_all": shlex.join(["swarm", "collect", str(root), "--rerun-failed"])
            if result.rerun_commands else "", "notes": result.notes}


def write_sweep_page(multirun_dir) -> list[Path]:
    """Each complete job's RUN_DIR/report.html, then MULTIRUN_DIR/report.html linking them."""
    root = Path(multirun_dir).resolve()
    written, pages = [], {}
    for j in collect(root).jobs:
        if j.ok and j.dir is not None:
            try:
                written.append(write_run_page(j.dir))
            except SwarmError:  # a damaged job: the sweep page still lists it, unlinked
                continue
            pages[j.num] = f"{j.dir.relative_to(root).as_posix()}/{PAGE}"
    html = render("sweep.html.j2", sweep_payload(root, pages), ["draw.js", "sweep.js"])
    return [_write(root / PAGE, html), *written]
