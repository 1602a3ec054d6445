"""How far each engine contender in results.json is from the FLOP floor of its workload.

    python benchmarks/floor.py            # the "full" entry of benchmarks/results.json
    python benchmarks/floor.py --quick
    python benchmarks/floor.py --measure  # W4's shape: kernel, sgemm interleaved (--bees N)

The floor is the workload's arithmetic (multiply-adds of every bee's forward and backward pass
at its own width, the loss, the optimizer step) divided by the fastest float32 arithmetic one
core of this machine reaches: the best of a few single-threaded 2048 x 2048 `torch.mm` (BLAS
sgemm, near the core's FMA peak). Nothing trains faster than that, so `seconds / floor` says how
much room is left; it is a property of the code *and* of this machine's core, measured in one run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402

OPTIMIZER_FLOPS = {"sgd": 6, "adam": 12, "adamw": 13}  # per parameter and step, roughly


def bee_epoch_flops(depth: int, width: int, in_dim: int, points: int, optimizer: str) -> float:
    """Floating-point operations of one bee's epoch (a multiply-add counts 2)."""
    w, d, p = width, in_dim, points
    forward = 2 * d * w + (depth - 1) * 2 * w * w + 2 * w + depth * w  # + activations
    backward = 2 * w + 2 * w + 2 * d * w + depth * 2 * w + (depth - 1) * 4 * w * w
    params = d * w + w + (depth - 1) * (w * w + w) + w + 1
    return p * (forward + backward + 3) + OPTIMIZER_FLOPS.get(optimizer, 12) * params


def workload_flops(overrides: list[str]) -> float:
    total = 0.0
    for g in run.product_batches(overrides):
        net = g.network
        for width in net.widths:
            total += g.bees * (g.epochs + 1) * bee_epoch_flops(
                net.depth, width, net.in_dim, len(g.data.x), g.optimizer.name)
    return total


def peak_flops(n: int = 2048, repeats: int = 5) -> float:
    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def measure_w4(bees: int = 10_000, rounds: int = 3) -> None:
    """The kernel on W4's shape (1x20 ReLU, 101 points, 400 epochs, loss only) and one core's
    sgemm peak, alternately: this machine's speed drifts between minutes, and a ratio of two
    numbers taken minutes apart carries that drift."""
    from swarmcli.engine import loop, native

    torch.set_num_threads(1)
    group = run.product_batches(run.w4_overrides(bees=bees, epochs=400))[0]
    flops = group.total_bees * (group.epochs + 1) * bee_epoch_flops(
        1, group.network.width, 1, len(group.data.x), group.optimizer.name)
    best_kernel, best_peak = float("inf"), 0.0
    for _ in range(rounds):
        best_peak = max(best_peak, peak_flops(repeats=3))
        res = loop.empty_result(group, loop.Layout.of(group))
        t0 = time.perf_counter()
        native.train(group, res)
        best_kernel = min(best_kernel, time.perf_counter() - t0)
    floor = flops / best_peak
    per = best_kernel / (group.total_bees * (group.epochs + 1)) * 1e6
    print(f"W4 shape, {bees} bees x 400 epochs: kernel {best_kernel:.2f} s ({per:.2f} us per "
          f"bee-epoch), floor {floor:.2f} s at {best_peak / 1e9:.1f} GFLOP/s: "
          f"{best_kernel / floor:.1f}x the floor")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--measure", action="store_true")
    ap.add_argument("--bees", type=int, default=10_000, help="bees for --measure")
    ap.add_argument("--results", default=str(HERE / "results.json"))
    args = ap.parse_args(argv)
    if args.measure:
        measure_w4(args.bees)
        return 0
    entry = json.loads(Path(args.results).read_text())["quick" if args.quick else "full"]
    peak = peak_flops()
    print(f"one core's float32 peak (sgemm): {peak / 1e9:.1f} GFLOP/s")
    print("| workload | GFLOP | floor (s) | contender | seconds | x floor |")
    print("|---|---|---|---|---|---|")
    for w in run.workloads(args.quick):
        res = next((r for r in entry["workloads"] if r["key"] == w.key), None)
        if res is None:
            continue
        flops = workload_flops(w.overrides)
        floor = flops / peak
        for k in ("fused_eager", "fused_compiled", "native"):
            c = res["contenders"].get(k)
            if c:
                print(f"| {w.key} | {flops / 1e9:.1f} | {floor:.3g} | {c['label']} | "
                      f"{c['seconds']:.3g} | {c['seconds'] / floor:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
