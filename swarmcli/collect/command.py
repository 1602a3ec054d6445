"""`swarm collect MULTIRUN_DIR`: the command line, and the report it prints.

The report is what a user reads first after a sweep: how many jobs ended how, a median per job,
and for each job that needs it, why and the exact command that reruns only it. `--rerun-failed`
runs those commands, then collects again.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys

from swarmcli.collect.jobs import OUT
from swarmcli.collect.plots import draw_all, label
from swarmcli.collect.rerun import rerun_failed
from swarmcli.collect.table import CollectResult, collect, override_values, write_table
from swarmcli.errors import SwarmError
from swarmcli.objective import objective

USAGE = "swarm collect MULTIRUN_DIR [--rerun-failed] [--no-render] [--heatmap KEY1,KEY2 ...]"


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
            vals = [label(first[j.num][k]) if j.num in first else "" for k in job_keys]
            n_div = sum(1 for x in f if x is None or not math.isfinite(x))
            med = objective(f) if f else math.nan
            body.append([j.num, *vals, j.state, f"{med:.4g}", f"{n_div}/{len(f)}"])
        else:
            vals = [""] * len(job_keys)
            if j.overrides:
                ov = override_values(j.overrides)
                vals = [label(ov.get(k, "")) for k in job_keys]
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
            codes = rerun_failed(result.multirun_dir, result.failed)
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
    plots = draw_all(result, out_dir, pairs) if not args.no_render and result.rows else []
    print(f"\nwrote {len(result.rows)} rows x {len(result.columns)} columns and "
          f"{len(plots)} plot(s):")
    for p in [*tables, *plots]:
        print(f"  {p}")
