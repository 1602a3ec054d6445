"""The run directory: what a run writes, how, and how to read it back with numpy alone.

```
RUN_DIR/
  .hydra/config.yaml      the resolved config (Hydra writes it); rerun from it
  swarm.json              manifest: state, axes, cells, recorded epochs; written last
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
Every file is written to a temporary name and renamed, so no file is ever half-written; the
manifest says `"state": "complete"` only once every cell is saved, and an interrupted run says so.
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MANIFEST = "swarm.json"
FORMAT = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_array(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def save_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=_plain) + "\n").encode())


def _plain(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def cell_dir(run_dir: Path, index: int) -> Path:
    return Path(run_dir) / "cells" / f"{index:03d}"


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

    def save_arrays(self, **arrays: np.ndarray) -> None:
        for name, a in arrays.items():
            save_array(self.dir / f"{name}.npy", a)

    def save_cell(self, index: int, arrays: dict[str, np.ndarray], info: dict) -> None:
        d = cell_dir(self.dir, index)
        d.mkdir(parents=True, exist_ok=True)
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
            self._arrays[name] = np.load(self.path / f"{name}.npy", mmap_mode="r")
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
        mpath = self.path / MANIFEST
        if not mpath.exists():
            raise FileNotFoundError(f"{self.path} is not a swarm run directory (no {MANIFEST})")
        self.manifest = json.loads(mpath.read_text())
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
        return np.load(self.path / f"{name}.npy")

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
    """Open a run directory written by `swarm run`."""
    return Run(run_dir)


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
