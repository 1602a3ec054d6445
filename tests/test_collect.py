"""`swarm collect`: one table from every job of a multirun, the jobs that need a rerun and the
command that reruns only them, comparison plots, and the objective a job returns to a sweeper.

The multiruns here use Hydra's basic launcher (no extras needed); tests/test_cluster.py runs the
same through joblib and submitit.
"""

from __future__ import annotations

import csv
import io
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import CLI_TINY, swarm

from swarmcli import collect, results, runner
from swarmcli.collect import command, jobs, plots, sweep
from swarmcli.config import SwarmError
from swarmcli.objective import objective
from swarmcli.stats import CELL_COLUMNS

TINY = CLI_TINY


def swarm_multirun(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    return swarm("run", "-m", f"hydra.sweep.dir={sweep_dir}", *TINY, *overrides)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def multirun(tmp_path_factory) -> Path:
    """Six jobs: optim.lr 0.01, 0.03, -1 x model.width 3, 5. Jobs 4 and 5 (lr=-1) fail validation
    inside the job; job 1 fails mid-run (its cells/ path is a file, so saving a cell fails) and is
    left "failed". Jobs 0, 2 and 3 complete."""
    d = tmp_path_factory.mktemp("mr") / "multirun"
    (d / "1").mkdir(parents=True)
    (d / "1" / "cells").write_text("in the way")
    p = swarm_multirun(d, "optim.lr=0.01,0.03,-1", "model.width=3,5")
    assert p.returncode == 2, p.stdout + p.stderr  # the first failed job is reported, at the end
    assert "swarm: error:" in p.stderr
    assert (d / "5").is_dir(), ("job 5 never ran: job 4's error ended the whole sweep (in a "
                                "multirun, swarm must let Hydra record a failed job and go on)")
    return d


@pytest.fixture
def copy_of(tmp_path):
    def make(src: Path) -> Path:
        dst = tmp_path / "copy"
        shutil.copytree(src, dst, symlinks=True)
        return dst

    return make


# ---------------------------------------------------------------------------- the objective


def test_objective_median_counts_diverged_bees_as_inf():
    f = np.array([0.4, 0.1, np.nan, 0.3, np.inf])
    assert objective(f) == 0.4  # sorted: 0.1 0.3 0.4 inf inf
    assert objective(f, "median") == 0.4
    assert objective([0.2, np.nan]) == math.inf


def test_objective_mean_is_inf_once_a_bee_diverges():
    assert objective([0.1, 0.2, 0.6], "mean") == pytest.approx(0.3)
    assert objective([0.1, 0.2, np.nan], "mean") == math.inf


def test_objective_quantile_interpolates_like_numpy_and_reaches_inf_only_at_diverged():
    f = np.array([0.5, 0.1, 0.4, 0.2, 0.3])
    for q in (0.0, 0.1, 0.25, 0.5, 0.9, 1.0):
        assert objective(f, "quantile", q=q) == pytest.approx(np.quantile(f, q), abs=0)
    g = np.array([0.1, 0.2, 0.3, np.nan])  # 3 finite of 4: q <= 2/3 stays finite
    assert objective(g, "quantile", q=2 / 3) == pytest.approx(0.3)
    assert objective(g, "quantile", q=0.5) == pytest.approx(0.25)
    assert objective(g, "quantile", q=0.7) == math.inf


def test_objective_fraction_below_is_one_minus_the_fraction_that_got_there():
    f = np.array([0.001, 0.005, 0.02, np.nan])
    assert objective(f, "fraction_below", threshold=0.01) == 0.5
    assert objective(f, "fraction_below", threshold=0.03) == 0.25
    assert objective(f, "fraction_below", threshold=1e-6) == 1.0
    assert objective([[0.0, 0.0]], "fraction_below", threshold=0.01) == 0.0


@pytest.mark.parametrize("kw, match", [
    ({"stat": "max"}, r"objective.stat='max' is not one of: median, mean, quantile"),
    ({"stat": "quantile", "q": 1.5}, r"objective.q=1.5 must be a number in \[0, 1\]"),
    ({"stat": "fraction_below", "threshold": math.nan}, r"objective.threshold=nan"),
])
def test_objective_rejects_bad_settings_naming_the_key(kw, match):
    with pytest.raises(SwarmError, match=match):
        objective([0.1, 0.2], **kw)


def test_default_objective_equals_the_run_summary_objective():
    finals = {0: np.array([0.3, np.nan, 0.1], np.float32), 1: np.array([0.2, 0.5], np.float32)}
    summary = runner.RunSummary(Path("."), finals, 1, 0.0)
    assert objective(np.concatenate(list(finals.values()))) == summary.objective


# ---------------------------------------------------------------------------- the job list


def test_planned_jobs_expand_sweeper_params_then_overrides_like_hydra():
    mr = {"hydra": {
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                    "params": {"optim.lr": "0.01,0.1"}},
        "overrides": {"task": ["optim=glob([sgd,adam])", "model.width=range(2,4)",
                               "optim.lr=0.5"]},
        "runtime": {"cwd": ".", "config_sources": [
            {"path": "swarmcli.configs", "schema": "pkg", "provider": "main"},
            {"path": "", "schema": "structured", "provider": "schema"}]}}}
    assert jobs.planned_jobs(mr) == [
        ["optim.lr=0.5", "optim=adam", "model.width=2"],
        ["optim.lr=0.5", "optim=adam", "model.width=3"],
        ["optim.lr=0.5", "optim=sgd", "model.width=2"],
        ["optim.lr=0.5", "optim=sgd", "model.width=3"],
    ]
    mr["hydra"]["sweeper"]["_target_"] = "hydra_plugins.hydra_optuna_sweeper.OptunaSweeper"
    assert jobs.planned_jobs(mr) is None


def test_hydra_internals_that_collect_relies_on_still_work():
    """sweep.expand_basic_sweep is swarm's one use of hydra._internal (BasicSweeper's expansion,
    the config loader a glob over a config group needs). A Hydra release that moves or changes
    them must fail here, by name, not leave collect listing the wrong jobs."""
    import hydra

    mr = {"hydra": {"runtime": {"cwd": ".", "config_sources": [
        {"path": "swarmcli.configs", "schema": "pkg", "provider": "main"},
        {"path": "", "schema": "structured", "provider": "schema"}]}}}
    where = (f"Hydra {hydra.__version__} changed an internal API that "
             "swarmcli/collect/sweep.py:expand_basic_sweep uses")
    try:
        got = sweep.expand_basic_sweep(mr, ["optim=glob([sgd,adam,nope])", "model.width=2,3"])
    except (ImportError, AttributeError, TypeError) as e:
        pytest.fail(f"{where}: {type(e).__name__}: {e}")
    except Exception as e:  # a glob with no config loader behind it fails to expand
        pytest.fail(f"{where} (the config loader could not be built?): {type(e).__name__}: {e}")
    assert got == [["optim=adam", "model.width=2"], ["optim=adam", "model.width=3"],
                   ["optim=sgd", "model.width=2"], ["optim=sgd", "model.width=3"]], \
        f"{where}: BasicSweeper now expands a sweep into other jobs or another order: {got}"


def test_collect_sorts_jobs_into_complete_interrupted_and_failed(multirun):
    r = collect.collect(multirun)
    assert r.planned
    assert [(j.num, j.state, j.dir.name) for j in r.jobs] == [
        (0, "complete", "0"), (1, "failed", "1"), (2, "complete", "2"),
        (3, "complete", "3"), (4, "failed", "4"), (5, "failed", "5")]
    assert [j.num for j in r.failed] == [1, 4, 5]
    assert r.jobs[1].overrides == [*TINY[:2], "progress=False", TINY[3], "optim.lr=0.01",
                                   "model.width=5"]
    assert "cells/000: Not a directory" in r.jobs[1].reason
    assert r.jobs[4].reason  # the validation error (or where to look for it)


def test_a_failed_job_does_not_lose_the_other_jobs_results(multirun):
    r = collect.collect(multirun)
    assert sorted({row["job"] for row in r.rows}) == [0, 2, 3]
    assert len(r.rows) == 3 * 2  # 3 jobs x 1 cell x 2 bees
    for job in (0, 2, 3):
        loss = np.load(multirun / str(job) / "cells" / "000" / "loss.npy")
        got = [row["final_loss"] for row in r.rows if row["job"] == job]
        assert got == [float(x) for x in loss[:, -1]]


def test_table_has_job_overrides_cell_bee_and_losses(multirun):
    r = collect.collect(multirun)
    assert r.columns[:7] == ["job", "train.epochs", "train.bees", "progress", "render.what",
                             "optim.lr", "model.width"]
    assert r.columns[7:] == ["cell", "bee", "final_loss", "best_loss", "best_epoch", "diverged",
                             "diverged_epoch", "job_dir"]
    assert r.swept == ["optim.lr", "model.width"]
    row = r.rows[0]
    assert (row["job"], row["optim.lr"], row["model.width"], row["train.epochs"]) == \
        (0, 0.01, 3, 5)
    assert (row["cell"], row["bee"], row["diverged"], row["job_dir"]) == (0, 0, False, "0")
    assert row["best_loss"] <= row["final_loss"]
    assert [(x["optim.lr"], x["model.width"]) for x in r.rows[::2]] == \
        [(0.01, 3), (0.03, 3), (0.03, 5)]


def test_rerun_command_reruns_one_job_into_its_own_dir_with_its_saved_overrides(multirun):
    r = collect.collect(multirun)
    assert r.jobs[0].rerun is None
    argv = r.jobs[1].rerun
    assert argv[:3] == ["swarm", "run", "-m"]
    assert f"hydra.sweep.dir={multirun.resolve()}/reruns/job-1" in argv
    assert "hydra.sweep.subdir=../../1" in argv
    assert argv[-6:] == r.jobs[1].overrides
    assert not any(a.startswith(("hydra.mode", "hydra.sweep.dir=" + str(multirun.resolve())
                                 + " ")) for a in argv)
    lines = r.rerun_command.splitlines()
    assert len(lines) == 3 and "'render.what=[none]'" in lines[0]  # quoted for the shell


def test_a_missing_job_is_listed_with_its_planned_overrides(multirun, copy_of):
    d = copy_of(multirun)
    shutil.rmtree(d / "3")
    r = collect.collect(d)
    job = r.jobs[3]
    assert (job.state, job.dir) == ("missing", None)
    assert job.overrides[-2:] == ["optim.lr=0.03", "model.width=5"]
    assert "hydra.sweep.subdir=../../3" in job.rerun
    assert sorted({row["job"] for row in r.rows}) == [0, 2]


def test_an_incomplete_job_is_one_whose_manifest_still_says_running(multirun, copy_of):
    d = copy_of(multirun)
    m = (d / "2" / "swarm.json")
    m.write_text(m.read_text().replace('"state": "complete"', '"state": "running"'))
    r = collect.collect(d)
    assert r.jobs[2].state == "incomplete"
    assert "still running, or killed" in r.jobs[2].reason
    assert [j.num for j in r.failed] == [1, 2, 4, 5]


def test_main_prints_jobs_and_the_rerun_command_and_writes_tables_and_plots(multirun, copy_of,
                                                                           capsys):
    d = copy_of(multirun)
    collect.main([str(d)])
    out = capsys.readouterr().out
    assert "6 jobs planned by the sweep; 3 complete, 3 failed" in out
    assert f"swarm collect {d.resolve()} --rerun-failed" in out
    assert "hydra.sweep.subdir=../../1" in out and "hydra.sweep.subdir=../../4" in out
    table = read_csv(d / "collect" / "summary.csv")
    assert len(table) == 6 and table[0]["optim.lr"] == "0.01"
    jobs = read_csv(d / "collect" / "jobs.csv")
    assert [j["state"] for j in jobs] == ["complete", "failed", "complete", "complete",
                                          "failed", "failed"]
    assert jobs[1]["rerun"].startswith("swarm run -m ")
    pngs = sorted(p.name for p in (d / "collect").glob("*.png"))
    assert pngs == ["final_loss_by_key.png", "heatmap_model.width_vs_optim.lr.png"]
    for p in pngs:
        assert (d / "collect" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_render_writes_tables_only(multirun, copy_of, capsys):
    d = copy_of(multirun)
    collect.main([str(d), "--no-render"])
    assert not list((d / "collect").glob("*.png"))
    assert (d / "collect" / "summary.csv").exists()


def test_table_csv_reads_back_with_pandas(multirun, copy_of):
    pd = pytest.importorskip("pandas")
    d = copy_of(multirun)
    collect.main([str(d), "--no-render"])
    df = pd.read_csv(d / "collect" / "summary.csv")
    r = collect.collect(d)
    assert list(df.columns) == r.columns
    assert df["final_loss"].tolist() == [row["final_loss"] for row in r.rows]
    assert r.to_frame().shape == (6, len(r.columns))
    med = df.groupby("model.width")["final_loss"].median()
    assert med[5] == r.rows[5]["final_loss"] * 0.5 + r.rows[4]["final_loss"] * 0.5


def test_parquet_is_written_when_pyarrow_is_installed(multirun, copy_of):
    pq = pytest.importorskip("pyarrow.parquet")
    d = copy_of(multirun)
    collect.main([str(d), "--no-render"])
    t = pq.read_table(d / "collect" / "summary.parquet").to_pylist()
    assert [x["final_loss"] for x in t] == [x["final_loss"] for x in collect.collect(d).rows]


def test_read_summary_takes_axes_from_the_manifest_and_keeps_other_measures(tiny_run):
    run = tiny_run("+sweep=lr_momentum", "target.split.kind=random", "train.patience=2")
    rows, axes, extra = results.read_summary(run)
    assert axes == ["optim.momentum", "optim.lr"]
    # per-bee measures, not sweep axes
    assert extra == ["final_val_loss", "stopped_epoch", *CELL_COLUMNS]
    assert len(rows) == 6 * 3
    assert (rows[0]["optim.momentum"], rows[0]["optim.lr"]) == (0.7, 0.002)
    assert isinstance(rows[0]["stopped_epoch"], int) and rows[0]["final_val_loss"] > 0


def test_heatmap_is_the_median_final_loss_of_every_bee_with_that_pair(multirun):
    r = collect.collect(multirun)
    xs, ys, med = plots.heatmap_table(r, "optim.lr", "model.width")
    assert xs == [0.01, 0.03] and ys == [3, 5]
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            f = [row["final_loss"] for row in r.rows
                 if row["optim.lr"] == x and row["model.width"] == y]
            assert (np.isnan(med[i, j]) if not f else med[i, j] == np.median(f))
    assert np.isnan(med[1, 0])  # job 1 (0.01, 5) failed: no bees


@pytest.mark.slow  # relaunches real jobs through Hydra (~16 s)
def test_rerun_failed_relaunches_only_the_failed_jobs_into_the_same_dir(multirun, copy_of,
                                                                       capsys):
    d = copy_of(multirun)
    (d / "1" / "cells").unlink()  # the cause of job 1's failure is gone; lr=-1 still fails
    plan = (d / "multirun.yaml").read_text()
    stamps = {j: (d / j / "swarm.json").stat().st_mtime_ns for j in ("0", "2", "3")}
    with pytest.raises(SwarmError, match=r"2 job\(s\) are still not complete: 4 \(failed\), "
                                         r"5 \(failed\)"):
        collect.main([str(d), "--rerun-failed", "--no-render"])
    out = capsys.readouterr().out
    assert "rerunning job 1: swarm run -m" in out
    r = collect.collect(d)
    assert [j.state for j in r.jobs] == ["complete"] * 4 + ["failed"] * 2
    assert sorted({row["job"] for row in r.rows}) == [0, 1, 2, 3]
    assert [row["optim.lr"] for row in r.rows if row["job"] == 1] == [0.01, 0.01]
    assert (d / "multirun.yaml").read_text() == plan  # the plan is kept
    assert (d / "reruns" / "job-1" / "multirun.yaml").exists()
    assert {j: (d / j / "swarm.json").stat().st_mtime_ns for j in stamps} == stamps
    assert not (d / "reruns" / "job-1" / "0").exists()  # the job went to ../../1


def test_glob_sweep_jobs_match_the_plan_and_leave_nothing_to_rerun(tmp_path, capsys):
    d = tmp_path / "glob"
    assert swarm_multirun(d, "optim=glob([sgd,adam])").returncode == 0
    r = collect.collect(d)
    assert [(j.num, j.state, j.overrides[-1]) for j in r.jobs] == [
        (0, "complete", "optim=adam"), (1, "complete", "optim=sgd")]
    assert r.swept == ["optim"] and r.notes == [] and r.rerun_command == ""
    collect.main([str(d), "--rerun-failed", "--no-render"])
    out = capsys.readouterr().out
    assert "nothing to rerun" in out and "2 jobs planned by the sweep; 2 complete" in out
    assert "need a rerun" not in out


def test_swarm_collect_is_a_swarm_command():
    p = swarm("collect", "/nonexistent")
    assert p.returncode == 2
    assert p.stderr.strip() == ("swarm: error: '/nonexistent' does not exist; give a multirun "
                                "dir (multirun/DATE/TIME, or the hydra.sweep.dir of swarm run -m)")
    p = swarm("collect", "--help")
    assert p.returncode == 0 and "--rerun-failed" in p.stdout


def test_bad_paths_are_one_line_errors(tmp_path, tiny_run):
    with pytest.raises(SwarmError, match=r"'/nonexistent/x' does not exist"):
        collect.collect("/nonexistent/x")
    with pytest.raises(SwarmError, match="is not a multirun dir: no multirun.yaml and no job"):
        collect.collect(tmp_path)
    run = tiny_run()
    (run / ".hydra").mkdir()
    with pytest.raises(SwarmError, match="it is a single run"):
        collect.collect(run)
    with pytest.raises(SwarmError, match="--heatmap 'a' must be two keys"):
        collect.main([str(tmp_path), "--heatmap", "a"])


def test_heatmap_option_picks_the_pair_and_rejects_unknown_keys(multirun, copy_of):
    d = copy_of(multirun)
    collect.main([str(d), "--heatmap", "model.width,optim.lr"])
    assert (d / "collect" / "heatmap_optim.lr_vs_model.width.png").exists()
    with pytest.raises(SwarmError, match="--heatmap key 'nope' is not a column; swept keys: "
                                         "optim.lr, model.width"):
        collect.main([str(d), "--heatmap", "nope,optim.lr"])


def test_python_m_collect_matches_swarm_collect():
    p = subprocess.run([sys.executable, "-m", "swarmcli.collect", "/nonexistent"],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip() == ("swarm: error: '/nonexistent' does not exist; give a multirun "
                                "dir (multirun/DATE/TIME, or the hydra.sweep.dir of swarm run -m)")


def test_report_lists_reasons(multirun):
    out = io.StringIO()
    command.report(collect.collect(multirun), out)
    text = out.getvalue()
    assert "job 1 (failed, dir 1): " in text and "cells/000: Not a directory" in text
    saved = yaml.safe_load((multirun / "4" / ".hydra" / "overrides.yaml").read_text())
    assert "optim.lr=-1" in saved
