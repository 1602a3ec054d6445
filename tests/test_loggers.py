"""logger=...: each tracker, the real library offline, read back with that library's own reader
(TensorBoard's EventAccumulator, MlflowClient on a file store, W&B's offline run files) and
held to the run's saved arrays: per cell and recorded epoch the swarm's median and quartiles."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import swarm

import swarmcli
from swarmcli import cli, config, loggers
from swarmcli.errors import SwarmError
from swarmcli.loggers import base

# 2 cells x 3 bees, 4 epochs recorded at 0, 2, 4; a held-out split; small stills.
OVERRIDES = {"+sweep.grid.model.width": [1, 3], "train": {"bees": 3, "epochs": 4, "stride": 2},
             "target": {"points": 9, "split": {"kind": "random", "fraction": 0.3}},
             "progress": False, "render": {"what": ["hive"], "width": 320, "height": 240}}
# ... and a short video, for the trackers that keep files
VIDEO = {"render.what": ["hive", "hive_animation"], "render.fps": 4, "render.min_seconds": 1,
         "render.max_seconds": 2, "render.workers": 1}
EPOCHS = [0, 2, 4]
CELLS = {0: "width:1", 1: "width:3"}
# Importing mlflow (~5 s) or starting W&B's service (~4 s) exceeds a quick test: those run with
# the slow tests (`pytest -m slow`); csv and TensorBoard run in every `make test`.
slow = pytest.mark.slow


def log_a_run(d: Path, extra: dict):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        for var in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR",
                    "WANDB_ARTIFACT_DIR"):
            mp.setenv(var, str(d / "wandb-home"))
        return swarmcli.run({**OVERRIDES, **extra}, run_dir=d / "run", quiet=True)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """csv and TensorBoard."""
    return log_a_run(tmp_path_factory.mktemp("loggers"), {"logger": ["csv", "tensorboard"]})


@pytest.fixture(scope="module")
def mlflow_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("mlflow")
    uri = (d / "mlruns").as_uri()
    return log_a_run(d, {**VIDEO, "logger": "mlflow", "logger.mlflow.tracking_uri": uri}), uri


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory):
    return log_a_run(tmp_path_factory.mktemp("wandb"), {**VIDEO, "logger": "wandb"})


def expected(run, cell: int, series: str = "loss") -> dict[str, np.ndarray]:
    a = np.asarray(run.cells[cell].array(series), dtype=float)[:, EPOCHS]
    return {"median": np.median(a, axis=0), "q25": np.percentile(a, 25, axis=0),
            "q75": np.percentile(a, 75, axis=0)}


def test_csv_holds_median_and_quartiles_per_cell_and_recorded_epoch(logged):
    run = logged
    with open(run.path / "csv" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len(EPOCHS)  # never one series per bee
    assert list(rows[0]) == ["run", "group", "cell", "model.width", "epoch", "loss_median",
                             "loss_q25", "loss_q75", "val_loss_median", "val_loss_q25",
                             "val_loss_q75"]
    for c, name in CELLS.items():
        mine = [r for r in rows if r["cell"] == name]
        assert [int(r["epoch"]) for r in mine] == EPOCHS
        for series in ("loss", "val_loss"):
            for stat, want in expected(run, c, series).items():
                got = [float(r[f"{series}_{stat}"]) for r in mine]
                np.testing.assert_allclose(got, want, rtol=1e-6)
    hp = yaml.safe_load((run.path / "csv" / "hparams.yaml").read_text())
    assert hp["train"]["bees"] == 3


def test_tensorboard_event_files_read_back_with_its_own_reader(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = logged
    ea = EventAccumulator(str(run.path / "tensorboard"),
                          size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    tags = ea.Tags()
    assert len(tags["scalars"]) == 2 * 6 + 1  # (loss, val_loss) x 3 stats per cell, objective
    for c, name in CELLS.items():
        for series in ("loss", "val_loss"):
            for stat, want in expected(run, c, series).items():
                events = ea.Scalars(f"{series}/{stat}/{name}")
                assert [e.step for e in events] == EPOCHS
                np.testing.assert_allclose([e.value for e in events], want, rtol=1e-6)
    assert tags["images"] == ["figures/hive_epoch0000", "figures/hive_epoch0004"]
    img = ea.Images("figures/hive_epoch0004")[0]
    assert (img.width, img.height) == (320, 240)
    assert {"config/text_summary", "summary/text_summary"} <= set(tags["tensors"])
    summary = ea.Tensors("summary/text_summary")[0].tensor_proto.string_val[0].decode()
    assert summary.startswith("| cell | model.width | bees |") and summary.count("\n") == 3
    from tensorboard.plugins.hparams import plugin_data_pb2

    hp = {tag: plugin_data_pb2.HParamsPluginData.FromString(content)
          for tag, content in ea.PluginTagToContent("hparams").items()}
    start = hp["_hparams_/session_start_info"].session_start_info.hparams
    assert start["train.bees"].number_value == 3 and start["optim.name"].string_value == "sgd"
    metrics = hp["_hparams_/experiment"].experiment.metric_infos
    assert [m.name.tag for m in metrics] == ["objective"]
    from tensorboard.plugins.custom_scalar import layout_pb2

    layout = layout_pb2.Layout.FromString(
        ea.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0])
    assert [c.title for c in layout.category] == ["swarm loss", "swarm val_loss"]
    band = layout.category[1].chart[1].margin.series[0]  # width 3, held-out loss
    assert (band.value, band.lower, band.upper) == (
        "val_loss/median/width:3", "val_loss/q25/width:3", "val_loss/q75/width:3")
    objective = ea.Scalars("objective")[0].value
    finals = np.concatenate([np.asarray(c.loss[:, -1]) for c in run.cells])
    assert objective == pytest.approx(np.median(finals), rel=1e-6)


@slow
def test_mlflow_file_store_read_back_with_its_client(mlflow_run):
    from mlflow.tracking import MlflowClient

    run, uri = mlflow_run
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("single")  # the sweep's name
    (found,) = client.search_runs([exp.experiment_id])
    assert found.info.status == "FINISHED"
    assert found.data.params["train.bees"] == "3"
    assert found.data.params["model.width"] == "10"  # the config as composed; the grid says 1, 3
    assert found.data.params["sweep.grid.model.width"] == "[1, 3]"
    assert found.data.tags["swarm.run_dir"] == str(run.path.resolve())
    assert len([k for k in found.data.metrics if k != "objective"]) == 12
    for c, name in CELLS.items():
        for stat, want in expected(run, c, "val_loss").items():
            hist = client.get_metric_history(found.info.run_id, f"val_loss/{stat}/{name}")
            assert [m.step for m in hist] == EPOCHS
            np.testing.assert_allclose([m.value for m in hist], want, rtol=1e-6)
    top = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"summary.csv", "swarm.json", "config.yaml", "summary_cells.md", "figures"} <= top
    figs = {a.path for a in client.list_artifacts(found.info.run_id, "figures")}
    assert figs == {"figures/hive_epoch0000.png", "figures/hive_epoch0004.png",
                    "figures/hive_animation.mp4"}


def wandb_records(path: Path) -> list:
    """The records of a W&B offline run file (run-ID.wandb): LevelDB's log format (32 KiB
    blocks of chunks, each with a 7-byte header) after a 7-byte ':W&B' header, each record a
    protobuf wandb_internal_pb2.Record (W&B's own definition)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, out, pending = 7, 32768, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            break
        pending += chunk
        if kind in (1, 4):  # FULL, LAST
            rec = pb.Record()
            rec.ParseFromString(pending)
            out.append(rec)
            pending = b""
    return out


@slow
def test_wandb_offline_run_files(wandb_run):
    run = wandb_run
    (run_file,) = (run.path / "wandb").glob("offline-run-*/run-*.wandb")
    records = wandb_records(run_file)
    kinds = [r.WhichOneof("record_type") for r in records]
    (head,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {u.key: json.loads(u.value_json) for u in head.config.update}
    assert config["train"]["bees"] == 3
    history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json)
                for i in r.history.item} for r in records if r.WhichOneof("record_type")
               == "history"]
    curves = [h for h in history if "epoch" in h]
    assert len(curves) == 2 * len(EPOCHS)  # one row per cell and recorded epoch
    for c, name in CELLS.items():
        mine = [h for h in curves if f"loss/median/{name}" in h]
        assert [h["epoch"] for h in mine] == EPOCHS
        for stat, want in expected(run, c).items():
            np.testing.assert_allclose([h[f"loss/{stat}/{name}"] for h in mine], want,
                                       rtol=1e-6)
    (art,) = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"
              and r.artifact.type == "swarm-run"]
    assert {m.path for m in art.manifest.contents} >= {
        "figures/hive_epoch0004.png", "figures/hive_animation.mp4", "summary.csv",
        ".hydra/config.yaml"}
    (exit_rec,) = [r.exit for r in records if r.WhichOneof("record_type") == "exit"]
    assert exit_rec.exit_code == 0 and "summary" in kinds
    media = run_file.parent / "files" / "media"
    assert len(list((media / "images" / "figures").glob("hive_epoch*.png"))) == 2
    (table,) = (media / "table").glob("summary_*.table.json")
    assert len(json.loads(table.read_text())["data"]) == 2


def test_a_missing_tracker_package_stops_before_training(tmp_path, capsys, monkeypatch):
    """As on a machine without the extra (find_spec is how check() looks for the package)."""
    real = loggers.importlib.util.find_spec
    monkeypatch.setattr(loggers.importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "logger=[csv,wandb]", "train.epochs=1", "train.bees=1",
                  f"hydra.run.dir={tmp_path / 'run'}"])
    assert e.value.code == 2
    assert capsys.readouterr().err == ("swarm: error: logger=wandb needs the wandb package: "
                                       "pip install 'swarmcli[wandb]'\n")
    assert not (tmp_path / "run").exists()


@slow
def test_a_multirun_s_jobs_are_runs_of_one_group_and_a_failed_job_says_so(tmp_path,
                                                                         monkeypatch):
    """Job 0 trains; job 1's lr is refused inside the job: both are runs of one group, and
    the tracker closes job 1's run as FAILED."""
    d = tmp_path / "multi"
    p = swarm("run", "-m", "optim.lr=0.01,-1", "train.epochs=2", "train.bees=2",
              "progress=false", "render.what=[none]", "logger=[csv,mlflow]",
              f"logger.mlflow.tracking_uri={(tmp_path / 'mlruns').as_uri()}",
              f"hydra.sweep.dir={d}")
    assert p.returncode == 2 and "optim.lr=-1" in p.stderr
    group = f"single {d.parent.name}/{d.name}"
    with open(d / "0" / "csv" / "metrics.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["group"] == group and row["run"].startswith("job 0: optim.lr=0.01")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads a file store so
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    runs = client.search_runs([client.get_experiment_by_name("single").experiment_id])
    by_job = {r.data.tags["swarm.job"]: r for r in runs}
    assert sorted(by_job) == ["0", "1"]
    assert {r.data.tags["swarm.group"] for r in runs} == {group}
    assert by_job["0"].info.status == "FINISHED" and by_job["1"].info.status == "FAILED"
    assert by_job["1"].data.params["optim.lr"] == "-1.0"
    assert len(by_job["0"].data.metrics) == 3 + 1  # loss median, q25, q75; objective


def test_diverged_bees_are_left_out_of_the_swarm_statistics():
    loss = np.array([[1.0, 2.0, np.inf], [3.0, np.nan, np.inf], [5.0, 4.0, np.inf]])
    s = base.swarm_stats(loss, [0, 1, 2])
    np.testing.assert_allclose(s["median"][:2], [3.0, 3.0])  # epoch 1: bees 0 and 2 only
    np.testing.assert_allclose(s["q25"][:2], [2.0, 2.5])
    assert np.isnan(s["median"][2]) and np.isnan(s["q75"][2])  # every bee diverged: no value


def test_bad_tracker_settings_are_refused_like_any_key():
    cfg = config.compose(["logger=wandb", "logger.wandb.mode=bogus"])
    with pytest.raises(SwarmError, match="logger.wandb.mode='bogus' is not one of: online, "
                                          "offline, disabled"):
        config.validate(config.to_schema(cfg))
    assert loggers.chosen(config.compose(["logger=many"])) == ["csv", "tensorboard"]


@pytest.mark.parametrize("task", [
    {"task": "landscape", "surface.spread": 0.1, "+sweep.grid.optim.lr": [0.001, 0.01]},
    {"task": "classification", "dataset.samples": 40, "dataset.grid": 8,
     "+sweep.grid.model.width": [2, 4]}], ids=["landscape", "classification"])
def test_the_other_tasks_send_each_cell_to_the_tracker(task, tmp_path):
    run = swarmcli.run({"train.epochs": 6, "train.bees": 3, "train.stride": 2, "progress": False,
                        "render.what": ["none"], "logger": "csv", **task},
                       run_dir=tmp_path / "run", quiet=True)
    with open(run.path / "csv" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 4  # two cells, epochs 0, 2, 4, 6
    for c in (0, 1):
        mine = [r for r in rows if r["cell"] == rows[4 * c]["cell"]]
        a = np.asarray(run.cells[c].array("loss"), dtype=float)[:, [0, 2, 4, 6]]
        np.testing.assert_allclose([float(r["loss_median"]) for r in mine],
                                   np.median(a, axis=0), rtol=1e-6)
