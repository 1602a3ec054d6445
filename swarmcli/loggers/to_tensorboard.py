"""`logger=tensorboard`: event files through torch's SummaryWriter (the `tensorboard` package
writes them): the swarm statistics as scalars (`loss/median/width:3 activation:relu`), the config
as text and as HPARAMS (with the run's objective, so a multirun's jobs compare in one table),
every still figure as an image and the per-cell summary as a Markdown table; the CUSTOM SCALARS
tab draws each cell's median inside its inter-quartile band."""

from __future__ import annotations

import math
from pathlib import Path

from swarmcli.loggers import base


class TensorBoardLogger:
    def __init__(self, settings, info: base.JobInfo, cfg):
        from omegaconf import OmegaConf
        from torch.utils.tensorboard import SummaryWriter

        if settings.save_dir:  # a shared folder: one sub-folder per run, grouped by sweep
            group = (info.group or info.sweep).replace(" ", "_")
            self.dir = Path(settings.save_dir) / group / info.run_dir.name
        else:  # the run's own: events of a run it replaces (overwrite=true) would mix in
            self.dir = info.run_dir / "tensorboard"
            for old in self.dir.glob("events.out.tfevents.*"):
                old.unlink()
        self.writer = SummaryWriter(log_dir=str(self.dir))
        self.params = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
                       for k, v in base.flat_params(cfg).items()}
        self.writer.add_text("config", "```\n" + OmegaConf.to_yaml(cfg, resolve=True) + "```")
        self.bands: dict[str, dict] = {}

    def log_cell(self, name: str, labels: dict, epochs: list[int], series: dict) -> None:
        for kind in base.SERIES:  # the band chart: median between the quartiles
            if f"{kind}/median" in series:
                self.bands.setdefault(kind, {})[name] = [
                    "Margin", [f"{kind}/{s}/{name}" for s in ("median", "q25", "q75")]]
        for key, values in series.items():
            for e, v in zip(epochs, values):
                if not math.isnan(v):
                    self.writer.add_scalar(f"{key}/{name}", float(v), e)

    def finish(self, objective, columns, rows, files) -> None:
        from torch.utils.tensorboard.summary import hparams

        w = self.writer
        w.add_text("summary", base.markdown(columns, rows))
        if self.bands:  # CUSTOM SCALARS tab: each cell's median inside its inter-quartile band
            w.add_custom_scalars({f"swarm {kind}": charts for kind, charts in self.bands.items()})
        if objective is not None and math.isfinite(objective):
            for s in hparams(self.params, {"objective": objective}):
                w.file_writer.add_summary(s)
            w.add_scalar("objective", objective, 0)
        for f in files:
            if f.suffix == ".png":
                w.add_image(f"figures/{f.stem}", _rgb(f), dataformats="HWC")
        w.add_text("files", "\n".join(f"- {f}" for f in files))  # videos stay in the run dir
        self.close("finished")

    def close(self, status: str) -> None:
        self.writer.flush()
        self.writer.close()

    def where(self) -> str:
        return f"{self.dir} (tensorboard --logdir {self.dir})"


def _rgb(path: Path):
    import numpy as np
    from matplotlib.image import imread

    img = imread(path)  # float RGB(A) in [0, 1]
    return (np.clip(img[..., :3], 0, 1) * 255).astype(np.uint8)
