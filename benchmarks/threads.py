"""When do more intra-op threads pay off? Epoch time of the engine (fused, eager, CPU) at 1 thread
and at every core, over batch sizes work = bees x width x points x depth.

`train.threads=auto` uses one thread below plan.THREADS_WORK and every usable core from there
on; this script is where that threshold comes from. Each size runs 1 thread and N threads in
turns (--repeat times each, median), so a busy machine slows both alike.

    .venv/bin/python benchmarks/threads.py [--repeat 3] [--epochs 10] [--sizes 100000x10x101x1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from swarmcli import config, grid, plan
from swarmcli.engine import loop
from swarmcli.engine.parts import CellGroup

# (bees, width, points, depth): from one tiny cell to a 100,000-bee swarm
SIZES = [(10, 10, 61, 1), (90, 10, 61, 1), (500, 20, 101, 1), (100, 60, 61, 2),
         (2000, 20, 101, 1), (10000, 10, 101, 1), (5000, 60, 101, 1)]


def batch_for(bees: int, width: int, points: int, depth: int, epochs: int) -> CellGroup:
    cfg = config.compose([f"train.bees={bees}", f"model.width={width}", f"model.depth={depth}",
                          f"target.points={points}", f"train.epochs={epochs}", "train.record=[]",
                          "train.device=cpu", "train.compile=off", "progress=false"])
    _, cells = grid.expand(cfg)
    return plan.cell_group(grid.groups(cells)[0])


def seconds_per_epoch(batch: CellGroup, threads: int) -> float:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    loop.train(batch)
    return (time.perf_counter() - start) / batch.epochs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--sizes", help="BEESxWIDTHxPOINTSxDEPTH,... instead of the built-in list")
    args = ap.parse_args()
    sizes = ([tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
             if args.sizes else SIZES)
    many = len(os.sched_getaffinity(0))
    print(f"torch {torch.__version__}, {many} usable cores, load {os.getloadavg()[0]:.1f}")
    print(f"{'bees':>6} {'width':>5} {'points':>6} {'depth':>5} {'work':>9}  "
          f"{'1 thread ms':>11}  {f'{many} threads ms':>12}  speed-up")
    for bees, width, points, depth in sizes:
        batch = batch_for(bees, width, points, depth, args.epochs)
        seconds_per_epoch(batch, 1)  # warm-up
        times = {1: [], many: []}
        for _ in range(args.repeat):
            for n in times:
                times[n].append(seconds_per_epoch(batch, n))
        one, all_ = (statistics.median(times[n]) * 1e3 for n in (1, many))
        print(f"{bees:>6} {width:>5} {points:>6} {depth:>5} {bees * width * points * depth:>9.2g}"
              f"  {one:>11.3f}  {all_:>12.3f}  {one / all_:>7.2f}x", flush=True)
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
