"""`swarm` as a user runs it: a real process, from another directory."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import CLI_TINY, swarm

from swarmcli import load

TINY = CLI_TINY


@pytest.fixture(scope="module")
def hive(tmp_path_factory):
    """seed 000's hive, tiny: trained once for the tests that read it."""
    tmp = tmp_path_factory.mktemp("hive")
    proc = swarm("run", "+sweep=width_activation", *TINY, "hydra.run.dir=run", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return tmp / "run", proc


def test_run_writes_a_complete_run_dir(hive):
    run_dir, proc = hive
    run = load(run_dir)
    assert run.state == "complete"
    assert [a["name"] for a in run.axes] == ["model.width", "model.activation"]
    assert len(run.cells) == 9
    cell = run.cell(width=10, activation="tanh")
    assert cell.loss.shape == (2, 6) and cell.ypred.shape == (2, 6, len(run.eval_x)) == (2, 6, 259)
    assert np.isfinite(cell.loss).all()
    rows = (run_dir / "summary.csv").read_text().splitlines()
    assert rows[0] == ("cell,model.width,model.activation,bee,final_loss,best_loss,best_epoch,"
                       "diverged,diverged_epoch,cell_median,cell_median_ci_low,"
                       "cell_median_ci_high,p_vs_best,tied_with_best")
    assert len(rows) == 1 + 9 * 2
    assert (run_dir / ".hydra" / "config.yaml").exists()
    assert f"run dir: {run_dir}" in proc.stdout
    assert "median loss" in proc.stdout and "tanhshrink" in proc.stdout


def test_rerun_is_bit_identical(hive, tmp_path):
    run_dir, _ = hive
    proc = swarm("rerun", str(run_dir), f"hydra.run.dir={tmp_path / 'again'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "bit-identical" in proc.stdout
    a, b = load(run_dir), load(tmp_path / "again")
    np.testing.assert_array_equal(a.cells[4].ypred, b.cells[4].ypred)


def test_rerun_with_override_reports_difference(hive, tmp_path):
    run_dir, _ = hive
    proc = swarm("rerun", str(run_dir), "optim.lr=0.02", f"hydra.run.dir={tmp_path / 'x'}",
                 cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "rerun differs" in proc.stdout


def test_plain_hydra_rerun_from_saved_config(hive, tmp_path):
    run_dir, _ = hive
    proc = swarm("run", "--config-path", str(run_dir / ".hydra"), "--config-name", "config",
                 "hydra.run.dir=again", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    again = load(tmp_path / "again")
    np.testing.assert_array_equal(load(run_dir).cells[0].loss, again.cells[0].loss)


def test_multirun_two_jobs(tmp_path):
    proc = swarm("run", "-m", "+sweep=width_activation", "optim.lr=0.001,0.01", *TINY,
                 "hydra.sweep.dir=multi", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = [load(tmp_path / "multi" / str(i)) for i in range(2)]
    assert all(r.state == "complete" and len(r.cells) == 9 for r in runs)
    assert not np.array_equal(runs[0].cells[8].loss, runs[1].cells[8].loss)


def test_hydra_features_work_through_the_subcommand(tmp_path):
    job = swarm("run", "+sweep=lr_momentum", "--cfg", "job", cwd=tmp_path)
    assert job.returncode == 0 and "lr_momentum" in job.stdout and "momentum:" in job.stdout
    helped = swarm("run", "--help", cwd=tmp_path)
    assert ("sweep: depth_width, early_stopping, gd_mean, init_schemes, lr_momentum, lr_paths, "
            "lr_schedules, moons_activation, optimizer_paths") in helped.stdout
    info = swarm("run", "--info", "config", cwd=tmp_path)
    assert info.returncode == 0 and "Config search path" in info.stdout


def test_user_config_dir(tmp_path):
    own = tmp_path / "mine" / "sweep"
    own.mkdir(parents=True)
    (own / "mine.yaml").write_text("# @package _global_\nsweep:\n  name: mine\n  grid:\n"
                                   "    model:\n      width: [2, 4]\n")
    proc = swarm("run", "--config-dir", str(tmp_path / "mine"), "+sweep=mine", *TINY,
                 "hydra.run.dir=r", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(load(tmp_path / "r").cells) == 2


def test_bash_completion_sees_through_the_subcommand(tmp_path):
    line = "swarm run mod"
    proc = swarm("-sc", "query=bash", cwd=tmp_path,
                 env={"COMP_LINE": line, "COMP_POINT": str(len(line))})
    assert proc.returncode == 0, proc.stderr
    assert "model." in proc.stdout.split()
    install = swarm("run", "-sc", "install=bash", cwd=tmp_path)
    assert "complete -o nospace -o default -F hydra_bash_completion swarm" in install.stdout


def run_in_process(argv: list[str], cwd, capsys, monkeypatch) -> tuple[int, list[str], str]:
    """`swarm ARGV` through cli.main in this process, from `cwd`: (exit status, stderr lines,
    stdout). The exit path itself is checked in a real process below and in test_bad_input."""
    from swarmcli import cli

    monkeypatch.chdir(cwd)
    code = 0
    try:
        cli.main(argv)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.err.strip().splitlines(), out.out


@pytest.mark.parametrize("override, message", [
    ("model.activation=swish", "model.activation='swish' is not one of: relu, tanh, tanhshrink"),
    ("optim.name=lbfgs", "optim.name='lbfgs' is not one of: sgd, adam, adamw, rmsprop"),
    ("target.name=sinc", "target.name='sinc' is not one of: sin, cos, exp, abs, step, noisy_sin"),
    ("+sweep=nope", "Could not find 'sweep/nope'; available: depth_width, early_stopping, "
     "gd_mean, init_schemes"),
    ("model.width=0", "model.width=0 must be an integer >= 1"),
    ("train.epochs=-3", "train.epochs=-3 must be an integer >= 0"),
    ("optim.lr=0", "optim.lr=0.0 must be a number > 0"),
    ("optim.lr=fast", "optim.lr"),
    ("train.device=tpu", "train.device='tpu' is not one of: auto, cpu, cuda"),
    ("hydra.run.dir=/proc/forbidden/run", "cannot write"),
])
def test_bad_input_is_one_line_and_exit_2(override, message, tmp_path, capsys, monkeypatch):
    code, err, _ = run_in_process(["run", *TINY, override], tmp_path, capsys, monkeypatch)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("swarm: error: "), err
    assert message in err[0]
    assert list(tmp_path.iterdir()) == []  # no outputs/DATE/TIME


def test_a_real_process_exits_2_with_one_line_and_no_outputs(tmp_path):
    """The exit path for real, for an error Hydra raises while composing (before any
    pre-flight check): status 2, one line, no traceback, nothing written."""
    proc = swarm("run", *TINY, "+sweep=nope", cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("swarm: error: Could not find 'sweep/nope'"), err
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, capsys, monkeypatch):
    code, err, _ = run_in_process(["run", *TINY, "train.device=cuda"], tmp_path, capsys,
                                  monkeypatch)
    assert code == 2 and len(err) == 1, err
    assert "train.device=cuda but no CUDA device is available" in err[0]


def test_full_error_env_shows_the_traceback(tmp_path):
    proc = swarm("run", *TINY, "model.width=0", cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_recording_too_big_stops_before_training(tmp_path, capsys, monkeypatch):
    code, err, _ = run_in_process(["run", "train.epochs=2000", "train.bees=2000",
                                   "progress=false", "render.what=[none]",
                                   "train.memory_limit_gb=0.5", "hydra.run.dir=r"], tmp_path,
                                  capsys, monkeypatch)
    assert code == 2 and len(err) == 1, err
    assert "raise train.stride (now 1)" in err[0] and "train.bees (now 2000)" in err[0]
    assert not (tmp_path / "r").exists()


def test_unknown_command_and_list(tmp_path, capsys, monkeypatch):
    code, err, _ = run_in_process(["fly"], tmp_path, capsys, monkeypatch)
    assert code == 2 and err == ["swarm: error: unknown command 'fly'; choices: run, rerun, "
                                 "render, collect, report, list"]
    code, _, listed = run_in_process(["list"], tmp_path, capsys, monkeypatch)
    assert code == 0 and "width_activation" in listed and "tanhshrink" in listed


def test_interrupted_run_is_marked(tmp_path, monkeypatch):
    from conftest import compose_config

    from swarmcli import runner
    from swarmcli.engine import loop

    calls = []

    def train_then_stop(group, **kw):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(group, **kw)

    real = loop.train
    monkeypatch.setattr(loop, "train", train_then_stop)
    cfg = compose_config(["+sweep=tiny_nets", "train.epochs=3", "train.bees=2", "progress=false"])
    with pytest.raises(KeyboardInterrupt):
        runner.run(cfg, tmp_path / "r")
    manifest = json.loads((tmp_path / "r" / "swarm.json").read_text())
    assert manifest["state"] == "interrupted"
    with pytest.warns(UserWarning, match="interrupted: 1 of 4 cells saved"):
        run = load(tmp_path / "r")
    assert len(run.cells) == 1
    assert not list((tmp_path / "r").rglob("*.tmp"))
