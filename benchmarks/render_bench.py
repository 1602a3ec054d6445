"""Animation rendering: swarm's renderer against the way research code does it, side by side.

Baseline: `matplotlib.animation.FuncAnimation(...).save()` with one Line2D per bee (and one bar
per histogram bin), redrawing the whole figure every frame, through matplotlib's ffmpeg writer.
Ours: `swarmcli.render.render_run`: static parts drawn once, one LineCollection per panel,
blitting, raw RGBA to imageio-ffmpeg, frames split across processes (one H.264 segment each,
joined without re-encoding). Also measured: ours in one process, and the other way to split
the work (workers send raw frames back to one ffmpeg in the parent).

Same content, size (960x720 at 100 dpi), fps (30) and frames for every contender. The input
runs are trained with the real trainer (seed 000: width x activation, 3x3 cells x 10 bees,
150 epochs; seed 002: 500 bees, 400 epochs, with the -b/w kink histogram).

    python benchmarks/render_bench.py [--runs DIR] [--only hive|kinks] [--frames N] [--repeat N]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import matplotlib
import numpy as np

matplotlib.use("Agg")

from swarmcli.render import DEFAULTS, data, render_run, video  # noqa: E402
from swarmcli.results import load  # noqa: E402

CASES = {"hive": ("width_activation", "hive_animation", "hive"),
         "kinks": ("weight_distribution", "kinks_animation", "kinks")}


def train(sweep: str, run_dir: Path) -> None:
    """The benchmark's input run, from the real trainer (imports torch; rendering does not)."""
    from swarmcli import config, runner

    cfg = config.compose([f"+sweep={sweep}", "progress=false"])
    runner.run(cfg, run_dir, out=io.StringIO())


def baseline(run_dir: Path, case: str, frames: list[int], path: Path) -> None:
    """What research code does: FuncAnimation over a figure of Line2D per bee, saved by
    matplotlib's FFMpegWriter."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    plt.rcParams["animation.ffmpeg_path"] = imageio_ffmpeg.get_ffmpeg_exe()
    run = load(run_dir)
    x, tx, ty = run.x, run.load("target_x"), run.load("target_y")
    fig = plt.figure(figsize=(9.6, 7.2), dpi=100)
    title = fig.suptitle("")
    if case == "hive":
        page = data.pages(run)[0]
        axs = fig.subplots(page.rows, page.cols, sharex=True, sharey=True, squeeze=False)
        panels = [(axs[rc], page.cells[rc]) for rc in page.cells]
    else:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
        panels = [(top, run.cells[0])]
        counts, edges, _ = data.kink_counts(run, run.cells[0])
        bars = bottom.bar(edges[:-1], counts[0], width=np.diff(edges), align="edge")
        bottom.set_ylim(0, counts.max() * 1.08)
    lines = []
    for ax, cell in panels:
        ax.plot(tx, ty, color="0.65")
        ax.scatter(x, run.y, s=4, color="k")
        ax.set_ylim(*data.y_limits(run))
        yp = np.asarray(cell.ypred)
        style = data.bee_style(yp.shape[0])
        alpha, colors = style["alpha"], style["colors"]
        ex = run.eval_x  # where ypred was evaluated (the dense grid)
        lines.append((yp, [ax.plot(ex, yp[b, 0], color=colors[b % len(colors)], alpha=alpha)[0]
                           for b in range(yp.shape[0])]))

    def update(f):
        for yp, bees in lines:
            for b, line in enumerate(bees):
                line.set_ydata(yp[b, f])
        if case == "kinks":
            for bar, h in zip(bars, counts[f]):
                bar.set_height(h)
        title.set_text(f"epoch {run.frames[f]}")

    FuncAnimation(fig, update, frames=frames, cache_frame_data=False).save(
        str(path), writer="ffmpeg", fps=30, dpi=100)
    plt.close(fig)


def ours(run_dir: Path, what: str, workers: int | None) -> None:
    # every recorded frame once, as the baseline draws: no slow-down, no held last frame
    video.HOLD_SECONDS = 0.0
    render_run(run_dir, {**DEFAULTS, "what": [what], "frame_stride": 1, "min_seconds": 0,
                         "workers": workers}, out=io.StringIO())


_source = None


def _init(spec):
    global _source
    _source = video.FrameSource(spec)


def _chunk(frames):
    return [bytes(_source.frame(i)) for i in frames]


def raw_to_parent(run_dir: Path, scene: str, frames: list[int], path: Path, workers: int):
    """The alternative split: workers render frames, the parent writes them to one ffmpeg."""
    spec = (scene, str(run_dir), DEFAULTS, 0)
    size = (DEFAULTS["width"], DEFAULTS["height"])
    enc = video.Encoder(str(path), size, 30, "mp4")
    chunks = [frames[i:i + 8] for i in range(0, len(frames), 8)]
    with mp.get_context("fork").Pool(workers, _init, (spec,)) as pool:
        for block in pool.imap(_chunk, chunks):
            for frame in block:
                enc.write(frame)
    enc.close()


def timed(fn, *args, repeat: int = 1) -> float:
    """Best of `repeat` wall times: other work on the machine only ever adds time."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, help="dir for (or with) the trained input runs")
    p.add_argument("--only", choices=list(CASES))
    p.add_argument("--frames", type=int, help="use only the first N frames (quick check)")
    p.add_argument("--repeat", type=int, default=1, help="best of N timings per renderer")
    args = p.parse_args()
    runs = args.runs or Path(tempfile.mkdtemp(prefix="render_bench_"))
    cores = video.cpu_cores()
    rows = []
    for case, (sweep, what, scene) in CASES.items():
        if args.only and case != args.only:
            continue
        run_dir = runs / sweep
        if not (run_dir / "swarm.json").exists():
            print(f"training {sweep} into {run_dir} ...", file=sys.stderr)
            train(sweep, run_dir)
        run = load(run_dir)
        frames = list(range(len(run.frames)))[: args.frames]
        if args.frames:  # a truncated copy of the run, so that `ours` renders the same frames
            run_dir = truncated(run_dir, runs / f"{sweep}_first{args.frames}", args.frames)
        n = len(frames)
        bees = run.cells[0].info["bees"]
        label = f"{case}: {len(run.cells)} cells x {bees} bees, {n} frames"
        with tempfile.TemporaryDirectory() as tmp:
            r = args.repeat
            t_base = timed(baseline, run_dir, case, frames, Path(tmp) / "base.mp4", repeat=r)
            t_one = timed(ours, run_dir, what, 1, repeat=r)
            t_raw = timed(raw_to_parent, run_dir, scene, frames, Path(tmp) / "raw.mp4", cores,
                          repeat=r)
            t_all = timed(ours, run_dir, what, None, repeat=r)
        for name, t in [("FuncAnimation.save (baseline)", t_base), ("swarm, 1 process", t_one),
                        (f"swarm, {cores} procs, raw frames to parent", t_raw),
                        (f"swarm, {cores} procs, segments (default)", t_all)]:
            rows.append((label, name, n / t, t_base / t))
    load_avg = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\n{cores} cores, load average now {load_avg} (other work on the machine skews "
          "the parallel rows most)")
    print(f"{'case':44} {'renderer':40} {'fps':>7} {'x base':>7}")
    for label, name, fps, ratio in rows:
        print(f"{label:44} {name:40} {fps:7.1f} {ratio:7.2f}")


def truncated(src: Path, dst: Path, n: int) -> Path:
    """A copy of a run keeping only its first n recorded frames."""
    import shutil

    from swarmcli import results

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("figures"))
    m = results.read_manifest(dst)
    m["frames"] = m["frames"][:n]
    results.save_json(dst / results.MANIFEST, m)
    for f in dst.glob("cells/*/*.npy"):
        if f.stem.startswith(("ypred", "weights", "biases")):
            np.save(f, np.load(f)[:, :n])
    return dst


if __name__ == "__main__":
    main()
