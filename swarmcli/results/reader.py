"""Reading a saved run back with numpy alone: `swarmcli.load(run_dir)`, its cells and arrays.

Arrays stay memory-mapped until used, so opening a large run is quick; `load` reads every array's
header first, so a damaged directory is named before a render or a notebook is halfway through.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swarmcli.results.schema import DamagedRun, cell_dir, load_array, read_manifest


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
        self.task = self.manifest.get("task", "regression")  # older runs: regression
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
        if self.cells and self.task != "landscape":  # written before the first cell (a run
            # stopped earlier may lack them); a landscape run keeps its surface in each cell
            names = ("x", "y") if self.task == "classification" else ("x", "y", "target_x",
                                                                       "target_y")
            for name in names:
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
        """Tidy pandas DataFrame: one row per (cell, bee, epoch) with the swarm's swept values,
        `loss` and, with held-out points, `val_loss` (the same as `losses()`)."""
        return self.losses()

    # Tables for notebooks (pandas, imported on first use): results/tables.py builds them.
    def losses(self):
        """One row per (cell, bee, epoch): swept values, loss, val_loss (with held-out points)."""
        from swarmcli.results import tables

        return tables.loss_frame(self)

    def predictions(self, epochs=None, cells=None):
        """One row per (cell, bee, recorded epoch, point): swept values, epoch, x, kind
        (train | val | grid), ypred; `epochs=[-1]` keeps the last frame only."""
        from swarmcli.results import tables

        return tables.ypred_frame(self, epochs=epochs, cells=cells)

    @property
    def summary(self):
        """One row per cell: swept values, bees, diverged, median final loss with its 95% CI
        and quartiles, held-out median (where recorded), p vs the best cell."""
        from swarmcli.results import tables

        return tables.summary_frame(self)

    @property
    def bees(self):
        """summary.csv: one row per bee (final and best loss, divergence, cell statistics)."""
        from swarmcli.results import tables

        return tables.bees_frame(self)

    @property
    def figures(self) -> dict:
        """Figure name -> path of every still and animation in RUN_DIR/figures."""
        from swarmcli.results import tables

        return tables.figure_paths(self)

    @property
    def config(self) -> dict:
        """The run's resolved config (.hydra/config.yaml) as a plain dict."""
        from omegaconf import OmegaConf

        return OmegaConf.to_container(OmegaConf.load(self.path / ".hydra" / "config.yaml"))

    def _repr_html_(self) -> str:
        from swarmcli.results import tables

        return tables.to_html(self)

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
