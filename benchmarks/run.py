"""swarm's benchmark suite: the engine against the ways research code trains many tiny MLPs.

    python benchmarks/run.py            # full suite (several minutes)
    python benchmarks/run.py --quick    # same structure, fewer bees and epochs (under a minute)

Every workload is built the way `swarm run` builds it (config -> grid.expand -> grid.groups ->
plan.cell_group), then trained by each contender side by side in one process, each timed
after a warm-up (best of N where cheap, the rounds interleaved so background load hits every
contender alike):

    per-bee loop         baselines.per_bee_loop: torch.nn.Sequential + torch.optim, bee by bee
    torch.func           baselines.torch_func_ensemble: stack_module_state + vmap(grad(...))
    engine autograd      loop.train(group, use_autograd=True), uncompiled: the engine's
                         first version (autograd backward), with today's batching
    engine fused, eager  loop.train(group) with train.compile=off (`swarm run`'s default for
                         runs under ~2e10 bee-unit-point-epochs)
    engine fused, compiled  the same with train.compile=on (the default above): each epoch
                         (step, loss, gradient) is one compiled graph; the compile itself
                         happens in the untimed warm-up and is reported apart

Where a contender would take too long it trains the first bees of each cell and its time is
scaled linearly to the whole workload (marked `~` in the table). Before any ratio is reported
the final losses of every contender are checked against the per-bee loop's, bee for bee (see
check_contender); a contender that disagrees is reported as WRONG instead of with a speed-up.

Every process uses one torch thread unless --threads says otherwise (see README.md). W4 (scale)
runs each contender in its own child process, which reports its own peak RSS; E2E times the
`swarm` CLI itself. Results go to benchmarks/results.json, under the key "full" or "quick".
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines  # noqa: E402

from swarmcli import config, grid, plan, results  # noqa: E402
from swarmcli.engine import loop  # noqa: E402
from swarmcli.engine.parts import CellGroup  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SWARM = Path(sys.executable).parent / "swarm"

CONTENDERS = {  # key -> label, in table order
    "per_bee": "per-bee loop",
    "torch_func": "torch.func",
    "autograd": "engine autograd",
    "fused_eager": "engine fused, eager",  # train.native=off train.compile=off
    "fused_compiled": "engine fused, compiled",  # train.native=off train.compile=on
    "native": "engine native (default)",  # the C kernel: what train.native=auto picks here
}
BASELINES = ("per_bee", "torch_func", "autograd")  # each gets a "speed-up vs" column
# Engine contenders: (use_autograd, compile, native); the autograd path is the engine's first
# version (it never compiled). Compile time is not timed (warm-up), and reported apart.
ENGINE = {"autograd": (True, False, False), "fused_eager": (False, False, False),
          "fused_compiled": (False, True, False), "native": (False, False, True)}
TOL64 = 1e-6  # final-loss agreement required of a float64 re-check


# ---------------------------------------------------------------------------------------------
# Workloads


@dataclass
class Workload:
    key: str
    title: str
    overrides: list[str]  # `swarm run` overrides that build it
    repeats: dict[str, int]  # timed runs per contender (best is kept)
    subset: dict[str, int] = field(default_factory=dict)  # contender -> bees per cell it trains
    tol: float = 1e-3  # max abs difference of final losses allowed against the per-bee loop
    child: bool = False  # each contender in its own process, for peak RSS

    def reps(self, key: str) -> int:
        return self.repeats.get(key, self.repeats["fused"])

    def bees(self, key: str) -> int | None:
        """Bees per cell `key` trains (None: all)."""
        return self.subset.get(key)


def workloads(quick: bool) -> list[Workload]:
    """The suite; `quick` keeps every workload's structure with fewer epochs and bees."""
    if quick:
        return [
            Workload("W1", "seed 000 hive: 9 cells, 10 bees, 50 epochs, ypred+loss",
                     ["+sweep=width_activation", "train.epochs=50"],
                     {"per_bee": 1, "torch_func": 2, "autograd": 3, "fused": 3}),
            Workload("W2", "seed 002 swarm: 50 bees, 1x20 ReLU, 100 epochs, ypred+W+b",
                     ["+sweep=weight_distribution", "train.bees=50", "train.epochs=100"],
                     {"per_bee": 1, "torch_func": 2, "autograd": 3, "fused": 3}),
            Workload("W3", "seed 001: 2x10 ReLU, Adam, 10 bees, 300 epochs, ypred+loss",
                     w3_overrides(bees=10, epochs=300),
                     {"per_bee": 1, "torch_func": 1, "autograd": 2, "fused": 2},
                     subset={"per_bee": 2}),
            Workload("W4", "scale: 5,000 bees, 1x20 ReLU, 40 epochs, loss only",
                     w4_overrides(bees=5_000, epochs=40),
                     {"per_bee": 3, "torch_func": 1, "autograd": 1, "fused": 1},
                     subset={"per_bee": 20, "torch_func": 1_000, "autograd": 1_000,
                             "fused_eager": 1_000}, child=True),
        ]
    return [
        Workload("W1", "seed 000 hive: 9 cells, 10 bees, 150 epochs, ypred+loss",
                 ["+sweep=width_activation"],
                 {"per_bee": 3, "torch_func": 5, "autograd": 10, "fused": 10}),
        Workload("W2", "seed 002 swarm: 500 bees, 1x20 ReLU, 400 epochs, ypred+W+b",
                 ["+sweep=weight_distribution"],
                 {"per_bee": 1, "torch_func": 2, "autograd": 3, "fused": 3}),
        Workload("W3", "seed 001: 2x10 ReLU, Adam, 50 bees, 5000 epochs, ypred+loss",
                 w3_overrides(bees=50, epochs=5000),
                 {"per_bee": 1, "torch_func": 1, "autograd": 2, "fused": 3},
                 subset={"per_bee": 5}),
        Workload("W4", "scale: 100,000 bees, 1x20 ReLU, 400 epochs, loss only",
                 w4_overrides(bees=100_000, epochs=400),
                 {"per_bee": 3, "torch_func": 1, "autograd": 1, "fused": 1},
                 subset={"per_bee": 20, "torch_func": 10_000, "autograd": 10_000,
                         "fused_eager": 10_000}, child=True),
    ]


def w3_overrides(bees: int, epochs: int) -> list[str]:
    """Seed 001's 2x10 ReLU + Adam cell on the noisy sine (tiny_nets' second paired cell)."""
    return ["target=noisy_sin", "model.depth=2", "model.width=10", "model.activation=relu",
            "optim=adam", "optim.lr=0.001", "train.seed=1", f"train.bees={bees}",
            f"train.epochs={epochs}", "train.record=[ypred]"]


def w4_overrides(bees: int, epochs: int) -> list[str]:
    """Seed 002's network and data at scale, recording the loss only."""
    return ["+sweep=weight_distribution", f"train.bees={bees}", f"train.epochs={epochs}",
            "train.record=[]"]


def product_batches(overrides: list[str]) -> list[CellGroup]:
    """The engine batches `swarm run OVERRIDES` trains, built the way the runner builds them,
    recording predictions at the training points as every contender does (eval_points=0)."""
    cfg = config.compose(["target.eval_points=0", *overrides])
    _, cells = grid.expand(cfg)
    return [plan.cell_group(g) for g in grid.groups(cells)]


def for_device(batches: list[CellGroup]) -> list[CellGroup]:
    """The suite measures the CPU (train.device=auto would pick a GPU where there is one)."""
    return [dataclasses.replace(b, runtime=dataclasses.replace(b.runtime, device="cpu"))
            for b in batches]


def shrink(batches: list[CellGroup], bees: int = 2, epochs: int = 3) -> list[CellGroup]:
    """A tiny copy of a workload, to warm up a contender's code paths before timing it."""
    return [dataclasses.replace(b, bees=min(b.bees, bees), epochs=epochs,
                                recording=dataclasses.replace(
                                    b.recording, frames=tuple(range(epochs + 1))))
            for b in batches]


# ---------------------------------------------------------------------------------------------
# Contenders


@dataclass
class Finals:
    """Final loss of the bees a contender trained, by engine row, per batch."""

    rows: list[np.ndarray]
    loss: list[np.ndarray]


def contender(key: str, batches: list[CellGroup], bees_per_cell: int | None):
    """A no-argument callable that trains `batches` (the first `bees_per_cell` bees of each cell)
    and returns its Finals."""
    if key in ("per_bee", "torch_func"):
        fn = baselines.per_bee_loop if key == "per_bee" else baselines.torch_func_ensemble

        def run_baseline():
            recs = [fn(b, bees_per_cell) for b in batches]
            return Finals([r.rows for r in recs], [r.loss[:, -1] for r in recs])

        return run_baseline

    use_autograd, compiled, native = ENGINE[key]
    sub = []
    for b in batches:
        if bees_per_cell and bees_per_cell < b.bees:
            b = dataclasses.replace(b, bees=bees_per_cell)
        sub.append(dataclasses.replace(b, runtime=dataclasses.replace(
            b.runtime, compile=compiled, native=native)))

    def run_engine():
        out = Finals([], [])
        for full, b in zip(batches, sub):
            res = loop.train(b, use_autograd=use_autograd)
            out.rows.append(baselines.bee_rows(full, bees_per_cell)[1])
            out.loss.append(res.loss[:, -1])
        return out

    return run_engine


def scale_factor(batches: list[CellGroup], bees_per_cell: int | None) -> float:
    """Bees in the workload / bees a contender trains when it trains `bees_per_cell` per cell."""
    total = sum(b.total_bees for b in batches)
    run = sum(len(baselines.bee_rows(b, bees_per_cell)[1]) for b in batches)
    return total / run


def compare_finals(ref: Finals, got: Finals, tol: float) -> tuple[dict, list[np.ndarray]]:
    """Max abs difference of final losses on the bees both trained (non-finite must match),
    and per batch the rows that differ by `tol` or more."""
    worst, n, finite_mismatch, bad = 0.0, 0, 0, []
    for r_rows, r_loss, g_rows, g_loss in zip(ref.rows, ref.loss, got.rows, got.loss):
        common, ri, gi = np.intersect1d(r_rows, g_rows, return_indices=True)
        a, b = r_loss[ri].astype(np.float64), g_loss[gi].astype(np.float64)
        fa, fb = np.isfinite(a), np.isfinite(b)
        finite_mismatch += int((fa != fb).sum())
        diff = np.where(fa & fb, np.abs(np.where(fa, a, 0) - np.where(fb, b, 0)), 0.0)
        diff[fa != fb] = np.inf
        if (fa & fb).any():
            worst = max(worst, float(diff[fa & fb].max()))
        bad.append(common[diff >= tol])
        n += len(ri)
    return {"bees_compared": n, "max_abs_diff": worst, "finite_mismatch": finite_mismatch}, bad


def check_contender(key: str, batches: list[CellGroup], ref: Finals, got: Finals,
                    tol: float) -> dict:
    """Does `got` agree with the per-bee loop's final losses `ref`?

    In float32, a bee whose trajectory is chaotic (SGD with momentum at the edge of stability)
    can end up far from where a different but equally valid rounding takes it. So a few bees (at
    most 5% of those compared) that miss `tol` are retrained in float64, by the per-bee loop and
    by the contender, and must then agree to TOL64; more than that, or a float64 miss, fails."""
    check, bad = compare_finals(ref, got, tol)
    n_bad = sum(len(r) for r in bad)
    check["float32_outliers"] = n_bad
    check["ok"] = n_bad == 0
    if n_bad and n_bad <= max(1, 0.05 * check["bees_compared"]):
        n = 1 + max(int(r % b.bees) for b, rows in zip(batches, bad) for r in rows)
        b64 = [dataclasses.replace(b, runtime=dataclasses.replace(b.runtime, dtype="float64"))
               for b in batches]
        recheck, _ = compare_finals(contender("per_bee", b64, n)(), contender(key, b64, n)(),
                                    TOL64)
        check["float64_recheck"] = recheck
        check["ok"] = recheck["max_abs_diff"] < TOL64 and recheck["finite_mismatch"] == 0
    return check


def time_side_by_side(calls: dict, repeats: dict[str, int]) -> dict[str, dict]:
    """Best-of-N wall time of each callable, rounds interleaved; keeps the first run's result."""
    out = {k: {"times": [], "result": None} for k in calls}
    for r in range(max(repeats.values())):
        for k, call in calls.items():
            if r >= repeats[k]:
                continue
            t0 = time.perf_counter()
            result = call()
            out[k]["times"].append(time.perf_counter() - t0)
            if out[k]["result"] is None:
                out[k]["result"] = result
    return out


# ---------------------------------------------------------------------------------------------
# Measuring


def warm_up(key: str, batches: list[CellGroup]) -> float:
    """Run a contender on a tiny copy of the workload (lazy init, torch.compile); seconds."""
    t0 = time.perf_counter()
    contender(key, shrink(batches), None)()
    return time.perf_counter() - t0


def measure_in_process(w: Workload, batches: list[CellGroup], log) -> dict[str, dict]:
    keys = list(CONTENDERS)
    calls = {k: contender(k, batches, w.bees(k)) for k in keys}
    warm = {k: warm_up(k, batches) for k in keys}
    log(f"  {w.key}: warm; timing {', '.join(f'{k} x{w.reps(k)}' for k in keys)}")
    timed = time_side_by_side(calls, {k: w.reps(k) for k in keys})
    return {k: {"measured_seconds": min(v["times"]), "times": v["times"], "finals": v["result"],
                "warmup_seconds": warm[k]} for k, v in timed.items()}


def measure_in_children(w: Workload, batches: list[CellGroup], quick: bool, threads: int,
                        log) -> dict[str, dict]:
    """Each contender in a fresh `run.py --child` process, which reports its own peak RSS."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="swarm-bench-") as tmp:
        for k in CONTENDERS:
            npz = Path(tmp) / f"{k}.npz"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", w.key,
                   "--contender", k, "--finals", str(npz), "--threads", str(threads),
                   *(["--quick"] if quick else [])]
            info, rc, err = run_measured(cmd)
            if rc != 0:
                raise RuntimeError(f"{w.key} {k} child failed ({rc}):\n{err}")
            data = np.load(npz)
            n = int(data["batches"])
            finals = Finals([data[f"rows{i}"] for i in range(n)],
                            [data[f"loss{i}"] for i in range(n)])
            out[k] = {"measured_seconds": info["seconds"], "times": info["times"],
                      "finals": finals, "peak_rss_mb": info["self_peak_rss_mb"],
                      "rss_before_train_mb": info["rss_before_mb"],
                      "engine_py_sha256": info["engine_py_sha256"],
                      "warmup_seconds": info["warmup_seconds"]}
            log(f"  {w.key}: {k} {info['seconds']:.2f}s, "
                f"peak RSS {info['self_peak_rss_mb']:.0f} MB")
    return out


def status_mb(pid: int | str, field: str) -> float | None:
    """A memory field of /proc/PID/status (VmHWM: peak RSS, VmRSS: current RSS) in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def descendants(pid: int) -> list[int]:
    """Processes below `pid` (render workers, say), from /proc/*/stat."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                parent[int(d.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def run_measured(cmd: list[str], timeout: float | None = None, env=None, poll: float = 0.05):
    """Run a child, sampling its memory from /proc while it runs.

    Returns (its last stdout line parsed as JSON, or {}; plus "wall", "peak_rss_mb": the child's
    own high-water mark VmHWM, "tree_peak_rss_mb": the largest sum of VmRSS over the child and
    its descendants seen at any sample), exit code, stderr.

    Not getrusage(RUSAGE_CHILDREN) / wait4's ru_maxrss: Linux carries the parent's high-water
    mark into a forked child across exec, so those read at least this process's own peak RSS
    (a child that only runs `print()` reports ~230 MB from a parent that has imported torch)."""
    with tempfile.TemporaryFile() as so, tempfile.TemporaryFile() as se:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, cwd=ROOT, env=env)
        deadline = None if timeout is None else t0 + timeout
        hwm, tree_peak = 0.0, 0.0
        while proc.poll() is None:
            hwm = max(hwm, status_mb(proc.pid, "VmHWM") or 0.0)
            tree = [proc.pid, *descendants(proc.pid)]
            tree_peak = max(tree_peak, sum(status_mb(p, "VmRSS") or 0.0 for p in tree))
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                proc.wait()
                break
            time.sleep(poll)
        wall = time.perf_counter() - t0
        so.seek(0)
        se.seek(0)
        lines = so.read().decode(errors="replace").strip().splitlines()
        err = se.read().decode(errors="replace")
    info = None
    if lines:
        try:
            info = json.loads(lines[-1])
        except json.JSONDecodeError:
            info = None
    if not isinstance(info, dict):
        info = {}
    info.update(wall=wall, peak_rss_mb=hwm, tree_peak_rss_mb=tree_peak)
    return info, proc.returncode, err


def child_main(key: str, contender_key: str, finals_path: str, quick: bool) -> None:
    """One contender of one workload, for measure_in_children."""
    w = next(w for w in workloads(quick) if w.key == key)
    batches = for_device(product_batches(w.overrides))
    warmup = warm_up(contender_key, batches)
    rss_before = status_mb("self", "VmHWM")
    call = contender(contender_key, batches, w.bees(contender_key))
    timed = time_side_by_side({contender_key: call}, {contender_key: w.reps(contender_key)})
    times, finals = timed[contender_key]["times"], timed[contender_key]["result"]
    arrays = {"batches": np.array(len(finals.rows))}
    for i, (r, loss) in enumerate(zip(finals.rows, finals.loss)):
        arrays[f"rows{i}"], arrays[f"loss{i}"] = r, loss
    np.savez(finals_path, **arrays)
    print(json.dumps({"seconds": min(times), "times": times, "rss_before_mb": rss_before,
                      "engine_py_sha256": code_version()["engine_py_sha256"],
                      "warmup_seconds": warmup,
                      "self_peak_rss_mb": status_mb("self", "VmHWM")}))


def run_workload(w: Workload, quick: bool, threads: int, log) -> dict:
    batches = for_device(product_batches(w.overrides))
    log(f"{w.key}: {w.title} ({len(batches)} batch(es), "
        f"{sum(b.total_bees for b in batches)} bees)")
    measured = (measure_in_children(w, batches, quick, threads, log) if w.child
                else measure_in_process(w, batches, log))
    ref = measured["per_bee"]["finals"]
    rows = {}
    for k, m in measured.items():
        sub = w.bees(k)
        scale = scale_factor(batches, sub)
        check = (check_contender(k, batches, ref, m["finals"], w.tol) if k != "per_bee"
                 else {"bees_compared": 0, "max_abs_diff": 0.0, "ok": True})
        rows[k] = {
            "label": CONTENDERS[k], "seconds": m["measured_seconds"] * scale,
            "measured_seconds": m["measured_seconds"], "times": m["times"],
            "bees_per_cell_timed": baselines.bee_rows(batches[0], sub)[0],
            "scale": scale, "extrapolated": scale != 1, "check_vs_per_bee": check,
            "warmup_seconds": m["warmup_seconds"],
            **{f: m[f] for f in ("peak_rss_mb", "rss_before_train_mb", "engine_py_sha256")
               if f in m},
        }
    for r in rows.values():
        r["speedup_vs"] = {b: (rows[b]["seconds"] / r["seconds"]
                               if r["check_vs_per_bee"]["ok"] and rows[b]["check_vs_per_bee"]["ok"]
                               else None) for b in BASELINES}
    return {"key": w.key, "title": w.title, "overrides": w.overrides,
            "bees": sum(b.total_bees for b in batches), "epochs": batches[0].epochs,
            "batches": len(batches), "tolerance": w.tol, "contenders": rows}


# ---------------------------------------------------------------------------------------------
# End to end


def end_to_end(quick: bool, threads: int, log) -> dict:
    """`swarm run +sweep=width_activation`: training only (render.what=[none]) and full."""
    extra = ["train.epochs=50"] if quick else []
    timeout = 120 if quick else 900
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)  # torch's intra-op threads in the swarm process
    out = {"command": ["swarm", "run", "+sweep=width_activation", *extra]}
    with tempfile.TemporaryDirectory(prefix="swarm-e2e-") as tmp:
        for name, more, repeats in [("train_only", ["render.what=[none]"], 1 if quick else 2),
                                    ("full", [], 1)]:
            best = None
            for r in range(repeats):
                run_dir = Path(tmp) / f"{name}{r}"
                cmd = [str(SWARM), "run", "+sweep=width_activation", *extra, *more,
                       "progress=false", f"hydra.run.dir={run_dir}"]
                info, rc, err = run_measured(cmd, timeout=timeout, env=env)
                res = {"wall_seconds": info["wall"], "peak_rss_mb": info["peak_rss_mb"],
                       "tree_peak_rss_mb": info["tree_peak_rss_mb"],
                       "exit_code": rc}
                try:
                    m = results.read_manifest(run_dir)
                    res["train_seconds"] = m.get("train_seconds")
                    res["state"] = m["state"]
                except results.DamagedRun:  # the run failed before (or while) writing it
                    pass
                if rc != 0:
                    tail = [ln for ln in err.strip().splitlines() if ln.strip()][-1:] or ["?"]
                    res["error"] = tail[0][:300]
                log(f"  E2E {name}: {res['wall_seconds']:.2f}s rc={rc} "
                    f"peak RSS {res['peak_rss_mb']:.0f} MB")
                if best is None or (rc == 0 and res["wall_seconds"] < best["wall_seconds"]):
                    best = res
            out[name] = best
    t, f = out["train_only"], out["full"]
    if f["exit_code"] == 0 and t["exit_code"] == 0:
        render = max(0.0, f["wall_seconds"] - t["wall_seconds"])
        out["render_seconds"] = render
        out["train_share"] = (f.get("train_seconds") or 0) / f["wall_seconds"]
        out["render_share"] = render / f["wall_seconds"]
        out["startup_share"] = (t["wall_seconds"] - (t.get("train_seconds") or 0)) \
            / f["wall_seconds"]
    else:
        out["render_note"] = ("rendering unavailable: the full run failed ("
                              + f.get("error", "?") + "); training only reported")
    return out


# ---------------------------------------------------------------------------------------------
# Report


def fmt_ratio(x) -> str:
    return "WRONG" if x is None else f"{x:.1f}x" if x < 100 else f"{x:.0f}x"


def check_note(c: dict) -> str:
    head = "ok" if c["ok"] else "CHECK FAILED"
    if not c["float32_outliers"]:
        return f"{head}: max |dloss| {c['max_abs_diff']:.0e}"
    note = (f"{head}: {c['float32_outliers']}/{c['bees_compared']} bees differ by up to "
            f"{c['max_abs_diff']:.1e} in float32")
    if "float64_recheck" in c:
        note += f", float64 re-run differs by {c['float64_recheck']['max_abs_diff']:.0e}"
    return note


def table(result: dict) -> str:
    head = ["workload", "contender", "seconds", "vs per-bee", "vs torch.func", "vs autograd",
            "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w in result["workloads"]:
        for k, r in w["contenders"].items():
            notes = []
            if r["extrapolated"]:
                notes.append(f"~ timed {r['bees_per_cell_timed']} bees/cell, x{r['scale']:g}")
            if "peak_rss_mb" in r:
                notes.append(f"peak RSS {r['peak_rss_mb']:.0f} MB "
                             f"({r['rss_before_train_mb']:.0f} before training)")
            if r["warmup_seconds"] > 1:
                notes.append(f"warm-up {r['warmup_seconds']:.0f}s untimed")
            if k != "per_bee":
                notes.append(check_note(r["check_vs_per_bee"]))
            secs = ("~" if r["extrapolated"] else "") + f"{r['seconds']:.3g}"
            ratios = [("-" if b == k else fmt_ratio(r["speedup_vs"][b])) for b in BASELINES]
            lines.append("| " + " | ".join([w["key"], r["label"], secs, *ratios,
                                            "; ".join(notes)]) + " |")
    e = result.get("e2e")
    if e:
        for name in ("train_only", "full"):
            r = e[name]
            label = "swarm run, render.what=[none]" if name == "train_only" else "swarm run, full"
            notes = [f"peak RSS {r['peak_rss_mb']:.0f} MB (process tree "
                     f"{r['tree_peak_rss_mb']:.0f} MB)"]
            if r.get("train_seconds") is not None:
                notes.append(f"training {r['train_seconds']:.2f}s")
            if r["exit_code"] != 0:
                notes.append(f"FAILED rc={r['exit_code']}: {r.get('error', '')[:80]}")
            lines.append("| " + " | ".join(["E2E", label, f"{r['wall_seconds']:.3g}", "-", "-",
                                            "-", "; ".join(notes)]) + " |")
    return "\n".join(lines)


def machine_info() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpu": cpu, "cpus": os.cpu_count(), "memory_gib": round(mem, 1)}


def code_version() -> dict:
    """Which engine was measured: git HEAD, whether swarmcli/ has local edits, the engine
    package's hash."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    src = b"".join(p.read_bytes() for p in sorted((ROOT / "swarmcli" / "engine").glob("*.[pch]*"))
                   if p.suffix in (".py", ".c", ".h"))
    return {"git_head": git("rev-parse", "HEAD"),
            "swarmcli_dirty": bool(git("status", "--porcelain", "swarmcli")),
            "engine_py_sha256": hashlib.sha256(src).hexdigest()[:16]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer bees and epochs (under a minute)")
    ap.add_argument("--only", help="comma-separated workloads to run, e.g. W1,W2,E2E")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads in every process (default 1; 0 = torch's default)")
    ap.add_argument("--results", default=str(HERE / "results.json"), help="where to write")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--contender", help=argparse.SUPPRESS)
    ap.add_argument("--finals", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        child_main(args.child, args.contender, args.finals, args.quick)
        return 0

    start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - start:6.1f}s] {msg}", flush=True)

    only = set(args.only.split(",")) if args.only else None
    mode = "quick" if args.quick else "full"
    result = {"mode": mode, "date": datetime.datetime.now().astimezone().isoformat(
              timespec="seconds"), "torch": torch.__version__, "numpy": np.__version__,
              "threads": torch.get_num_threads(), "machine": machine_info(),
              "code": code_version(), "load_avg_start": os.getloadavg(),
              "ratio": "speed-up = baseline seconds / contender seconds", "workloads": []}
    for w in workloads(args.quick):
        if only is None or w.key in only:
            result["workloads"].append(run_workload(w, args.quick, args.threads, log))
    if only is None or "E2E" in only:
        log("E2E: swarm run +sweep=width_activation")
        result["e2e"] = end_to_end(args.quick, args.threads, log)
    result["load_avg_end"] = os.getloadavg()
    hashes = {result["code"]["engine_py_sha256"], code_version()["engine_py_sha256"]} | {
        r["engine_py_sha256"] for w in result["workloads"] for r in w["contenders"].values()
        if "engine_py_sha256" in r}
    result["engine_changed_during_run"] = len(hashes) > 1
    result["suite_seconds"] = time.perf_counter() - start

    print()
    print(f"{mode} suite, torch {torch.__version__}, {result['threads']} threads, "
          f"{result['machine']['cpus']} CPUs ({result['machine']['cpu']}), "
          f"load avg {result['load_avg_start'][0]:.2f} -> {result['load_avg_end'][0]:.2f}")
    print("speed-up = baseline seconds / contender seconds; ~ = timed on the first bees of each "
          "cell and scaled linearly")
    print(table(result))
    e = result.get("e2e")
    if e:
        if "render_note" in e:
            print(f"E2E: {e['render_note']}")
        else:
            print(f"E2E: of the full run's wall time, training (swarm.json train_seconds) "
                  f"{e['train_share']:.0%}, rendering {e['render_share']:.0%} "
                  f"({e['render_seconds']:.2f}s), the rest (start-up: imports, Hydra) "
                  f"{e['startup_share']:.0%}")
    if result["engine_changed_during_run"]:
        print("WARNING: swarmcli/engine/ changed while the suite ran; rerun for clean numbers")
    failed = [f"{w['key']} {r['label']}" for w in result["workloads"]
              for r in w["contenders"].values() if not r["check_vs_per_bee"]["ok"]]
    if failed:
        print(f"CORRECTNESS CHECK FAILED (final loss vs per-bee loop): {', '.join(failed)}")
    result["checks_ok"] = not failed

    path = Path(args.results)
    saved = json.loads(path.read_text()) if path.exists() else {}
    saved[mode] = result
    path.write_text(json.dumps(saved, indent=1) + "\n")
    print(f"results: {path} [{mode}] ({result['suite_seconds']:.0f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
