"""One tidy table from every complete job of a multirun: a row per bee, written as CSV/Parquet.

Each row joins what the job was told (its override values) to what the run itself swept (its
summary.csv, read through results), so one table can be grouped by any key. A run's cell
statistics rank its own cells only, so they are left out: across jobs they would mislead.
"""

from __future__ import annotations

import csv
import io
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from swarmcli import results
from swarmcli.collect.jobs import Job, find_jobs, multirun_config
from swarmcli.collect.rerun import rerun_argv
from swarmcli.errors import SwarmError
from swarmcli.stats import CELL_COLUMNS


@dataclass
class CollectResult:
    """What `collect` found: `rows` is the tidy per-bee table (one dict per bee, keys `columns`)."""

    multirun_dir: Path
    jobs: list[Job]
    rows: list[dict]
    columns: list[str]
    swept: list[str]  # keys taking more than one value in the table (job overrides, run axes)
    planned: bool  # True when the job list was recomputed from the sweep itself
    sweeper: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Job]:
        """Every job that is not complete: failed, interrupted, incomplete or missing."""
        return [j for j in self.jobs if not j.ok]

    @property
    def rerun_commands(self) -> list[str]:
        """One shell line per job that needs a rerun (jobs whose overrides are known)."""
        return [shlex.join(j.rerun) for j in self.failed if j.rerun]

    @property
    def rerun_command(self) -> str:
        """The shell text that reruns exactly the jobs that need it ("" if none)."""
        return "\n".join(self.rerun_commands)

    def to_frame(self):
        """The table as a pandas DataFrame (pandas imported only here)."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def __repr__(self):
        states = {}
        for j in self.jobs:
            states[j.state] = states.get(j.state, 0) + 1
        return (f"CollectResult({str(self.multirun_dir)!r}, jobs={len(self.jobs)} {states}, "
                f"rows={len(self.rows)}, swept={self.swept})")


def override_values(overrides: list[str]) -> dict:
    """key -> value of each task override (group choices too: `optim=adam` -> optim: adam)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = {}
    for o in OverridesParser.create().parse_overrides(overrides):
        if o.is_delete():
            continue
        key = o.key_or_group if o.package is None else f"{o.key_or_group}@{o.package}"
        v = o.value()
        out[key] = v if isinstance(v, (int, float, str, bool)) or v is None \
            else o.get_value_element_as_str()
    return out


def distinct(values) -> list:
    """Distinct values in first-seen order; numbers sorted ascending."""
    seen = []
    for v in values:
        if v is not None and v not in seen:
            seen.append(v)
    if seen and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
        seen.sort()
    return seen


def collect(multirun_dir) -> CollectResult:
    """Read a multirun dir: jobs and their state, the merged per-bee table, rerun commands."""
    root = Path(multirun_dir)
    if not root.exists():
        raise SwarmError(f"{str(multirun_dir)!r} does not exist; give a multirun dir "
                         "(multirun/DATE/TIME, or the hydra.sweep.dir of swarm run -m)")
    root = root.resolve()
    mr, source = multirun_config(root, multirun_dir)
    jobs, planned, notes = find_jobs(root, mr, plan=source == "multirun.yaml")
    if source != "multirun.yaml":
        notes.insert(0, f"no multirun.yaml (optuna's sweeper writes none): the sweep's settings "
                        f"are read from {source}")
    for j in jobs:
        if not j.ok:
            j.rerun = rerun_argv(root, mr, j)

    rows, keys, axes, extra = [], [], [], []
    for j in jobs:
        if not j.ok:
            continue
        values = override_values(j.overrides or [])
        summary, run_axes, run_extra = results.read_summary(j.dir)
        run_extra = [c for c in run_extra if c not in CELL_COLUMNS]
        for names, new in ((keys, values), (axes, run_axes), (extra, run_extra)):
            names += [k for k in new if k not in names]
        rel = j.dir.relative_to(root).as_posix()
        for r in summary:
            r = {k: v for k, v in r.items() if k not in CELL_COLUMNS}
            rows.append({"job": j.num, **values, **r, "job_dir": rel})
    fixed = ["cell", *axes, "bee", *results.SUMMARY_FIELDS[2:], *extra, "job_dir"]
    columns = ["job", *[k for k in keys if k not in fixed], *fixed]
    rows = [{c: r.get(c) for c in columns} for r in rows]
    swept = [k for k in [*keys, *axes] if k not in ("job", "cell", "bee", "job_dir")
             and len(distinct(r[k] for r in rows)) > 1]
    swept = list(dict.fromkeys(swept))
    sweeper = str((mr["hydra"].get("sweeper") or {}).get("_target_", "")).rsplit(".", 1)[-1]
    return CollectResult(root, jobs, rows, columns, swept, planned, sweeper, notes)


def _csv_value(v):
    if v is None:
        return ""
    return repr(v) if isinstance(v, float) else v


def write_table(result: CollectResult, out_dir: Path) -> list[Path]:
    """summary.csv (and summary.parquet when pyarrow is installed) and jobs.csv into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(result.columns)
    for r in result.rows:
        w.writerow([_csv_value(r[c]) for c in result.columns])
    written = [out_dir / "summary.csv"]
    results.atomic_write_bytes(written[0], buf.getvalue().encode())

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["job", "state", "dir", "reason", "overrides", "rerun"])
    for j in result.jobs:
        w.writerow([j.num, j.state, j.dir.relative_to(result.multirun_dir).as_posix()
                    if j.dir else "", j.reason, " ".join(j.overrides or []),
                    shlex.join(j.rerun) if j.rerun and not j.ok else ""])
    written.append(out_dir / "jobs.csv")
    results.atomic_write_bytes(written[-1], buf.getvalue().encode())

    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return written
    cols = {}
    for c in result.columns:
        vals = [r[c] for r in result.rows]
        kinds = {type(v) for v in vals if v is not None}
        if kinds == {int, float}:
            vals = [None if v is None else float(v) for v in vals]
        elif len(kinds) > 1:
            vals = [None if v is None else str(v) for v in vals]
        cols[c] = vals
    table = pa.table(cols) if result.rows else pa.table({c: pa.array([], pa.string())
                                                        for c in result.columns})
    tmp = out_dir / "summary.parquet.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, out_dir / "summary.parquet")
    written.append(out_dir / "summary.parquet")
    return written
