"""How long `swarm` takes to answer when it trains nothing, against `python -c "import hydra"`.

Each command runs as a fresh process, process start to exit, median of --repeat runs (default
5), one after another. The commands that do not train should stay within ~2x of importing Hydra:
a user waits for them at the prompt, and tab completion runs one on every Tab.

    .venv/bin/python benchmarks/startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWARM = str(Path(sys.executable).with_name("swarm"))


def commands() -> list[tuple[str, list[str], dict]]:
    line = "swarm run model.activation="
    completion = {"COMP_LINE": line, "COMP_POINT": str(len(line))}
    return [
        ('python -c "import hydra"', [sys.executable, "-c", "import hydra"], {}),
        ("swarm --help", [SWARM, "--help"], {}),
        ("swarm list", [SWARM, "list"], {}),
        ("swarm run --help", [SWARM, "run", "--help"], {}),
        ("swarm run --cfg job +sweep=width_activation",
         [SWARM, "run", "--cfg", "job", "+sweep=width_activation"], {}),
        (f"completion of '{line}'", [SWARM, "-sc", "query=bash"], completion),
        ("completion of 'swarm run mod'", [SWARM, "-sc", "query=bash"],
         {"COMP_LINE": "swarm run mod", "COMP_POINT": "13"}),
    ]


def wall(argv: list[str], env: dict, cwd: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env={**os.environ, **env}, cwd=cwd, capture_output=True)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr.decode()}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as cwd:
        for name, argv, env in commands():
            wall(argv, env, cwd)  # warm the file cache
            rows.append((name, statistics.median(wall(argv, env, cwd)
                                                 for _ in range(args.repeat))))
    base = rows[0][1]
    width = max(len(n) for n, _ in rows)
    print(f"{'command':{width}}  median s  vs import hydra")
    for name, s in rows:
        print(f"{name:{width}}  {s:8.3f}  {s / base:5.2f}x")


if __name__ == "__main__":
    main()
