"""Tab completion for `swarm`, the way bash asks for it: `swarm -sc query=bash` with COMP_LINE and
COMP_POINT set (by the script that `swarm run -sc install=bash` prints).

Subcommands, the values of every enumerated key, render keys, collect flags and run directories
are answered here from plain lists: no torch, no matplotlib, no config composed. The rest
(override keys, config groups such as +sweep= and hydra/launcher=, other shells) goes to Hydra's
own completion, with the subcommand (and rerun's RUN_DIR) taken out of the line.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

BOOLEAN = ("true", "false")
# The files that make a directory worth offering to each command.
RUN_DIR_MARKERS = {"render": ("swarm.json",), "rerun": (".hydra/config.yaml",),
                   "collect": ("multirun.yaml", "optimization_results.yaml"),
                   "report": ("swarm.json", "multirun.yaml")}
COLLECT_FLAGS = ("--rerun-failed", "--no-render", "--heatmap")
MAX_DEPTH = 4  # levels searched below the directory being typed: multirun/DATE/TIME/JOB
MAX_VISITS = 2000  # directories looked into per Tab, so a huge tree cannot stall the shell


def answer(args: list[str], commands) -> bool:
    """`swarm -sc ARGS`: print bash's candidates and return True, or leave the query to Hydra
    (install scripts, other shells, override keys) with COMP_LINE rewritten, and return False."""
    if not args or not args[0].startswith("query="):
        return False
    line = os.environ.get("COMP_LINE", "")
    point = os.environ.get("COMP_POINT", "")
    line = line[:int(point)] if point.isdigit() else line
    words = line.split()
    if not words or line[-1:].isspace():
        words.append("")
    found = candidates(words, commands) if args[0] == "query=bash" else None
    if found is not None:
        print(" ".join(found))
        return True
    sub = words[1] if len(words) > 1 else ""
    skip = 1 + (sub in commands) + (sub == "rerun" and len(words) > 3)  # RUN_DIR: no override
    hydra_line = " ".join([words[0], *words[skip:]])
    os.environ.update(COMP_LINE=hydra_line, COMP_POINT=str(len(hydra_line)))
    return False


def candidates(words: list[str], commands) -> list[str] | None:
    """What may replace the last word of `words` (the words typed up to the cursor; the last
    may be ""), or None where Hydra knows better."""
    cur = words[-1]
    if len(words) <= 2:
        return [c for c in commands if c.startswith(cur)] if len(words) == 2 else []
    cmd = words[1]
    if cmd not in commands or cmd == "list":
        return []
    positional = [w for w in words[2:-1] if not w.startswith("-") and "=" not in w]
    if cmd in RUN_DIR_MARKERS and not positional and not cur.startswith("-") and "=" not in cur:
        return run_dirs(cur, RUN_DIR_MARKERS[cmd])
    if cmd == "collect":
        return [] if words[-2] == "--heatmap" else [f for f in COLLECT_FLAGS if f.startswith(cur)]
    key, eq, value = cur.partition("=")
    if cmd == "render":
        if not eq:
            return [f"{k}=" for k in render_keys() if k.startswith(cur)]
        return values(f"render.{key}", key, value)
    return values(key.lstrip("+~"), key, value) if eq else None


def values(name: str, key: str, typed: str) -> list[str] | None:
    """`key=VALUE` for each choice of the dotted key `name`, None for a key without a fixed set
    of values. After a comma (a multirun's `a,b` or a list's `[a,b`) the next item is completed;
    list keys and sweep.grid.KEY take `[`."""
    from swarmcli import choices

    grid = name.startswith("sweep.grid.")
    name = name.removeprefix("sweep.grid.")
    found = options(name)
    if found is None:
        return None
    bracket = "[" if grid or name in choices.LISTS or typed.startswith("[") else ""
    head, comma, part = typed.removeprefix("[").rpartition(",")
    return [f"{key}={bracket}{head}{comma}{v}" for v in found if v.startswith(part)]


# Keys whose names live in a numpy module: imported only when such a key is completed.
ELSEWHERE = {"target.name": ("swarmcli.targets", "TARGETS"),
             "target.split.kind": ("swarmcli.splits", "KINDS"),
             "objective.stat": ("swarmcli.objective", "OBJECTIVE_STATS")}


def options(name: str) -> tuple[str, ...] | None:
    """The choices of the dotted key `name` (a list key: of its items); None if it has none."""
    from swarmcli import choices

    if name in ELSEWHERE:
        module, attr = ELSEWHERE[name]
        return tuple(getattr(importlib.import_module(module), attr))
    cores = str(len(os.sched_getaffinity(0)))
    return {
        "task.kind": choices.TASKS, "dataset.name": choices.DATASETS,
        "model.activation": choices.ACTIVATIONS, "model.init": choices.INITS,
        "optim.name": choices.OPTIMIZERS, "schedule.name": tuple(choices.SCHEDULES),
        "train.loss": choices.LOSSES, "train.device": choices.DEVICES,
        "train.dtype": choices.DTYPES, "train.compile": choices.COMPILE,
        "train.native": choices.NATIVE,
        "train.threads": tuple(dict.fromkeys(("auto", "1", cores))),
        "render.format": choices.RENDER_FORMATS, **choices.LISTS,
        "surface.name": choices.SURFACES,
        **{k: BOOLEAN for k in choices.BOOLEANS},
    }.get(name)


def render_keys() -> list[str]:
    from dataclasses import fields

    from swarmcli.config import RenderConfig

    return [f.name for f in fields(RenderConfig)]


def run_dirs(typed: str, markers: tuple[str, ...]) -> list[str]:
    """The directories that start with `typed` (ending in "/", to go on typing), and below them
    the run directories (holding one of `markers`), as paths that start with `typed`."""
    part = typed.rpartition("/")[2]
    prefix = typed[:len(typed) - len(part)]
    root = Path(os.path.expanduser(prefix or "."))
    try:
        subdirs = sorted(d for d in root.iterdir() if d.name.startswith(part) and _visible(d, part)
                         and d.is_dir())
    except OSError:
        return []
    out, budget = [], [MAX_VISITS]
    for d in subdirs:
        out.append(f"{prefix}{d.name}/")
        out += [f"{prefix}{r.relative_to(root)}" for r in _find(d, markers, MAX_DEPTH, budget)]
    return out


def _visible(d: Path, typed: str) -> bool:
    return typed.startswith(".") or not d.name.startswith(".")


def _find(d: Path, markers: tuple[str, ...], depth: int, budget: list[int]):
    """Run directories at or below d, down to `depth` levels; a run's own folders (cells/,
    figures/) are not searched."""
    budget[0] -= 1
    if budget[0] < 0:
        return
    if any((d / m).is_file() for m in markers):
        yield d
    if depth <= 1 or (d / "swarm.json").is_file():
        return
    try:
        subdirs = sorted(s for s in d.iterdir() if _visible(s, "") and s.is_dir())
    except OSError:
        return
    for s in subdirs:
        yield from _find(s, markers, depth - 1, budget)
