"""Garbage, partial or foreign run dirs: `swarmcli.load` raises DamagedRun naming the file, and
`swarm render` / `swarm rerun` answer with one line naming the file, exit 2, before any work."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from conftest import compose_config, swarm

from swarmcli import cli, load, runner
from swarmcli.results import DamagedRun


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("good") / "run"
    cfg = compose_config(["train.epochs=4", "train.bees=2", "progress=false",
                          "+sweep.grid.model.width=[2,3]"])
    runner.run(cfg, run_dir, out=io.StringIO())
    (run_dir / ".hydra").mkdir()
    from omegaconf import OmegaConf

    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return run_dir


def manifest_edit(change):
    def damage(d):
        m = json.loads((d / "swarm.json").read_text())
        change(m)
        (d / "swarm.json").write_text(json.dumps(m))
    return damage


def write(name: str, data: bytes):
    return lambda d: (d / name).write_bytes(data)


def truncate(name: str, keep: float):
    def damage(d):
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[:int(len(data) * keep)])
    return damage


DAMAGE = [
    # (id, damage, the file named, words of the problem)
    ("manifest garbage", write("swarm.json", b"\x00\xffPK\x03\x04 not json"), "swarm.json",
     "damaged"),
    ("manifest empty object", write("swarm.json", b"{}"), "swarm.json", "has no 'format'"),
    ("manifest a list", write("swarm.json", b"[1, 2]"), "swarm.json", "not an object"),
    ("manifest empty file", write("swarm.json", b""), "swarm.json", "damaged"),
    ("manifest truncated", truncate("swarm.json", 0.5), "swarm.json", "damaged"),
    ("manifest state unknown", manifest_edit(lambda m: m.update(state="done")), "swarm.json",
     "state='done' is not one of: running, complete"),
    ("manifest state a number", manifest_edit(lambda m: m.update(state=5)), "swarm.json",
     "state=5 is not str"),
    ("manifest cells not a list", manifest_edit(lambda m: m.update(cells="all")), "swarm.json",
     "cells='all' is not list"),
    ("manifest frames missing", manifest_edit(lambda m: m.pop("frames")), "swarm.json",
     "has no 'frames'"),
    ("manifest frames past the end", manifest_edit(lambda m: m.update(frames=[0, 99])),
     "swarm.json", "frames must be ascending epochs in [0, 4]"),
    ("manifest cell without index", manifest_edit(lambda m: m["cells"][1].pop("index")),
     "swarm.json", "cells[1] has no 'index'"),
    ("manifest cell index repeated", manifest_edit(lambda m: m["cells"][1].update(index=0)),
     "swarm.json", "cells[1].index=0 is negative or repeated"),
    ("manifest cell labels foreign", manifest_edit(lambda m: m["cells"][0].update(labels={})),
     "swarm.json", "cells[0] does not match the axes"),
    ("manifest another format", manifest_edit(lambda m: m.update(format=7)), "swarm.json",
     "format 7 is not 1"),
    ("loss truncated", truncate("cells/001/loss.npy", 0.6), "cells/001/loss.npy", "damaged"),
    ("loss empty", write("cells/000/loss.npy", b""), "cells/000/loss.npy", "damaged"),
    ("ypred garbage", write("cells/000/ypred.npy", b"\x93NUMPY garbage"), "cells/000/ypred.npy",
     "damaged"),
    ("cell array missing", lambda d: (d / "cells/001/diverged_epoch.npy").unlink(),
     "cells/001/diverged_epoch.npy", "missing"),
    ("cell dir missing", lambda d: shutil.rmtree(d / "cells/001"), "cells/001/loss.npy",
     "missing"),
    ("loss wrong shape", lambda d: np.save(d / "cells/000/loss.npy", np.zeros((2, 3))),
     "cells/000/loss.npy", "has shape [2, 3], not [2, 5]"),
    ("x truncated", truncate("x.npy", 0.5), "x.npy", "damaged"),
]


def damaged_copy(good, tmp_path, damage):
    d = tmp_path / "run"
    shutil.copytree(good, d)
    damage(d)
    return d


@pytest.mark.parametrize("damage, named, problem", [r[1:] for r in DAMAGE],
                         ids=[r[0] for r in DAMAGE])
def test_load_names_the_file_and_the_problem(good, tmp_path, damage, named, problem):
    d = damaged_copy(good, tmp_path, damage)
    with pytest.raises(DamagedRun) as err:
        load(d)
    msg = str(err.value)
    assert str(d / named) in msg and problem in msg and "\n" not in msg, msg


@pytest.mark.parametrize("verb", ["render", "rerun"])
@pytest.mark.parametrize("damage, named, problem", [r[1:] for r in DAMAGE[::3]],
                         ids=[r[0] for r in DAMAGE[::3]])
def test_render_and_rerun_refuse_in_one_line(good, tmp_path, damage, named, problem, verb,
                                             capsys):
    d = damaged_copy(good, tmp_path, damage)
    with pytest.raises(SystemExit) as stop:
        cli.main([verb, str(d), f"hydra.run.dir={tmp_path / 'again'}" if verb == "rerun"
                  else "what=[loss]"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and problem in err[0], err
    assert not (tmp_path / "again").exists() and not (d / "figures").exists()


@pytest.mark.parametrize("content, problem", [
    (b"train: {epochs: [1,\n", "damaged"),
    (b"\x00\x01\xff\xfe\x80binary", "damaged"),
    (b"- just\n- a list\n", "not a mapping of config keys"),
    (b"train: {epochs: many}\n", "train.epochs"),
])
@pytest.mark.parametrize("verb", ["render", "rerun"])
def test_a_damaged_saved_config_is_named(good, tmp_path, content, problem, verb, capsys):
    d = damaged_copy(good, tmp_path, write(".hydra/config.yaml", content))
    if verb == "render" and problem == "train.epochs":
        pytest.skip("render reads only the render keys of the saved config")
    with pytest.raises(SystemExit) as stop:
        cli.main([verb, str(d), f"hydra.run.dir={tmp_path / 'again'}" if verb == "rerun"
                  else "what=[loss]"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and problem in err[0], err
    assert "config.yaml" in err[0] or problem == "train.epochs"
    assert not (tmp_path / "again").exists()


def test_foreign_and_missing_dirs(tmp_path, capsys):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("not a run")
    for target in (tmp_path / "foreign", tmp_path / "nowhere"):
        with pytest.raises(DamagedRun, match="is not a swarm run directory"):
            load(target)
        for verb in ("render", "rerun"):
            with pytest.raises(SystemExit) as stop:
                cli.main([verb, str(target)])
            assert stop.value.code == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and str(target) in err[0], err


def test_a_real_process_names_the_damaged_file(good, tmp_path):
    d = damaged_copy(good, tmp_path, write("swarm.json", b"\x00garbage"))
    proc = swarm("render", str(d), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"swarm: error: {d / 'swarm.json'} is damaged: Expecting "
                                   "value: line 1 column 1 (char 0)")


@pytest.mark.parametrize("content", [b"hydra: [\n  broken", b"\x00\xff\xfe binary"])
def test_collect_names_a_damaged_multirun_yaml(tmp_path, content, capsys):
    (tmp_path / "multi").mkdir()
    (tmp_path / "multi" / "multirun.yaml").write_bytes(content)
    with pytest.raises(SystemExit) as stop:
        cli.main(["collect", str(tmp_path / "multi"), "--no-render"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot read {tmp_path / 'multi' / 'multirun.yaml'}" in err[0], err


def test_an_intact_run_reads_back_as_a_tidy_frame(good):
    """Run.to_frame: one row per (cell, bee, epoch), the swept value typed, the loss as saved."""
    run = load(good)
    df = run.to_frame()
    assert list(df.columns) == ["cell", "model.width", "bee", "epoch", "loss"]
    assert len(df) == 2 * 2 * 5
    for cell in run.cells:
        part = df[df["cell"] == cell.index]
        assert (part["model.width"] == cell.values["model.width"]).all()
        np.testing.assert_array_equal(part["loss"].to_numpy().reshape(2, 5), cell.loss)
        assert part["bee"].tolist() == [0] * 5 + [1] * 5
        assert part["epoch"].tolist() == list(range(5)) * 2


def test_a_cell_is_found_by_its_axis_key_or_the_keys_last_part(good):
    run = load(good)
    assert run.cell(width=3) is run.cell(**{"model.width": 3}) is run.cells[1]
    with pytest.raises(KeyError, match="0 cells match"):
        run.cell(width=4)
