"""Stills and animations drawn from a saved run directory only (re-rendering never retrains).

`render_run(run_dir, cfg)` checks every request first (names, sizes, and that the run recorded
what each figure needs), then writes RUN_DIR/figures/*. Needs numpy, matplotlib and
imageio-ffmpeg; never torch or Hydra.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import matplotlib

from swarmcli import results
from swarmcli.errors import SwarmError
from swarmcli.render import data, scenes, stills, video

# the defaults of swarmcli.config.RenderConfig (a test keeps them equal), for callers that
# pass only some keys
DEFAULTS = {"what": ["hive", "loss", "final_loss"], "epochs": [0, -1], "fps": 30,
            "max_seconds": 20.0, "frame_stride": None, "width": 960, "height": 720, "dpi": 100,
            "format": "mp4", "workers": None}

STILLS = {"hive": stills.hive, "loss": stills.loss, "final_loss": stills.final_loss,
          "kinks": stills.kinks, "activations": stills.activations}
ANIMATIONS = {"hive_animation": "hive", "swarm_loss_animation": "swarm_loss",
              "kinks_animation": "kinks"}  # figure -> scene
WHAT = [*STILLS, *ANIMATIONS, "none"]
NEEDS = {"hive": ["ypred"], "hive_animation": ["ypred"], "swarm_loss_animation": ["ypred"],
         "kinks": ["weights", "biases"], "kinks_animation": ["ypred", "weights", "biases"]}
FORMATS = ("mp4", "gif")


def check_config(cfg: dict) -> list[str]:
    """The figures asked for, in order, after checking every render key."""
    what = list(dict.fromkeys(cfg["what"] or []))
    for w in what:
        if w not in WHAT:
            raise SwarmError(f"render.what={w!r} is not one of: {', '.join(WHAT)}")
    if cfg["format"] not in FORMATS:
        raise SwarmError(f"render.format={cfg['format']!r} is not one of: {', '.join(FORMATS)}")
    for key, low in [("fps", 1), ("width", 64), ("height", 64), ("dpi", 10)]:
        v = cfg[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise SwarmError(f"render.{key}={v!r} must be an integer >= {low}")
    for key in ("frame_stride", "workers"):
        v = cfg[key]
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise SwarmError(f"render.{key}={v!r} must be an integer >= 1 or null")
    ms = cfg["max_seconds"]
    if not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms <= 0:
        raise SwarmError(f"render.max_seconds={ms!r} must be a number > 0")
    return [w for w in what if w != "none"]


def check_run(run: results.Run, what: list[str], cfg: dict) -> None:
    """Refuse, before drawing anything, a figure the run lacks the recordings for."""
    if not run.cells:
        raise SwarmError(f"{run.path} has no saved cells to render")
    files = {"ypred": ["ypred"], "weights": ["weights_0"], "biases": ["biases_0"]}
    for w in what:
        need = NEEDS.get(w, [])
        if not all(c.has(f) for c in run.cells for n in need for f in files[n]):
            recorded = run.manifest.get("record", [])
            raise SwarmError(f"{w} needs train.record to include {' and '.join(need)} "
                         f"(this run recorded {recorded})")
    if "activations" in what and not (run.path / "activations.npz").exists():
        raise SwarmError(f"activations needs {run.path / 'activations.npz'}, which this run lacks")
    for e in cfg["epochs"] if any(w in ("hive", "kinks") for w in what) else []:
        try:
            data.frame_index(run, int(e))
        except IndexError as err:
            raise SwarmError(str(err)) from None


def render_run(run_dir, render_cfg: dict, out=sys.stdout) -> list[Path]:
    """Draw the figures named in render_cfg['what'] into RUN_DIR/figures/; print and return
    the paths written."""
    cfg = {**DEFAULTS, **dict(render_cfg)}
    what = check_config(cfg)
    if not what:
        return []
    run = results.load(run_dir)
    check_run(run, what, cfg)
    fig_dir = run.path / "figures"
    fig_dir.mkdir(exist_ok=True)
    written = []
    for w in what:
        for path in _draw(w, run, cfg, fig_dir):
            print(f"wrote {path}", file=out, flush=True)
            written.append(path)
    return written


def _draw(what: str, run: results.Run, cfg: dict, fig_dir: Path):
    if what in STILLS:
        with matplotlib.rc_context(scenes.STYLE):
            yield from STILLS[what](run, cfg, fig_dir)
        return
    scene = ANIMATIONS[what]
    frames = video.select_frames(len(run.frames), cfg["fps"], cfg["max_seconds"],
                                 cfg["frame_stride"])
    for p, page in enumerate(data.pages(run)):
        path = fig_dir / f"{what}{page.name}.{cfg['format']}"
        spec = (scene, str(run.path), cfg, p)
        yield video.write_video(spec, frames, path, cfg["fps"], cfg["format"], cfg["workers"])


__all__ = ["render_run", "WHAT"]
