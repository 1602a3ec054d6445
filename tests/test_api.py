"""swarmcli.run from Python: the CLI's config and errors, no Hydra state left behind, and Run's
tidy tables, summary, figures and notebook face checked against the saved arrays."""

from __future__ import annotations

import base64
import logging

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

import swarmcli
from swarmcli import api, cli, results
from swarmcli.errors import SwarmError

# Two cells (widths 1 and 3), 3 bees, 4 epochs recorded every 2nd, 9 points with 3 held out.
SMALL = {"+sweep.grid.model.width": [1, 3], "train": {"bees": 3, "epochs": 4, "stride": 2},
         "target": {"points": 9, "eval_points": 4, "split": {"kind": "random",
                                                              "fraction": 0.3}},
         "progress": False, "render.what": ["none"]}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    handlers = list(logging.getLogger().handlers)
    run = swarmcli.run({**SMALL, "render.what": ["hive"], "render.width": 320,
                        "render.height": 240}, run_dir=d / "run", quiet=True)
    return run, handlers


def test_dict_overrides_become_the_cli_s_strings():
    assert api.to_overrides({"+sweep": "width_activation", "train": {"bees": 3},
                             "model.width": [1, 3], "target.expr": "sin(3*x)",
                             "optim.nesterov": True, "train.patience": None,
                             "sweep.lesson": "it's fine"}) == [
        "+sweep=width_activation", "train.bees=3", "model.width=[1,3]",
        "target.expr='sin(3*x)'", "optim.nesterov=true", "train.patience=null",
        "sweep.lesson='it\\'s fine'"]
    with pytest.raises(TypeError, match="list of strings or a dict"):
        api.to_overrides("train.bees=3")


def test_a_run_is_what_the_cli_makes_bit_for_bit(tmp_path):
    """Same overrides, same config file, same arrays as `swarm run` in-process."""
    args = api.to_overrides(SMALL)
    cli.main(["run", *args, f"hydra.run.dir={tmp_path / 'cli'}"])
    run = swarmcli.run(args, run_dir=tmp_path / "api", quiet=True)
    assert isinstance(run, results.Run) and run.state == "complete"
    same, total, diff = results.compare(tmp_path / "cli", tmp_path / "api")
    assert diff == [] and total == same > 10
    cfg = (tmp_path / "cli" / ".hydra" / "config.yaml").read_text()
    assert (tmp_path / "api" / ".hydra" / "config.yaml").read_text() == cfg
    assert "trained 6 bees" in (tmp_path / "api" / "swarm.log").read_text()


@pytest.mark.parametrize("bad", [["model.activation=swish"], ["+sweep=nope"]])
def test_bad_input_raises_the_cli_s_line_and_writes_nothing(bad, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", *bad, f"hydra.run.dir={tmp_path / 'cli'}"])
    line = capsys.readouterr().err.strip()
    with pytest.raises(SwarmError) as e:
        swarmcli.run(bad, run_dir=tmp_path / "api")
    assert f"swarm: error: {e.value}" == line
    assert not (tmp_path / "api").exists() and not (tmp_path / "cli").exists()
    assert not GlobalHydra.instance().is_initialized() and not HydraConfig.initialized()


def test_no_hydra_state_is_left_and_hydra_works_after(small, tmp_path, monkeypatch):
    run, handlers = small
    assert not GlobalHydra.instance().is_initialized()
    assert not HydraConfig.initialized()
    assert logging.getLogger().handlers == handlers  # swarm.log's handler is gone again
    with initialize_config_module(config_module="swarmcli.configs", version_base="1.3"):
        assert compose(config_name="config", overrides=["train.bees=7"]).train.bees == 7
    # a second run: into Hydra's default outputs/DATE/TIME, with a sweep of the user's own
    (tmp_path / "mine" / "sweep").mkdir(parents=True)
    (tmp_path / "mine" / "sweep" / "mine.yaml").write_text(
        "# @package _global_\nsweep: {name: mine, grid: {model: {width: [2, 4]}}}\n")
    monkeypatch.chdir(tmp_path)
    again = swarmcli.run(["+sweep=mine", "train.epochs=2", "train.bees=2", "render.what=[none]",
                          "train.record=[]"], config_dir=tmp_path / "mine", quiet=True)
    assert [c.values["model.width"] for c in again.cells] == [2, 4]
    assert again.cell(width=4).loss.shape == (2, 3)
    with pytest.raises(ValueError, match="recorded no predictions"):
        again.predictions()
    assert (tmp_path / again.path).parent.parent == tmp_path / "outputs"


def test_loss_table_is_tidy_and_holds_every_saved_value(small):
    run, _ = small
    df = run.losses()
    assert list(df.columns) == ["cell", "model.width", "bee", "epoch", "loss", "val_loss"]
    assert len(df) == 2 * 3 * 5
    for c in run.cells:
        part = df[df.cell == c.index].sort_values(["bee", "epoch"])
        assert (part["model.width"] == c.values["model.width"]).all()
        np.testing.assert_array_equal(part.loss.to_numpy().reshape(3, 5), c.loss)
        np.testing.assert_array_equal(part.val_loss.to_numpy().reshape(3, 5),
                                      c.array("val_loss"))


def test_prediction_table_has_a_row_per_bee_frame_and_point(small):
    run, _ = small
    df = run.predictions()
    n_points = len(run.eval_x)
    assert len(df) == 2 * 3 * 3 * n_points  # cells, bees, frames [0, 2, 4], points
    assert sorted(df.epoch.unique()) == [0, 2, 4]
    kinds = df[(df.cell == 0) & (df.bee == 0) & (df.epoch == 0)].kind.value_counts()
    assert n_points > 9  # the grid adds points between the training points
    assert kinds["train"] == 6 and kinds["val"] == 3 and kinds["grid"] == n_points - 9
    last = run.predictions(epochs=[-1], cells=[1])
    c = run.cell(width=3)
    np.testing.assert_array_equal(last.ypred.to_numpy().reshape(3, n_points), c.ypred[:, -1])
    np.testing.assert_array_equal(last.x.to_numpy()[:n_points], run.eval_x)
    with pytest.raises(KeyError, match="not recorded"):
        run.predictions(epochs=[3])


def test_summary_is_one_row_per_cell_from_the_bees(small):
    run, _ = small
    s = run.summary
    assert list(s.index) == [0, 1] and list(s["model.width"]) == [1, 3]
    for c in run.cells:
        row = s.loc[c.index]
        final = np.asarray(c.loss[:, -1], dtype=float)
        assert row.median_loss == pytest.approx(np.median(final))
        assert row.q25 == pytest.approx(np.percentile(final, 25))
        assert row.median_val_loss == pytest.approx(np.median(c.array("val_loss")[:, -1]))
        assert row.bees == 3 and row.diverged == 0
    assert len(run.bees) == 6 and "final_val_loss" in run.bees


def test_figures_and_notebook_face(small):
    run, _ = small
    assert set(run.figures) == {"hive_epoch0000", "hive_epoch0004"}
    page = run._repr_html_()
    assert "<table" in page and "median_loss" in page and run.state in page
    png = page.split("data:image/png;base64,", 1)[1].split('"', 1)[0]
    assert base64.b64decode(png) == run.figures["hive_epoch0004"].read_bytes()
    assert run.config["train"]["bees"] == 3


def test_import_swarmcli_and_its_run_load_no_torch():
    import subprocess
    import sys

    code = "import sys, swarmcli; swarmcli.run; swarmcli.load; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
