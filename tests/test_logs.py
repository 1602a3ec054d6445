"""A run's swarm.log holds what its terminal showed; a multirun job's output names the job and
comes as one block; a sweeper's set-up chatter stays off the terminal."""

from __future__ import annotations

import re

import pytest
from conftest import CLI_TINY, swarm

LOG_LINE = re.compile(r"^\[[\d\- :,]+\]\[swarmcli\]\[INFO\] - (.*)$")


def logged(log_text: str) -> list[str]:
    """The printed lines a swarm.log holds, without Hydra's prefix."""
    return [m.group(1) for m in map(LOG_LINE.match, log_text.splitlines()) if m]


def test_a_single_runs_log_holds_what_the_terminal_showed(tmp_path):
    p = swarm("run", "+sweep=width_activation", *CLI_TINY, "hydra.run.dir=r", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    shown = p.stdout.splitlines()
    assert shown[0].startswith("width") and "median loss" in shown[0]
    assert shown[-3].startswith("trained 18 bees x 5 epochs in ") and "thread" in shown[-3]
    assert shown[-2] == f"report: {tmp_path / 'r' / 'report.html'}"
    assert shown[-1] == f"run dir: {tmp_path / 'r'}"
    assert logged((tmp_path / "r" / "swarm.log").read_text()) == shown


@pytest.mark.slow  # a two-job multirun in a real process (~6 s)
def test_each_multirun_job_names_its_overrides_and_logs_its_own_lines(tmp_path):
    p = swarm("run", "-m", "optim.lr=0.01,0.02", *CLI_TINY, "hydra.sweep.dir=m", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    ours = [ln for ln in p.stdout.splitlines() if not ln.startswith("[")]  # not Hydra's lines
    for job, lr in ((0, "0.01"), (1, "0.02")):
        start = next(i for i, ln in enumerate(ours) if ln.startswith(f"job {job}: "))
        end = ours.index(f"run dir: {tmp_path / 'm' / str(job)}", start)
        block = ours[start:end + 1]
        assert f"optim.lr={lr}" in block[0].split() and "train.bees=2" in block[0].split()
        assert block[1].startswith("median loss") and block[-3].startswith("trained 2 bees")
        assert block[-2] == f"report: {tmp_path / 'm' / str(job) / 'report.html'}"
        assert not any(ln.startswith("job ") for ln in block[1:])  # one job's lines together
        assert logged((tmp_path / "m" / str(job) / "swarm.log").read_text()) == block


@pytest.mark.slow
def test_optuna_sets_up_quietly_and_without_escape_codes(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    p = swarm("run", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
              "hydra.sweep.dir=o", *CLI_TINY,
              "optim.lr=tag(log, interval(0.001, 0.3))", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    both = p.stdout + p.stderr
    assert "\x1b[" not in both
    for noise in ("A new study created", "setup plugin alembic"):
        assert noise not in both
    assert "job 1: optim.lr=" in p.stdout and "Best value" in p.stdout
