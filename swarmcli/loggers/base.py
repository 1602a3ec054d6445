"""What every tracker is sent, computed once: a cell's name, its swarm statistics per recorded
epoch, the config as flat hyper-parameters, the run's identity in a multirun, its files.

A tracker is shown the swarm, never one series per bee: per cell and recorded epoch the median
and the quartiles (q25, q75: the inter-quartile range) of the training loss and, with held-out
points, of the held-out loss. Numpy only, so the CLI's import rules hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swarmcli.results import MANIFEST, SUMMARY

STATS = ("median", "q25", "q75")
SERIES = ("loss", "val_loss")
# MLflow takes only these in a metric name; TensorBoard and W&B take them too.
_UNSAFE = re.compile(r"[^\w.\- :]")


@dataclass
class JobInfo:
    """Who this run is to a tracker: `name` (one line), `group` (a multirun's jobs share it;
    None for a single run), the sweep's name, the run dir."""

    run_dir: Path
    sweep: str
    name: str
    group: str | None = None
    job: int | None = None
    overrides: list[str] = field(default_factory=list)


def job_info(cfg, run_dir) -> JobInfo:
    """From Hydra's config of the job where there is one (the CLI, swarmcli.run), else a single
    run named after its sweep."""
    sweep = str(cfg.sweep.name)
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        overrides = [str(o) for o in hc.overrides.task]
        multirun = hc.mode == RunMode.MULTIRUN
    except (ImportError, ValueError):  # no Hydra job around this run
        overrides, multirun = [], False
    shown = [o for o in overrides if not o.lstrip("+~").startswith(("sweep=", "logger"))]
    if multirun:
        where = "/".join(Path(str(hc.sweep.dir)).parts[-2:])
        return JobInfo(Path(run_dir), sweep, f"job {hc.job.num}: {' '.join(shown)}".strip(),
                       group=f"{sweep} {where}", job=int(hc.job.num), overrides=overrides)
    name = f"{sweep} {' '.join(shown)}".strip()
    return JobInfo(Path(run_dir), sweep, name, overrides=overrides)


def cell_name(labels: dict) -> str:
    """`width:3 activation:relu` (the last part of each axis key); `swarm` for a run with no
    sweep axes. Characters a tracker would refuse become `_`."""
    if not labels:
        return "swarm"
    text = " ".join(f"{k.rsplit('.', 1)[-1]}:{v}" for k, v in labels.items())
    return _UNSAFE.sub("_", text.replace("/", "_"))


def swarm_stats(loss: np.ndarray, epochs: list[int]) -> dict[str, np.ndarray]:
    """{"median": [...], "q25": [...], "q75": [...]} over the bees at each of `epochs` (columns
    of `loss`, [bees, epochs + 1]); diverged bees (non-finite) are left out, and an epoch where
    every bee diverged is NaN."""
    a = np.asarray(loss, dtype=np.float64)[:, epochs]
    a = np.where(np.isfinite(a), a, np.nan)
    out = {s: np.full(len(epochs), np.nan) for s in STATS}
    ok = ~np.isnan(a).all(axis=0)
    if ok.any():
        q = np.nanpercentile(a[:, ok], [50, 25, 75], axis=0)
        for s, row in zip(STATS, q):
            out[s][ok] = row
    return out


def cell_series(arrays: dict, epochs: list[int]) -> dict[str, np.ndarray]:
    """`loss/median`, `loss/q25`, ... `val_loss/q75` (held-out only where recorded)."""
    out = {}
    for series in SERIES:
        if arrays.get(series) is not None:
            for stat, values in swarm_stats(arrays[series], epochs).items():
                out[f"{series}/{stat}"] = values
    return out


def flat_params(cfg) -> dict[str, object]:
    """The composed config as dotted keys -> plain values (lists and dicts as their text):
    what trackers show as a run's hyper-parameters and filter runs by."""
    from omegaconf import OmegaConf

    tree = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg
    out: dict[str, object] = {}

    def walk(node, prefix):
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict) and v:
                walk(v, key + ".")
            elif isinstance(v, (list, dict)):
                out[key] = str(v)
            else:
                out[key] = v
        return out

    return walk(tree, "")


def artifacts(run_dir: Path) -> list[Path]:
    """The files a tracker keeps: every figure and animation, summary.csv, swarm.json and the
    config to rerun from."""
    run_dir = Path(run_dir)
    files = sorted(p for p in (run_dir / "figures").glob("*") if p.is_file())
    for name in (SUMMARY, MANIFEST, ".hydra/config.yaml"):
        if (run_dir / name).is_file():
            files.append(run_dir / name)
    return files


def cell_table(run_dir: Path) -> tuple[list[str], list[list]]:
    """The per-cell summary (columns, rows) for a tracker's table view."""
    from swarmcli.results.tables import cell_rows

    rows = cell_rows(run_dir)
    columns = list(rows[0]) if rows else []
    return columns, [[r[c] for c in columns] for r in rows]


def markdown(columns: list[str], rows: list[list]) -> str:
    """A Markdown table (TensorBoard's text tab renders it)."""
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
