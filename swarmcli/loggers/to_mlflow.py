"""`logger=mlflow`: one MLflow run per swarm run, through MlflowClient (no global active run, so
a notebook's own MLflow use is left alone). The experiment is the sweep's name; a multirun's
jobs share a `swarm.group` tag; the swarm statistics are metrics with the epoch as step; the
config is params; the figures, the video, summary.csv and the config are artifacts."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from swarmcli.loggers import base

BATCH = 1000  # MlflowClient.log_batch takes at most 1000 metrics (and 100 params) per call
PARAMS = 100
PARAM_CHARS = 6000  # the longest param value MLflow stores


def tracking_uri(settings) -> str:
    if settings.tracking_uri:
        return str(settings.tracking_uri)
    return os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()
    # (MLflow 3's own default, sqlite:///mlflow.db, needs SQLAlchemy, which mlflow-skinny lacks)


class MlflowLogger:
    def __init__(self, settings, info: base.JobInfo, cfg):
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.uri = tracking_uri(settings)
        if self.uri.startswith("file:") or "://" not in self.uri:
            # MLflow 3 refuses its file store (in "maintenance mode") unless opted in; a local
            # folder is what a cluster job or a laptop has, and it needs no database packages.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=self.uri)
        name = settings.experiment_name or info.sweep
        exp = self.client.get_experiment_by_name(name)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(name)
        tags = {"swarm.sweep": info.sweep, "swarm.run_dir": str(info.run_dir.resolve()),
                **{str(k): str(v) for k, v in (settings.tags or {}).items()}}
        if info.group:
            tags["swarm.group"] = info.group
            tags["swarm.job"] = str(info.job)
        run = self.client.create_run(exp_id, run_name=settings.run_name or info.name, tags=tags)
        self.run_id = run.info.run_id
        self.experiment = name
        params = [Param(k[:250], str(v)[:PARAM_CHARS]) for k, v in base.flat_params(cfg).items()]
        for i in range(0, len(params), PARAMS):
            self.client.log_batch(self.run_id, params=params[i:i + PARAMS])

    def log_cell(self, name: str, labels: dict, epochs: list[int], series: dict) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(f"{key}/{name}", float(v), now, int(e))
                   for key, values in series.items() for e, v in zip(epochs, values)
                   if not math.isnan(v)]
        for i in range(0, len(metrics), BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + BATCH])

    def finish(self, objective, columns, rows, files) -> None:
        if objective is not None and math.isfinite(objective):
            self.client.log_metric(self.run_id, "objective", float(objective))
        self.client.log_text(self.run_id, base.markdown(columns, rows), "summary_cells.md")
        for f in files:
            where = "figures" if f.parent.name == "figures" else None
            self.client.log_artifact(self.run_id, str(f), artifact_path=where)
        self.close("finished")

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status.upper())

    def where(self) -> str:
        return f"MLflow {self.uri}, experiment {self.experiment!r}, run {self.run_id}"
