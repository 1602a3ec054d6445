"""swarm on Hydra's launchers and sweepers (pip install 'swarmcli[cluster]'): real 3-job
multiruns through submitit_local (real subprocesses, submitit's pickling) and joblib, the SLURM
example configs composed and turned into an sbatch script without a cluster, and an optuna search
that minimises the objective a job returns. Marked slow: `make test` leaves them out, `pytest -m
slow` (run by .ci/run after `make test`) runs them.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import CLI_TINY, swarm

from swarmcli import collect
from swarmcli.objective import objective

TINY = CLI_TINY
pytestmark = pytest.mark.slow  # many processes per test: `pytest -m slow` (.ci/run) runs them


def final_losses(job_dir: Path) -> np.ndarray:
    with open(job_dir / "summary.csv", newline="") as f:
        return np.array([float(r["final_loss"]) for r in csv.DictReader(f)])


def launcher_of(job_dir: Path) -> str:
    return yaml.safe_load((job_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]["launcher"][
        "_target_"]


# ---------------------------------------------------------------------------- submitit_local


@pytest.fixture(scope="module")
def submitit_multirun(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """optim.lr=0.01,0.02,0.05 as three submitit jobs; job 1 fails mid-run (its cells/ path is a
    file, so saving its first cell fails after training)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    d = tmp_path_factory.mktemp("submitit") / "multirun"
    (d / "1").mkdir(parents=True)
    (d / "1" / "cells").write_text("in the way")
    p = swarm("run", "-m", "hydra/launcher=submitit_local", f"hydra.sweep.dir={d}", *TINY,
              "optim.lr=0.01,0.02,0.05")
    return d, p


def test_submitit_local_runs_each_job_as_its_own_process(submitit_multirun):
    d, p = submitit_multirun
    assert p.returncode == 2, p.stdout + p.stderr  # job 1 failed; reported once all ended
    assert len([x for x in (d / ".submitit").iterdir() if x.name != "%j"]) == 3
    for job in ("0", "2"):
        assert launcher_of(d / job).endswith("submitit_launcher.LocalLauncher")
        assert yaml.safe_load((d / job / "swarm.json").read_text())["state"] == "complete"
        f = final_losses(d / job)
        assert f.shape == (2,) and np.isfinite(f).all() and (f > 0).all()
    assert not np.array_equal(final_losses(d / "0"), final_losses(d / "2"))  # lr differs


def test_a_failed_job_says_why_in_its_log_and_the_others_keep_their_results(submitit_multirun):
    """A write that fails is a user-facing error: one line naming the path, no traceback."""
    d, _ = submitit_multirun
    assert yaml.safe_load((d / "1" / "swarm.json").read_text())["state"] == "failed"
    log = (d / "1" / "swarm.log").read_text()
    assert f"job failed: cannot write {d / '1' / 'cells' / '000'}: Not a directory" in log
    r = collect.collect(d)
    assert [j.state for j in r.jobs] == ["complete", "failed", "complete"]
    assert [row["optim.lr"] for row in r.rows] == [0.01, 0.01, 0.05, 0.05]
    assert "hydra/launcher=submitit_local" in r.jobs[1].rerun


def test_rerun_failed_goes_through_the_same_launcher(submitit_multirun, tmp_path, capsys):
    import shutil

    src, _ = submitit_multirun
    d = tmp_path / "multirun"
    shutil.copytree(src, d)
    (d / "1" / "cells").unlink()
    collect.main([str(d), "--rerun-failed", "--no-render"])
    out = capsys.readouterr().out
    assert "3 jobs planned by the sweep; 3 complete" in out
    assert launcher_of(d / "1").endswith("LocalLauncher")
    assert (d / "reruns" / "job-1" / ".submitit").is_dir()
    r = collect.collect(d)
    assert [row["optim.lr"] for row in r.rows] == [0.01, 0.01, 0.02, 0.02, 0.05, 0.05]


def test_a_validation_error_inside_a_job_is_in_its_log(submitit_multirun, tmp_path):
    """Every failed job's log says why, a user error (SwarmError) included."""
    d = tmp_path / "bad"
    p = swarm("run", "-m", "hydra/launcher=submitit_local", f"hydra.sweep.dir={d}", *TINY,
              "optim.lr=0.01,-1")
    assert p.returncode == 2
    assert p.stderr.strip().endswith("swarm: error: optim.lr=-1.0 must be a number > 0")
    assert "optim.lr=-1.0 must be a number > 0" in (d / "1" / "swarm.log").read_text()
    assert (d / "0" / "summary.csv").exists()


# ---------------------------------------------------------------------------- joblib


def test_joblib_runs_three_jobs_in_parallel_processes_and_one_failing_loses_nothing(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    d = tmp_path / "multirun"
    p = swarm("run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
              f"hydra.sweep.dir={d}", *TINY, "model.width=2,0,8")  # width 0 fails in its job
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Joblib.Parallel(n_jobs=2" in p.stdout
    assert p.stderr.strip().endswith("swarm: error: model.width=0 must be an integer >= 1")
    assert "model.width=0 must be an integer >= 1" in (d / "1" / "swarm.log").read_text()
    r = collect.collect(d)
    assert [(j.num, j.state) for j in r.jobs] == [(0, "complete"), (1, "failed"),
                                                  (2, "complete")]
    assert r.swept == ["model.width"]
    for job in (r.jobs[0], r.jobs[2]):
        assert launcher_of(job.dir).endswith("JoblibLauncher")
        got = [row["final_loss"] for row in r.rows if row["job"] == job.num]
        assert got == final_losses(job.dir).tolist()
    assert [row["model.width"] for row in r.rows] == [2, 2, 8, 8]
    assert r.jobs[1].rerun[-1] == "model.width=0"


# ---------------------------------------------------------------------------- SLURM configs


@pytest.mark.parametrize("name, expect", [
    ("slurm_cpu", {"partition": "cpu", "cpus_per_task": 4, "gpus_per_node": None, "mem_gb": 8,
                   "timeout_min": 60, "array_parallelism": 64}),
    ("slurm_gpu", {"partition": "gpu", "cpus_per_task": 8, "gpus_per_node": 1, "mem_gb": 32,
                   "timeout_min": 120, "array_parallelism": 8}),
])
def test_slurm_config_composes_without_a_cluster(name, expect):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    p = swarm("run", f"hydra/launcher={name}", "--cfg", "hydra", "--resolve")
    assert p.returncode == 0, p.stderr
    launcher = yaml.safe_load(p.stdout)["hydra"]["launcher"]
    assert launcher["_target_"] == \
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert {k: launcher[k] for k in expect} == expect
    assert launcher["setup"] == [f"export OMP_NUM_THREADS={expect['cpus_per_task']}"]


def test_slurm_gpu_sweep_becomes_one_sbatch_array(tmp_path):
    """With stand-ins for sbatch and srun on PATH, the launcher writes the real sbatch script
    (pickling every job first) and stops at submission."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/sbatch.sh\n'
                                    'echo "sbatch: no cluster here" >&2\nexit 1\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    d = tmp_path / "multirun"
    p = swarm("run", "-m", "hydra/launcher=slurm_gpu", "hydra.launcher.partition=a100",
              f"hydra.sweep.dir={d}", *TINY, "optim.lr=0.01,0.02,0.05", env=env)
    assert p.returncode != 0 and "sbatch: no cluster here" in p.stdout + p.stderr
    script = (tmp_path / "sbatch.sh").read_text().splitlines()
    for line in ["#SBATCH --array=0-2%3", "#SBATCH --partition=a100", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32GB", "#SBATCH --time=120",
                 "export OMP_NUM_THREADS=8"]:
        assert line in script
    assert not (d / "0").exists()  # nothing ran
    # each job was pickled for the nodes: it unpickles in a fresh process, touching no CUDA
    code = ("import pickle, sys, torch\n"
            "jobs = [pickle.load(open(f, 'rb')) for f in sys.argv[1:]]\n"
            "print(sorted((j.args[2], j.args[0][-1]) for j in jobs))\n"
            "print(type(jobs[0].function).__name__, torch.cuda.is_initialized())\n")
    pkls = sorted(str(f) for f in (d / ".submitit").glob("*.pkl"))
    p = subprocess.run([sys.executable, "-c", code, *pkls], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "[(0, 'optim.lr=0.01'), (1, 'optim.lr=0.02'), (2, 'optim.lr=0.05')]",
        "SlurmLauncher False"]


# ---------------------------------------------------------------------------- optuna


def _optuna():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    pytest.importorskip("optuna")


def test_optuna_minimises_the_median_final_loss_a_job_returns(tmp_path):
    _optuna()
    d = tmp_path / "optuna"
    p = swarm("run", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3",
              "hydra.sweeper.sampler.seed=0", f"hydra.sweep.dir={d}", *TINY,
              "optim.lr=tag(log, interval(0.001, 0.3))")
    assert p.returncode == 0, p.stdout + p.stderr
    best = yaml.safe_load((d / "optimization_results.yaml").read_text())
    objectives = {j: objective(final_losses(d / j)) for j in ("0", "1", "2")}
    assert best["best_value"] == pytest.approx(min(objectives.values()), rel=1e-12)
    lr = yaml.safe_load((d / min(objectives, key=objectives.get) / ".hydra" /
                         "overrides.yaml").read_text())[0]
    assert lr == f"optim.lr={best['best_params']['optim.lr']}"
    r = collect.collect(d)  # optuna writes no multirun.yaml: collect reads the jobs
    assert [j.state for j in r.jobs] == ["complete"] * 3 and not r.planned
    assert r.swept == ["optim.lr"]


def test_optuna_with_a_configured_objective(tmp_path):
    _optuna()
    d = tmp_path / "optuna"
    p = swarm("run", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3",
              "hydra.sweeper.sampler.seed=0", f"hydra.sweep.dir={d}", *TINY,
              "optim.lr=tag(log, interval(0.001, 0.3))", "objective.stat=quantile",
              "objective.q=0.75")
    assert p.returncode == 0, p.stdout + p.stderr
    best = yaml.safe_load((d / "optimization_results.yaml").read_text())
    q75 = [objective(final_losses(d / j), "quantile", q=0.75) for j in ("0", "1", "2")]
    assert best["best_value"] == pytest.approx(min(q75), rel=1e-12)
    assert min(q75) != min(objective(final_losses(d / j)) for j in ("0", "1", "2"))
