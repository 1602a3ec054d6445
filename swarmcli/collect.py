"""`swarm collect MULTIRUN_DIR`: one view of everything a Hydra multirun produced.

A multirun (`swarm run -m ...`, on any Hydra launcher: basic, joblib, submitit_local,
submitit_slurm) writes `MULTIRUN_DIR/multirun.yaml` and one run dir per job. `collect`:

- recomputes the planned job list with Hydra's own override parser and `BasicSweeper`
  (the sweeper params and the command-line overrides saved in multirun.yaml), so jobs that never
  started are listed as missing, not silently forgotten;
- sorts every job into complete / failed / interrupted / incomplete / missing, from its
  `swarm.json` (a complete run says `"state": "complete"`) and the last error in its `swarm.log`;
- merges every complete job's per-bee `summary.csv` into one tidy table: job, every overridden
  value, cell, the run's own sweep axes, bee, final/best loss, divergence;
- prints, for the jobs that need it, the exact command that reruns only them, with their saved
  overrides, into the same multirun dir (`--rerun-failed` runs it);
- renders, with matplotlib alone, the final-loss distribution per value of each swept key and a
  heat map of the median final loss for pairs of keys, into `MULTIRUN_DIR/collect/`.

`objective` (from swarmcli.objective) is the number a `swarm run` job returns to a Hydra
sweeper.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from swarmcli.errors import USER_FULL_ERROR, SwarmError
from swarmcli.objective import objective
from swarmcli.stats import CELL_COLUMNS

OUT = "collect"  # sub-directory of the multirun dir that collect writes
RERUNS = "reruns"  # sub-directory holding each rerun's own multirun.yaml and launcher logs
SUMMARY_FIELDS = ("cell", "bee", "final_loss", "best_loss", "best_epoch", "diverged",
                  "diverged_epoch")
MAX_BOX_VALUES = 12  # a key with more distinct values is drawn as a scatter, not boxes
MAX_HEATMAPS = 15

# --------------------------------------------------------------------------------------------
# Jobs: planned, found, and their state
# --------------------------------------------------------------------------------------------


@dataclass
class Job:
    """One job of a multirun. `num` is Hydra's job number (its position in the sweep)."""

    num: int
    overrides: list[str] | None  # the task overrides it ran (or was planned) with; None: unknown
    dir: Path | None  # its run dir, None if it never started
    state: str  # complete | failed | interrupted | incomplete | missing
    reason: str = ""  # why it is not complete (last error of its swarm.log, ...)
    rerun: list[str] | None = None  # argv of `swarm run -m ...` that reruns just this job

    @property
    def ok(self) -> bool:
        return self.state == "complete"

    def __repr__(self):
        where = self.dir.name if self.dir else "-"
        return f"Job({self.num}, {self.state}, dir={where!r})"


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


def _load_yaml(path: Path):
    with open(path) as f:
        return yaml.safe_load(f)


def _parser(mr: dict):
    """Hydra's override parser, with a config loader built from the multirun's own search path
    (needed only for `glob(...)` sweeps over config groups)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    loader = None
    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra.core.plugins import Plugins

        Plugins.instance()  # registers the config sources (pkg://, file://, structured://)
        from hydra._internal.config_search_path_impl import ConfigSearchPathImpl

        search = ConfigSearchPathImpl()
        cwd = mr["hydra"]["runtime"].get("cwd") or "."
        for s in mr["hydra"]["runtime"]["config_sources"]:
            path = s["path"]
            if s["schema"] == "file" and not os.path.isabs(path):
                path = os.path.join(cwd, path)
            search.append(s["provider"], f"{s['schema']}://{path}")
        loader = ConfigLoaderImpl(config_search_path=search)
    except Exception:  # an unusual search path: plain sweeps still parse without a loader
        loader = None
    return OverridesParser.create(config_loader=loader)


def planned_jobs(mr: dict) -> list[list[str]] | None:
    """Each job's task overrides, in Hydra's job-number order, as the basic sweeper expands them;
    None for another sweeper (optuna, ...), whose jobs cannot be known in advance."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    sweeper = mr["hydra"].get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    task = list(mr["hydra"]["overrides"].get("task") or [])
    overrides = _parser(mr).parse_overrides([*params, *task])
    batches = BasicSweeper.split_arguments(overrides, None)
    return [list(job) for batch in batches for job in batch]


def _job_dirs(root: Path) -> list[Path]:
    """Every directory under `root` holding a `.hydra/overrides.yaml` (a job), not descending into
    job dirs, collect's own output or launcher logs."""
    found = []
    skip = {OUT, RERUNS, ".submitit", "cells", ".hydra"}
    for here, dirs, _files in os.walk(root):
        p = Path(here)
        if p != root and (p / ".hydra" / "overrides.yaml").exists():
            found.append(p)
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if d not in skip)
    return found


def _job_num(d: Path) -> int | None:
    if d.name.isdigit():
        return int(d.name)
    try:
        return int(_load_yaml(d / ".hydra" / "hydra.yaml")["hydra"]["job"]["num"])
    except Exception:
        return None


_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)|Killed)\b.*")


def failure_reason(log: Path) -> str:
    """The last error a job's log shows: the final line of its last traceback, or its last
    ERROR record."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        s = line.strip()
        if _ERROR_LINE.match(s):
            return s[:300]
        if "][ERROR]" in s:
            return s.split(" - ", 1)[-1][:300]
    return ""


def job_state(d: Path) -> tuple[str, str]:
    """(state, reason) of one job dir."""
    manifest = d / "swarm.json"
    if not manifest.exists():
        reason = failure_reason(d / "swarm.log")
        return "failed", reason or "no swarm.json: the job failed before training (see swarm.log)"
    try:
        state = json.loads(manifest.read_text())["state"]
    except (OSError, ValueError, KeyError):
        return "failed", "unreadable swarm.json"
    if state == "complete":
        if (d / "summary.csv").exists():
            return "complete", ""
        return "failed", "complete but no summary.csv"
    reason = failure_reason(d / "swarm.log")
    if state == "failed":  # an error stopped it (a full disk, ...); swarm.log says which
        return "failed", reason or "failed (see swarm.log)"
    if state == "interrupted":
        return "interrupted", reason or "interrupted (see swarm.log)"
    hint = ""
    job_id = _submitit_id(d)
    if job_id:
        hint = f"; see .submitit/{job_id}/ logs"
    return "incomplete", (reason or "swarm.json says running: still running, or killed "
                          f"(time limit, out of memory){hint}")


def _submitit_id(d: Path) -> str:
    try:
        job_id = str(_load_yaml(d / ".hydra" / "hydra.yaml")["hydra"]["job"]["id"])
    except Exception:
        return ""
    return job_id if (d.parent / ".submitit" / job_id).exists() else ""


def find_jobs(root: Path, mr: dict, plan: bool = True) -> tuple[list[Job], bool, list[str]]:
    """Planned jobs matched to the job dirs on disk (by their saved overrides); jobs found but not
    planned are kept too. plan=False: take the jobs found on disk."""
    notes = []
    plan = planned_jobs(mr) if plan else None
    dirs = _job_dirs(root)
    overrides_of = {d: [str(o) for o in (_load_yaml(d / ".hydra" / "overrides.yaml") or [])]
                    for d in dirs}
    jobs: list[Job] = []
    used: set[Path] = set()
    if plan is not None:
        by_overrides: dict[tuple, list[Path]] = {}
        for d in dirs:
            by_overrides.setdefault(tuple(overrides_of[d]), []).append(d)
        for num, ov in enumerate(plan):
            cands = [d for d in by_overrides.get(tuple(ov), []) if d not in used]
            # the dir named after the job number first, then any other with the same overrides
            cands.sort(key=lambda d: (d.name != str(num), _job_num(d) != num, str(d)))
            d = cands[0] if cands else None
            if d is not None:
                used.add(d)
                state, reason = job_state(d)
            else:
                state, reason = "missing", "no job dir: never started, or still queued"
            jobs.append(Job(num, list(ov), d, state, reason))
    else:
        n_trials = (mr["hydra"].get("sweeper") or {}).get("n_trials")
        notes.append("the sweeper is not Hydra's basic sweeper: jobs are those found on disk"
                     + (f" (and n_trials={n_trials})" if isinstance(n_trials, int) else ""))
    extra = [d for d in dirs if d not in used]
    taken = {j.num for j in jobs}
    next_num = max(taken, default=-1) + 1
    for d in sorted(extra, key=lambda d: (_job_num(d) is None, _job_num(d) or 0, str(d))):
        num = _job_num(d)
        if num is None or num in taken:
            num = next_num
        taken.add(num)
        next_num = max(next_num, num + 1)
        state, reason = job_state(d)
        jobs.append(Job(num, overrides_of[d], d, state, reason))
    if plan is not None and extra:
        notes.append(f"{len(extra)} job dir(s) are not in the planned sweep; collected anyway: "
                     + ", ".join(str(d.relative_to(root)) for d in extra))
    if plan is None:
        n_trials = (mr["hydra"].get("sweeper") or {}).get("n_trials")
        upto = max([*taken, (n_trials - 1) if isinstance(n_trials, int) else -1], default=-1)
        for num in range(upto + 1):
            if num not in taken:
                jobs.append(Job(num, None, None, "missing", "no job dir; overrides unknown"))
    jobs.sort(key=lambda j: j.num)
    return jobs, plan is not None, notes


# --------------------------------------------------------------------------------------------
# Rerun commands
# --------------------------------------------------------------------------------------------

_SWEEP_ONLY = ("hydra.sweep.dir", "hydra.sweep.subdir", "hydra.mode", "hydra/sweeper",
               "hydra.sweeper")


def _hydra_overrides(mr: dict) -> list[str]:
    """The multirun's own hydra overrides (launcher and its settings, logging, ...), without those
    that place or drive the sweep; a non-basic sweeper is replaced by the basic one."""
    keep = []
    for o in mr["hydra"]["overrides"].get("hydra") or []:
        key = re.split(r"[=@]", o.lstrip("+~"), maxsplit=1)[0]
        if not any(key == k or key.startswith((k + ".", k + "/")) for k in _SWEEP_ONLY):
            keep.append(o)
    sweeper = str((mr["hydra"].get("sweeper") or {}).get("_target_", ""))
    if not sweeper.endswith("BasicSweeper"):
        keep.append("hydra/sweeper=basic")
    return keep


def _config_args(mr: dict) -> list[str]:
    """--config-path / --config-dir / --config-name the multirun was started with."""
    args = []
    rt = mr["hydra"]["runtime"]
    cwd = rt.get("cwd") or "."
    for s in rt.get("config_sources") or []:
        path = s["path"]
        if s["schema"] == "file" and not os.path.isabs(path):
            path = os.path.join(cwd, path)
        if s["provider"] == "command-line":
            args += ["--config-dir", path if s["schema"] == "file" else f"{s['schema']}://{path}"]
        elif s["provider"] == "main" and not (s["schema"] == "pkg"
                                               and s["path"] == "swarmcli.configs"):
            args += ["--config-path", path if s["schema"] == "file" else f"{s['schema']}://{path}"]
    name = mr["hydra"]["job"].get("config_name")
    if name and name != "config":
        args += ["--config-name", name]
    return args


def rerun_argv(root: Path, mr: dict, job: Job) -> list[str] | None:
    """`swarm run -m` that reruns `job` alone into its old dir (or MULTIRUN_DIR/NUM if it never
    started). The rerun's own multirun.yaml and launcher logs go to MULTIRUN_DIR/reruns/job-NUM,
    so the original multirun.yaml (the plan) is never overwritten; its job dir is reached as
    hydra.sweep.subdir=../../DIR."""
    if job.overrides is None:
        return None
    target = job.dir.relative_to(root).as_posix() if job.dir else str(job.num)
    return ["swarm", "run", "-m", *_config_args(mr), *_hydra_overrides(mr),
            f"hydra.sweep.dir={root / RERUNS / f'job-{job.num}'}",
            f"hydra.sweep.subdir=../../{target}", *job.overrides]


# --------------------------------------------------------------------------------------------
# The tidy table
# --------------------------------------------------------------------------------------------


def _auto(s: str):
    """A CSV cell back to int / float / bool where it is one (labels like '0.01' or '10')."""
    if s in ("True", "False"):
        return s == "True"
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


def _override_values(overrides: list[str]) -> dict:
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


def read_summary(job_dir: Path) -> tuple[list[dict], list[str], list[str]]:
    """A run's summary.csv as typed rows, the run's own sweep axes (named in its swarm.json) and
    any further per-bee measures (final_val_loss, stopped_epoch, ...)."""
    try:
        axes = [a["name"] for a in json.loads((job_dir / "swarm.json").read_text())["axes"]]
    except (OSError, ValueError, KeyError, TypeError):
        axes = None
    with open(job_dir / "summary.csv", newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        if axes is None:  # an old manifest: the columns before "bee" are the cell's axes
            axes = header[1:header.index("bee")] if "bee" in header else []
        axes = [a for a in axes if a in header]
        # a run's cell statistics rank its own cells only: across jobs they would mislead
        extra = [c for c in header if c not in axes and c not in SUMMARY_FIELDS
                 and c not in CELL_COLUMNS]
        rows = []
        for r in reader:
            row = {"cell": int(r["cell"])}
            row.update({a: _auto(r[a]) for a in axes})
            row.update(bee=int(r["bee"]), final_loss=float(r["final_loss"]),
                       best_loss=float(r["best_loss"]), best_epoch=int(r["best_epoch"]),
                       diverged=r["diverged"] == "True", diverged_epoch=int(r["diverged_epoch"]))
            row.update({c: _auto(r[c]) for c in extra})
            rows.append(row)
    return rows, axes, extra


def _distinct(values) -> list:
    """Distinct values in first-seen order; numbers sorted ascending."""
    seen = []
    for v in values:
        if v is not None and v not in seen:
            seen.append(v)
    if seen and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
        seen.sort()
    return seen


def _multirun_config(root: Path, given) -> tuple[dict, str]:
    """The multirun's config (its `hydra` node above all) and the file it came from: multirun.yaml,
    or else the first job's .hydra/hydra.yaml (a sweeper that writes no multirun.yaml)."""
    path = root / "multirun.yaml"
    if not path.exists():
        dirs = _job_dirs(root)
        if not dirs:
            hint = (" (it is a single run: use swarm render or swarm rerun on it)"
                    if (root / "swarm.json").exists() else "")
            raise SwarmError(f"{str(given)!r} is not a multirun dir: no multirun.yaml and no job "
                             f"dirs{hint}; give the hydra.sweep.dir of a swarm run -m")
        path = dirs[0] / ".hydra" / "hydra.yaml"
    try:
        mr = _load_yaml(path)
        mr["hydra"]["overrides"]["task"]
        mr["hydra"]["runtime"]
    except Exception as e:
        raise SwarmError(f"cannot read {path}: {type(e).__name__}: {e}") from None
    return mr, path.relative_to(root).as_posix()


def collect(multirun_dir) -> CollectResult:
    """Read a multirun dir: jobs and their state, the merged per-bee table, rerun commands."""
    root = Path(multirun_dir)
    if not root.exists():
        raise SwarmError(f"{str(multirun_dir)!r} does not exist; give a multirun dir "
                         "(multirun/DATE/TIME, or the hydra.sweep.dir of swarm run -m)")
    root = root.resolve()
    mr, source = _multirun_config(root, multirun_dir)
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
        values = _override_values(j.overrides or [])
        summary, run_axes, run_extra = read_summary(j.dir)
        for names, new in ((keys, values), (axes, run_axes), (extra, run_extra)):
            names += [k for k in new if k not in names]
        rel = j.dir.relative_to(root).as_posix()
        for r in summary:
            rows.append({"job": j.num, **values, **r, "job_dir": rel})
    fixed = ["cell", *axes, "bee", *SUMMARY_FIELDS[2:], *extra, "job_dir"]
    columns = ["job", *[k for k in keys if k not in fixed], *fixed]
    rows = [{c: r.get(c) for c in columns} for r in rows]
    swept = [k for k in [*keys, *axes] if k not in ("job", "cell", "bee", "job_dir")
             and len(_distinct(r[k] for r in rows)) > 1]
    swept = list(dict.fromkeys(swept))
    sweeper = str((mr["hydra"].get("sweeper") or {}).get("_target_", "")).rsplit(".", 1)[-1]
    return CollectResult(root, jobs, rows, columns, swept, planned, sweeper, notes)


def _csv_value(v):
    if v is None:
        return ""
    return repr(v) if isinstance(v, float) else v


def write_table(result: CollectResult, out_dir: Path) -> list[Path]:
    """summary.csv (and summary.parquet when pyarrow is installed) and jobs.csv into out_dir."""
    from swarmcli.results import atomic_write_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(result.columns)
    for r in result.rows:
        w.writerow([_csv_value(r[c]) for c in result.columns])
    written = [out_dir / "summary.csv"]
    atomic_write_bytes(written[0], buf.getvalue().encode())

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["job", "state", "dir", "reason", "overrides", "rerun"])
    for j in result.jobs:
        w.writerow([j.num, j.state, j.dir.relative_to(result.multirun_dir).as_posix()
                    if j.dir else "", j.reason, " ".join(j.overrides or []),
                    shlex.join(j.rerun) if j.rerun and not j.ok else ""])
    written.append(out_dir / "jobs.csv")
    atomic_write_bytes(written[-1], buf.getvalue().encode())

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


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _finite_or_inf(x) -> float:
    return x if x is not None and math.isfinite(x) else math.inf


def heatmap_table(result: CollectResult, x: str, y: str):
    """(x values, y values, median final loss [len(y), len(x)]) over every bee with that pair of
    values, whatever the other keys; a diverged bee counts as +inf, an empty pair is NaN."""
    xs = _distinct(r[x] for r in result.rows)
    ys = _distinct(r[y] for r in result.rows)
    groups: dict[tuple, list[float]] = {}
    for r in result.rows:
        groups.setdefault((r[x], r[y]), []).append(_finite_or_inf(r["final_loss"]))
    med = np.full((len(ys), len(xs)), np.nan)
    for (vx, vy), f in groups.items():
        if vx in xs and vy in ys:
            med[ys.index(vy), xs.index(vx)] = np.median(np.asarray(f))
    return xs, ys, med


def _label(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _file_key(k: str) -> str:
    return re.sub(r"[^\w.-]+", "_", k)


def style():
    """The render package's shared style, imported only when collect draws (matplotlib is
    slow to import, and `--no-render` never needs it)."""
    from swarmcli.render import style as shared

    return shared


def plot_distributions(result: CollectResult, path: Path) -> Path | None:
    """One panel per swept key: the final-loss distribution of every bee, per value of the key
    (boxes and points; diverged bees counted above each box)."""
    if not result.swept or not result.rows:
        return None
    import matplotlib

    with matplotlib.rc_context(style().RC):  # the look of every swarm figure
        return _plot_distributions(result, path)


def _plot_distributions(result: CollectResult, path: Path) -> Path:
    keys = result.swept
    ncol = min(3, len(keys))
    nrow = math.ceil(len(keys) / ncol)
    fig = style().new_figure(520 * ncol, 400 * nrow, 100)
    finite_all = [r["final_loss"] for r in result.rows
                  if r["final_loss"] is not None and math.isfinite(r["final_loss"])]
    log = bool(finite_all) and min(finite_all) > 0 and max(finite_all) > 10 * min(finite_all)
    rng = np.random.default_rng(0)
    for i, key in enumerate(keys):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        values = _distinct(r[key] for r in result.rows)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        per = {v: [] for v in values}
        div = {v: 0 for v in values}
        for r in result.rows:
            v, f = r[key], r["final_loss"]
            if v is None:
                continue
            if f is not None and math.isfinite(f):
                per[v].append(f)
            else:
                div[v] += 1
        if numeric and len(values) > MAX_BOX_VALUES:  # e.g. an optuna search: scatter
            for v in values:
                ax.scatter([v] * len(per[v]), per[v], s=8, alpha=0.5, color="C0")
                if per[v]:
                    ax.scatter([v], [np.median(per[v])], marker="_", s=120, color="C3")
            gone = [v for v in values if div[v]]
            if gone:  # diverged bees: a red x just under the top edge, at their value
                ax.scatter(gone, [0.97] * len(gone), marker="x", s=25, color="C3",
                           transform=ax.get_xaxis_transform(),
                           label=f"{sum(div.values())} diverged")
                ax.legend(loc="upper left")
            lo, hi = min(values), max(values)
            if lo > 0 and hi / lo > 20:
                ax.set_xscale("log")
                ax.set_xlim(lo / (hi / lo) ** 0.04, hi * (hi / lo) ** 0.04)
            else:
                ax.set_xlim(lo - 0.04 * (hi - lo), hi + 0.04 * (hi - lo))
            ax.set_xlabel(key)
        else:
            pos = np.arange(len(values))
            data = [per[v] if per[v] else [np.nan] for v in values]
            ax.boxplot(data, positions=pos, widths=0.6, showfliers=False,
                       medianprops={"color": "C3"})
            for p, v in zip(pos, values):
                if per[v]:
                    jit = rng.uniform(-0.18, 0.18, len(per[v]))
                    ax.scatter(p + jit, per[v], s=6, alpha=0.35, color="C0", zorder=3)
            ax.set_xticks(pos, [_label(v) for v in values],
                          rotation=30 if len(values) > 5 else 0)
            ax.set_xlabel(key)
            for p, v in zip(pos, values):
                if div[v]:
                    ax.annotate(f"{div[v]} diverged", (p, 1.0), xycoords=("data", "axes fraction"),
                                ha="center", va="bottom", color="C3")
        if log:
            ax.set_yscale("log")
        ax.set_ylabel("final loss" if i % ncol == 0 else "")
        ax.grid(alpha=0.3, axis="y")
    n_jobs = len({r["job"] for r in result.rows})
    fig.suptitle(f"final loss per value of each swept key ({len(result.rows)} bees, "
                 f"{n_jobs} jobs)")
    fig.savefig(path)
    return path


def plot_heatmap(result: CollectResult, x: str, y: str, path: Path) -> Path:
    """Median final loss for each pair of values of keys x and y (log colour scale)."""
    import matplotlib

    with matplotlib.rc_context(style().RC):  # the look of every swarm figure
        return _plot_heatmap(result, x, y, path)


def _plot_heatmap(result: CollectResult, x: str, y: str, path: Path) -> Path:
    from matplotlib.colors import LogNorm, Normalize

    xs, ys, med = heatmap_table(result, x, y)
    shown = np.where(np.isfinite(med), med, np.nan)
    ok = shown[np.isfinite(shown)]
    if ok.size and ok.min() > 0 and ok.max() > 10 * ok.min():
        norm = LogNorm(ok.min(), ok.max())
    else:
        norm = Normalize(*(ok.min(), ok.max()) if ok.size else (0, 1))
    fig = style().new_figure(int(100 * max(4.5, 1.0 * len(xs) + 2.5)),
                           int(100 * max(3.5, 0.6 * len(ys) + 2.0)), 100)
    ax = fig.add_subplot()
    ax.set_facecolor("0.85")
    im = ax.imshow(shown, norm=norm, cmap="viridis_r", aspect="auto")
    fig.colorbar(im, ax=ax, label="median final loss")
    ax.set_xticks(range(len(xs)), [_label(v) for v in xs])
    ax.set_yticks(range(len(ys)), [_label(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    for (i, j), m in np.ndenumerate(med):
        text = "-" if np.isnan(m) else ("diverged" if np.isinf(m) else f"{m:.3g}")
        dark = np.isfinite(m) and norm(m) > 0.6
        ax.text(j, i, text, ha="center", va="center",
                color="white" if dark else "black")
    ax.set_title(f"median final loss by {y} x {x}\n(over all bees and other settings)")
    fig.savefig(path)
    return path


def render(result: CollectResult, out_dir: Path, pairs: list[tuple[str, str]] | None = None,
           ) -> list[Path]:
    """The comparison plots into out_dir; pairs default to every pair of swept keys with at most
    MAX_BOX_VALUES values each (at most MAX_HEATMAPS of them)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in [*out_dir.glob("heatmap_*.png"), out_dir / "final_loss_by_key.png"]:
        old.unlink(missing_ok=True)
    written = []
    p = plot_distributions(result, out_dir / "final_loss_by_key.png")
    if p:
        written.append(p)
    if pairs is None:
        small = [k for k in result.swept
                 if len(_distinct(r[k] for r in result.rows)) <= MAX_BOX_VALUES]
        pairs = list(itertools.combinations(small, 2))[:MAX_HEATMAPS]
    for x, y in pairs:
        for k in (x, y):
            if k not in result.columns:
                raise SwarmError(f"--heatmap key {k!r} is not a column; swept keys: "
                                 f"{', '.join(result.swept) or 'none'}")
        name = f"heatmap_{_file_key(y)}_vs_{_file_key(x)}.png"
        written.append(plot_heatmap(result, x, y, out_dir / name))
    return written


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def _table(head: list[str], body: list[list], out) -> None:
    widths = [max(len(str(r[i])) for r in [head, *body]) for i in range(len(head))]
    for r in [head, *body]:
        print("  " + "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip(), file=out)


def report(result: CollectResult, out=None, command: str = "swarm collect") -> None:
    """Jobs and their states, a per-job median, and the rerun command."""
    out = out or sys.stdout
    states: dict[str, int] = {}
    for j in result.jobs:
        states[j.state] = states.get(j.state, 0) + 1
    how = "planned by the sweep" if result.planned else f"found ({result.sweeper})"
    print(f"multirun {result.multirun_dir}: {len(result.jobs)} jobs {how}; "
          + ", ".join(f"{n} {s}" for s, n in sorted(states.items())), file=out)
    for note in result.notes:
        print(f"note: {note}", file=out)
    job_keys = [k for k in result.swept if k in result.columns[:result.columns.index("cell")]]
    by_job: dict[int, list[float]] = {}
    for r in result.rows:
        by_job.setdefault(r["job"], []).append(r["final_loss"])
    first = {}
    for r in result.rows:
        first.setdefault(r["job"], r)
    body = []
    for j in result.jobs:
        if j.ok:
            f = by_job.get(j.num, [])
            vals = [_label(first[j.num][k]) if j.num in first else "" for k in job_keys]
            n_div = sum(1 for x in f if x is None or not math.isfinite(x))
            med = objective(f) if f else math.nan
            body.append([j.num, *vals, j.state, f"{med:.4g}", f"{n_div}/{len(f)}"])
        else:
            vals = [""] * len(job_keys)
            if j.overrides:
                ov = _override_values(j.overrides)
                vals = [_label(ov.get(k, "")) for k in job_keys]
            body.append([j.num, *vals, j.state, "", ""])
    if body:
        _table(["job", *job_keys, "state", "median final", "diverged"], body, out)
    bad = result.failed
    if not bad:
        return
    print(f"\n{len(bad)} job(s) need a rerun:", file=out)
    for j in bad:
        where = j.dir.relative_to(result.multirun_dir).as_posix() if j.dir else "-"
        print(f"  job {j.num} ({j.state}, dir {where}): {j.reason}", file=out)
    if result.rerun_commands:
        print("rerun only these jobs, into the same multirun dir, with:", file=out)
        print(f"  {command} {shlex.quote(str(result.multirun_dir))} --rerun-failed", file=out)
        print("or one by one:", file=out)
        for line in result.rerun_commands:
            print(f"  {line}", file=out)
    unknown = [j.num for j in bad if not j.rerun]
    if unknown:
        print(f"cannot rerun job(s) {unknown}: their overrides are unknown", file=out)


def _swarm_prefix() -> list[str]:
    exe = Path(sys.executable).parent / "swarm"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from swarmcli.cli import main; sys.argv[0] = "
            "'swarm'; main()"]


def rerun_failed(result: CollectResult, out=None) -> list[int]:
    """Run the rerun command of every job that needs one; returns their exit statuses. Jobs for
    a SLURM launcher are submitted at once (the cluster queues them); local ones run one by one."""
    out = out or sys.stdout
    mr, _ = _multirun_config(result.multirun_dir, result.multirun_dir)
    launcher = str((mr["hydra"].get("launcher") or {}).get("_target_", ""))
    cwd = mr["hydra"]["runtime"].get("cwd")
    cwd = cwd if cwd and os.path.isdir(cwd) else None
    # `swarm` sets HYDRA_FULL_ERROR for itself; hand the child the user's own setting
    env = {k: v for k, v in os.environ.items()
           if k not in ("HYDRA_FULL_ERROR", USER_FULL_ERROR)}
    if os.environ.get(USER_FULL_ERROR) == "1":
        env["HYDRA_FULL_ERROR"] = "1"
    jobs = [j for j in result.failed if j.rerun]
    for j in jobs:
        print(f"rerunning job {j.num}: {shlex.join(j.rerun)}", file=out, flush=True)
    argvs = [[*_swarm_prefix(), *j.rerun[1:]] for j in jobs]
    if "Slurm" in launcher:
        procs = [subprocess.Popen(a, cwd=cwd, env=env) for a in argvs]
        return [p.wait() for p in procs]
    return [subprocess.run(a, cwd=cwd, env=env).returncode for a in argvs]


USAGE = "swarm collect MULTIRUN_DIR [--rerun-failed] [--no-render] [--heatmap KEY1,KEY2 ...]"


def main(argv: list[str]) -> None:
    """`swarm collect MULTIRUN_DIR [--rerun-failed] [--no-render] [--heatmap X,Y]`."""
    ap = argparse.ArgumentParser(
        prog="swarm collect", usage=USAGE,
        description="Merge every job of a multirun into one table (MULTIRUN_DIR/collect/), list "
                    "missing, failed or incomplete jobs and the command that reruns only them, "
                    "and plot the final loss across jobs.")
    ap.add_argument("multirun_dir", metavar="MULTIRUN_DIR",
                    help="the hydra.sweep.dir of a `swarm run -m` (multirun/DATE/TIME)")
    ap.add_argument("--rerun-failed", action="store_true",
                    help="rerun the missing, failed and incomplete jobs with their saved "
                         "overrides into the same multirun dir, then collect again")
    ap.add_argument("--no-render", action="store_true", help="write the tables only, no plots")
    ap.add_argument("--heatmap", action="append", default=None, metavar="KEY1,KEY2",
                    help="draw this pair of keys (repeatable); default: every pair of swept keys")
    args = ap.parse_args(argv)
    pairs = None
    if args.heatmap:
        pairs = []
        for h in args.heatmap:
            parts = h.split(",")
            if len(parts) != 2 or not all(parts):
                raise SwarmError(f"--heatmap {h!r} must be two keys, KEY1,KEY2")
            pairs.append((parts[0], parts[1]))

    result = collect(args.multirun_dir)
    if args.rerun_failed:
        if not result.failed:
            print("nothing to rerun: every job is complete")
        elif not result.rerun_commands:
            raise SwarmError("no job can be rerun: their overrides are unknown")
        else:
            codes = rerun_failed(result)
            result = collect(args.multirun_dir)
            if any(codes) or result.failed:
                report(result)
                _save(result, args, pairs)
                still = ", ".join(f"{j.num} ({j.state})" for j in result.failed)
                raise SwarmError(f"rerun done, but {len(result.failed)} job(s) are still not "
                                 f"complete: {still or 'see above'}")
    report(result)
    _save(result, args, pairs)


def _save(result: CollectResult, args, pairs) -> None:
    out_dir = result.multirun_dir / OUT
    tables = write_table(result, out_dir)
    plots = render(result, out_dir, pairs) if not args.no_render and result.rows else []
    print(f"\nwrote {len(result.rows)} rows x {len(result.columns)} columns and "
          f"{len(plots)} plot(s):")
    for p in [*tables, *plots]:
        print(f"  {p}")


if __name__ == "__main__":  # python -m swarmcli.collect ... (the same as swarm collect ...)
    from swarmcli import cli

    cli.main(["collect", *sys.argv[1:]])
