"""The jobs of a multirun: which were planned, which ran where, and how each one ended.

A job that never started leaves no directory, so the planned list comes from the sweep itself
(sweep.py) and is matched to the job dirs on disk by their saved overrides; each found job's
state comes from its swarm.json (read through results) and, when it did not complete, the last
error in its swarm.log, so the report can say why without the user opening logs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from swarmcli import results
from swarmcli.collect.sweep import expand_basic_sweep
from swarmcli.errors import SwarmError

OUT = "collect"  # sub-directory of the multirun dir that collect writes
RERUNS = "reruns"  # sub-directory holding each rerun's own multirun.yaml and launcher logs


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


def load_yaml(path: Path):
    with open(path) as f:
        return yaml.safe_load(f)


def multirun_config(root: Path, given) -> tuple[dict, str]:
    """The multirun's config (its `hydra` node above all) and the file it came from: multirun.yaml,
    or else the first job's .hydra/hydra.yaml (a sweeper that writes no multirun.yaml)."""
    path = root / "multirun.yaml"
    if not path.exists():
        dirs = job_dirs(root)
        if not dirs:
            hint = (" (it is a single run: use swarm render or swarm rerun on it)"
                    if (root / results.MANIFEST).exists() else "")
            raise SwarmError(f"{str(given)!r} is not a multirun dir: no multirun.yaml and no job "
                             f"dirs{hint}; give the hydra.sweep.dir of a swarm run -m")
        path = dirs[0] / ".hydra" / "hydra.yaml"
    try:
        mr = load_yaml(path)
        mr["hydra"]["overrides"]["task"]
        mr["hydra"]["runtime"]
    except Exception as e:
        raise SwarmError(f"cannot read {path}: {type(e).__name__}: {e}") from None
    return mr, path.relative_to(root).as_posix()


def planned_jobs(mr: dict) -> list[list[str]] | None:
    """Each job's task overrides, in Hydra's job-number order, as the basic sweeper expands them;
    None for another sweeper (optuna, ...), whose jobs cannot be known in advance."""
    sweeper = mr["hydra"].get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    task = list(mr["hydra"]["overrides"].get("task") or [])
    return expand_basic_sweep(mr, [*params, *task])


def job_dirs(root: Path) -> list[Path]:
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
        return int(load_yaml(d / ".hydra" / "hydra.yaml")["hydra"]["job"]["num"])
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
    if not (d / results.MANIFEST).exists():
        reason = failure_reason(d / "swarm.log")
        return "failed", reason or "no swarm.json: the job failed before training (see swarm.log)"
    try:
        state = results.read_manifest(d)["state"]
    except results.DamagedRun as e:
        return "failed", str(e)
    if state == "complete":
        if (d / results.SUMMARY).exists():
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
        job_id = str(load_yaml(d / ".hydra" / "hydra.yaml")["hydra"]["job"]["id"])
    except Exception:
        return ""
    return job_id if (d.parent / ".submitit" / job_id).exists() else ""


def find_jobs(root: Path, mr: dict, plan: bool = True) -> tuple[list[Job], bool, list[str]]:
    """Planned jobs matched to the job dirs on disk (by their saved overrides); jobs found but not
    planned are kept too. plan=False: take the jobs found on disk."""
    notes = []
    plan = planned_jobs(mr) if plan else None
    dirs = job_dirs(root)
    overrides_of = {d: [str(o) for o in (load_yaml(d / ".hydra" / "overrides.yaml") or [])]
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
