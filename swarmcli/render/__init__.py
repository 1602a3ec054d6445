"""Stills and animations drawn from a saved run directory only (re-rendering never retrains).

`render_run(run_dir, cfg)` checks every request first (names, sizes, and that the run recorded
what each figure needs), then writes RUN_DIR/figures/*. Needs numpy, matplotlib and
imageio-ffmpeg; never torch or Hydra.
"""

from __future__ import annotations

import dataclasses
import io
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import matplotlib

from swarmcli import choices, results, stops
from swarmcli.checks import check_choice, check_number
from swarmcli.config import RenderConfig
from swarmcli.errors import SwarmError
from swarmcli.render import boundaries, data, scenes, stills, style, unit_fields, units, video

# for callers that pass only some keys: the schema's own defaults (its one owner)
DEFAULTS = dataclasses.asdict(RenderConfig())

STILLS = {"hive": stills.hive, "loss": stills.loss, "compare": stills.compare,
          "final_loss": stills.final_loss, "kinks": stills.kinks,
          "activations": stills.activations, "units": units.stills}
ANIMATIONS = {"hive_animation": "hive", "swarm_loss_animation": "swarm_loss",
              "kinks_animation": "kinks", "units_animation": "units"}  # figure -> scene
WHAT = choices.RENDER_WHAT  # one owner: completion reads the names without matplotlib
NEEDS = {"hive": ["ypred"], "hive_animation": ["ypred"], "swarm_loss_animation": ["ypred"],
         "kinks": ["weights", "biases"], "kinks_animation": ["ypred", "weights", "biases"],
         "units": ["weights", "biases"], "units_animation": ["weights", "biases"]}
FORMATS = choices.RENDER_FORMATS
# Budgets, checked before anything is allocated. A frame buffer is width x height x 4 bytes and
# a render holds a few (canvas, blitting background, the copy piped to ffmpeg); 512 MiB is
# about 11600 x 11600 px, far past any screen. An animation draws and encodes frames x pixels;
# 5e10 is ~13,000 frames of 1920 x 1080, over an hour of drawing on a laptop.
MAX_FRAME_BYTES = 512 * 2**20
MAX_PIXEL_FRAMES = 5e10
MAX_SIDE = 2**16 - 1  # matplotlib's Agg canvas refuses larger


def check_config(cfg: dict) -> list[str]:
    """The figures asked for, in order, after checking every render key and the canvas
    budget."""
    what = list(dict.fromkeys(cfg["what"] or []))
    for w in what:
        check_choice("render.what", w, WHAT)
    check_choice("render.format", cfg["format"], FORMATS)
    for key, low in [("fps", 1), ("width", 64), ("height", 64), ("dpi", 10)]:
        check_number(f"render.{key}", cfg[key], low=low, integer=True)
    for key in ("frame_stride", "workers"):
        check_number(f"render.{key}", cfg[key], low=1, integer=True, none_ok=True)
    check_number("render.min_seconds", cfg["min_seconds"], low=0)
    check_number("render.max_seconds", cfg["max_seconds"], low=0, low_open=True)
    if cfg["min_seconds"] > cfg["max_seconds"]:
        raise SwarmError(f"render.min_seconds={cfg['min_seconds']!r} is more than "
                         f"render.max_seconds={cfg['max_seconds']!r}")
    w, h = cfg["width"], cfg["height"]
    if w * h * 4 > MAX_FRAME_BYTES:
        raise SwarmError(f"render.width={w} x render.height={h} needs ~{gib(w * h * 4)} per "
                         f"frame buffer, more than the {gib(MAX_FRAME_BYTES)} limit; lower "
                         f"render.width/height")
    for key in ("width", "height"):
        if cfg[key] > MAX_SIDE:
            raise SwarmError(f"render.{key}={cfg[key]} is more than matplotlib's limit of "
                             f"{MAX_SIDE} pixels; lower render.{key}")
    return [w for w in what if w != "none"]


def gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB" if n >= 2**30 else f"{n / 2**20:.3g} MiB"


def check_run(run: results.Run, what: list[str], cfg: dict) -> None:
    """Refuse, before drawing anything, a figure the run lacks the recordings for, or an
    animation past the frames x pixels budget."""
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
    for e in cfg["epochs"] if any(w in ("hive", "kinks", "units") for w in what) else []:
        try:
            data.frame_index(run, int(e))
        except IndexError as err:
            raise SwarmError(str(err)) from None
    if any(w in ANIMATIONS for w in what):
        frames = len(timeline(run, cfg).frames)
        w, h = style.even(cfg["width"]), style.even(cfg["height"])
        if frames * w * h > MAX_PIXEL_FRAMES:
            raise SwarmError(
                f"an animation of {frames} frames x {w} x {h} pixels = {frames * w * h:.3g} "
                f"pixels to draw is more than the {MAX_PIXEL_FRAMES:.3g} limit; raise "
                f"render.frame_stride, or lower render.max_seconds, render.fps or "
                f"render.width/height")


def timeline(run: results.Run, cfg: dict) -> video.Timeline:
    """The frames an animation of this run shows, and at what rate (GIFs: fewer, slower)."""
    gif = cfg["format"] == "gif"
    return video.timeline(len(run.frames), min(cfg["fps"], video.GIF_FPS) if gif else cfg["fps"],
                          cfg["min_seconds"], cfg["max_seconds"], cfg["frame_stride"],
                          max_frames=video.GIF_MAX_FRAMES if gif else None)


def render_run(run_dir, render_cfg: dict, out=sys.stdout) -> list[Path]:
    """Draw the figures named in render_cfg['what'] into RUN_DIR/figures/; print and return
    the paths written."""
    cfg = {**DEFAULTS, **dict(render_cfg)}
    what = check_config(cfg)
    if not what:
        return []
    run = results.load(run_dir)
    if run.manifest.get("task", "regression") == "landscape":
        from swarmcli.render import landscape
        (run.path / "figures").mkdir(exist_ok=True)
        return landscape.render(run, what, cfg, run.path / "figures", out, save_png)
    check_run(run, what, cfg)
    fig_dir = run.path / "figures"
    fig_dir.mkdir(exist_ok=True)
    if run.task == "classification":
        return _in_order(what, {}, lambda w: _draw_classification(w, run, cfg, fig_dir, out), out)
    stills = [w for w in what if w in STILLS]
    cores = cfg["workers"] or video.cpu_cores()
    if cores < 2 or not stills or len(what) < 2:  # nothing to draw side by side
        return _in_order(what, {}, lambda w: _draw(w, run, cfg, fig_dir), out)
    # the stills in a pool of processes while this one drives the animations (whose own
    # workers draw their frames): the default hive's renders took 11.4 s one after another
    # on 2 cores (benchmarks/README.md, "Rendering side by side")
    ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
    pool = None
    try:
        with stops.deferred():  # workers forked meanwhile ignore Ctrl-C until their set-up
            pool = ProcessPoolExecutor(min(len(stills), cores), mp_context=ctx,
                                       initializer=video.quiet_worker)
            jobs = {w: pool.submit(_still_job, w, str(run.path), cfg) for w in stills}
        return _in_order(what, jobs, lambda w: _draw(w, run, cfg, fig_dir), out)
    except BaseException:
        _stop_now(pool)  # a still cut short leaves only its .tmp, removed here
        for w in stills:
            for tmp in fig_dir.glob(f".{w}*.png.tmp"):
                tmp.unlink(missing_ok=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _stop_now(pool) -> None:
    """End a stills pool's workers at once (Ctrl-C, a failed figure): the executor itself
    would let each finish its figure first."""
    if pool is None:
        return
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in workers:
        proc.terminate()
    for proc in workers:
        proc.join()


def _in_order(what: list[str], jobs: dict, draw, out) -> list[Path]:
    """Draw here, in turn, each figure not in `jobs` (figure -> Future of its paths), and
    print each "wrote" line in the order asked for, as soon as it and those before it are
    done."""
    written: list[Path] = []
    drawn: dict[str, list[Path]] = {}
    k = 0  # what[:k] printed

    def wrote(path: Path) -> None:
        print(f"wrote {path}", file=out, flush=True)
        written.append(path)

    def emit(wait: bool) -> None:  # what is done, up to the first figure that is not
        nonlocal k
        while k < len(what):
            w = what[k]
            if w in jobs and (wait or jobs[w].done()):
                try:
                    paths = jobs[w].result()
                except BrokenProcessPool:
                    left = [x for x in what[k:] if x in jobs]
                    raise RuntimeError(f"a process drawing the stills died (killed, or out of "
                                       f"memory?); not drawn: {', '.join(left)}") from None
            elif w in drawn:
                paths = drawn[w]
            else:
                return
            for path in paths:
                wrote(path)
            k += 1

    for i, w in enumerate(what):
        if w in jobs:
            continue
        emit(wait=False)
        now, drawn_here = k == i, []  # everything before it printed: say each path at once
        for path in draw(w):
            if now:
                wrote(path)
            else:
                drawn_here.append(path)
        drawn[w] = drawn_here
        k += now
        emit(wait=False)
    emit(wait=True)
    return written


def _still_job(what: str, run_dir: str, cfg: dict) -> list[Path]:
    """One still figure, in a worker process of `render_run`'s pool."""
    run = results.load(run_dir)
    return list(_draw(what, run, cfg, run.path / "figures"))


def figures(run: results.Run, what: str, cfg: dict):
    """(file name, Figure) of each still `what` draws, one at a time (a scene reuses its
    figure: look at or save each before taking the next)."""
    cfg = {**DEFAULTS, **dict(cfg)}
    with matplotlib.rc_context(style.RC):
        yield from STILLS[what](run, cfg)


def animation_scenes(run: results.Run, what: str, cfg: dict):
    """(file name, Scene) of each page of animation `what`, built as the video builds it."""
    cfg = {**DEFAULTS, **dict(cfg)}
    for p, page in enumerate(data.pages(run, scenes.aspect(cfg))):
        with matplotlib.rc_context(style.RC):
            sc = video.SCENES[ANIMATIONS[what]](run, cfg, p, animated=True)
        yield f"{what}{page.name}.{cfg['format']}", sc


def _draw(what: str, run: results.Run, cfg: dict, fig_dir: Path):
    if what in STILLS:
        for name, fig in figures(run, what, cfg):
            yield save_png(fig, fig_dir / name)
        return
    tl = timeline(run, cfg)
    for p, page in enumerate(data.pages(run, scenes.aspect(cfg))):
        path = fig_dir / f"{what}{page.name}.{cfg['format']}"
        ref = video.SceneRef(ANIMATIONS[what], str(run.path), cfg, p)
        yield video.write_video(ref, tl, path, cfg["format"], cfg["workers"])


def _draw_classification(what: str, run: results.Run, cfg: dict, fig_dir: Path, out):
    """A classification run's figures (render/boundaries.py): hive -> decision boundaries,
    hive_animation -> their video, loss -> accuracy bands, final_loss -> final accuracies;
    units, units_animation -> the per-unit fields (render/unit_fields.py) of each cell with
    one hidden layer; the regression-only figures are skipped, saying so."""
    if what in ("units", "units_animation"):
        for line in unit_fields.skip_lines(run, what):
            print(line, file=out)
    if what == "units":
        with matplotlib.rc_context(style.RC):
            for name, fig in unit_fields.stills(run, cfg):
                yield save_png(fig, fig_dir / name)
    elif what == "units_animation":
        tl = timeline(run, cfg)
        for i, cell in enumerate(unit_fields.cells_drawn(run)[0]):
            path = fig_dir / f"units_animation{unit_fields.suffix(run, cell)}.{cfg['format']}"
            ref = video.SceneRef("unit_fields", str(run.path), cfg, i)
            yield video.write_video(ref, tl, path, cfg["format"], cfg["workers"])
    elif what in boundaries.STILLS:
        with matplotlib.rc_context(style.RC):
            for name, fig in boundaries.STILLS[what](run, cfg):
                yield save_png(fig, fig_dir / name)
    elif what == "hive_animation":
        tl = timeline(run, cfg)
        for p, page in enumerate(data.pages(run, scenes.aspect(cfg))):
            path = fig_dir / f"boundaries{page.name}.{cfg['format']}"
            ref = video.SceneRef("boundaries", str(run.path), cfg, p)
            yield video.write_video(ref, tl, path, cfg["format"], cfg["workers"])
    else:
        print(f"render.what={what} is not drawn for a classification run (drawn: "
              f"{', '.join(boundaries.WHAT)})", file=out)


def save_png(fig, path: Path) -> Path:
    """Render in memory, write to a temporary name and rename: a figure is never half-written,
    and an interrupt leaves no temporary file."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


__all__ = ["render_run", "figures", "animation_scenes", "WHAT"]
