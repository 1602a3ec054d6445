"""Rendering: stills and animations drawn from saved runs only, at the asked pixel size."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import matplotlib.image
import numpy as np
import pytest
from conftest import SWARM, ctrl_c_reaches_it, swarm

from swarmcli import cli, results
from swarmcli.config import SwarmError
from swarmcli.render import DEFAULTS, WHAT, data, render_run, scenes, video

# 241 rounds to an even 240; 10 fps keeps the held end of each test video short
SMALL = {"width": 320, "height": 241, "dpi": 50, "min_seconds": 0, "fps": 10}
HOLD = 10  # frames: the last frame is held for 1 s at 10 fps


def render(run_dir, **cfg):
    out = io.StringIO()
    paths = render_run(run_dir, {**DEFAULTS, **SMALL, **cfg}, out=out)
    assert out.getvalue().splitlines() == [f"wrote {p}" for p in paths]
    return paths


def assert_picture(path: Path, size=(320, 240)) -> None:
    """A PNG of exactly `size` pixels with something drawn on it."""
    img = matplotlib.image.imread(path)
    assert img.shape[:2] == (size[1], size[0]), path
    assert img[..., :3].std() > 0.05, f"{path} looks blank"


def read_video(path: Path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return meta, np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])


def test_rendering_imports_neither_hydra_nor_torch():
    """render takes its defaults from the schema's RenderConfig (their one owner) without
    loading Hydra, OmegaConf or torch: re-rendering stays light."""
    code = ("import sys; import swarmcli.render; "
            "print(sorted(m for m in ('torch', 'hydra', 'omegaconf') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc


def test_stills_have_the_asked_size_and_are_not_blank(tiny_run):
    run_dir = tiny_run("+sweep=width_activation", "train.epochs=8")
    paths = render(run_dir, what=["hive", "loss", "final_loss", "activations"], epochs=[0, -1])
    assert [p.name for p in paths] == ["hive_epoch0000.png", "hive_epoch0008.png", "loss.png",
                                       "final_loss.png", "activations.png"]
    for p in paths:
        assert_picture(p)
    assert sorted(p.name for p in (run_dir / "figures").iterdir()) == sorted(
        p.name for p in paths)  # no temporary files left behind
    first, last = (matplotlib.image.imread(p) for p in paths[:2])
    assert np.abs(first - last).mean() > 0.002  # the bees moved between epoch 0 and 8


def test_hive_animation_shows_every_recorded_epoch_then_holds_the_last(tiny_run):
    run_dir = tiny_run("+sweep=width_activation", "train.epochs=8")
    (path,) = render(run_dir, what=["hive_animation"], fps=12, min_seconds=0)
    meta, frames = read_video(path)
    assert path.name == "hive_animation.mp4"
    assert frames.shape == (9 + 12, 240, 320, 3)  # epochs 0..8, then epoch 8 for 1 s
    assert meta["fps"] == 12
    assert frames.std() > 10
    assert np.abs(frames[0].astype(int) - frames[8]).mean() > 0.3  # it moves
    moved = np.abs(np.diff(frames[:9].astype(int), axis=0)).mean(axis=(1, 2, 3))
    held = np.abs(frames[9:].astype(int) - frames[8]).mean(axis=(1, 2, 3))
    assert held.max() < moved.min() / 3, (held, moved)  # the end stays (up to H.264 noise)
    # video frame i is the scene drawn at recorded frame i, not its neighbour
    src = video.FrameSource(
        video.SceneRef("hive", str(run_dir), {**DEFAULTS, **SMALL, "fps": 12}, 0))
    drawn = np.stack([np.array(src.frame(i))[..., :3] for i in range(9)]).astype(np.int16)
    dist = np.abs(frames[:9, None].astype(np.int16) - drawn[None]).mean(axis=(2, 3, 4))
    assert (dist.argmin(axis=1) == np.arange(9)).all(), dist


def test_each_hive_frame_draws_the_predictions_of_its_own_epoch(tiny_run):
    """Frame k of an animation (any order, as workers and held frames ask for them) draws every
    bee's ypred of frame k on the dense grid, diverged bees left out."""
    run_dir = tiny_run("+sweep.grid.model.width=[2,8]", "model.activation=relu", "optim.lr=0.3",
                       "train.epochs=10", "train.stride=2")
    run = results.load(run_dir)
    cfg = {**DEFAULTS, **SMALL}
    page = data.pages(run, scenes.aspect(cfg))[0]
    src = video.FrameSource(video.SceneRef("hive", str(run_dir), cfg, 0))
    axes, drawn_gone = src.scene.fig.axes, 0
    for k in [3, 0, 5, 5, 1, 4, 2]:
        src.frame(k)
        for (r, c), cell in page.cells.items():
            segs = axes[r * page.cols + c].collections[-1].get_segments()
            gone = data.diverged_by(cell, int(run.frames[k]))
            for bee, seg in enumerate(segs):
                if gone[bee]:  # all NaN: nothing drawn
                    assert seg.size == 0 or np.isnan(seg[:, 1]).all()
                    continue
                np.testing.assert_array_equal(seg[:, 1], cell.ypred[bee, k])
                # (and frame k's curve is not its neighbour's: an off-by-one would show)
                assert k == 0 or not np.array_equal(cell.ypred[bee, k], cell.ypred[bee, k - 1])
                np.testing.assert_array_equal(seg[:, 0], run.eval_x)
            drawn_gone += int(gone.sum())
    assert drawn_gone > 0  # the lr diverges some relu bees: their curves must go


@pytest.mark.parametrize("n, fps, lo, hi, stride, picked, rate", [
    (9, 30, 0.0, 20.0, None, list(range(9)), 30),
    (9, 30, 0.0, 20.0, 3, [0, 3, 6, 8], 30),
    (9, 10, 0.0, 0.7, None, [0, 2, 4, 6, 8], 10),  # 0.63 s of motion: every 2nd, and the last
    (501, 30, 0.0, 10.0, None, list(range(0, 501, 2)), 30),
    (151, 30, 8.0, 20.0, None, list(range(151)), 151 / 7),  # slowed to 7 s + 1 s held
])
def test_videos_last_between_min_and_max_seconds(n, fps, lo, hi, stride, picked, rate):
    tl = video.timeline(n, fps, lo, hi, stride)
    hold = min(1.0, hi / 10)
    assert tl.frames[:len(picked)] == picked
    assert set(tl.frames[len(picked):]) == {n - 1}  # the end, held
    assert tl.fps == pytest.approx(rate)
    assert lo <= tl.seconds <= hi + 1 / tl.fps
    assert tl.seconds - len(picked) / tl.fps == pytest.approx(hold, abs=1 / tl.fps)


@pytest.mark.parametrize("n", [1, 2, 9, 40, 151, 401, 501, 5001, 100001])
def test_every_run_length_gives_a_video_of_8_to_20_seconds(n):
    tl = video.timeline(n, 30, 8.0, 20.0)
    assert 8.0 <= tl.seconds <= 20.0
    assert tl.frames[0] == 0 and tl.frames[-1] == n - 1
    assert tl.frames == sorted(tl.frames)
    assert video.MIN_FPS <= tl.fps <= 30


def test_a_short_run_repeats_frames_rather_than_play_below_min_fps():
    tl = video.timeline(9, 30, 8.0, 20.0)
    assert tl.fps >= video.MIN_FPS
    assert [tl.frames.count(f) for f in range(8)] == [4] * 8  # evenly held, not jerky


def test_frames_split_across_processes_join_in_order(tiny_run, monkeypatch):
    run_dir = tiny_run("+sweep=width_activation", "train.epochs=12", "optim.lr=0.05")
    (one,) = render(run_dir, what=["hive_animation"], workers=1)
    _, serial = read_video(one)
    monkeypatch.setattr(video, "MIN_FRAMES_PER_WORKER", 4)
    assert video.workers_for(3, 13, "mp4") == 3
    (three,) = render(run_dir, what=["hive_animation"], workers=3)
    _, split = read_video(three)
    assert split.shape == serial.shape == (13 + HOLD, 240, 320, 3)
    dist = np.abs(split[:13, None].astype(np.int16) - serial[None, :13]).mean(axis=(2, 3, 4))
    assert (dist.argmin(axis=1) == np.arange(13)).all()  # frame i is frame i, in order


def test_gif(tiny_run):
    run_dir = tiny_run("+sweep=width_activation", "train.epochs=5")
    (path,) = render(run_dir, what=["hive_animation"], format="gif", fps=30)
    assert path.read_bytes()[:6] == b"GIF89a"
    _, frames = read_video(path)
    assert frames.shape == (6 + 15, 240, 320, 3)  # GIFs play at most 15 fps: 1 s held is 15


def test_kinks_of_seed_002(tiny_run):
    run_dir = tiny_run("+sweep=weight_distribution", "train.bees=4")
    paths = render(run_dir, what=["kinks", "kinks_animation"], epochs=[-1])
    assert [p.name for p in paths] == ["kinks_epoch0006.png", "kinks_animation.mp4"]
    assert_picture(paths[0])
    _, frames = read_video(paths[1])
    assert frames.shape == (7 + HOLD, 240, 320, 3)
    run = results.load(run_dir)
    counts, edges, outside = data.kink_counts(run, run.cells[0])
    assert counts.shape == (7, 100) and edges[0] == pytest.approx(-3 * np.pi)
    assert (counts.sum(1) + outside == 4 * 20).all()  # every unit of every bee, once


def test_turning_points_of_sin_are_its_peaks_and_troughs():
    x = np.linspace(-3 * np.pi, 3 * np.pi, 2001)
    tp = data.turning_points(x, np.sin(x))
    np.testing.assert_allclose(tp, np.pi * np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]),
                               atol=0.01)


def test_swarm_loss_animation_of_seed_001(tiny_run):
    run_dir = tiny_run("+sweep=tiny_nets", "train.epochs=40", "train.stride=10")
    (path,) = render(run_dir, what=["swarm_loss_animation"])
    _, frames = read_video(path)
    assert frames.shape == (5 + HOLD, 240, 320, 3)  # epochs 0, 10, 20, 30, 40


def test_a_third_axis_gives_one_page_per_value(tiny_run):
    run_dir = tiny_run("+sweep.grid.model.width=[1,2]", "+sweep.grid.model.activation=[relu,tanh]",
                       "+sweep.grid.optim.lr=[0.01,0.02]")
    names = [p.name for p in render(run_dir, what=["hive"], epochs=[-1])]
    assert names == ["hive_lr=0.01_epoch0006.png", "hive_lr=0.02_epoch0006.png"]


def test_epochs_count_back_from_the_last_recorded_frame(tiny_run):
    run = results.load(tiny_run("train.epochs=50", "train.stride=10"))
    assert [data.frame_index(run, e) for e in (0, 14, 50, -1, -2)] == [0, 1, 5, 5, 4]
    with pytest.raises(SwarmError, match=r"render.epochs=60 is past the last recorded epoch 50"):
        render(run.path, what=["hive"], epochs=[0, 60])


def test_diverged_bees_are_left_out_and_counted(tiny_run):
    # lr=1: every relu and tanhshrink bee diverges within 8 epochs, no tanh bee does
    run_dir = tiny_run("+sweep=width_activation", "optim.lr=1", "train.epochs=8")
    run = results.load(run_dir)
    div = {c.labels["model.activation"]: np.asarray(c.diverged_epoch) for c in run.cells}
    assert (div["relu"] >= 0).all() and (div["tanh"] == -1).all()
    cell = run.cell(width=1, activation="relu")
    first = int(cell.diverged_epoch.min())
    y = data.ypred_at(run, cell, first)
    gone = np.asarray(cell.diverged_epoch) == first
    assert np.isnan(y[gone]).all() and np.isfinite(y[~gone]).all()
    sc = scenes.hive(run, {**DEFAULTS, **SMALL})
    sc.update(0)
    assert diverged_notes(sc.fig) == []
    sc.update(8)
    assert diverged_notes(sc.fig) == ["3 diverged"] * 6  # the relu and tanhshrink panels
    for p in render(run_dir, what=["hive", "loss", "final_loss", "hive_animation"]):
        if p.suffix == ".png":
            assert_picture(p)
        else:
            assert read_video(p)[1].shape == (9 + HOLD, 240, 320, 3)


def diverged_notes(fig) -> list[str]:
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    return [t for t in texts if "diverged" in t]


def test_a_run_where_every_bee_diverged_still_renders(tiny_run):
    run_dir = tiny_run("optim.lr=100")
    assert (np.asarray(results.load(run_dir).cells[0].diverged_epoch) >= 0).all()
    for p in render(run_dir, what=["hive", "loss", "final_loss"]):
        assert_picture(p)


@pytest.mark.parametrize("what, record, message", [
    ("kinks", "[ypred]", "kinks needs train.record to include weights and biases"),
    ("hive_animation", "[]", "hive_animation needs train.record to include ypred"),
])
def test_a_figure_the_run_did_not_record_for_is_refused_first(tiny_run, what, record, message):
    run_dir = tiny_run(f"train.record={record}", "render.what=[none]")  # trains: draws later
    with pytest.raises(SwarmError, match=message):
        render(run_dir, what=["loss", what])
    assert not (run_dir / "figures").exists()  # refused before drawing anything


def test_stills_drawn_side_by_side_are_the_ones_drawn_in_turn(tiny_run, tmp_path):
    """With more than one process, the stills are drawn in a pool while this process drives
    the animation: the same files, byte for byte, and the "wrote" lines in the order asked."""
    import shutil

    run_dir = tiny_run("+sweep.grid.model.width=[1,3]", "train.epochs=4")
    what = ["hive", "hive_animation", "loss", "final_loss"]
    one = render(run_dir, what=what, workers=1, epochs=[0, -1])
    shutil.copytree(run_dir / "figures", tmp_path / "one")
    two = render(run_dir, what=what, workers=2, epochs=[0, -1])
    assert one == two and [p.name for p in two] == [
        "hive_epoch0000.png", "hive_epoch0004.png", "hive_animation.mp4", "loss.png",
        "final_loss.png"]
    for p in two:
        if p.suffix == ".png":
            assert p.read_bytes() == (tmp_path / "one" / p.name).read_bytes(), p.name
    assert sorted(q.name for q in (run_dir / "figures").iterdir()) == sorted(p.name for p in two)


def test_a_still_that_fails_in_the_pool_fails_the_render_in_its_own_words(tiny_run,
                                                                         monkeypatch):
    import swarmcli.render as render_pkg

    def broken(run, cfg):
        raise SwarmError("loss cannot be drawn")
        yield  # a generator, as the stills are

    run_dir = tiny_run("train.epochs=4")
    monkeypatch.setitem(render_pkg.STILLS, "loss", broken)  # the fork inherits it
    with pytest.raises(SwarmError, match="loss cannot be drawn"):
        render(run_dir, what=["hive", "loss"], workers=2)
    assert not list((run_dir / "figures").glob(".*"))


def test_a_still_whose_process_dies_fails_the_render_naming_what_is_missing(tiny_run, monkeypatch):
    """A worker killed mid-figure (the OOM killer, a crash): the render stops with a line
    naming the figures not drawn, rather than waiting for them for ever."""
    import os
    import signal

    import swarmcli.render as render_pkg

    def killed(run, cfg):
        os.kill(os.getpid(), signal.SIGKILL)
        yield

    run_dir = tiny_run("train.epochs=4")
    monkeypatch.setitem(render_pkg.STILLS, "loss", killed)  # the fork inherits it
    with pytest.raises(RuntimeError, match="a process drawing the stills died .*; not drawn: "
                                           ".*loss"):
        render(run_dir, what=["hive", "loss"], workers=2)
    assert not list((run_dir / "figures").glob(".*"))


def test_none_renders_nothing(tiny_run):
    run_dir = tiny_run()
    assert render(run_dir, what=["none"]) == [] and render(run_dir, what=[]) == []
    assert not (run_dir / "figures").exists()


@pytest.mark.slow  # a fresh `swarm render` process and a fresh Python (~11 s)
def test_swarm_render_in_a_new_process(tiny_run):
    """After training is over and its process gone: re-render from the files, as a user would,
    without torch or Hydra in the rendering process."""
    run_dir = tiny_run("+sweep=width_activation")
    done = swarm("render", str(run_dir), "what=[hive,loss,hive_animation]", "epochs=[0,-1]",
                 "fps=30", "format=gif", "width=320", "height=240")
    assert done.returncode == 0, done.stderr
    wrote = [Path(line.split(" ", 1)[1]).name for line in done.stdout.splitlines()]
    assert wrote == ["hive_epoch0000.png", "hive_epoch0006.png", "loss.png",
                     "hive_animation.gif"]
    code = ("import sys; from swarmcli.render import render_run; "
            f"render_run({str(run_dir)!r}, {{'what': ['final_loss']}}); "
            "print(sorted(m for m in ('torch', 'hydra') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_bad_what_exits_2_with_one_line_naming_the_choices(tiny_run, capsys):
    run_dir = tiny_run()
    with pytest.raises(SystemExit) as exit_:
        cli.main(["render", str(run_dir), "what=[hive,bogus]"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (f"swarm: error: render.what='bogus' is not one of: "
                                       f"{', '.join(WHAT)}\n")
    assert not (run_dir / "figures").exists()  # checked before drawing anything


def test_a_canvas_past_the_memory_budget_is_refused_in_one_line(tiny_run, capsys):
    run_dir = tiny_run()
    with pytest.raises(SystemExit) as exit_:
        cli.main(["render", str(run_dir), "width=100000", "height=100000"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "swarm: error: render.width=100000 x render.height=100000 needs ~37.3 GiB per frame "
        "buffer, more than the 512 MiB limit; lower render.width/height\n")
    with pytest.raises(SwarmError, match=r"render.width=70000 is more than matplotlib's limit"):
        render(run_dir, what=["hive"], width=70000, height=100)
    assert not (run_dir / "figures").exists()  # refused before drawing anything


def test_an_animation_past_the_frames_x_pixels_budget_is_refused_first(tiny_run, monkeypatch):
    import swarmcli.render as render_pkg

    run_dir = tiny_run("train.epochs=8")
    monkeypatch.setattr(render_pkg, "MAX_PIXEL_FRAMES", 320 * 240 * 20)
    with pytest.raises(SwarmError, match=r"an animation of 39 frames x 320 x 240 pixels = "
                                         r"3e\+06 pixels to draw is more than the 1.54e\+06 "
                                         r"limit; raise render.frame_stride"):
        render(run_dir, what=["hive", "hive_animation"], fps=30)  # 9 epochs + 30 held frames
    assert not (run_dir / "figures").exists()
    assert render(run_dir, what=["hive_animation"], fps=30, max_seconds=0.6)  # 18: fits


def test_ctrl_c_while_rendering_leaves_no_trace_and_prints_one_line(tiny_run):
    """SIGINT to the whole process group, as a terminal sends it, in the middle of a
    two-process video: no traceback, no ffmpeg message, no file left behind."""
    import glob
    import os
    import signal
    import time

    run_dir = tiny_run("+sweep=width_activation", "train.epochs=150")
    # a 20 s video (600 frames): the signal lands mid-video even on a busy machine
    proc = subprocess.Popen([SWARM, "render", str(run_dir), "what=[hive,hive_animation]",
                             "workers=2", "width=640", "height=480", "min_seconds=20",
                             "max_seconds=20"], preexec_fn=ctrl_c_reaches_it,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    start = time.monotonic()
    while not glob.glob(str(run_dir / "figures" / ".hive_animation.*")):
        assert proc.poll() is None and time.monotonic() - start < 120, proc.communicate()
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in out + err and "ffmpeg" not in (out + err).lower()
    assert len(err.strip().splitlines()) == 1 and err.startswith("swarm: interrupted")
    # the stills drawn (side by side with the video) before the stop, each whole; no video,
    # no temporary file
    left = sorted(p.name for p in (run_dir / "figures").iterdir())
    assert set(left) <= {"hive_epoch0000.png", "hive_epoch0150.png"}, left
    for name in left:
        assert (run_dir / "figures" / name).read_bytes().endswith(b"IEND\xaeB`\x82"), name


def test_a_run_without_a_dense_grid_renders_against_its_x(tiny_run):
    """Runs from before eval_x.npy (ypred at the training x only) still render."""
    run_dir = tiny_run("+sweep=width_activation", "target.eval_points=0")
    assert not (run_dir / "eval_x.npy").exists()
    run = results.load(run_dir)
    assert run.cells[0].ypred.shape[-1] == len(run.x)
    for p in render(run_dir, what=["hive", "hive_animation"], epochs=[-1]):
        if p.suffix == ".png":
            assert_picture(p)


def test_the_hive_draws_every_bee_on_the_dense_grid(tiny_run):
    run = results.load(tiny_run("+sweep=width_activation"))
    assert len(run.eval_x) > len(run.x)
    sc = scenes.hive(run, {**DEFAULTS, **SMALL})
    sc.update(0)
    segs = sc.fig.axes[0].collections[-1].get_segments()
    assert len(segs) == 3 and np.array_equal(segs[0][:, 0], run.eval_x)


def test_the_progress_bar_shows_only_on_a_terminal_and_after_a_second(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    with video.progress_bar(10, "hive_animation.mp4") as bar:
        assert not bar.disable and bar.delay == 1.0
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with video.progress_bar(10, "hive_animation.mp4") as bar:
        assert bar.disable


def test_render_workers_ignore_ctrl_c_and_die_quietly_when_terminated():
    """The parent handles Ctrl-C; pool.terminate()'s SIGTERM must not run an inherited handler
    (the CLI's turns it into KeyboardInterrupt: a traceback from every worker)."""
    import signal

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, lambda *_: None)  # as the CLI installs one
    try:
        video._worker_init(None, None)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def test_loss_limits_hold_the_lowest_loss_and_every_initial_one():
    a = np.array([[1.0, 0.5, 0.02, np.inf], [3.0, 0.1, 0.05, 0.04]])
    b = np.array([[2.0, 1e-3, 0.0, 0.0]])  # an exact zero is nudged up, not -inf on a log axis
    lo, hi = data.loss_limits([a, b])
    assert 0 < lo < 1e-3 and hi > 3.0
    lo, hi = data.loss_limits([a])
    assert lo < 0.02 <= 0.04 and hi > 3.0 and hi >= 10 * lo
    assert data.loss_limits([np.full((2, 3), np.nan)]) == (1e-3, 1.0)


def test_two_axes_give_rows_by_the_first_and_columns_by_the_second(tiny_run):
    run = results.load(tiny_run("+sweep.grid.model.width=[1,2]",
                                "+sweep.grid.model.activation=[relu,tanh,sigmoid]"))
    (page,) = data.pages(run)
    assert (page.rows, page.cols) == (2, 3)
    assert page.row_labels == ["width=1", "width=2"]
    assert page.col_labels == ["activation=relu", "activation=tanh", "activation=sigmoid"]
    assert page.cells[(1, 2)] is run.cell(width=2, activation="sigmoid")
