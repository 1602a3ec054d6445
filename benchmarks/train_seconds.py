"""The run around the engine: `train_seconds` of the default hive (what swarm.json says
`runner.run` took, from the config to the last cell on disk) against the engine's own time for
the same groups (`loop.train`, nothing saved), in the same process, interleaved run by run so the
machine's drift hits both alike. Also the main thread's timeline of one run, phase by phase.

Run: `.venv/bin/python benchmarks/train_seconds.py [--runs 12] [--sweep width_activation]`.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from swarmcli import config, plan, results, runner, stats
from swarmcli.engine import loop


def one_pair(cfg, root: Path) -> tuple[float, float]:
    """(train_seconds of a whole run, the engine's time for its groups), one after the other."""
    run_dir = Path(tempfile.mkdtemp(dir=root)) / "run"
    runner.run(cfg, run_dir, out=io.StringIO())
    seconds = json.loads((run_dir / results.MANIFEST).read_text())["train_seconds"]
    groups = [plan.cell_group(g) for g in runner.prepare(cfg)[2]]
    t0 = time.perf_counter()
    for g in groups:
        loop.train(g)
    return seconds, time.perf_counter() - t0


def timeline(cfg, root: Path) -> list[tuple[str, float, float]]:
    """(phase, start ms, busy ms) on the main thread of one run, in order of first start."""
    spans: dict[str, list[float]] = {}
    phases = [(runner, "prepare"), (loop, "train"), (results.RunWriter, "save_arrays"),
              (results.RunWriter, "save_npz"), (results.RunWriter, "save_cell"),
              (results.RunWriter, "claim_saved"), (results.RunWriter, "save_manifest"),
              (stats, "compare_cells"), (results.RunWriter, "_land")]
    real = {(owner, name): getattr(owner, name) for owner, name in phases}
    t_run = time.perf_counter()

    def timed(fn, name):
        def call(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                span = spans.setdefault(name, [1e3 * (t0 - t_run), 0.0])
                span[1] += 1e3 * (time.perf_counter() - t0)
        return call

    try:
        for (owner, name), fn in real.items():
            setattr(owner, name, timed(fn, name))
        t_run = time.perf_counter()
        runner.run(cfg, Path(tempfile.mkdtemp(dir=root)) / "run", out=io.StringIO())
    finally:
        for (owner, name), fn in real.items():
            setattr(owner, name, fn)
    return sorted(((n, s, b) for n, (s, b) in spans.items()), key=lambda p: p[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--sweep", default="width_activation")
    args = ap.parse_args()
    cfg = config.compose([f"+sweep={args.sweep}"])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one_pair(cfg, root)  # warm-up: imports, the kernel's first call, page cache
        pairs = [one_pair(cfg, root) for _ in range(args.runs)]
        spans = timeline(cfg, root)
    ts, eng = zip(*pairs)
    med_t, med_e = statistics.median(ts), statistics.median(eng)
    print(f"default hive (+sweep={args.sweep}), {args.runs} in-process runs, interleaved:")
    print(f"  train_seconds median {1e3 * med_t:.1f} ms (min {1e3 * min(ts):.1f})")
    print(f"  engine        median {1e3 * med_e:.1f} ms (min {1e3 * min(eng):.1f})")
    print(f"  ratio: {med_t / med_e:.2f}x by medians, {min(ts) / min(eng):.2f}x min to min "
          f"(goal: within 2x)")
    print("one run's main thread (ms since runner.run began):")
    for name, start, busy in spans:
        print(f"  {name:14s} from {start:7.1f}  busy {busy:6.1f}")


if __name__ == "__main__":
    main()
