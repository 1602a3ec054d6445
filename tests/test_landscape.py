"""task=landscape: particles on loss surfaces move exactly as torch.optim moves one 2-vector,
the shipped sweeps teach what their lessons say, reruns are bit-identical, figures fit, and bad
surfaces are refused in one line."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
import yaml
from conftest import compose_config
from omegaconf import OmegaConf

from swarmcli import cli, formula, load, preflight, render, results, runner
from swarmcli.config import SurfaceConfig
from swarmcli.engine.parts import Schedule
from swarmcli.errors import SwarmError
from swarmcli.landscape import particles, surfaces
from swarmcli.render import landscape as draw
from swarmcli.render import layout

BEALE = surfaces.NAMED["beale"].expr
START = np.array([[0.8, 1.6], [1.5, -0.3]])  # two particles, one batch

# (our optimizer name, its per-particle hyper-parameters, flags, torch.optim class and kwargs,
#  schedule): every optimizer, momentum variants, and the two schedules seed 003 uses
CASES = [
    ("sgd", {"lr": 0.01}, {}, torch.optim.SGD, {"lr": 0.01}, None),
    ("sgd", {"lr": 0.005, "momentum": 0.9}, {}, torch.optim.SGD,
     {"lr": 0.005, "momentum": 0.9}, None),
    ("sgd", {"lr": 0.005, "momentum": 0.9}, {"nesterov": True}, torch.optim.SGD,
     {"lr": 0.005, "momentum": 0.9, "nesterov": True}, None),
    ("adam", {"lr": 0.05}, {}, torch.optim.Adam, {"lr": 0.05}, None),
    ("adamw", {"lr": 0.05, "weight_decay": 0.1}, {}, torch.optim.AdamW,
     {"lr": 0.05, "weight_decay": 0.1}, None),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-7}, {}, torch.optim.RMSprop,
     {"lr": 0.01, "alpha": 0.9, "eps": 1e-7}, None),
    ("rmsprop", {"lr": 0.001, "momentum": 0.9}, {"centered": True}, torch.optim.RMSprop,
     {"lr": 0.001, "momentum": 0.9, "centered": True}, None),
    ("adagrad", {"lr": 0.4, "initial_accumulator_value": 0.1, "eps": 1e-7}, {},
     torch.optim.Adagrad, {"lr": 0.4, "initial_accumulator_value": 0.1, "eps": 1e-7}, None),
    ("adamax", {"lr": 0.05}, {}, torch.optim.Adamax, {"lr": 0.05}, None),
    ("nadam", {"lr": 0.05}, {}, torch.optim.NAdam, {"lr": 0.05}, None),
    ("sgd", {"lr": 0.02}, {}, torch.optim.SGD, {"lr": 0.02},
     ("exponential", {"gamma": 0.96 ** 0.01})),
    ("sgd", {"lr": 1e-4}, {}, torch.optim.SGD, {"lr": 1e-4},
     ("cyclic", {"max_lr": 0.1, "step_size_up": 30})),
]
STEPS = 40


def hyper_of(name: str, given: dict, n: int) -> dict:
    """Per-particle tensors of every hyper-parameter optim.py's `name` takes (torch's defaults
    for those not given)."""
    from swarmcli import optim
    from swarmcli.config import OptimConfig

    o = OptimConfig(name=name, **{k: v for k, v in given.items()})
    return {k: v.repeat(n) for k, v in optim.hyper_parameters(name, [o]).items()}


def reference(start, cls, kwargs, schedule) -> tuple[np.ndarray, np.ndarray]:
    """One particle the plain way: a 2-vector parameter, torch.optim and its lr scheduler."""
    f = formula.compile_formula(BEALE, "surface.expr", ("x", "y"))
    w = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = cls([w], **kwargs)
    sched = None
    if schedule and schedule[0] == "exponential":
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, schedule[1]["gamma"])
    elif schedule:
        sched = torch.optim.lr_scheduler.CyclicLR(
            opt, base_lr=kwargs["lr"], max_lr=schedule[1]["max_lr"],
            step_size_up=schedule[1]["step_size_up"], cycle_momentum=False)
    losses, path = [], []
    for step in range(STEPS + 1):
        loss = f.apply(particles.TORCH, w[0], w[1])
        losses.append(loss.item())
        path.append(w.detach().clone().numpy())
        if step == STEPS:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched:
            sched.step()
    return np.array(losses), np.array(path)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_particles_follow_torch_optim_step_for_step(case):
    name, given, flags, cls, kwargs, schedule = case
    land = surfaces.Landscape("beale", 2, START[0], (-2, 3.5, -3.5, 2), np.zeros((0, 2)), BEALE)
    sched = Schedule(*schedule) if schedule else Schedule("constant", {})
    got = particles.descend(particles.loss_function(land, torch.float64, "cpu"), START, name,
                            hyper_of(name, given, len(START)), flags, sched, STEPS,
                            list(range(STEPS + 1)))
    for i, s in enumerate(START):
        loss, path = reference(s, cls, kwargs, schedule)
        assert np.isfinite(loss).all()
        np.testing.assert_allclose(got.loss[i], loss, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.position[i], path, rtol=1e-12, atol=1e-12)


def test_a_diverging_particle_freezes_and_the_others_move_on():
    land = surfaces.resolve(SurfaceConfig())
    lr = torch.tensor([0.045, 0.01], dtype=torch.float64)
    got = particles.descend(particles.loss_function(land, torch.float64, "cpu"),
                            np.tile(land.start, (2, 1)), "sgd", {**hyper_of("sgd", {}, 2),
                                                                 "lr": lr},
                            {}, Schedule("constant", {}), 30, list(range(31)))
    assert got.diverged_epoch.tolist() == [4, -1]
    frozen = got.position[0, 4:]
    assert (frozen == frozen[0]).all()  # stays where its loss stopped being finite
    assert np.isfinite(got.loss[1]).all() and got.loss[1, -1] < got.loss[1, 0]


def test_a_users_formula_gets_exact_gradients():
    f = "x**2 + 10*y**2 + sin(x*y)"
    land = surfaces.Landscape("expr", 2, np.zeros(2), (-1, 1, -1, 1), np.zeros((0, 2)), f)
    p = torch.tensor([[0.3, -0.7]], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(particles.loss_function(land, torch.float64, "cpu")(p).sum(), p)
    x, y = 0.3, -0.7
    exact = [2 * x + y * np.cos(x * y), 20 * y + x * np.cos(x * y)]
    np.testing.assert_allclose(g[0].numpy(), exact, rtol=1e-14)
    assert surfaces.resolve(SurfaceConfig(expr=f)).minima.shape == (1, 2)


def shipped(tmp_path, sweep: str):
    cfg = compose_config([f"+sweep={sweep}", "progress=false", "render.what=[none]"])
    runner.run(cfg, tmp_path / sweep, out=io.StringIO())
    return load(tmp_path / sweep)


def end_distance(run, label: str) -> float:
    c = run.cell(**{run.axes[0]["name"]: label})
    return float(np.linalg.norm(c.array("position")[0, -1] - [3.0, 0.5]))


@pytest.mark.slow  # 8 cells: ~3-7 s, most of it expanding the sweep's configs
def test_optimizer_paths_lesson(tmp_path):
    run = shipped(tmp_path, "optimizer_paths")
    d = {lab: end_distance(run, lab) for lab in run.axes[0]["labels"]}
    assert max(d["rmsprop"], d["sgd_cyclic"]) < 0.1
    assert max(d["nesterov"], d["adam"], d["momentum"]) < 0.3
    assert min(d["sgd"], d["adagrad"]) > 0.5 and max(d["sgd"], d["adagrad"]) < 0.8
    assert d["sgd_decay"] < d["sgd"]  # a higher (decaying) lr gets plain SGD further


@pytest.mark.slow  # 10 cells
def test_lr_paths_lesson(tmp_path):
    run = shipped(tmp_path, "lr_paths")
    lrs = [c.values["optim.lr"] for c in run.cells]
    assert lrs == pytest.approx([0.005 * i for i in range(10)])
    start = run.cells[0].array("position")[0]
    assert (start == [0.8, 1.6]).all()  # lr 0 stands still
    d = [float(np.linalg.norm(c.array("position")[0, -1] - [3.0, 0.5])) for c in run.cells[1:8]]
    assert all(a > b for a, b in zip(d, d[1:]))  # 0.005 .. 0.035: closer with every step up
    assert d[0] == pytest.approx(0.94, abs=0.01) and d[-1] == pytest.approx(0.16, abs=0.01)
    assert [int(c.diverged_epoch[0]) for c in run.cells[8:]] == [5, 4]  # lr 0.04, 0.045


@pytest.fixture(scope="module")
def gd_mean(tmp_path_factory):
    return shipped(tmp_path_factory.mktemp("gd"), "gd_mean")


def test_gd_mean_lesson_and_the_closed_form_of_gd_on_a_quadratic(gd_mean):
    run = gd_mean
    spread = {}
    for c in run.cells:
        xs = np.asarray(c.array("samples_x"))  # [bees, n]: each bee its own sample
        xbar = xs.mean(1)
        np.testing.assert_array_equal(np.asarray(c.array("minima"))[:, 0], xbar)
        # l(mu) = mean (mu - x_i)^2: mu_t = xbar + (mu_0 - xbar) (1 - 2 lr)^t
        t = np.arange(6)
        closed = xbar[:, None] + (-0.5 - xbar[:, None]) * (1 - 2 * 0.05) ** t
        np.testing.assert_allclose(c.array("position")[:, :, 0], closed, rtol=0, atol=1e-13)
        covered = 1 - np.abs(closed[:, -1] - xbar) / np.abs(-0.5 - xbar)
        np.testing.assert_allclose(covered, 0.41, atol=0.005)  # 1 - 0.9^5
        spread[int(c.values["surface.n"])] = xbar.std()
    assert 4 < spread[5] / spread[100] < 7  # sd / sqrt(n): sqrt(20) = 4.5 in theory
    first5 = np.asarray(run.cell(n=100).array("samples_x"))[:, :5]
    np.testing.assert_array_equal(first5, run.cell(n=5).array("samples_x"))


@pytest.mark.slow  # 3 cells x 20 bees x 150 steps
def test_saddle_escape_lesson(tmp_path):
    run = shipped(tmp_path, "saddle_escape")
    gd, mom, adam = (run.cell(optimizer=o) for o in ("GD", "momentum 0.9", "Adam"))
    end = {k: c.array("position")[:, -1] for k, c in (("gd", gd), ("mom", mom),
                                                       ("adam", adam))}
    assert (np.abs(end["gd"][:, 1]) < 0.1).all() and (gd.loss[:, -1] > 0).all()
    assert np.median(gd.loss[:, -1]) == pytest.approx(0.009, abs=0.001)
    assert (mom.loss[:, -1] < -0.24).all() and (np.abs(end["mom"][:, 1] - 1) < 0.05).any() \
        and (np.abs(end["mom"][:, 1] + 1) < 0.05).any()  # both minima
    start = mom.array("position")[:, 0, 1]
    assert (np.sign(end["mom"][:, 1]) == np.sign(start)).all()  # each to its own side
    assert (np.abs(end["adam"][:, 1]) > 0.9).all() and (np.abs(end["adam"][:, 0]) > 0.5).all()


def test_a_rerun_is_bit_identical_and_the_figures_fit(tmp_path):
    cfg = ["task=landscape", "+sweep.paired.optimizer.optim.name=[sgd,adam]",
           "+sweep.paired.optimizer.optim.lr=[0.01,0.2]", "surface.spread=0.2", "train.bees=4",
           "train.epochs=30", "progress=false", "render.what=[none]", "train.dtype=float32"]
    for name in ("a", "b"):
        runner.run(compose_config(cfg), tmp_path / name, out=io.StringIO())
    same, total, diff = results.compare(tmp_path / "a", tmp_path / "b")
    assert diff == [] and total == 2 * 8  # per cell: loss, position, 2 epochs, 4 surface
    run = load(tmp_path / "a")
    assert run.manifest["task"] == "landscape" and run.manifest["surface"]["name"] == "beale"
    cfg_r = {"what": ["hive", "loss"], "width": 960, "height": 720, "dpi": 100}
    for fn in (draw.paths, draw.loss):
        for _, fig in fn(run, {**render.DEFAULTS, **cfg_r}):
            assert layout.problems(fig) == []
    out = io.StringIO()
    paths = render.render_run(tmp_path / "a", {"what": ["hive_animation", "compare"],
                                               "width": 320, "height": 240, "fps": 10,
                                               "min_seconds": 1.0, "max_seconds": 2.0}, out=out)
    assert [p.name for p in paths] == ["paths_animation.mp4"]
    assert paths[0].stat().st_size > 1000 and "compare: not drawn" in out.getvalue()


@pytest.mark.slow  # a run and a GIF: ~3 s
def test_the_animation_as_a_gif(tmp_path):
    runner.run(compose_config(["task=landscape", "surface.name=himmelblau", "train.bees=5",
                               "surface.spread=1", "train.epochs=20", "optim.lr=0.01",
                               "progress=false", "render.what=[none]"]), tmp_path / "h",
               out=io.StringIO())
    (gif,) = render.render_run(tmp_path / "h", {"what": ["hive_animation"], "format": "gif",
                                                "width": 320, "height": 240, "fps": 10,
                                                "min_seconds": 1.0, "max_seconds": 2.0},
                               out=io.StringIO())
    assert gif.name == "paths_animation.gif" and gif.read_bytes()[:6] == b"GIF89a"


def test_the_mean_figure_fits(gd_mean):
    (_, fig), = draw.paths(gd_mean, {**render.DEFAULTS})
    assert layout.problems(fig) == []


BAD = [
    (["surface.name=bealee"], "surface.name='bealee' is not one of: beale, rosenbrock"),
    (["surface.expr='x + os.system(1)'"], "surface.expr: 'os' is not allowed at column 5"),
    (["surface.expr='log(x)'", "surface.start=[0,1]"], "surface.expr: 'log(x)' is -inf at"),
    (["surface.expr='x*z'"], "surface.expr: 'z' is not allowed"),
    (["surface.start=[1]"], "surface.start=[1.0] must be 2 numbers"),
    (["surface.name=mean", "surface.start=[1,2]"], "surface.start=[1.0, 2.0] must be 1 number"),
    (["surface.domain=[1,0,0,1]"], "surface.domain=[1.0, 0.0, 0.0, 1.0] must be"),
    (["surface.spread=-1"], "surface.spread=-1.0 must be a number >= 0"),
    (["surface.resample=true"], "surface.resample=true needs surface.name=mean"),
    (["task.kind=regresion"], "task.kind='regresion' is not one of: regression, landscape"),
    (["surface.name=mean", "surface.n=0"], "surface.n=0 must be an integer in [1, 1000000]"),
    (["surface.grid=1"], "surface.grid=1 must be an integer in [2, 2001]"),
    (["train.bees=10000000000", "train.memory_limit_gb=1"],
     "this landscape run needs ~34943.2 GiB, more than the 1.0 GiB allowed "
     "(train.memory_limit_gb); lower train.bees (now 10000000000)"),
]


@pytest.fixture(scope="module")
def landscape_config():
    return compose_config(["task=landscape", "render.what=[none]"])


@pytest.mark.parametrize("overrides, message", BAD, ids=[o[-1] for o, _ in BAD])
def test_bad_surfaces_are_refused_in_one_line(overrides, message, landscape_config):
    """What `swarm run` checks before training (preflight.check), on the composed config."""
    cfg = copy.deepcopy(landscape_config)
    for o in overrides:
        key, value = o.split("=", 1)
        OmegaConf.update(cfg, key, yaml.safe_load(value.strip("'")) if "expr" not in key
                         else value.strip("'"), merge=True)
    with pytest.raises(SwarmError) as e:
        preflight.check(cfg)
    line = cli.error_message(e.value)
    assert "\n" not in line and message in line, line


def test_the_cli_refuses_a_bad_surface_with_exit_2_and_no_run_dir(tmp_path, capsys):
    run_dir = tmp_path / "outputs"
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "task=landscape", "render.what=[none]", f"hydra.run.dir={run_dir}",
                  "surface.name=bealee"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("swarm: error: surface.name='bealee'"), err
    assert not run_dir.exists()


def test_swarm_list_names_the_surfaces(capsys):
    cli.main(["list"])
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("surfaces:")]
    assert line and "beale, rosenbrock, himmelblau, bowl, saddle, rastrigin, mean, line" in line[0]


@pytest.mark.slow
def test_swarm_rerun_of_a_landscape_run_says_bit_identical(tmp_path):
    from conftest import swarm

    run_dir = tmp_path / "run"
    proc = swarm("run", "+sweep=gd_mean", "render.what=[none]", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    proc = swarm("rerun", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    assert "rerun is bit-identical" in proc.stdout


@pytest.mark.parametrize("name", sorted(surfaces.NAMED))
def test_each_named_surface_is_flat_and_lowest_at_its_minima(name):
    land = surfaces.resolve(SurfaceConfig(name=name))
    p = torch.tensor(land.minima, dtype=torch.float64, requires_grad=True)
    value = particles.loss_function(land, torch.float64, "cpu")(p)
    (g,) = torch.autograd.grad(value.sum(), p)
    assert g.abs().max() < 1e-4  # Himmelblau's minima are given to 6 decimals
    _, _, z = land.mesh(101)
    assert value.detach().min().item() <= z.min() + 1e-9


def test_line_is_least_squares_and_gradient_descent_finds_it():
    land = surfaces.resolve(SurfaceConfig(name="line", n=30, sd=0.5))
    w, b = np.polyfit(land.samples["x"], land.samples["y"], 1)
    np.testing.assert_allclose(land.minima[0], [w, b], rtol=1e-10)
    got = particles.descend(particles.loss_function(land, torch.float64, "cpu"),
                            land.start[None, :], "sgd", hyper_of("sgd", {"lr": 0.1}, 1), {},
                            Schedule("constant", {}), 300, [0, 300])
    np.testing.assert_allclose(got.position[0, -1], [w, b], atol=1e-8)


def test_a_two_variable_formula_runs_on_numpy_and_pickles():
    import pickle

    f = formula.compile_formula("x*y + 2**x", "surface.expr", ("x", "y"))
    np.testing.assert_array_equal(f(np.array([1.0, 2.0]), np.array([[3.0], [4.0]])),
                                  [[5.0, 10.0], [6.0, 12.0]])  # broadcast like numpy
    g = pickle.loads(pickle.dumps(f))
    assert g.variables == ("x", "y") and g(2.0, 3.0) == 10.0
    with pytest.raises(SwarmError, match="'y' is not allowed"):
        formula.compile_formula("x*y")  # a target stays a formula in x alone


def test_a_config_saved_before_tasks_existed_is_still_a_regression(landscape_config):
    """An old run dir's .hydra/config.yaml has no `task`; Hydra loads it in struct mode."""
    from omegaconf import open_dict

    from swarmcli import config

    cfg = copy.deepcopy(landscape_config)
    with open_dict(cfg):
        del cfg["task"], cfg["surface"]
    OmegaConf.set_struct(cfg, True)
    assert config.task_kind(cfg) == "regression" and config.task_kind(landscape_config) == \
        "landscape"
    _, cells, _, _ = runner.prepare(cfg)  # what `swarm rerun OLD_DIR` runs first
    assert cells[0].cfg.task.kind == "regression"
