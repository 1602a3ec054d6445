"""`logger=csv`: the swarm statistics as one long CSV (one row per cell and recorded epoch) and
the config beside it; no package needed, so a cluster without trackers still keeps the curves
in the shape pandas and spreadsheets read."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from swarmcli.loggers import base


class CsvLogger:
    def __init__(self, settings, info: base.JobInfo, cfg):
        from omegaconf import OmegaConf

        self.dir = Path(settings.save_dir) if settings.save_dir else info.run_dir / "csv"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "metrics.csv"
        self.info = info
        (self.dir / "hparams.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        self.columns: list[str] | None = None

    def log_cell(self, name: str, labels: dict, epochs: list[int], series: dict) -> None:
        head = ["run", "group", "cell", *labels, "epoch",
                *(k.replace("/", "_") for k in series)]
        new = self.columns is None
        if new:
            self.columns = head
        with open(self.path, "a" if not new else "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            if new:
                w.writerow(head)
            for i, e in enumerate(epochs):
                vals = [series[k][i] for k in series]
                w.writerow([self.info.name, self.info.group or "", name, *labels.values(), e,
                            *("" if math.isnan(v) else repr(float(v)) for v in vals)])

    def finish(self, objective, columns, rows, files) -> None:
        with open(self.dir / "summary.csv", "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(columns)
            w.writerows(rows)

    def close(self, status: str) -> None:
        pass

    def where(self) -> str:
        return str(self.path)
