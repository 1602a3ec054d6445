"""task.kind=classification: the datasets (moons as scikit-learn draws it), the stratified
split, a whole run (accuracy from the recorded logits, test points never trained on), its rerun,
bad input, its figures, and the shipped sweep's lesson."""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
from conftest import compose_config
from omegaconf import OmegaConf

from swarmcli import choices, classify, cli, config, datasets, load, preflight, runner
from swarmcli.errors import SwarmError
from swarmcli.render import boundaries, layout, render_run, style

TINY = ["task=classification", "train.epochs=30", "train.bees=3", "progress=false",
        "render.what=[none]", "dataset.samples=40", "dataset.grid=12", "optim=adam",
        "optim.lr=0.02", "train.stride=10"]


def run_tiny(tmp_path, *overrides, name="run"):
    cfg = compose_config([*TINY, *overrides])
    out = io.StringIO()
    summary = runner.run(cfg, tmp_path / name, out=out)
    return load(tmp_path / name), summary, out.getvalue()


# -- datasets ---------------------------------------------------------------------------------

@pytest.mark.slow  # importing scikit-learn (and scipy) alone takes seconds
def test_moons_and_circles_equal_scikit_learn():
    sk = pytest.importorskip("sklearn.datasets")
    for n, noise, seed in [(100, 0.25, 3), (57, 0.1, 0), (8, 0.0, 12)]:
        x, y = datasets.moons(n, noise, seed)
        xs, ys = sk.make_moons(n_samples=n, noise=noise, random_state=seed)
        np.testing.assert_array_equal(x, xs)
        np.testing.assert_array_equal(y, ys)
        x, y = datasets.circles(n, noise, seed)
        xs, ys = sk.make_circles(n_samples=n, noise=noise, random_state=seed,
                                 factor=datasets.CIRCLES_FACTOR)
        np.testing.assert_array_equal(x, xs)
        np.testing.assert_array_equal(y, ys)


def test_noiseless_moons_lie_on_their_arcs():
    """make_moons' definition without scikit-learn: class 0 on the unit upper half circle, class
    1 on the lower half circle of radius 1 centred at (1, 0.5)."""
    x, y = datasets.moons(101, 0.0, 7)
    up, low = x[y == 0], x[y == 1]
    assert len(up) == 50 and len(low) == 51
    np.testing.assert_allclose(np.hypot(*up.T), 1, atol=1e-12)
    assert (up[:, 1] >= -1e-12).all()
    np.testing.assert_allclose(np.hypot(low[:, 0] - 1, low[:, 1] - 0.5), 1, atol=1e-12)
    assert (low[:, 1] <= 0.5 + 1e-12).all()


def test_every_dataset_name_has_a_generator():
    assert tuple(datasets.DATASETS) == choices.DATASETS


@pytest.mark.parametrize("name", choices.DATASETS)
def test_each_dataset_is_two_balanced_classes_and_split_stratified(name):
    d = config.DatasetConfig(name=name, samples=80, test_fraction=0.25, val_fraction=0.2)
    pts = datasets.make(d)
    assert pts.x.shape == (80, 2) and np.isfinite(pts.x).all()
    assert sorted(np.unique(pts.y)) == [0.0, 1.0] and pts.y.sum() == 40
    assert not (pts.test & pts.val).any()
    for c in (0, 1):
        of_class = pts.y == c
        assert pts.test[of_class].sum() == 10  # 25% of each class's 40
        assert pts.val[of_class].sum() == 6  # 20% of the 30 left
    a0, b0, a1, b1 = pts.extent
    assert a0 < pts.x[:, 0].min() and pts.x[:, 0].max() < b0
    assert a1 < pts.x[:, 1].min() and pts.x[:, 1].max() < b1
    assert pts.grid_x.shape == (d.grid**2, 2)
    again = datasets.make(d)
    np.testing.assert_array_equal(again.x, pts.x)
    np.testing.assert_array_equal(again.test, pts.test)


def test_test_points_never_reach_training():
    pts = datasets.make(config.DatasetConfig(samples=40, val_fraction=0.25))
    data = classify.engine_data(pts, None)
    assert len(data.x) == (~pts.test).sum()
    np.testing.assert_array_equal(data.x, pts.x[~pts.test])
    assert data.val_mask.sum() == pts.val.sum()
    np.testing.assert_array_equal(data.eval_x[:40], pts.x)  # logits at every point, then grid


# -- bad input -----------------------------------------------------------------------------

BAD = [
    ("dataset.name=swirl", "dataset.name='swirl' is not one of: moons, circles, xor, spirals, "
                           "blobs"),
    ("dataset.samples=2", "dataset.samples=2 must be an integer in [4, 10000000]"),
    ("dataset.test_fraction=1", "dataset.test_fraction=1.0 must be a number in [0, 1)"),
    ("train.patience=5", "train.patience needs validation points: set dataset.val_fraction > 0"),
    ("task.kind=ranking", "task.kind='ranking' is not one of: regression, landscape, "
                          "classification"),
    ("+sweep.grid.dataset.noise=[0.1,0.2]", "sweep.grid key 'dataset.noise' is not a config key"),
]


@functools.cache
def tiny_config():
    return compose_config(TINY)


def test_a_classification_run_too_big_for_memory_is_refused_naming_its_knobs():
    cfg = OmegaConf.merge(tiny_config(), OmegaConf.from_dotlist(
        ["dataset.grid=2000", "train.memory_limit_gb=0.05", "train.stride=1"]))
    with pytest.raises(SwarmError) as e:
        preflight.check(cfg)
    assert str(e.value).startswith("training needs about ")
    assert "activations" in str(e.value) and "dataset.grid (now 2000)" in str(e.value)


@pytest.mark.parametrize("override, message", BAD[1:])
def test_bad_classification_input_is_refused_in_one_line(override, message):
    """What `swarm run` checks before Hydra makes a run dir (preflight.check), in-process, on
    the tiny config composed once with the bad value merged in."""
    if override.startswith("+"):  # a key the schema lacks: Hydra adds it
        cfg = compose_config([*TINY, override])
    else:
        cfg = OmegaConf.merge(tiny_config(), OmegaConf.from_dotlist([override]))
    with pytest.raises(SwarmError) as e:
        preflight.check(cfg)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_bad_dataset_name_exits_2_with_one_line_and_no_run_dir(tmp_path, capsys):
    override, message = BAD[0]
    run_dir = tmp_path / "outputs" / "run"
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", *TINY, f"hydra.run.dir={run_dir}", override])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"swarm: error: {message}"]
    assert not (tmp_path / "outputs").exists()


# -- a run ----------------------------------------------------------------------------------

def test_run_records_accuracy_from_its_logits(tmp_path):
    """Per bee and recorded epoch: train and test accuracy, and the test loss, are what the
    recorded logits at those points say; the training loss is BCE on the training points."""
    run, summary, text = run_tiny(tmp_path, "+sweep.grid.model.activation=[relu,tanh]")
    assert run.task == "classification" and run.manifest["grid"] == 12
    x, y, test = run.x, run.y, run.load("test_mask")
    assert x.shape == (40, 2) and test.sum() == 10
    frames = list(run.frames)
    assert frames == [0, 10, 20, 30]
    for cell in run.cells:
        logits = np.asarray(cell.ypred, np.float64)
        assert logits.shape == (3, 4, 40 + 144)
        at = logits[..., :40]
        want = ((at[..., test] > 0) == (y[test] > 0.5)).mean(-1)
        np.testing.assert_array_equal(cell.array("test_accuracy"), want)
        want = ((at[..., ~test] > 0) == (y[~test] > 0.5)).mean(-1)
        np.testing.assert_array_equal(cell.array("accuracy"), want)
        z, t = at[..., ~test], y[~test]
        bce = (np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).mean(-1)
        np.testing.assert_allclose(cell.loss[:, frames], bce, rtol=1e-5)
        assert (cell.array("test_accuracy")[:, -1] > 0.7).all()  # it learned something
    assert "median test accuracy" in text and "relu" in text
    assert summary.objective == pytest.approx(np.median(np.concatenate(
        [c.loss[:, -1] for c in run.cells])))


def test_rerun_of_a_classification_run_is_bit_identical(tmp_path, capsys):
    first, again = tmp_path / "first", tmp_path / "again"
    cli.main(["run", *TINY, f"hydra.run.dir={first}"])
    capsys.readouterr()
    cli.main(["rerun", str(first), f"hydra.run.dir={again}"])
    out = capsys.readouterr().out
    assert "rerun is bit-identical" in out, out
    assert load(again).task == "classification"


def test_early_stopping_watches_the_validation_points(tmp_path):
    run, _, _ = run_tiny(tmp_path, "dataset.val_fraction=0.3", "train.patience=3",
                         "train.epochs=200", "optim.lr=0.1")
    cell = run.cells[0]
    assert cell.has("val_loss") and cell.has("val_accuracy")
    stopped = cell.array("stopped_epoch")
    assert (stopped > 0).any()
    for bee, e in enumerate(stopped):
        if e > 0:  # a stopped bee is frozen: its loss no longer moves
            assert np.all(cell.loss[bee, e:] == cell.loss[bee, e])


# -- figures -----------------------------------------------------------------------------------

def test_figures_draw_and_no_text_overlaps(tmp_path):
    import matplotlib

    run, _, _ = run_tiny(tmp_path, "+sweep.grid.model.depth=[1,2]",
                         "+sweep.grid.model.activation=[relu,tanh]")
    cfg = {**runner_render_defaults(), "epochs": [-1]}
    names = []
    with matplotlib.rc_context(style.RC):
        for draw in boundaries.STILLS.values():
            for name, fig in draw(run, cfg):
                names.append(name)
                assert layout.problems(fig) == [], name
    assert names == ["boundaries_epoch0030.png", "accuracy.png", "final_accuracy.png"]
    plane = boundaries.Plane(run)
    segs = plane.contours(plane.logits(run.cells[0], -1))
    assert segs and all(s.shape[1] == 2 for s in segs)
    out = io.StringIO()  # swarm render's path: the manifest's task picks the figures
    written = render_run(run.path, {"what": ["loss", "compare"]}, out=out)
    assert [p.name for p in written] == ["accuracy.png"]
    assert "render.what=compare is not drawn for a classification run" in out.getvalue()


def runner_render_defaults() -> dict:
    from swarmcli.render import DEFAULTS

    return dict(DEFAULTS)


def test_mean_probability_leaves_out_diverged_bees():
    z = np.array([[[0.0, 50.0]], [[np.inf, -50.0]], [[np.nan, 0.0]]])
    p = boundaries.mean_probability(z)
    np.testing.assert_allclose(p, [[0.5, 1.0]], atol=1e-12)  # bees 1 and 2 diverged
    assert np.isnan(boundaries.mean_probability(z[1:])).all()


# -- the shipped sweep's lesson ------------------------------------------------------------

def test_moons_activation_lesson(tmp_path):
    """Seed 003's set-up at depth 2 (one of the sweep's four; one group, so one training loop),
    6 bees: every cell reaches ~0.9
    test accuracy; ReLU's boundaries are piecewise linear (its logit's second difference along
    the grid vanishes on most of the plane), tanh's are not; and the bees disagree more about
    points far from the data than near it."""
    cfg = compose_config(["+sweep=moons_activation", "progress=false",
                          "render.what=[none]", "train.bees=6", "sweep.grid.model.depth=[2]"])
    runner.run(cfg, tmp_path / "moons", out=io.StringIO())
    run = load(tmp_path / "moons")
    n, g = len(run.y), int(run.manifest["grid"])
    grid_x = run.load("eval_x")[n:]
    dist = np.sqrt(((grid_x[:, None] - run.x[None]) ** 2).sum(-1)).min(1)
    for cell in run.cells:
        assert np.median(cell.array("test_accuracy")[:, -1]) >= 0.8, cell.labels
        z = np.asarray(cell.ypred[:, -1, n:], np.float64)
        zz = z.reshape(len(z), g, g)
        flat = (np.abs(np.diff(zz, 2, axis=2)) < 1e-3 * np.abs(np.diff(zz, axis=2)).mean())
        if cell.labels["model.activation"] == "relu":
            assert flat.mean() > 0.3, cell.labels
        else:
            assert flat.mean() < 0.1, cell.labels
        share = (z > 0).mean(0)
        disagree = np.minimum(share, 1 - share)
        assert disagree[dist > 0.6].mean() > 1.5 * disagree[dist < 0.25].mean(), cell.labels



# -- the per-unit view (regression, one hidden layer) ------------------------------------------

def test_unit_curves_sum_to_the_recorded_prediction(tiny_run):
    """The per-unit view's curves are each bee's real decomposition: summed with b2 they give
    the engine's recorded ypred, for every activation drawn and every recorded epoch; ReLU kinks
    sit where the output's slope changes. Its stills draw with no overlapping text."""
    import matplotlib

    from swarmcli.render import DEFAULTS, units

    run = load(tiny_run("+sweep.grid.model.activation=[relu,tanh,leaky_relu,gelu]",
                        "model.leaky_slope=0.2", "train.record=[ypred,weights,biases]",
                        "model.width=5", "train.epochs=20", "optim.lr=0.05"))
    x = np.asarray(run.eval_x, np.float64)
    assert units.leaky_slope(run.cell(activation="leaky_relu")) == 0.2
    for cell in run.cells:
        for f in range(len(run.frames)):
            parts, out, kinks = units.unit_curves(cell, f, x, bee=1, slope=0.2)
            assert parts.shape == (5, len(x))
            np.testing.assert_allclose(out, cell.ypred[1, f], rtol=1e-5, atol=1e-5)
    relu = run.cell(activation="relu")
    _, out, kinks = units.unit_curves(relu, len(run.frames) - 1, x)
    k = kinks[np.isfinite(kinks) & (kinks > x.min()) & (kinks < x.max())]
    slope = np.diff(out) / np.diff(x)
    bends = x[1:-1][np.abs(np.diff(slope)) > 1e-6 * np.abs(slope).max()]
    assert k.size and all(np.abs(bends - kk).min() < 0.2 for kk in k)
    with matplotlib.rc_context(style.RC):
        names = [(name, layout.problems(fig)) for name, fig in units.stills(
            run, {**DEFAULTS, "epochs": [-1]})]
    assert names == [("units_epoch0020.png", [])]


# -- the per-unit view of a classification run (2-D fields) ------------------------------------

def test_unit_fields_sum_to_the_recorded_logit_and_relu_lines_are_the_folds(tmp_path):
    """One bee's hidden units drawn as 2-D fields w2_j act(w1_j . x + b1_j) on the run's grid:
    the fields the figure holds, summed with b2, are the bee's recorded logit (float64 run: to
    1e-9); each unit's drawn line is where its pre-activation is 0 (for ReLU its fold: the field
    is 0 on one side of it); wide cells show their largest units and say so; deeper cells are
    skipped with a printed line; the stills read cleanly."""
    import matplotlib

    from swarmcli.render import DEFAULTS, unit_fields

    run, _, _ = run_tiny(tmp_path, "train.dtype=float64", "train.record=[ypred,weights,biases]",
                         "model.width=12", "+sweep.grid.model.activation=[relu,tanh]",
                         "+sweep.grid.model.depth=[1,2]")
    plane = boundaries.Plane(run)
    drawn, skipped = unit_fields.cells_drawn(run)
    assert [c.info["depth"] for c in drawn] == [1, 1] and len(skipped) == 2
    cfg = {**DEFAULTS, "epochs": [0, -1]}
    for i, cell in enumerate(drawn):
        for f in range(len(run.frames)):
            parts, logit, pre = unit_fields.fields(cell, f, plane, bee=1)
            assert parts.shape == pre.shape == (12, plane.side, plane.side)
            np.testing.assert_allclose(logit, plane.logits(cell, f)[1], rtol=0, atol=1e-9)
        with matplotlib.rc_context(style.RC):
            sc = unit_fields.scene(run, cfg, i)
            for f in range(len(run.frames)):
                fig = sc.still(f)
                w1 = np.asarray(cell.weights(0)[0, f], np.float64)  # [2, width]
                b1 = np.asarray(cell.biases(0)[0, f], np.float64)
                b2 = float(cell.biases(1)[0, f, 0])
                shown = [np.asarray(im.get_array(), np.float64) for im in sc.unit_images]
                assert len(shown) == unit_fields.MAX_UNITS < 12
                every, _, pre = unit_fields.fields(cell, f, plane, bee=0)
                total = np.asarray(sc.sum_image.get_array(), np.float64)
                np.testing.assert_allclose(total, every.sum(0) + b2, rtol=0, atol=1e-12)
                np.testing.assert_allclose(total, plane.logits(cell, f)[0], rtol=0, atol=1e-9)
                np.testing.assert_allclose(shown, every[sc.units], rtol=0, atol=1e-12)
                for j, line in zip(sc.units, sc.unit_lines):
                    px, py = line.get_data()
                    if len(px):
                        z = w1[0, j] * np.asarray(px) + w1[1, j] * np.asarray(py) + b1[j]
                        assert np.abs(z).max() < 1e-9 * (np.abs(w1[:, j]).sum() + abs(b1[j]))
                    if cell.info["activation"] == "relu":  # 0 wherever the unit is off
                        assert (every[j][pre[j] <= 0] == 0).all()
                assert layout.problems(fig) == [], (cell.labels, f)
            assert f"{unit_fields.MAX_UNITS} of 12:" in fig._suptitle.get_text()
    out = io.StringIO()
    written = render_run(run.path, {"what": ["units"], "epochs": [-1]}, out=out)
    assert sorted(p.name for p in written) == ["units_activation=relu_depth=1_epoch0030.png",
                                               "units_activation=tanh_depth=1_epoch0030.png"]
    assert out.getvalue().count("one hidden layer only") == 2
    with matplotlib.rc_context(style.RC):  # the animation's scene: one scale for every frame
        sc = unit_fields.scene(run, cfg, 0, animated=True)
        sc.update(len(run.frames) - 1)
        assert layout.problems(sc.fig) == []
        clims = {im.get_clim() for im in [*sc.unit_images, sc.sum_image]}
        sc.update(0)
        assert {im.get_clim() for im in [*sc.unit_images, sc.sum_image]} == clims
        assert len(clims) == 1
    written = render_run(run.path, {"what": ["units_animation"], "format": "gif",
                                    "max_seconds": 1, "min_seconds": 0}, out=io.StringIO())
    assert sorted(p.name for p in written) == ["units_animation_activation=relu_depth=1.gif",
                                               "units_animation_activation=tanh_depth=1.gif"]


def test_unit_field_lines_cross_the_plane_edge_to_edge():
    from swarmcli.render import unit_fields

    ext = (-1.0, 2.0, -3.0, 1.0)
    for w, b in [((1.0, 0.0), -0.5), ((0.0, 2.0), 1.0), ((1.0, 1.0), 0.3), ((1.0, -2.0), 0.0)]:
        seg = unit_fields.hyperplane(w, b, ext)
        assert seg.shape == (2, 2)
        np.testing.assert_allclose(seg @ np.array(w) + b, 0, atol=1e-12)
        on_edge = np.isclose(seg[:, :1], ext[:2]).any(1) | np.isclose(seg[:, 1:], ext[2:]).any(1)
        assert on_edge.all()
    assert unit_fields.hyperplane((1.0, 0.0), -5.0, ext).size == 0  # x = 5 misses the plane
    assert unit_fields.hyperplane((0.0, 0.0), 1.0, ext).size == 0  # a constant unit: no line
