"""What a run directory holds and how swarm.json is shaped: built here, checked here, read here.

One module owns the manifest's fields, so the writer (`new_manifest`, `RunWriter`) and every
reader (`read_manifest`: render, rerun, collect, `swarmcli.load`) agree on them, and a damaged or
foreign directory is reported once, naming the file and the problem.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from swarmcli.errors import SwarmError

MANIFEST = "swarm.json"
SUMMARY = "summary.csv"
FORMAT = 1
STATES = ("running", "complete", "interrupted", "failed")
RUN_FILES = (SUMMARY, "activations.npz", "report.html")  # besides swarm.json, *.npy, cells/,
# figures/ (report.html: swarm report's page, stale once the run is replaced)


class DamagedRun(SwarmError):
    """A run directory's file is missing, unreadable or not in the format `swarm run` writes."""


def cell_dir(run_dir: Path, index: int) -> Path:
    return Path(run_dir) / "cells" / f"{index:03d}"


def new_manifest(cfg, axes, cells, device: str, frames: list[int]) -> dict:
    """swarm.json of a run about to start: its settings, sweep axes and cells, none saved yet.
    `axes` and `cells` are grid.py's; `frames` the recorded epochs."""
    tr = cfg.train
    return {
        "format": FORMAT, "state": "running", "task": cfg.task.kind, "epochs": tr.epochs,
        "sweep": cfg.sweep.name, "lesson": cfg.sweep.lesson,
        "frames": list(frames), "record": list(tr.record), "device": device,
        "target": asdict(cfg.target),
        "axes": [{"name": a.name, "keys": list(a.keys), "labels": [a.label(i) for i in
                  range(len(a.values))]} for a in axes],
        "cells": [{"index": c.index, "labels": c.labels, "values": c.values,
                   "position": list(c.position), "bees": c.cfg.train.bees,
                   "depth": c.cfg.model.depth, "width": c.cfg.model.width,
                   "activation": c.cfg.model.activation, "optimizer": c.cfg.optim.name,
                   "leaky_slope": c.cfg.model.leaky_slope,
                   "saved": False} for c in cells],
    }


# --------------------------------------------------------------------------------------------
# swarm.json: the one reader that checks it
# --------------------------------------------------------------------------------------------

_INT, _LIST, _DICT, _STR = (int,), (list,), (dict,), (str,)
_TOP = {"format": _INT, "state": _STR, "epochs": _INT, "frames": _LIST, "record": _LIST,
        "axes": _LIST, "cells": _LIST}
_AXIS = {"name": _STR, "keys": _LIST, "labels": _LIST}
_CELL = {"index": _INT, "labels": _DICT, "values": _DICT, "position": _LIST, "bees": _INT,
         "width": _INT, "saved": (bool,)}


def _fields(where: str, d, spec: dict) -> None:
    if not isinstance(d, dict):
        raise ValueError(f"{where} is {type(d).__name__}, not an object")
    for key, types in spec.items():
        if key not in d:
            raise ValueError(f"{where} has no {key!r}")
        v = d[key]
        if not isinstance(v, types) or (types is _INT and isinstance(v, bool)):
            raise ValueError(f"{where}.{key}={v!r:.60} is not {types[0].__name__}")


def _check_manifest(m) -> None:
    _fields("swarm.json", m, _TOP)
    if m["format"] != FORMAT:
        raise ValueError(f"format {m['format']} is not {FORMAT} (written by another version)")
    if m["state"] not in STATES:
        raise ValueError(f"state={m['state']!r:.60} is not one of: {', '.join(STATES)}")
    f = m["frames"]
    if not f or not all(isinstance(e, int) and 0 <= e <= m["epochs"] for e in f) \
            or f != sorted(f):
        raise ValueError(f"frames must be ascending epochs in [0, {m['epochs']}]")
    for i, a in enumerate(m["axes"]):
        _fields(f"axes[{i}]", a, _AXIS)
    names = [a["name"] for a in m["axes"]]
    seen = set()
    for i, c in enumerate(m["cells"]):
        _fields(f"cells[{i}]", c, _CELL)
        if c["index"] < 0 or c["index"] in seen:
            raise ValueError(f"cells[{i}].index={c['index']} is negative or repeated")
        seen.add(c["index"])
        if sorted(c["labels"]) != sorted(names) or len(c["position"]) != len(names):
            raise ValueError(f"cells[{i}] does not match the axes {names}")


def read_manifest(run_dir) -> dict:
    """RUN_DIR/swarm.json, checked; DamagedRun names the file and what is wrong with it."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise DamagedRun(f"{run_dir} is not a swarm run directory (no {MANIFEST})")
    try:
        m = json.loads(path.read_bytes())
        _check_manifest(m)
    except (OSError, ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeError too
        raise DamagedRun(f"{path} is damaged: {first_line(e)}") from None
    return m


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def load_array(path: Path, mmap: bool = True) -> np.ndarray:
    """One saved array; DamagedRun names the file if it is missing, truncated or not .npy."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise DamagedRun(f"{path} is missing") from None
    except (OSError, ValueError, EOFError) as e:
        raise DamagedRun(f"{path} is damaged: {first_line(e)}") from None
