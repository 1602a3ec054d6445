"""Animations: a scene's frames as raw RGBA straight from the Agg canvas into ffmpeg, rendered
by blitting and split across processes; a timeline that keeps every video between
render.min_seconds and render.max_seconds; GIFs from one palette made of sample frames.

Why this is fast (benchmarks/render_bench.py measures it against FuncAnimation.save):
the static parts (axes, ticks, target, points) are drawn once and saved as a background; each
frame restores it and draws only the moving artists (one LineCollection per panel, not one
Line2D per bee); frames go to ffmpeg as bytes, never through PNG; each worker process renders a
contiguous chunk of frames into its own H.264 segment, and the segments are joined without
re-encoding.

Why Ctrl-C is quiet: ffmpeg runs in its own session with its stderr in a file, so the terminal's
SIGINT never reaches it and it never prints; worker processes ignore SIGINT and stop at the next
frame when the parent says so; everything is written in a temporary directory next to the target
and only a finished file is renamed into place.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import imageio_ffmpeg
import matplotlib

from swarmcli import stops
from swarmcli.render import boundaries, scenes, style, unit_fields, units
from swarmcli.results import load

# every animated scene, by name
SCENES = {**scenes.SCENES, **boundaries.SCENES, **units.SCENES, **unit_fields.SCENES}
MIN_FRAMES_PER_WORKER = 24  # below this, starting a process costs more than it saves
HOLD_SECONDS = 1.0  # the last frame stays this long, so a looping video shows where it ended
MIN_FPS = 5.0  # a slowed-down short run repeats frames rather than go below this
# GIF frames cost ~30x the bytes of H.264 ones (each is a whole LZW image of what changed), so
# a GIF is the light version: at most GIF_FPS and GIF_MAX_FRAMES distinct frames, GIF_COLORS
# colours (a figure has few: white, greys, ten bee colours and their anti-aliasing). Seed 000's
# hive: 151 frames at 256 colours = 5.7 MB; 51 frames at 64 colours = 1.6 MB, same look.
GIF_FPS = 15.0
GIF_MAX_FRAMES = 60
GIF_COLORS = 64
PALETTE_SAMPLES = 16  # frames the GIF palette is made from


@dataclass(frozen=True)
class Timeline:
    """Which recorded frame each video frame shows, and the video's frame rate."""

    frames: list[int]
    fps: float

    @property
    def seconds(self) -> float:
        return len(self.frames) / self.fps


def timeline(n: int, fps: float, min_seconds: float, max_seconds: float,
             frame_stride: int | None = None, max_frames: int | None = None) -> Timeline:
    """Recorded frames 0..n-1 as a video of min_seconds to max_seconds (HOLD_SECONDS of it on
    the last frame). Long runs are sub-sampled (every frame_stride-th frame if set); short runs
    play slower, down to MIN_FPS, then each frame is repeated, so 9 recorded epochs do not
    flash by in 0.3 s. max_frames caps the distinct frames shown (GIFs)."""
    hold = min(HOLD_SECONDS, max_seconds / 10)
    cap = max(1, math.floor(fps * (max_seconds - hold)))
    if max_frames:
        cap = min(cap, max(2, max_frames - 1))  # the last frame is added after striding
    stride = frame_stride or max(1, math.ceil(n / cap))
    picked = list(range(0, n, stride))
    if picked[-1] != n - 1:
        picked.append(n - 1)
    rate, repeat = float(fps), 1
    slow = max(0.0, min_seconds - hold)
    if len(picked) < fps * slow:
        rate = len(picked) / slow
        if rate < MIN_FPS:
            repeat = math.ceil(MIN_FPS / rate)
            rate *= repeat
    frames = [f for f in picked for _ in range(repeat)]
    frames += [picked[-1]] * math.ceil(hold * rate - 1e-9)
    return Timeline(frames, rate)


class SceneRef(NamedTuple):
    """Which scene to draw, as plain data a worker process can rebuild it from."""

    scene: str  # a name in SCENES
    run_dir: str
    cfg: dict  # the render config
    page: int


class FrameSource:
    """A scene drawn once, its background kept; `frame(i)` is frame i's RGBA bytes."""

    def __init__(self, ref: SceneRef):
        name, run_dir, cfg, page = ref
        with matplotlib.rc_context(style.RC):
            self.scene = SCENES[name](load(run_dir), cfg, page, animated=True)
            canvas = self.scene.fig.canvas
            canvas.draw()
            self.background = canvas.copy_from_bbox(self.scene.fig.bbox)
        self.size = canvas.get_width_height()
        self.shown = None

    def frame(self, i: int) -> memoryview:
        fig = self.scene.fig
        if i != self.shown:  # a held frame is the same bytes: no redraw
            fig.canvas.restore_region(self.background)
            self.scene.update(i)
            for artist in self.scene.movers:
                fig.draw_artist(artist)
            self.shown = i
        return fig.canvas.buffer_rgba()


class Encoder:
    """ffmpeg reading raw RGBA frames on stdin: H.264 yuv420p MP4, a GIF through a given
    palette, or a palette from the frames. Own session: the terminal's Ctrl-C never reaches it;
    its messages go to a file and become the error if it fails."""

    def __init__(self, path: str, size: tuple[int, int], fps: float, fmt: str,
                 palette: str | None = None):
        w, h = size
        rate = Fraction(fps).limit_denominator(1000)
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo",
               "-pix_fmt", "rgba", "-s", f"{w}x{h}", "-framerate", f"{rate}", "-i", "-"]
        if fmt == "palette":  # one palette from sample frames; "full": every sample counts
            cmd += ["-vf", f"palettegen=stats_mode=full:max_colors={GIF_COLORS}",
                    "-frames:v", "1", "-update", "1"]
        elif fmt == "gif":  # no dithering: dither noise differs frame to frame, and costs bytes
            cmd += ["-i", palette, "-lavfi", "[0:v][1:v]paletteuse=dither=none:diff_mode=rectangle",
                    "-f", "gif"]
        else:
            cmd += ["-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "20",
                    "-preset", "veryfast", "-movflags", "+faststart", "-f", "mp4"]
        self.path = path
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close/kill)
        self.proc = subprocess.Popen([*cmd, path], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=self.log,
                                     start_new_session=True)

    def write(self, frame) -> None:
        try:
            self.proc.stdin.write(frame)
        except BrokenPipeError:
            self.close()  # raises with ffmpeg's own message
            raise

    def close(self) -> None:
        """Finish the file; raise with ffmpeg's message if it failed."""
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        rc = self.proc.wait()
        self.log.seek(0)
        message = self.log.read().decode(errors="replace").strip()
        self.log.close()
        if rc != 0 or not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            raise RuntimeError(f"ffmpeg failed writing {self.path}: "
                               f"{message.splitlines()[-1] if message else f'exit {rc}'}")

    def kill(self) -> None:
        """Stop at once (interrupted): nothing is finished, nothing is printed."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


class Stopped(Exception):
    """A worker was told to stop (the parent was interrupted)."""


_stop = None  # in a worker: the parent's "stop now" event
_done = None  # in a worker: frames written so far, over all workers (the progress bar)


def quiet_worker() -> None:
    """In a render worker process: the parent handles Ctrl-C and tells us; its
    pool.terminate() sends SIGTERM: die quietly, whatever handler was inherited (the CLI turns
    SIGTERM into KeyboardInterrupt, which would print a worker's traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _worker_init(stop, done) -> None:
    global _stop, _done
    quiet_worker()
    _stop, _done = stop, done


def write_segment(ref: SceneRef, frames: list[int], path: str, fps: float, fmt: str,
                  palette: str | None = None, src: FrameSource | None = None,
                  progress=None) -> str:
    """Render `frames` of a scene into one video file; stops early (Stopped) when told to."""
    src = src or FrameSource(ref)
    if _stop is not None and _stop.is_set():
        raise Stopped
    enc = Encoder(path, src.size, fps, fmt, palette)
    try:
        for i in frames:
            if _stop is not None and _stop.is_set():
                raise Stopped
            enc.write(src.frame(i))
            if _done is not None:
                with _done.get_lock():
                    _done.value += 1
            if progress is not None:
                progress.update(1)
    except BaseException:
        enc.kill()
        raise
    enc.close()
    return path


def make_palette(src: FrameSource, frames: list[int], path: str) -> str:
    """A 256-colour palette from up to PALETTE_SAMPLES frames spread over the video, shared by
    every frame (a palette per frame costs bytes and flickers)."""
    distinct = list(dict.fromkeys(frames))
    k = min(PALETTE_SAMPLES, len(distinct))
    picks = [distinct[round(j * (len(distinct) - 1) / max(k - 1, 1))] for j in range(k)]
    enc = Encoder(path, src.size, 1, "palette")
    try:
        for i in dict.fromkeys(picks):
            enc.write(src.frame(i))
    except BaseException:
        enc.kill()
        raise
    enc.close()
    return path


def concat(parts: list[str], path: str) -> None:
    """Join H.264 segments without re-encoding (ffmpeg's concat demuxer)."""
    listing = Path(parts[0]).with_name("parts.txt")
    # names relative to the listing, so quotes or spaces in the run dir's path don't matter
    listing.write_text("".join(f"file '{Path(p).name}'\n" for p in parts))
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "concat", "-safe", "0",
           "-i", str(listing), "-c", "copy", "-movflags", "+faststart", path]
    done = subprocess.run(cmd, capture_output=True, text=True, start_new_session=True)
    if done.returncode != 0 or not os.path.exists(path) or os.path.getsize(path) == 0:
        raise RuntimeError(f"ffmpeg failed joining segments into {path}: "
                           f"{done.stderr.strip()[-300:]}")


def workers_for(requested: int | None, n_frames: int, fmt: str) -> int:
    # a GIF is one segment (its frames go through one palette and one encoder)
    if fmt == "gif":
        return 1
    return max(1, min(requested or cpu_cores(), n_frames // MIN_FRAMES_PER_WORKER))


def cpu_cores() -> int:
    """Cores this process may run on."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


def progress_bar(total: int, name: str):
    """A frame counter on stderr, only on a terminal and only once a render passes a second."""
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="frame", file=sys.stderr, leave=False, delay=1.0,
                disable=not sys.stderr.isatty())


def write_video(ref: SceneRef, tl: Timeline, path: Path, fmt: str,
                workers: int | None = None) -> Path:
    """Render a scene's timeline to `path` in `workers` processes. Written in a temporary
    directory beside `path` and renamed when whole; an interrupt leaves nothing behind."""
    n = workers_for(workers, len(tl.frames), fmt)
    # named before it exists, so an interrupt at any point finds it to remove
    tmp = str(path.with_name(f".{path.stem}.{os.getpid()}.tmp"))
    out = os.path.join(tmp, f"video.{fmt}")
    try:
        os.mkdir(tmp)
        with progress_bar(len(tl.frames), path.name) as bar:
            if n == 1:
                src = FrameSource(ref)
                palette = (make_palette(src, tl.frames, os.path.join(tmp, "palette.png"))
                           if fmt == "gif" else None)
                write_segment(ref, tl.frames, out, tl.fps, fmt, palette, src, bar)
            else:
                _parallel(ref, tl, tmp, out, fmt, n, bar)
        os.replace(out, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _parallel(ref, tl: Timeline, tmp: str, out: str, fmt: str, n: int, bar) -> None:
    frames = tl.frames
    chunks = [frames[k * len(frames) // n:(k + 1) * len(frames) // n] for k in range(n)]
    parts = [os.path.join(tmp, f"part{k:03d}.{fmt}") for k in range(n)]
    # fork: workers start at once, with matplotlib already imported; elsewhere spawn
    ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
    stop, done = ctx.Event(), ctx.Value("i", 0)
    with stops.deferred():  # workers forked meanwhile ignore Ctrl-C until _worker_init
        pool = ctx.Pool(n, initializer=_worker_init, initargs=(stop, done))
    result = None
    try:
        result = pool.starmap_async(write_segment, [(ref, ch, p, tl.fps, fmt)
                                                    for ch, p in zip(chunks, parts)])
        while not result.ready():
            result.wait(0.2)
            bar.update(done.value - bar.n)
        result.get()
    except BaseException:
        stop.set()  # workers kill their ffmpeg at the next frame and return
        if result is not None:
            result.wait(2.0)  # let workers close their ffmpeg; terminate() takes the rest
        raise
    finally:
        pool.terminate()
        pool.join()
    concat(parts, out)
