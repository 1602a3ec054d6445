"""summary.csv, one row per bee: what a row holds, made from a cell's arrays, and read back typed.

The row is defined once, here, for the run that writes it and for `swarm collect`, which merges
the rows of many runs; a CSV holds only text, so the reader turns each column back into the type
it was written as.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from swarmcli.results.schema import SUMMARY, DamagedRun, read_manifest


def _bool(s: str) -> bool:
    return s == "True"


# Every row's fixed columns (after "cell" come the run's sweep axes, before "bee") and their types.
FIELDS = {"cell": int, "bee": int, "final_loss": float, "best_loss": float, "best_epoch": int,
          "diverged": _bool, "diverged_epoch": int}
SUMMARY_FIELDS = tuple(FIELDS)


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


def to_csv(rows: list[dict]) -> bytes:
    """The rows as summary.csv's bytes (columns in the first row's order)."""
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue().encode()


def auto(s: str):
    """A CSV cell back to int / float / bool where it is one (labels like '0.01' or '10')."""
    if s in ("True", "False"):
        return s == "True"
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


def read_summary(run_dir) -> tuple[list[dict], list[str], list[str]]:
    """RUN_DIR/summary.csv as typed rows, the run's own sweep axes (named in its swarm.json) and
    its further per-bee columns (final_val_loss, stopped_epoch, the cell statistics, ...), each
    list in the file's column order."""
    run_dir = Path(run_dir)
    try:
        axes = [a["name"] for a in read_manifest(run_dir)["axes"]]
    except DamagedRun:
        axes = None
    with open(run_dir / SUMMARY, newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        if axes is None:  # no readable manifest: the columns before "bee" are the cell's axes
            axes = header[1:header.index("bee")] if "bee" in header else []
        axes = [a for a in axes if a in header]
        extra = [c for c in header if c not in axes and c not in FIELDS]
        rows = []
        for r in reader:
            row = {"cell": int(r["cell"])}
            row.update({a: auto(r[a]) for a in axes})
            row.update({k: cast(r[k]) for k, cast in FIELDS.items() if k != "cell"})
            row.update({c: auto(r[c]) for c in extra})
            rows.append(row)
    return rows, axes, extra
