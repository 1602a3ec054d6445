"""The run directory: what a run writes, how, and how to read it back with numpy alone.

```
RUN_DIR/
  .hydra/config.yaml      the resolved config (Hydra writes it); rerun from it
  .swarm.lock             while a run writes here (swarmcli.lock)
  swarm.json              manifest: state (running | complete | interrupted | failed), axes,
                          cells, recorded epochs; rewritten after each cell
  summary.csv             one row per bee: swept values, final/best loss, divergence
  x.npy, y.npy            every point; val_mask.npy marks the held-out ones
  target_x.npy, target_y.npy   the noiseless target on a fine grid
  activations.npz         each activation used and its derivative (for the gallery)
  cells/NNN/loss.npy      [bees, epochs + 1]; column e = loss after e steps (0 = initial)
  cells/NNN/diverged_epoch.npy  [bees]; first epoch with a non-finite loss, -1 if none
  cells/NNN/stopped_epoch.npy   [bees]; epoch early stopping froze the bee, -1 if none
  cells/NNN/val_loss.npy  [bees, epochs + 1] loss on held-out points   when split
  cells/NNN/ypred_train.npy     [bees, frames, len(eval_x)] with dropout active, when dropout
  eval_x.npy              where ypred is recorded: a dense grid plus every x (eval_points > 0)
  cells/NNN/ypred.npy     [bees, frames, len(eval_x)]   when recorded
  cells/NNN/weights_L.npy [bees, frames, fan_in, fan_out] when recorded (layer L)
  cells/NNN/biases_L.npy  [bees, frames, fan_out]        when recorded
```
Every file is written to a temporary name and renamed, with Ctrl-C held off meanwhile, so no file
is ever half-written and no `*.tmp` stays behind; the manifest says `"state": "complete"` only
once every cell is saved, and an interrupted or failed run says so. Readers go through
`read_manifest` and `load_array`, which name the file and the problem when a directory is
damaged or foreign.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swarmcli import stops
from swarmcli.errors import SwarmError

MANIFEST = "swarm.json"
FORMAT = 1
STATES = ("running", "complete", "interrupted", "failed")
RUN_FILES = ("summary.csv", "activations.npz")  # besides swarm.json, *.npy, cells/, figures/


class WriteFailed(SwarmError):
    """A result file could not be written (disk full, quota, permissions); names the file."""


class DamagedRun(SwarmError):
    """A run directory's file is missing, unreadable or not in the format `swarm run` writes."""


def _atomic_write(path: Path, write) -> None:
    """`write(file)` into PATH.tmp, then rename over PATH: PATH is whole or untouched. Signals
    wait until the file is done; on any failure the temporary file is removed."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with stops.deferred():
        try:
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise WriteFailed(f"cannot write {path}: {e.strerror or e}") from e
            raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda f: f.write(data))


class _Chunks:
    """A file numpy does not recognise as one, so np.save writes through `write` in chunks of
    16 MB (never a copy of the whole array), and a full disk raises OSError with its errno
    (ndarray.tofile reports only "N requested and M written")."""

    def __init__(self, f):
        self.write = f.write


def save_array(path: Path, array: np.ndarray) -> None:
    _atomic_write(path, lambda f: np.save(_Chunks(f), array, allow_pickle=False))


def save_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=_plain) + "\n").encode())


def _plain(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def cell_dir(run_dir: Path, index: int) -> Path:
    return Path(run_dir) / "cells" / f"{index:03d}"


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
        raise DamagedRun(f"{path} is damaged: {_first_line(e)}") from None
    return m


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def load_array(path: Path, mmap: bool = True) -> np.ndarray:
    """One saved array; DamagedRun names the file if it is missing, truncated or not .npy."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise DamagedRun(f"{path} is missing") from None
    except (OSError, ValueError, EOFError) as e:
        raise DamagedRun(f"{path} is damaged: {_first_line(e)}") from None


def mark_stopped(run_dir, state: str) -> str:
    """After a stop: a run that still says `running` is marked `state`; returns what its
    swarm.json says now, for the one line the CLI prints. The caller holds the directory."""
    try:
        m = read_manifest(run_dir)
    except DamagedRun:
        return f"nothing saved in {run_dir}"
    if m["state"] == "running":
        m["state"] = state
        try:
            save_json(Path(run_dir) / MANIFEST, m)
        except WriteFailed as e:
            return f"{e}; {run_dir}/{MANIFEST} still says running"
    saved = sum(c["saved"] for c in m["cells"])
    verb = "is" if m["state"] == "complete" else "is marked"
    return f"{run_dir} {verb} {m['state']} ({saved} of {len(m['cells'])} cells saved)"


def clear(run_dir) -> None:
    """Remove a previous run's results (overwrite=true), swarm.json first so the directory never
    claims to hold a run it no longer does; .hydra/, logs and foreign files stay."""
    d = Path(run_dir)
    with contextlib.suppress(FileNotFoundError):
        (d / MANIFEST).unlink()
    for name in ("cells", "figures"):
        shutil.rmtree(d / name, ignore_errors=True)
    for p in [*d.glob("*.npy"), *(d / n for n in RUN_FILES)]:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


class RunWriter:
    """Writes one run; `manifest` is the dict saved as swarm.json."""

    def __init__(self, run_dir: Path, manifest: dict):
        self.dir = Path(run_dir)
        self.manifest = manifest
        self.dir.mkdir(parents=True, exist_ok=True)
        self.set_state("running")

    def set_state(self, state: str) -> None:
        self.manifest["state"] = state
        save_json(self.dir / MANIFEST, self.manifest)

    def stop(self, state: str, rows: list[dict]) -> None:
        """Record how the run ended (interrupted, failed) as far as the disk still allows: a
        swarm.json that cannot be written keeps saying `running`, never `complete`."""
        with stops.deferred(), contextlib.suppress(WriteFailed):
            self.save_summary(rows)
            self.set_state(state)

    def save_arrays(self, **arrays: np.ndarray) -> None:
        for name, a in arrays.items():
            save_array(self.dir / f"{name}.npy", a)

    def save_npz(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        def write(f):
            np.savez(f, **arrays)

        _atomic_write(self.dir / f"{name}.npz", write)

    def save_cell(self, index: int, arrays: dict[str, np.ndarray], info: dict) -> None:
        d = cell_dir(self.dir, index)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise WriteFailed(f"cannot write {d}: {e.strerror or e}") from None
        for name, a in arrays.items():
            save_array(d / f"{name}.npy", a)
        self.manifest["cells"][index].update(info, saved=True)
        save_json(self.dir / MANIFEST, self.manifest)

    def save_summary(self, rows: list[dict]) -> None:
        buf = io.StringIO()
        if rows:
            w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        atomic_write_bytes(self.dir / "summary.csv", buf.getvalue().encode())


def summary_rows(axis_names: list[str], labels: dict, index: int, arrays: dict) -> list[dict]:
    """One row per bee: the cell's swept values, final and best loss, divergence, early stop."""
    loss, diverged_epoch = arrays["loss"], arrays["diverged_epoch"]
    watched = arrays.get("val_loss", loss)  # best = best validation loss when there is one
    clean = np.where(np.isfinite(watched), watched, np.inf)
    best_epoch = np.where(np.isfinite(clean).any(1), clean.argmin(axis=1), -1)
    best = clean.min(axis=1)
    rows = []
    for bee in range(loss.shape[0]):
        row = {"cell": index, **{a: labels[a] for a in axis_names}, "bee": bee,
               "final_loss": float(loss[bee, -1]), "best_loss": float(best[bee]),
               "best_epoch": int(best_epoch[bee]), "diverged": bool(diverged_epoch[bee] >= 0),
               "diverged_epoch": int(diverged_epoch[bee])}
        if "val_loss" in arrays:
            row["final_val_loss"] = float(arrays["val_loss"][bee, -1])
            row["stopped_epoch"] = int(arrays["stopped_epoch"][bee])
        rows.append(row)
    return rows


@dataclass
class CellResult:
    """One cell of a saved run; arrays are memory-mapped on first access, and kept."""

    index: int
    labels: dict
    values: dict
    info: dict
    path: Path
    _arrays: dict = field(default_factory=dict, repr=False, compare=False)

    def array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = load_array(self.path / f"{name}.npy")
        return self._arrays[name]

    @property
    def loss(self) -> np.ndarray:
        return self.array("loss")

    @property
    def ypred(self) -> np.ndarray:
        return self.array("ypred")

    @property
    def diverged_epoch(self) -> np.ndarray:
        return self.array("diverged_epoch")

    def weights(self, layer: int) -> np.ndarray:
        return self.array(f"weights_{layer}")

    def biases(self, layer: int) -> np.ndarray:
        return self.array(f"biases_{layer}")

    def has(self, name: str) -> bool:
        return (self.path / f"{name}.npy").exists()

    def __repr__(self):
        return f"CellResult({self.index}, {self.labels})"


class Run:
    """A saved run: `run.cell(width=3, activation="relu")`, `run.cells`, `run.to_frame()`."""

    def __init__(self, run_dir):
        self.path = Path(run_dir)
        self.manifest = read_manifest(self.path)
        self.state = self.manifest["state"]
        self.axes = self.manifest["axes"]
        self.frames = np.asarray(self.manifest["frames"])  # the epochs of each recorded frame
        self.epochs = self.manifest["epochs"]
        self.cells = [CellResult(c["index"], c["labels"], c["values"], c, cell_dir(self.path,
                      c["index"])) for c in self.manifest["cells"] if c.get("saved")]
        if self.state != "complete":
            warnings.warn(f"run {self.path} is {self.state}: {len(self.cells)} of "
                          f"{len(self.manifest['cells'])} cells saved", stacklevel=2)

    def load(self, name: str) -> np.ndarray:
        return load_array(self.path / f"{name}.npy", mmap=False)

    def check(self) -> None:
        """Open every array a reader needs (headers only, memory-mapped), so a truncated, empty
        or missing file is named before any work starts, not halfway through a render."""
        if self.cells:  # written before the first cell (a run stopped earlier may lack them)
            for name in ("x", "y", "target_x", "target_y"):
                load_array(self.path / f"{name}.npy")
        for c in self.cells:
            bees = c.info["bees"]
            want = {"loss": (bees, self.epochs + 1), "diverged_epoch": (bees,)}  # full shapes
            if "ypred" in self.manifest["record"]:
                want["ypred"] = (bees, len(self.frames), "points")
            for name, shape in want.items():
                a = c.array(name)
                if a.ndim != len(shape) or a.shape[:2] != shape[:2]:
                    raise DamagedRun(f"{c.path / name}.npy has shape {list(a.shape)}, not "
                                     f"{list(shape)}")

    @property
    def x(self):
        return self.load("x")

    @property
    def y(self):
        return self.load("y")

    @property
    def eval_x(self):
        """Where `ypred` was evaluated: a dense grid over the domain plus the training points
        (eval_x.npy); runs written before the grid existed evaluated at x."""
        return self.load("eval_x") if (self.path / "eval_x.npy").exists() else self.x

    def cell(self, **match) -> CellResult:
        """The one cell whose axis labels or values match, e.g. cell(width=3, activation="relu");
        a key may be an axis name, a dotted config key, or its last part."""
        hits = [c for c in self.cells if all(_matches(c, k, v) for k, v in match.items())]
        if len(hits) != 1:
            raise KeyError(f"{len(hits)} cells match {match}; cells: "
                           f"{[c.labels for c in self.cells]}")
        return hits[0]

    def to_frame(self):
        """Tidy pandas DataFrame: one row per (cell, bee, epoch) with the swept values."""
        import pandas as pd

        parts = []
        for c in self.cells:
            loss = np.asarray(c.loss)
            bees, epochs = loss.shape
            df = pd.DataFrame({"cell": c.index, "bee": np.repeat(np.arange(bees), epochs),
                               "epoch": np.tile(np.arange(epochs), bees),
                               "loss": loss.reshape(-1)})
            for k, v in reversed(c.labels.items()):
                df.insert(1, k, c.values.get(k, v))  # a grid axis keeps its typed value
            parts.append(df)
        return pd.concat(parts, ignore_index=True)

    def __repr__(self):
        return (f"Run({str(self.path)!r}, state={self.state}, cells={len(self.cells)}, "
                f"axes={[a['name'] for a in self.axes]})")


def _matches(cell: CellResult, key: str, value) -> bool:
    for k, v in {**cell.values, **cell.labels}.items():
        if k == key or k.rsplit(".", 1)[-1] == key:
            return str(v) == str(value)
    return False


def load(run_dir) -> Run:
    """Open a run directory written by `swarm run`; a damaged one raises DamagedRun naming the
    file (every saved array's header is read here; the data stays memory-mapped)."""
    run = Run(run_dir)
    run.check()
    return run


def load_checked(run_dir) -> Run:
    """`load`, without the warning about an unfinished run (the CLI's entry check)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(run_dir)


def array_files(run_dir: Path) -> list[Path]:
    """Every result array of a run, relative to its directory."""
    run_dir = Path(run_dir)
    return sorted(p.relative_to(run_dir) for p in run_dir.rglob("*.npy"))


def compare(old_dir, new_dir) -> tuple[int, int, list[str]]:
    """(equal, total, names of arrays that differ or are missing) between two runs, bit for bit."""
    names = sorted(set(array_files(old_dir)) | set(array_files(new_dir)))
    diff = []
    for name in names:
        a, b = Path(old_dir) / name, Path(new_dir) / name
        if not (a.exists() and b.exists()) or a.read_bytes() != b.read_bytes():
            diff.append(str(name))
    return len(names) - len(diff), len(names), diff
