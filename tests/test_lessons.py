"""Every shipped sweep states its lesson in one line (sweep.lesson), and here a small run of it
shows that lesson. Sizes are cut (fewer bees, predictions at the training points only) but the
settings that carry the lesson are the sweep's own."""

from __future__ import annotations

import io
from importlib.resources import files

import numpy as np
import pytest
import torch
from conftest import compose_config

from swarmcli import grid, load, runner, schedules

SWEEPS = sorted(p.name[:-5] for p in (files("swarmcli.configs") / "sweep").iterdir()
                if p.name.endswith(".yaml"))


@pytest.mark.parametrize("sweep", SWEEPS)
def test_every_sweep_states_its_lesson_in_one_line(sweep):
    lesson = compose_config([f"+sweep={sweep}"]).sweep.lesson
    assert 40 < len(lesson) < 200 and "\n" not in lesson


def train(tmp_path, sweep, *overrides):
    cfg = compose_config([f"+sweep={sweep}", "progress=false", "render.what=[none]",
                          "target.eval_points=0", *overrides])
    runner.run(cfg, tmp_path / sweep, out=io.StringIO())
    return load(tmp_path / sweep)


def median_final(run, **match) -> float:
    return float(np.median(run.cell(**match).loss[:, -1]))


def test_width_activation_width_matters_more_than_activation(tmp_path):
    run = train(tmp_path, "width_activation", "train.bees=6")
    for act in ("relu", "tanh", "tanhshrink"):
        assert median_final(run, width=10, activation=act) * 5 < median_final(
            run, width=1, activation=act)
    wide = [median_final(run, width=10, activation=a) for a in ("relu", "tanh", "tanhshrink")]
    assert max(wide) < 0.05


def test_lr_momentum_more_momentum_ends_lower(tmp_path):
    run = train(tmp_path, "lr_momentum", "train.bees=6")
    for lr in (0.002, 0.01):
        finals = [median_final(run, momentum=m, lr=lr) for m in (0.7, 0.9, 0.95)]
        assert finals[0] > finals[1] > finals[2]
    assert median_final(run, momentum=0.95, lr=0.002) < median_final(run, momentum=0.7, lr=0.01)


def test_optimizer_zoo_adaptive_beats_sgd_and_adamw_is_not_adam(tmp_path):
    run = train(tmp_path, "optimizer_zoo", "train.bees=8")
    sgd = min(median_final(run, optimizer=o) for o in ("SGD", "momentum", "Nesterov"))
    for adaptive in ("Adam", "AdamW", "Adagrad"):
        assert median_final(run, optimizer=adaptive) * 2 < sgd
    adam, adamw = run.cell(optimizer="Adam"), run.cell(optimizer="AdamW")
    assert not np.array_equal(adam.loss, adamw.loss)  # adamw decays its weights (0.01)


def test_lr_schedules_traces_and_where_they_end(tmp_path):
    cfg = compose_config(["+sweep=lr_schedules"])
    _, cells = grid.expand(cfg)
    base = torch.tensor([cells[0].cfg.optim.lr])
    traces = {}
    for c in cells:
        params = {k: v for k, v in vars(c.cfg.schedule).items() if k != "name"}
        traces[c.cfg.schedule.name] = np.array(
            [schedules.lr_for_epoch(c.cfg.schedule.name, params, base, e, c.cfg.train.epochs)[0]
             for e in range(400)])
    lr = 0.05
    assert np.allclose(traces["constant"], lr)
    assert traces["step"][99] == pytest.approx(lr) and traces["step"][100] == pytest.approx(lr / 2)
    assert traces["exponential"][-1] == pytest.approx(lr * 0.99**399)
    assert traces["cosine"][0] == pytest.approx(lr) and traces["cosine"][-1] < 1e-5
    assert traces["cyclic"].max() == pytest.approx(0.1) and traces["cyclic"].argmax() == 50
    assert traces["warmup"][0] == pytest.approx(0.1 * lr) and traces["warmup"][50] == \
        pytest.approx(lr)
    run = train(tmp_path, "lr_schedules", "train.bees=8")
    final = {c.values["schedule.name"]: float(np.median(c.loss[:, -1])) for c in run.cells}
    assert final["exponential"] > final["constant"] > final["cyclic"]


def test_regularization_unregularised_overfits_and_a_regulariser_helps(tmp_path):
    run = train(tmp_path, "regularization", "train.bees=6", "train.epochs=500")
    none = run.cell(regularizer="none")
    val = np.median(np.asarray(none.array("val_loss")), axis=0)
    tr = np.median(np.asarray(none.loss), axis=0)
    best = int(val.argmin())
    assert val[-1] > 1.1 * val[best] and tr[-1] < 0.5 * tr[best]  # held-out up, training down
    val_end = {c.labels["regularizer"]: np.median(np.asarray(c.array("val_loss"))[:, -1])
               for c in run.cells}
    assert val_end["dropout 0.2"] < 0.9 * val_end["none"]


def test_tiny_nets_kinks_start_at_the_left_end_and_bees_sit_on_the_plateau(tmp_path):
    run = train(tmp_path, "tiny_nets", "train.bees=4", "train.epochs=150",
                "train.record=[ypred,biases]")
    assert run.x.min() == 0.0
    for c in run.cells:
        assert not np.asarray(c.biases(0))[:, 0].any()  # -b/w = 0 for every unit of every bee
        assert np.median(c.loss[:, -1]) > 0.3  # the post's plateau, 150 epochs in


def test_init_schemes_zeros_keep_every_unit_identical(tmp_path):
    run = train(tmp_path, "init_schemes", "train.bees=4", "train.epochs=150",
                "train.record=[ypred,weights,biases]",
                "sweep.grid.model.init=[default,uniform,zeros]")
    for act in ("relu", "tanh"):
        zeros = run.cell(activation=act, init="zeros")
        for layer in (0, 1, 2):
            w = np.asarray(zeros.weights(layer))[:, -1]  # [bees, fan_in, fan_out]
            assert np.ptp(w, axis=(1, 2)).max() == 0  # every weight of a layer the same
        assert median_final(run, activation=act, init="zeros") > 20 * median_final(
            run, activation=act, init="default")
    assert median_final(run, activation="tanh", init="uniform") > 20 * median_final(
        run, activation="tanh", init="default")


def test_depth_width_the_init_not_the_depth_decides(tmp_path):
    run = train(tmp_path, "depth_width", "train.bees=8")
    cells = {c.labels["architecture"]: np.sort(np.asarray(c.loss[:, -1])) for c in run.cells}
    assert list(cells) == ["1x60", "2x10", "3x7", "4x6"]
    split = [c for c in cells.values() if c[-1] > 3 * c[0]]  # fitted and stuck bees side by side
    assert len(split) >= 3
    rows = list(csv_rows(run))
    assert sum(r["tied_with_best"] == "True" for r in rows) >= 3 * 8  # 3 cells beside the best


def csv_rows(run):
    import csv

    with open(run.path / "summary.csv") as f:
        yield from csv.DictReader(f)


def test_early_stopping_shorter_patience_stops_sooner(tmp_path):
    run = train(tmp_path, "early_stopping", "train.bees=6")
    cells = [run.cell(patience=p) for p in (10, 50, 200)]
    stopped = [np.median(np.asarray(c.array("stopped_epoch"))) for c in cells]
    held = [np.median(np.asarray(c.array("val_loss"))[:, -1]) for c in cells]
    trained = [np.median(np.asarray(c.loss)[:, -1]) for c in cells]
    assert 0 < stopped[0] < stopped[1] < stopped[2]
    assert held[0] < held[1] < held[2] and trained[0] > trained[1] > trained[2]


def test_weight_distribution_kinks_gather_at_the_turning_points(tmp_path):
    run = train(tmp_path, "weight_distribution", "train.bees=40")
    cell = run.cells[0]
    kinks = -np.asarray(cell.biases(0)) / np.asarray(cell.weights(0))[:, :, 0, :]
    turning = np.pi / 2 + np.pi * np.arange(-3, 3)  # sin's on [-3 pi, 3 pi]

    def near(frame):
        k = kinks[:, frame].ravel()
        k = k[np.abs(k) < 3 * np.pi]
        return (np.abs(k[:, None] - turning).min(axis=1) < 0.5).mean()

    assert near(0) < 0.3 and near(-1) > 0.5
