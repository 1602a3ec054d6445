"""Stopping at any moment leaves a truthful run dir: Ctrl-C, SIGTERM and SIGKILL at random moments
of a real `swarm run`, interrupts placed inside writes, a disk that fills up, and the memory
estimate held against what a run really allocates."""

from __future__ import annotations

import builtins
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CLI_TINY, SWARM, ctrl_c_reaches_it

from swarmcli import cli, results, stops
from swarmcli.results import load_checked, read_manifest

# Two stills after training give every moment, the last included, a second or more of run left,
# so the signals land on a fast machine too.
RUN = ["run", "+sweep=width_activation", "train.bees=30", "train.epochs=300", "progress=false",
       "render.what=[hive,loss]", "render.epochs=[-1]"]


def assert_truthful(run_dir: Path) -> str | None:
    """Nothing claims more than is there: a swarm.json parses, every cell it calls saved loads
    whole, and `complete` means every cell and the summary. Returns the state (None: no run)."""
    if not (run_dir / "swarm.json").exists():
        return None
    m = read_manifest(run_dir)
    load_checked(run_dir)  # every saved cell's arrays open, with the shapes swarm.json implies
    if m["state"] == "complete":
        assert all(c["saved"] for c in m["cells"])
        assert (run_dir / "summary.csv").exists()
    return m["state"]


def start(run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([SWARM, *RUN, f"hydra.run.dir={run_dir}"], cwd=run_dir.parent,
                            preexec_fn=ctrl_c_reaches_it,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def wait_for(proc, path: Path) -> bool:
    """Poll until `path` exists or the process ends (no timing is asserted)."""
    while not path.exists():
        if proc.poll() is not None:
            return False
        time.sleep(0.001)
    return True


# The moments: Hydra and the runner setting up (x, y written), training, a cell being written,
# the summary and the final table.
MOMENTS = [".swarm.lock", "swarm.json", "cells/000", "cells/004", "cells/008", "summary.csv"]


@pytest.mark.slow  # four real processes stopped at random moments (~22 s)
def test_random_interrupts_and_kills_leave_truthful_run_dirs(tmp_path):
    rng = random.Random(20261202)
    plan = [signal.SIGINT] * 2 + [signal.SIGTERM] + [signal.SIGKILL]
    rng.shuffle(plan)
    seen = []
    for trial, sig in enumerate(plan):
        run_dir = tmp_path / f"t{trial}"
        run_dir.parent.mkdir(exist_ok=True)
        moment, delay = rng.choice(MOMENTS), rng.uniform(0, 0.3)
        proc = start(run_dir)
        if wait_for(proc, run_dir / moment):
            time.sleep(delay)
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
        state = assert_truthful(run_dir)
        seen.append((sig.name, moment, proc.returncode, state))
        if proc.returncode == 0:  # finished before the signal
            assert state == "complete"
            continue
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
            continue
        assert proc.returncode == 130, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("swarm: interrupted"), err
        assert not list(run_dir.rglob("*.tmp"))
        assert state != "running"  # the message below is what swarm.json says
        if state is None:  # or a bare "swarm: interrupted" before the dir was claimed
            assert "nothing saved" in lines[0] or lines[0] == "swarm: interrupted"
        else:
            said = "is complete" if state == "complete" else f"is marked {state}"
            assert f"{run_dir} {said}" in lines[0], (lines[0], state)
    print(seen)  # shown with -s: which moments were hit
    assert sum(rc != 0 for _, _, rc, _ in seen) >= 3  # most trials really were stopped


def run_main(argv, capsys) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
        raise SystemExit(0)
    return stop.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("where, state", [
    ("set_state:running", "interrupted"),  # swarm.json written, the runner has no writer yet
    ("save_arrays", "interrupted"),  # while x, y are written
    ("fsync:3", "interrupted"),  # inside a cell's write, after its temporary file is full
    ("set_state:complete", "interrupted"),  # just before swarm.json says complete
    ("print_table", "complete"),  # during the final table
])
def test_an_interrupt_anywhere_is_reported_as_swarm_json_says(where, state, tmp_path,
                                                               monkeypatch, capsys):
    """Interrupts raised where no signal handler could defer them (as in a thread)."""
    from swarmcli import runner

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    name, _, arg = where.partition(":")
    if name == "fsync":
        calls, real_fsync = [], os.fsync

        def fsync(fd):
            calls.append(fd)
            if len(calls) == 7 + int(arg):  # swarm.json, 5 data files, activations, then cell
                raise KeyboardInterrupt  # 0's arrays: the arg-th of them
            real_fsync(fd)

        monkeypatch.setattr(results.os, "fsync", fsync)
    elif name == "set_state":
        real = results.RunWriter.set_state

        def set_state(self, s):
            if s == "running":  # written, then the interrupt: RunWriter() never returns
                real(self, s)
            if s == arg:
                raise KeyboardInterrupt
            real(self, s)

        monkeypatch.setattr(results.RunWriter, "set_state", set_state)
    elif name == "print_table":
        monkeypatch.setattr(runner, "print_table", interrupt)
    else:
        monkeypatch.setattr(results.RunWriter, name, interrupt)
    run_dir = tmp_path / "r"
    code, err = run_main(["run", "+sweep.grid.model.width=[2,3]", *CLI_TINY,
                          f"hydra.run.dir={run_dir}"], capsys)
    assert code == 130 and len(err) == 1, err
    said = "is complete" if state == "complete" else f"is marked {state}"
    assert err[0].startswith(f"swarm: interrupted; {run_dir} {said}"), err
    assert json.loads((run_dir / "swarm.json").read_text())["state"] == state
    assert assert_truthful(run_dir) == state
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / ".swarm.lock").exists()


def test_a_signal_inside_nested_holds_comes_once_the_outer_one_ends(tmp_path):
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    done = []
    try:
        with pytest.raises(KeyboardInterrupt), stops.deferred():
            with stops.deferred():
                os.kill(os.getpid(), signal.SIGINT)
                results.save_array(tmp_path / "a.npy", np.arange(3.0))
            done.append("inner block over, still held")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert done and (tmp_path / "a.npy").exists()


def test_a_signal_during_a_write_waits_for_the_write(tmp_path):
    path = tmp_path / "a.npy"
    data = np.arange(1000.0)
    # Python's own Ctrl-C handler, whatever an earlier in-process test left installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), stops.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            results.save_array(path, data)  # runs to the end although Ctrl-C came first
    finally:
        signal.signal(signal.SIGINT, previous)
    np.testing.assert_array_equal(np.load(path), data)
    assert not list(tmp_path.glob("*.tmp"))


class FullDisk:
    """`open` for results.py whose files take `room` bytes in all, then fail with ENOSPC."""

    def __init__(self, room: int):
        self.room = room

    def __call__(self, path, mode="r", *args, **kwargs):
        f = builtins.open(path, mode, *args, **kwargs)  # noqa: SIM115 (closed by File)
        return self.File(f, self) if "w" in mode else f

    class File:
        def __init__(self, f, disk):
            self.f, self.disk = f, disk

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            n = memoryview(data).nbytes
            if n > self.disk.room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.disk.room -= n
            return self.f.write(data)

        def __getattr__(self, name):  # flush, fileno, tell, seek: the real file's
            return getattr(self.f, name)


@pytest.mark.parametrize("room", [0, 1500, 9000, 40000])
def test_a_full_disk_is_one_line_and_never_complete(room, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(results, "open", FullDisk(room), raising=False)
    run_dir = tmp_path / "r"
    code, err = run_main(["run", "+sweep.grid.model.width=[2,3,4]", *CLI_TINY,
                          "train.epochs=200", f"hydra.run.dir={run_dir}"], capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"swarm: error: cannot write {run_dir}/")
    assert err[0].endswith(": No space left on device")
    state = assert_truthful(run_dir)
    assert state in (None, "running", "failed")  # `running`: swarm.json itself could not change
    assert not list(run_dir.rglob("*.tmp"))


def test_a_cell_file_failing_in_its_background_fsync_is_never_claimed(tmp_path, monkeypatch,
                                                                      capsys):
    """A cell's fsyncs run on the saver thread: a disk error there still ends the run in one
    line naming the file, swarm.json says failed, and that cell is not marked saved."""
    calls, real_fsync = [], os.fsync

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 7 + 2:  # swarm.json, 5 data files, activations, then cell 0's second
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(results.os, "fsync", fsync)
    run_dir = tmp_path / "r"
    code, err = run_main(["run", "+sweep.grid.model.width=[2,3]", *CLI_TINY,
                          f"hydra.run.dir={run_dir}"], capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"swarm: error: cannot write {run_dir}/cells/000/"), err
    assert err[0].endswith(": Input/output error"), err
    m = read_manifest(run_dir)
    assert m["state"] == "failed"
    assert [c["saved"] for c in m["cells"]] == [False, True]  # cell 1's files all landed
    assert assert_truthful(run_dir) == "failed"
    assert not list(run_dir.rglob("*.tmp"))


def a_writer(run_dir: Path, cells: int) -> results.RunWriter:
    """A RunWriter over a bare manifest of `cells` unsaved cells (what these tests look at)."""
    return results.RunWriter(run_dir, {"cells": [{"index": i, "saved": False}
                                                  for i in range(cells)]})


def test_files_waiting_for_the_saver_stay_under_the_cap(tmp_path, monkeypatch):
    """A fast run on a slow disk: past MAX_OPEN files written and not yet fsynced, the next
    cell waits for the oldest, so the open files stay bounded (not one per file of the run)."""
    real_fsync, most = os.fsync, []

    def slow_fsync(fd):
        most.append(len(list(tmp_path.rglob("*.tmp"))))
        time.sleep(0.01)
        real_fsync(fd)

    monkeypatch.setattr(results.os, "fsync", slow_fsync)
    arrays = {f"a{k}": np.arange(10.0) for k in range(3)}
    for cap, bound in ((4, 4 + 3), (1000, None)):
        monkeypatch.setattr(results, "MAX_OPEN", cap)
        most.clear()
        w = a_writer(tmp_path / f"cap{cap}", 12)
        for i in range(12):
            w.save_cell(i, arrays, {})
        w.save_manifest()
        assert all(c["saved"] for c in w.manifest["cells"])
        if bound is not None:
            assert max(most) <= bound, max(most)
        else:
            assert max(most) > 4 + 3  # without the cap they pile up: the test can fail


def test_an_interrupt_as_a_cell_starts_leaves_a_writer_that_can_stop(tmp_path, monkeypatch):
    """Ctrl-C just as a cell's writes begin: the cells before it land and are claimed, the run
    says interrupted, nothing hangs and no .tmp is left."""
    w = a_writer(tmp_path / "r", 2)
    w.save_cell(0, {"loss": np.zeros(3)}, {})
    real = results.stops.deferred

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(results.stops, "deferred", interrupted)
    with pytest.raises(KeyboardInterrupt):
        w.save_cell(1, {"loss": np.zeros(3)}, {})
    monkeypatch.setattr(results.stops, "deferred", real)
    w.stop(KeyboardInterrupt())
    m = json.loads((tmp_path / "r" / results.MANIFEST).read_text())
    assert m["state"] == "interrupted" and [c["saved"] for c in m["cells"]] == [True, False]
    assert not list((tmp_path / "r").rglob("*.tmp"))


def test_ctrl_c_while_a_claim_is_queued_waits_for_it(tmp_path, monkeypatch):
    """SIGINT arriving as claim_saved hands swarm.json to the saver: the claim is tracked, so
    stop() waits for it and its swarm.json never lands over the one saying interrupted."""
    w = a_writer(tmp_path / "r", 1)
    w.save_cell(0, {"loss": np.zeros(3)}, {})
    saver, real_submit = results._saver(), results._saver().submit

    def submit(fn, *a):
        def slow():  # the claim's swarm.json lands late, after the stop
            time.sleep(0.3)
            return fn(*a)
        future = real_submit(slow)
        os.kill(os.getpid(), signal.SIGINT)
        return future

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        monkeypatch.setattr(saver, "submit", submit)
        with pytest.raises(KeyboardInterrupt):
            w.claim_saved()
        monkeypatch.setattr(saver, "submit", real_submit)
        w.stop(KeyboardInterrupt())
    finally:
        signal.signal(signal.SIGINT, previous)
    time.sleep(0.5)  # a claim stop() did not wait for would land by now
    m = json.loads((tmp_path / "r" / results.MANIFEST).read_text())
    assert m["state"] == "interrupted" and m["cells"][0]["saved"]


def tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_real_full_disk(tmp_path):
    disk = tmp_path / "disk"
    if not tmpfs(disk, "300k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        run_dir = disk / "r"
        small = [a for a in RUN if not a.startswith(("train.epochs=", "train.bees="))]
        proc = subprocess.run([SWARM, *small, "train.epochs=50", "train.bees=10",
                               f"hydra.run.dir={run_dir}"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2
        assert proc.stderr == (f"swarm: error: cannot write {run_dir}/cells/000/ypred.npy: "
                               "No space left on device\n")
        assert read_manifest(run_dir)["state"] == "failed"
        assert not list(run_dir.rglob("*.tmp"))
    finally:
        subprocess.run(["umount", str(disk)])


MEASURE = """
import sys, io
from swarmcli import config, runner, memory
def status(key):  # kB figures of /proc/self/status
    line = next(ln for ln in open("/proc/self/status") if ln.startswith(key + ":"))
    return int(line.split()[1]) * 1024
cfg = config.compose(sys.argv[2:])
_, _, plan, device = runner.prepare(cfg)
estimate = max(sum(memory.estimate(cells, device).values()) for cells in plan)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak (VmHWM) starts again from here: imports do not count
before = status("VmRSS")
runner.run(cfg, sys.argv[1], out=io.StringIO())
print(estimate, status("VmHWM") - before)
"""


@pytest.mark.parametrize("overrides", [
    # recordings dominate: ypred, weights and biases of 400 bees every epoch
    ["train.bees=400", "model.width=20", "train.epochs=150", "target.points=101",
     "train.record=[ypred,weights,biases]"],
    # parameters and optimizer state dominate: wide and deep, Adam, one recorded frame
    ["optim=adam", "optim.lr=0.001", "train.bees=20", "model.width=500", "model.depth=2",
     "train.epochs=5", "train.stride=5", "train.record=[weights]", "target.points=20"],
    # activations dominate: many points, on the autograd path (dropout)
    ["train.bees=40", "model.width=200", "target.points=2000", "train.epochs=3",
     "model.dropout=0.1"],
])
@pytest.mark.slow  # a fresh process per case, big enough to measure its peak memory (~6 s each)
def test_the_estimate_bounds_what_a_run_allocates(overrides, tmp_path):
    """Peak resident memory of a fresh process, measured around runner.run after the imports
    and the config, against the estimate: an upper bound, and not a wildly loose one."""
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(tmp_path / "r"), "progress=false",
                           "render.what=[none]", *overrides], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    estimate, grown = map(int, proc.stdout.split())
    assert grown > 20 << 20  # the run is big enough to measure
    assert grown <= estimate <= 10 * grown, (grown, estimate)


def test_the_recording_estimate_covers_what_the_engine_records():
    from conftest import compose_config

    from swarmcli import grid, memory, plan
    from swarmcli.engine import loop

    cfg = compose_config(["train.bees=7", "model.width=9", "train.stride=3", "train.epochs=31",
                          "train.record=[ypred,weights,biases]", "model.dropout=0.2",
                          "target.split.kind=random"])
    cells = grid.expand(cfg)[1]
    res = loop.train(plan.cell_group(cells))
    recorded = sum(a.nbytes for a in [res.loss, res.val_loss, res.ypred, res.ypred_train,
                                      *res.weights, *res.biases])
    assert memory.estimate(cells)["recordings"] >= recorded


@pytest.fixture(scope="module")
def manifest_writes(tmp_path_factory):
    """A run whose every write of swarm.json is seen as it lands: (the manifest written, the
    files on disk at that moment) for each, and the finished run dir."""
    import io

    from conftest import compose_config

    from swarmcli import runner

    run_dir = tmp_path_factory.mktemp("writes") / "r"
    seen, real = [], os.replace

    def replace(src, dst, *a, **k):
        real(src, dst, *a, **k)
        if Path(dst).name == results.MANIFEST:
            on_disk = {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}
            seen.append((json.loads(Path(dst).read_text()), on_disk))

    cfg = compose_config(["+sweep.grid.model.width=[2,3,4]", "train.epochs=4", "train.bees=2",
                          "progress=false", "train.record=[ypred,weights,biases]",
                          "target.split.kind=random"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(results.os, "replace", replace)
        runner.run(cfg, run_dir, out=io.StringIO())
    final = {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}
    return seen, final


def cell_files(files: set[str], index: int) -> set[str]:
    return {f for f in files if f.startswith(f"cells/{index:03d}/")}


def test_swarm_json_says_complete_only_once_every_array_and_the_summary_exist(manifest_writes):
    seen, final = manifest_writes
    assert [m["state"] for m, _ in seen][::len(seen) - 1] == ["running", "complete"]
    for m, on_disk in seen:
        if m["state"] == "complete":
            assert final - {".swarm.lock"} <= on_disk, final - on_disk
            assert "summary.csv" in on_disk


def test_a_cell_is_marked_saved_only_once_its_arrays_are_written(manifest_writes):
    seen, final = manifest_writes
    saved_at = {}
    for k, (m, on_disk) in enumerate(seen):
        for c in m["cells"]:
            if c["saved"]:
                saved_at.setdefault(c["index"], k)
                want = cell_files(final, c["index"])
                assert len(want) >= 8 and want <= on_disk, (c["index"], want - on_disk)
    assert sorted(saved_at) == [0, 1, 2]
    # one group of three cells: one write of swarm.json claims them, before the one that says
    # complete (a write per cell made a 100-cell group rewrite it 100 times)
    assert len(set(saved_at.values())) == 1 and max(saved_at.values()) < len(seen) - 1


def test_sigterm_stops_like_ctrl_c_and_the_report_ignores_both():
    handlers = stops.terminate_as_interrupt()
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at the next bytecode; never reached
        stops.ignore_signals()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        stops.restore(handlers)


def test_interrupted_by_follows_causes_and_contexts_and_ends_on_a_cycle():
    import threading

    inner, outer = KeyboardInterrupt(), AttributeError("cleanup failed")
    outer.__context__ = inner
    assert stops.interrupted_by(outer) and not stops.interrupted_by(ValueError())
    a, b = ValueError("a"), TypeError("b")
    a.__context__, b.__cause__ = b, a  # a cycle, as re-raised exceptions can make
    answer = []
    t = threading.Thread(target=lambda: answer.append(stops.interrupted_by(a)), daemon=True)
    t.start()
    t.join(10)
    assert answer == [False]  # answered, not looping forever


def test_a_default_action_signal_held_off_is_delivered_after_the_write():
    """SIGTERM at its default action inside deferred(): the block finishes, then the process
    dies of the signal, as it would have without the hold."""
    code = ("import os, signal, sys\nfrom swarmcli import stops\n"
            "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
            "with stops.deferred():\n    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    print('block done', flush=True)\nprint('after', flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == -signal.SIGTERM and proc.stdout == "block done\n", proc
