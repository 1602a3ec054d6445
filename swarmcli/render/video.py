"""Animations: a scene's frames as raw RGBA straight from the Agg canvas into ffmpeg
(imageio-ffmpeg), rendered by blitting and split across processes.

Why this is fast (benchmarks/render_bench.py measures it against FuncAnimation.save):
the static parts (axes, ticks, target, points) are drawn once and saved as a background; each
frame restores it and draws only the moving artists (one LineCollection per panel, not one
Line2D per bee); frames go to ffmpeg as bytes, never through PNG; each worker process renders a
contiguous chunk of frames into its own H.264 segment, and the segments are joined without
re-encoding.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import imageio_ffmpeg
import matplotlib

from swarmcli.render import scenes
from swarmcli.results import load

MIN_FRAMES_PER_WORKER = 24  # below this, starting a process costs more than it saves


def select_frames(n: int, fps: float, max_seconds: float, frame_stride: int | None) -> list[int]:
    """Recorded frames to show: every frame_stride-th, or sub-sampled to fit max_seconds at fps;
    the last frame is always shown."""
    stride = frame_stride or max(1, math.ceil(n / max(1, int(fps * max_seconds))))
    picked = list(range(0, n, stride))
    return picked if picked[-1] == n - 1 else picked + [n - 1]


class FrameSource:
    """A scene drawn once, its background kept; `frame(i)` is frame i's RGBA bytes."""

    def __init__(self, spec: tuple):
        name, run_dir, cfg, page = spec
        with matplotlib.rc_context(scenes.STYLE):
            self.scene = scenes.SCENES[name](load(run_dir), cfg, page, animated=True)
            canvas = self.scene.fig.canvas
            canvas.draw()
            self.background = canvas.copy_from_bbox(self.scene.fig.bbox)
        self.size = canvas.get_width_height()

    def frame(self, i: int) -> memoryview:
        fig = self.scene.fig
        fig.canvas.restore_region(self.background)
        self.scene.update(i)
        for artist in self.scene.movers:
            fig.draw_artist(artist)
        return fig.canvas.buffer_rgba()


def writer(path: Path, size: tuple[int, int], fps: float, fmt: str):
    """An imageio-ffmpeg frame writer: H.264 yuv420p MP4, or a GIF with a palette made from
    the frames themselves (ffmpeg's default GIF palette bands the faint lines)."""
    if fmt == "gif":
        kw = {"codec": "gif", "pix_fmt_out": "pal8", "quality": None, "output_params": [
            "-filter_complex", "split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse"]}
    else:
        kw = {"codec": "libx264", "pix_fmt_out": "yuv420p", "quality": None,
              "output_params": ["-crf", "20", "-preset", "veryfast", "-movflags", "+faststart"]}
    gen = imageio_ffmpeg.write_frames(str(path), size, pix_fmt_in="rgba", fps=fps,
                                      macro_block_size=2, ffmpeg_log_level="error", **kw)
    gen.send(None)
    return gen


def write_segment(spec: tuple, frames: list[int], path: str, fps: float, fmt: str) -> str:
    """Render `frames` of a scene into one video file (runs in a worker process)."""
    src = FrameSource(spec)
    gen = writer(Path(path), src.size, fps, fmt)
    for i in frames:
        gen.send(src.frame(i))
    gen.close()
    check_written(path)
    return path


def check_written(path) -> None:
    # write_frames does not report ffmpeg failures; an empty or missing file is one
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        raise RuntimeError(f"ffmpeg wrote nothing to {path}")


def concat(parts: list[str], path: Path) -> None:
    """Join H.264 segments without re-encoding (ffmpeg's concat demuxer)."""
    listing = Path(parts[0]).with_name("parts.txt")
    # names relative to the listing, so quotes or spaces in the run dir's path don't matter
    listing.write_text("".join(f"file '{Path(p).name}'\n" for p in parts))
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "concat", "-safe", "0",
           "-i", str(listing), "-c", "copy", "-movflags", "+faststart", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    check_written(path)


def workers_for(requested: int | None, n_frames: int, fmt: str) -> int:
    # a GIF's palette is made from all its frames, so it is one segment
    if fmt == "gif":
        return 1
    return max(1, min(requested or cpu_cores(), n_frames // MIN_FRAMES_PER_WORKER))


def cpu_cores() -> int:
    """Cores this process may run on."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


def write_video(spec: tuple, frames: list[int], path: Path, fps: float, fmt: str,
                workers: int | None = None) -> Path:
    """Render a scene's frames to `path` (atomically), in `workers` processes."""
    n = workers_for(workers, len(frames), fmt)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.stem}.") as tmp:
        out = os.path.join(tmp, f"video.{fmt}")
        if n == 1:
            write_segment(spec, frames, out, fps, fmt)
        else:
            chunks = [frames[k * len(frames) // n:(k + 1) * len(frames) // n] for k in range(n)]
            parts = [os.path.join(tmp, f"part{k:03d}.{fmt}") for k in range(n)]
            # fork: workers start at once, with matplotlib already imported; elsewhere spawn
            ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
            with ctx.Pool(n) as pool:
                pool.starmap(write_segment, [(spec, ch, p, fps, fmt)
                                             for ch, p in zip(chunks, parts)])
            concat(parts, Path(out))
        os.replace(out, path)
    return path
