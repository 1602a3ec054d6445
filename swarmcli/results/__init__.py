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
Every file is written to a temporary name, fsynced and renamed, with Ctrl-C held off meanwhile, so
no file is ever half-written and no `*.tmp` stays behind (a cell's fsyncs and renames run on a
saver thread, and the swarm.json that claims the cell is written there once they are done, while
the run goes on); the manifest says
`"state": "complete"` only once every cell is saved, and an interrupted or failed run says so.
Readers go through `read_manifest` and `load_array`, which name the file and the problem when a
directory is damaged or foreign.

This package is the one owner of that format: `schema.py` names the files and builds and checks
swarm.json, `summary.py` defines summary.csv's row both ways, `reader.py` opens a saved run, and
this module writes. Everything else reads and writes a run dir through the names exported here.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import copy
import functools
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from swarmcli import stops
from swarmcli.errors import SwarmError
from swarmcli.results import summary
from swarmcli.results.reader import CellResult, Run, array_files, compare, load, load_checked
from swarmcli.results.schema import (
    FORMAT,
    MANIFEST,
    RUN_FILES,
    STATES,
    SUMMARY,
    DamagedRun,
    cell_dir,
    load_array,
    new_manifest,
    read_manifest,
)
from swarmcli.results.summary import SUMMARY_FIELDS, read_summary, summary_rows

__all__ = [
    "FORMAT", "MANIFEST", "RUN_FILES", "STATES", "SUMMARY", "SUMMARY_FIELDS", "CellResult",
    "DamagedRun", "Run", "RunWriter", "WriteFailed", "array_files", "atomic_write_bytes",
    "cell_dir", "clear", "compare", "load", "load_array", "load_checked", "mark_stopped",
    "new_manifest", "read_manifest", "read_summary", "save_array", "save_json", "summary_rows",
]


MAX_OPEN = 256  # files written and still open, waiting for the saver thread's fsync


class WriteFailed(SwarmError):
    """A result file could not be written (disk full, quota, permissions); names the file."""


def _atomic_write(path: Path, write, *, later: list | None = None) -> None:
    """`write(file)` into PATH.tmp, then fsync it and rename it over PATH: PATH is whole or
    untouched. Signals wait until the file is done; on any failure the temporary file is removed.
    Given a `later` list, the open file goes there instead, for `_finish_all` to fsync and rename
    on the saver thread: the fsync waits on the disk, not the CPU, so the caller goes on
    meanwhile (a run's cells, `RunWriter.save_cell`). (Every result file passes here, so
    tests/test_stops.py fills the disk by patching this module's `open`.)"""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with stops.deferred():
        try:
            f = open(tmp, "wb")  # noqa: SIM115 (closed by _finish, maybe on the saver thread)
        except OSError as e:
            raise WriteFailed(f"cannot write {path}: {e.strerror or e}") from e
        try:
            write(f)
            f.flush()
        except BaseException as e:
            f.close()
            _failed(path, tmp, e)
        if later is not None:
            later.append((f, tmp, path))
        else:
            _finish(f, tmp, path)


def _finish(f, tmp: Path, path: Path) -> None:
    try:
        try:
            os.fsync(f.fileno())
        finally:
            f.close()
        os.replace(tmp, path)
    except BaseException as e:
        _failed(path, tmp, e)


def _finish_all(files: list) -> None:
    """`_finish` each of `files` (one task on the saver thread per cell, not per file); every
    one is finished or removed, then the first failure is raised."""
    first = None
    for f, tmp, path in files:
        try:
            _finish(f, tmp, path)
        except BaseException as e:
            first = first or e
    if first is not None:
        raise first


def _failed(path: Path, tmp: Path, e: BaseException):
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    if isinstance(e, OSError):
        raise WriteFailed(f"cannot write {path}: {e.strerror or e}") from e
    raise e


@functools.cache
def _saver() -> concurrent.futures.ThreadPoolExecutor:
    """One thread: files land in the order they were written."""
    return concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="swarm-fsync")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda f: f.write(data))


class _Chunks:
    """A file numpy does not recognise as one, so np.save writes through `write` in chunks of
    16 MB (never a copy of the whole array), and a full disk raises OSError with its errno
    (ndarray.tofile reports only "N requested and M written")."""

    def __init__(self, f):
        self.write = f.write


def _npy(array: np.ndarray):
    """np.save's format, the data handed to the file as it lies in memory (np.save copies it
    into bytes first: a fifth of a run's saving time)."""
    if array.dtype.kind not in "biuf" or not array.flags.c_contiguous:
        return lambda f: np.save(_Chunks(f), array, allow_pickle=False)

    def write(f):
        np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(array))
        f.write(array.reshape(-1).view(np.uint8))
    return write


def save_array(path: Path, array: np.ndarray) -> None:
    _atomic_write(path, _npy(array))


def save_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=_plain) + "\n").encode())


def _plain(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o)}")


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
    """Writes one run; `manifest` is the dict saved as swarm.json, `rows` summary.csv's rows as
    cells land. As a context manager it records how a run that raises ended (`stop`)."""

    def __init__(self, run_dir: Path, manifest: dict):
        self.dir = Path(run_dir)
        self.manifest = manifest
        self.rows: list[dict] = []
        self._landing: list[dict] = []  # cells written, their fsyncs under way (save_cell)
        self._claimed = 0  # self._landing[:_claimed] is covered by a queued claim
        self._in_flight: collections.deque = collections.deque()  # (Future, files open)
        self._open_files = 0
        self.dir.mkdir(parents=True, exist_ok=True)
        self.set_state("running")

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if error is not None:
            self.stop(error)

    def set_state(self, state: str) -> None:
        self.manifest["state"] = state
        self.save_manifest()

    def complete(self, table: list, start: float) -> float:
        """The last writes of a run of any task: once every cell is on disk, the training time
        (`time.perf_counter()` since `start`, returned), each bee's row with its cell's
        statistics (`stats.compare_cells`), summary.csv, then `complete`."""
        self._land()
        seconds = time.perf_counter() - start
        for r in self.rows:
            r.update(table[r["cell"]].columns())
        self.save_summary(_in_order(self.rows))
        self.manifest["train_seconds"] = seconds
        self.set_state("complete")
        return seconds

    def stop(self, error: BaseException) -> None:
        """Record how the run ended (interrupted, failed) as far as the disk still allows: a
        swarm.json that cannot be written keeps saying `running`, never `complete`."""
        state = "interrupted" if stops.interrupted_by(error) else "failed"
        with stops.deferred(), contextlib.suppress(WriteFailed):
            with contextlib.suppress(WriteFailed, KeyboardInterrupt):
                self._land()  # the cells whose files all landed are saved; the others are not
            self.save_summary(_in_order(self.rows))
            self.set_state(state)

    def save_arrays(self, **arrays: np.ndarray) -> None:
        self._save_later(None, {}, {self.dir / f"{n}.npy": _npy(a) for n, a in arrays.items()})

    def save_npz(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        def write(f):
            np.savez(f, **arrays)

        self._save_later(None, {}, {self.dir / f"{name}.npz": write})

    def save_cell(self, index: int, arrays: dict[str, np.ndarray], info: dict) -> None:
        d = cell_dir(self.dir, index)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise WriteFailed(f"cannot write {d}: {e.strerror or e}") from None
        self._save_later(index, info, {d / f"{n}.npy": _npy(a) for n, a in arrays.items()})

    def _save_later(self, index: int | None, info: dict, writes: dict) -> None:
        """Write each file now, its fsync and rename on the saver thread; the next swarm.json
        claims cell `index` (None: run-level files) once all of them have landed (`_land`).
        At most MAX_OPEN files wait open for the saver: past that, the oldest are waited for
        (a fast run on a slow disk would otherwise run out of file descriptors)."""
        with stops.deferred():  # one hold for all of them, not one per file
            while self._open_files > MAX_OPEN and self._in_flight:
                future, n = self._in_flight.popleft()
                concurrent.futures.wait([future])
                self._open_files -= n
            opened: list = []
            landing = {"index": index, "info": info, "whole": False, "landed": None}
            try:
                for path, write in writes.items():
                    _atomic_write(path, write, later=opened)
                landing["whole"] = True  # every file written; the fsyncs may still fail
            finally:  # those written before a failure still land (or are removed): no .tmp
                landing["landed"] = _saver().submit(_finish_all, opened)
                self._landing.append(landing)
                self._in_flight.append((landing["landed"], len(opened)))
                self._open_files += len(opened)

    def _land(self, upto: int | None = None) -> None:
        """Wait for the files still being fsynced (those of the first `upto` entries, or all),
        and mark each cell saved once all its files are on disk; the first failure is raised
        once every file waited for has finished."""
        with stops.deferred():
            upto = len(self._landing) if upto is None else upto
            landing, self._landing = self._landing[:upto], self._landing[upto:]
            self._claimed = max(0, self._claimed - upto)
            concurrent.futures.wait([cell["landed"] for cell in landing])
            _claim(self.manifest, landing)

    def claim_saved(self) -> None:
        """swarm.json claiming every cell written so far, written by the saver thread once
        their files have landed (it takes them in order), while this thread goes on: a
        group's claim costs the run no wait. A cell whose file failed is never claimed; the
        failure already known ends the run here, a later one at the next `_land`. What the
        previous claim covered is landed here first (by now it has, but for a slow disk)."""
        with stops.deferred():  # the claim is tracked before any interrupt can come
            self._land(self._claimed)
            if any(c["landed"].done() and c["landed"].exception() for c in self._landing):
                self._land()  # raises it
            pending, snapshot = list(self._landing), copy.deepcopy(self.manifest)

            def write():
                _claim(snapshot, pending)  # all done: the saver ran them before this
                save_json(self.dir / MANIFEST, snapshot)

            self._landing.append({"index": None, "info": {}, "whole": True,
                                  "landed": _saver().submit(write)})
            self._claimed = len(self._landing)

    def save_manifest(self) -> None:
        """swarm.json as it stands, once every cell it claims is on disk. A kill between the
        two leaves cells on disk that swarm.json does not yet claim: less than is there, never
        more."""
        self._land()
        save_json(self.dir / MANIFEST, self.manifest)

    def save_summary(self, rows: list[dict]) -> None:
        atomic_write_bytes(self.dir / SUMMARY, summary.to_csv(rows))


def _claim(manifest: dict, landing: list[dict]) -> None:
    """Mark saved, in `manifest`, each cell of `landing` whose files all landed; raise the
    first failure among them after that."""
    first = None
    for cell in landing:
        if cell["landed"].exception() is not None:
            first = first or cell["landed"].exception()
        elif cell["whole"] and cell["index"] is not None:
            manifest["cells"][cell["index"]].update(cell["info"], saved=True)
    if first is not None:
        raise first


def _in_order(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["cell"], r["bee"]))
