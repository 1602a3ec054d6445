"""train.threads: `auto` gives tiny batches one thread (more only add overhead) and large ones
every usable core; an integer is taken as given; anything else is a one-line error."""

from __future__ import annotations

import io

import pytest
import torch
from conftest import CLI_TINY, compose_config

from swarmcli import cli, plan, runner


def test_auto_is_one_thread_below_the_threshold_and_every_core_above(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(plan.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert plan.threads("auto", plan.THREADS_WORK / 10) == 1
    assert plan.threads("auto", plan.THREADS_WORK) == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # a SLURM job's cpus_per_task caps it
    assert plan.threads("auto", plan.THREADS_WORK) == 2
    assert plan.threads(3, 1.0) == 3


@pytest.mark.parametrize("setting, expect", [("auto", 1), (2, 2)])
def test_a_run_sets_torch_threads_when_training_starts(setting, expect, tmp_path):
    before = torch.get_num_threads()
    try:
        cfg = compose_config(["train.epochs=2", "train.bees=2", "progress=false",
                              "train.device=cpu", f"train.threads={setting}"])
        out = io.StringIO()
        runner.run(cfg, tmp_path / "r", out=out)
        assert torch.get_num_threads() == expect
        assert f"(cpu, {expect} thread" in out.getvalue()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("value, shown", [("0", "0"), ("abc", "'abc'"), ("1.5", "1.5")])
def test_bad_threads_is_one_line(value, shown, tmp_path, capsys, monkeypatch):
    """In-process, through cli.main (the exit path in a real process: test_bad_input.py)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", *CLI_TINY, f"train.threads={value}"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"swarm: error: train.threads={shown} must be an integer >= 1 (or auto)"]
    assert list(tmp_path.iterdir()) == []
