"""Config handling before training starts: `grid.expand` + `grid.groups` per cell, at 9 (the default
hive), 100 and 1000 cells (lr x width). Measures the function `swarm run` calls, in-process, after
one warm-up expansion (imports excluded). Run: `.venv/bin/python benchmarks/grid_expansion.py`."""

from __future__ import annotations

import time

from swarmcli import config, grid


def main() -> None:
    base = config.compose(["+sweep=width_activation"])
    grid.groups(grid.expand(base)[1])  # warm-up: numpy, formula, targets imports
    print("| cells | expand ms/cell | groups ms/cell | total ms |")
    print("|---|---|---|---|")
    for n in (9, 100, 1000):
        cfg = base.copy()
        if n > 9:
            cfg.sweep.grid = {"optim": {"lr": [0.001 * (i + 1) for i in range(10)]},
                              "model": {"width": list(range(1, n // 10 + 1))}}
        t0 = time.perf_counter()
        _, cells = grid.expand(cfg)
        t1 = time.perf_counter()
        grid.groups(cells)
        t2 = time.perf_counter()
        print(f"| {len(cells)} | {1e3 * (t1 - t0) / n:.2f} | {1e3 * (t2 - t1) / n:.2f} | "
              f"{1e3 * (t2 - t0):.0f} |")


if __name__ == "__main__":
    main()
