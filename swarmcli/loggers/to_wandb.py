"""`logger=wandb`: one W&B run per swarm run; a multirun's jobs share a group (the sweep and its
multirun dir), so W&B draws them together. The swarm statistics are logged against an `epoch`
axis of their own (cells train one after another, so W&B's step cannot be the epoch); the
config is the run's config; the stills are images, the per-cell summary a table, and every file
(figures, video, summary.csv, config) one artifact. `WANDB_MODE=offline` keeps it all in
RUN_DIR/wandb for a later `wandb sync`."""

from __future__ import annotations

import math
import re

from swarmcli.loggers import base

EXIT = {"finished": 0, "failed": 1, "killed": 130}


class WandbLogger:
    def __init__(self, settings, info: base.JobInfo, cfg):
        import wandb
        from omegaconf import OmegaConf

        save_dir = settings.save_dir or str(info.run_dir)
        self.run = wandb.init(
            project=settings.project, entity=settings.entity, mode=settings.mode,
            dir=save_dir, name=settings.name or info.name, group=info.group,
            job_type="multirun-job" if info.group else "run", tags=list(settings.tags) or None,
            config=OmegaConf.to_container(cfg, resolve=True), reinit="create_new",
            settings=wandb.Settings(console="off", silent=True))  # swarm says where
        self.run.define_metric("epoch")
        for series in base.SERIES:
            self.run.define_metric(f"{series}/*", step_metric="epoch")

    def log_cell(self, name: str, labels: dict, epochs: list[int], series: dict) -> None:
        for i, e in enumerate(epochs):
            row = {f"{key}/{name}": float(v[i]) for key, v in series.items()
                   if not math.isnan(v[i])}
            self.run.log({"epoch": e, **row})

    def finish(self, objective, columns, rows, files) -> None:
        import wandb

        if objective is not None and math.isfinite(objective):
            self.run.summary["objective"] = float(objective)
        media = {"summary": wandb.Table(columns=columns, data=rows)}
        for f in files:
            if f.suffix == ".png":
                media[f"figures/{f.stem}"] = wandb.Image(str(f))
        self.run.log(media)
        name = re.sub(r"[^\w.-]", "_", f"swarm-{self.run.id}")
        art = wandb.Artifact(name, type="swarm-run")
        for f in files:
            art.add_file(str(f), name=f"{f.parent.name}/{f.name}" if f.parent.name in
                         ("figures", ".hydra") else f.name)
        self.run.log_artifact(art)
        self.close("finished")

    def close(self, status: str) -> None:
        self.run.finish(exit_code=EXIT.get(status, 1))

    def where(self) -> str:
        return f"W&B run {self.run.id} ({self.run.settings.mode}) in {self.run.dir}"
