"""One run per directory: a dir in use is refused naming the pid, a finished run is refused
unless overwrite=true, and a lock left by a killed run is taken over."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from conftest import CLI_TINY

from swarmcli import cli, lock, results

HOLD = ("import sys, time; from swarmcli import lock; lock.acquire(sys.argv[1]); "
        "print('held', flush=True); time.sleep(600)")


def refused(argv, capsys) -> list[str]:
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err.strip().splitlines()


def test_a_dir_in_use_is_refused_naming_the_pid_then_taken_over_after_a_kill(tmp_path, capsys):
    run_dir = tmp_path / "r"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        err = refused(["run", *CLI_TINY, f"hydra.run.dir={run_dir}"], capsys)
        assert len(err) == 1 and err[0].startswith(
            f"swarm: error: {run_dir} is in use by pid {holder.pid} on "), err
        assert sorted(p.name for p in run_dir.iterdir()) == [".swarm.lock"]  # nothing written
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (run_dir / lock.LOCK).exists()  # left behind by the killed holder, but not held
    cli.main(["run", *CLI_TINY, f"hydra.run.dir={run_dir}"])
    assert results.read_manifest(run_dir)["state"] == "complete"
    assert not (run_dir / lock.LOCK).exists()


def test_a_finished_run_is_kept_unless_overwrite(tmp_path, capsys):
    run_dir = tmp_path / "r"
    cli.main(["run", "+sweep.grid.model.width=[2,3,4]", *CLI_TINY, f"hydra.run.dir={run_dir}"])
    config = (run_dir / ".hydra" / "config.yaml").read_text()
    err = refused(["run", *CLI_TINY, "optim.lr=0.5", f"hydra.run.dir={run_dir}"], capsys)
    assert err == [f"swarm: error: {run_dir} already holds a complete run; add overwrite=true "
                   "to replace it, or choose another hydra.run.dir"]
    assert (run_dir / ".hydra" / "config.yaml").read_text() == config  # Hydra wrote nothing
    err = refused(["rerun", str(run_dir), f"hydra.run.dir={run_dir}"], capsys)
    assert "already holds a complete run" in err[0]
    cli.main(["run", *CLI_TINY, "overwrite=true", f"hydra.run.dir={run_dir}"])
    run = results.load(run_dir)
    assert run.state == "complete" and len(run.cells) == 1
    assert sorted(p.name for p in (run_dir / "cells").iterdir()) == ["000"]  # old cells gone


def test_a_damaged_run_is_not_overwritten(tmp_path, capsys):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "swarm.json").write_text("{not json")
    (run_dir / "x.npy").write_bytes(b"mine")
    err = refused(["run", *CLI_TINY, "overwrite=true", f"hydra.run.dir={run_dir}"], capsys)
    assert len(err) == 1 and "swarm.json is damaged" in err[0] and "not replacing it" in err[0]
    assert (run_dir / "x.npy").read_bytes() == b"mine"


def test_holding_is_reentrant_and_the_last_release_removes_the_file(tmp_path):
    d = tmp_path / "d"
    with lock.hold(d):
        with lock.hold(d):
            assert lock.held() == [d.resolve()]
        assert (d / lock.LOCK).read_text().startswith("pid ")
    assert lock.held() == [] and not (d / lock.LOCK).exists()
