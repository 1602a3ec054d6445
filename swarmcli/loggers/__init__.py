"""Experiment trackers (`logger=csv|tensorboard|mlflow|wandb`, or a list): a run's swarm
statistics, config, figures and summary, sent where researchers already look.

`check(cfg)` runs in the pre-flight: a tracker whose package is missing stops the run before
training, naming the extra to install. `session(cfg, run_dir)` opens every chosen tracker for a
job; the runner hands it each cell as it is saved (`Trackers.cell`), and when the job's figures
are drawn the session sends the summary and the files and closes the tracker runs, as failed
or killed when the job was.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys

from swarmcli.errors import SwarmError
from swarmcli.loggers import base

# logger name -> (module it imports, the pip extra that installs it); csv needs nothing
PACKAGES = {"csv": None, "tensorboard": ("tensorboard", "tensorboard"),
            "mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}


def chosen(cfg) -> list[str]:
    """The trackers `cfg.logger` turns on, in PACKAGES' order."""
    return [n for n in PACKAGES if getattr(cfg.logger, n, None) is not None]


def check(cfg) -> None:
    """A missing tracker package as one line naming the extra, before anything is trained."""
    for name in chosen(cfg):
        need = PACKAGES[name]
        if need and importlib.util.find_spec(need[0]) is None:
            raise SwarmError(f"logger={name} needs the {need[0]} package: pip install "
                             f"'swarmcli[{need[1]}]'")


def _open(name: str, settings, info: base.JobInfo, cfg):
    if name == "csv":
        from swarmcli.loggers.to_csv import CsvLogger as cls
    elif name == "tensorboard":
        from swarmcli.loggers.to_tensorboard import TensorBoardLogger as cls
    elif name == "mlflow":
        from swarmcli.loggers.to_mlflow import MlflowLogger as cls
    else:
        from swarmcli.loggers.to_wandb import WandbLogger as cls
    return cls(settings, info, cfg)


class Trackers:
    """Every open tracker of one job: what the runner and the session call."""

    def __init__(self, cfg, loggers: list):
        from swarmcli.plan import frames

        self.loggers = loggers
        self.epochs = frames(int(cfg.train.epochs), int(cfg.train.stride))
        self.objective = dict(cfg.objective)
        self.finals: list = []

    def cell(self, cell, arrays: dict) -> None:
        """Cell `cell` (grid.Cell) was saved with `arrays`: its statistics per recorded epoch."""
        series = base.cell_series(arrays, self.epochs)
        name = base.cell_name(cell.labels)
        self.finals.append(arrays["loss"][:, -1])
        for lg in self.loggers:
            lg.log_cell(name, dict(cell.labels), self.epochs, series)

    def finish(self, run_dir) -> None:
        """The summary table, the objective and the files; then close each tracker's run."""
        import numpy as np

        from swarmcli.objective import objective

        obj = objective(np.concatenate(self.finals), **self.objective) if self.finals else None
        columns, rows = base.cell_table(run_dir)
        files = base.artifacts(run_dir)
        for lg in self.loggers:
            lg.finish(obj, columns, rows, files)

    def close(self, status: str) -> None:
        for lg in self.loggers:
            with contextlib.suppress(Exception):  # the job's own error is the one to report
                lg.close(status)


@contextlib.contextmanager
def session(cfg, run_dir, *, out=sys.stdout):
    """The trackers of one job, or None when `logger` chooses none. Inside: train and render.
    On success the trackers get the summary and files; on an error or a stop their runs are
    closed as failed or killed, and the error goes on."""
    names = chosen(cfg)
    if not names:
        yield None
        return
    check(cfg)
    from swarmcli import stops

    info = base.job_info(cfg, run_dir)
    opened = []
    try:
        for name in names:
            try:
                opened.append(_open(name, getattr(cfg.logger, name), info, cfg))
            except Exception as e:  # e.g. W&B online without a login: one line, exit 2
                text = str(e).strip().splitlines()
                raise SwarmError(f"logger={name} could not start: "
                                 f"{text[0] if text else type(e).__name__}") from e
    except BaseException:
        Trackers(cfg, opened).close("failed")
        raise
    trackers = Trackers(cfg, opened)
    try:
        yield trackers
    except BaseException as e:
        trackers.close("killed" if stops.interrupted_by(e) else "failed")
        raise
    try:
        trackers.finish(run_dir)
    except BaseException as e:  # a tracker that fails at the end leaves no run open
        trackers.close("killed" if stops.interrupted_by(e) else "failed")
        raise
    for lg in opened:
        where = lg.where()
        if where:
            print(f"logged to {where}", file=out)
