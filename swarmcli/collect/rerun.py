"""Rerunning only the jobs of a multirun that need it, into the same multirun dir.

Each job's saved overrides, the multirun's own launcher settings and config path are enough to
rebuild the exact `swarm run -m` that reruns it alone; the rerun writes into the old job dir, and
its own multirun.yaml goes elsewhere, so the original plan stays the record of the sweep.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from swarmcli.collect.jobs import RERUNS, Job, multirun_config
from swarmcli.errors import USER_FULL_ERROR

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


def _swarm_prefix() -> list[str]:
    exe = Path(sys.executable).parent / "swarm"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from swarmcli.cli import main; sys.argv[0] = "
            "'swarm'; main()"]


def rerun_failed(root: Path, jobs: list[Job], out=None) -> list[int]:
    """Run the rerun command of every job in `jobs` that has one; returns their exit statuses.
    Jobs for a SLURM launcher are submitted at once (the cluster queues them); local ones run
    one by one."""
    out = out or sys.stdout
    mr, _ = multirun_config(root, root)
    launcher = str((mr["hydra"].get("launcher") or {}).get("_target_", ""))
    cwd = mr["hydra"]["runtime"].get("cwd")
    cwd = cwd if cwd and os.path.isdir(cwd) else None
    # `swarm` sets HYDRA_FULL_ERROR for itself; hand the child the user's own setting
    env = {k: v for k, v in os.environ.items()
           if k not in ("HYDRA_FULL_ERROR", USER_FULL_ERROR)}
    if os.environ.get(USER_FULL_ERROR) == "1":
        env["HYDRA_FULL_ERROR"] = "1"
    jobs = [j for j in jobs if j.rerun]
    for j in jobs:
        print(f"rerunning job {j.num}: {shlex.join(j.rerun)}", file=out, flush=True)
    argvs = [[*_swarm_prefix(), *j.rerun[1:]] for j in jobs]
    if "Slurm" in launcher:
        procs = [subprocess.Popen(a, cwd=cwd, env=env) for a in argvs]
        return [p.wait() for p in procs]
    return [subprocess.run(a, cwd=cwd, env=env).returncode for a in argvs]
