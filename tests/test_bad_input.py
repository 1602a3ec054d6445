"""Bad input, key by key: one line naming the bad value (and the choices), exit 2, refused before
anything is allocated or any directory is made.

The table runs in-process through what `swarm run` runs before training (Hydra's typed merge,
then preflight.check: validation, sweep expansion, memory, render keys) and the CLI's one-line
formatting; a few rows go through cli.main and a real process for the exit path."""

from __future__ import annotations

import copy
import functools
import tracemalloc

import pytest
from conftest import CLI_TINY, compose_config, swarm
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf, open_dict

from swarmcli import cli, preflight
from swarmcli.errors import SwarmError

BAD = [
    # target
    ("target.name=sinc", "target.name='sinc' is not one of: sin, cos, exp, abs, step, noisy_sin"),
    ("target.domain=[5,-5]", "target.domain=[5.0, -5.0] must be [low, high] with low < high"),
    ("target.domain=[1,1]", "target.domain=[1.0, 1.0] must be [low, high]"),
    ("target.domain=[0,1,2]", "target.domain=[0.0, 1.0, 2.0] must be [low, high]"),
    ("target.points=1", "target.points=1 must be an integer >= 2"),
    ("target.points=many", "target.points"),
    ("target.eval_points=-1", "target.eval_points=-1 must be an integer >= 0"),
    ("target.noise_sd=-1", "target.noise_sd=-1.0 must be a number >= 0"),
    ("target.noise_sd=nan", "target.noise_sd=nan must be a number >= 0"),
    ("target.name=noisy_sin", "target.name=noisy_sin needs target.noise_sd > 0"),
    ("target.expr='__import__(\"os\")'", "target.expr"),
    ("target.expr='x+*2'", "target.expr"),
    ("target.expr='foo(x)'", "foo"),
    ("target.expr=''", "target.expr is empty"),
    ("target.expr='log(x)'", "target.expr"),
    ("target.split.kind=middle", "target.split.kind='middle' is not one of"),
    ("target.split.kind=random target.split.fraction=1.5",
     "target.split.fraction=1.5 must be a number in (0, 1)"),
    ("target.split.kind=random target.split.fraction=0",
     "target.split.fraction=0.0 must be a number in (0, 1)"),
    ("target.split.kind=random target.split.seed=-1",
     "target.split.seed=-1 must be an integer >= 0"),
    ("target.split.kind=gap target.split.gap=[9,10]", "target.split.gap=[9.0, 10.0] must lie"),
    ("target.split.kind=gap target.split.gap=[1,0]", "target.split.gap=[1.0, 0.0] must be"),
    # model
    ("model.depth=0", "model.depth=0 must be an integer >= 1"),
    ("model.width=0", "model.width=0 must be an integer >= 1"),
    ("model.width=-4", "model.width=-4 must be an integer >= 1"),
    ("model.width=wide", "model.width"),
    ("model.activation=swish", "model.activation='swish' is not one of: relu, tanh"),
    ("model.init=he", "model.init='he' is not one of: default, xavier_uniform"),
    ("model.init_std=0", "model.init_std=0.0 must be a number > 0"),
    ("model.init_bounds=[1,0]", "model.init_bounds=[1.0, 0.0] must be [a, b] with a < b"),
    ("model.dropout=1", "model.dropout=1.0 must be a number in [0, 1)"),
    ("model.dropout=-0.1", "model.dropout=-0.1 must be a number in [0, 1)"),
    ("model.batch_norm=maybe", "model.batch_norm"),
    # optim
    ("optim.name=lbfgs", "optim.name='lbfgs' is not one of: sgd, adam, adamw, rmsprop"),
    ("optim.lr=0", "optim.lr=0.0 must be a number > 0"),
    ("optim.lr=-0.1", "optim.lr=-0.1 must be a number > 0"),
    ("optim.lr=inf", "optim.lr=inf must be a number > 0"),
    ("optim.lr=fast", "optim.lr"),
    ("optim.momentum=-0.5", "optim.momentum=-0.5 must be a number >= 0"),
    ("optim.dampening=-1", "optim.dampening=-1.0 must be a number >= 0"),
    ("optim.weight_decay=-1", "optim.weight_decay=-1.0 must be a number >= 0"),
    ("optim.eps=0", "optim.eps=0.0 must be a number > 0"),
    ("optim.betas=[0.9,1.0]", "optim.betas=[0.9, 1.0] must be two numbers in [0, 1)"),
    ("optim.betas=[0.9]", "optim.betas=[0.9] must be two numbers"),
    ("optim.alpha=-1", "optim.alpha=-1.0 must be a number >= 0"),
    ("optim.nesterov=true optim.momentum=0", "optim.nesterov=true needs optim.momentum > 0"),
    # schedule
    ("schedule.name=linear", "schedule.name='linear' is not one of"),
    ("schedule.name=step schedule.step_size=0", "schedule.step_size=0 must be an integer >= 1"),
    ("schedule.name=exponential schedule.gamma=0", "schedule.gamma=0.0 must be a number > 0"),
    ("schedule.name=cyclic", "schedule.max_lr=None must be set for schedule cyclic"),
    ("schedule.name=cosine schedule.eta_min=-1", "schedule.eta_min=-1.0 must be a number >= 0"),
    ("schedule.name=warmup schedule.start_factor=2",
     "schedule.start_factor=2.0 must be a number in (0, 1]"),
    # train
    ("train.epochs=-3", "train.epochs=-3 must be an integer >= 0"),
    ("train.bees=0", "train.bees=0 must be an integer >= 1"),
    ("train.stride=0", "train.stride=0 must be an integer >= 1"),
    ("train.device=tpu", "train.device='tpu' is not one of: auto, cpu, cuda"),
    ("train.dtype=float16", "train.dtype='float16' is not one of: float32, float64"),
    ("train.compile=maybe", "train.compile='maybe' is not one of: auto, on, off"),
    ("train.loss=hinge", "train.loss='hinge' is not one of: mse, mae, huber"),
    ("train.huber_delta=0", "train.huber_delta=0.0 must be a number > 0"),
    ("train.l1=-1", "train.l1=-1.0 must be a number >= 0"),
    ("train.l2=-1", "train.l2=-1.0 must be a number >= 0"),
    ("train.batch_size=0", "train.batch_size=0 must be an integer >= 1"),
    ("train.patience=10", "train.patience needs validation points: set target.split.kind"),
    ("train.record=[ypred,gradients]", "train.record='gradients' is not one of: ypred, weights"),
    ("train.seed=abc", "train.seed"),
    # sweep grids
    ("+sweep.grid.model.width=[]", "sweep.grid.model.width is an empty list"),
    ("+sweep.grid.model.width=5", "sweep.grid.model.width=5 must be a list of values"),
    ("+sweep.grid.model.colour=[1,2]", "sweep.grid key 'model.colour' is not a config key"),
    ("+sweep.grid.model.width=[2,0]", "model.width=0 must be an integer >= 1"),
    ("+sweep.grid.model.activation=[relu,swish]", "model.activation='swish' is not one of"),
    ("+sweep.grid.optim.lr=[0.1,-1]", "optim.lr=-1.0 must be a number > 0"),
    ("+sweep.grid.train.l2=[1" + "0" * 400 + "]",
     "sweep value train.l2=100000000000...(401 digits) is past the range of a float"),
    ("+sweep.paired.p.model.width=[1,2] +sweep.paired.p.model.depth=[1]",
     "sweep.paired.p lists must have equal lengths"),
    ("+sweep.paired.p=3", "sweep.paired.p must map config keys to lists"),
    ("+sweep.grid.model.width=[1,2] +sweep.labels.nope=[a,b]",
     "sweep.labels.nope names no axis; axes: model.width"),
    ("+sweep.paired.p.model.width=[1,2] +sweep.labels.p=[a]", "sweep.labels.p must list 2 labels"),
    ("+sweep.grid.model.width=[1,2] +sweep.paired.p.model.width=[3,4]",
     "sweep sets ['model.width'] on more than one axis"),
    # render keys, checked before training
    ("render.what=[movie]", "render.what='movie' is not one of: hive, loss"),
    ("render.what=[kinks]", "render.what=kinks needs train.record to include weights and biases"),
    ("render.format=avi render.what=[hive]", "render.format='avi' is not one of: mp4, gif"),
    ("render.fps=0 render.what=[hive]", "render.fps=0 must be an integer >= 1"),
    ("render.width=10 render.what=[hive]", "render.width=10 must be an integer >= 64"),
    ("render.max_seconds=-1 render.what=[hive]", "render.max_seconds=-1.0 must be a number > 0"),
    ("render.workers=0 render.what=[hive]", "render.workers=0 must be an integer >= 1 or null"),
    ("render.fps=fast", "render.fps"),
    # objective, and the top level
    ("objective.stat=mode", "objective.stat='mode' is not one of"),
    ("objective.stat=quantile objective.q=2", "objective.q=2.0 must be a number in [0, 1]"),
    ("objective.stat=fraction_below objective.threshold=inf",
     "objective.threshold=inf must be a finite number"),
    ("progress=sometimes", "progress"),
    ("overwrite=perhaps", "overwrite"),
]


# Every heavy knob, refused before anything is built (tracemalloc watches numpy's buffers).
MEMORY = [
    ("target.points=1000000000", "target.points=1000000000 needs"),
    ("target.eval_points=2000000000", "target.eval_points=2000000000 needs"),
    ("model.width=100000000", "lower model.width (now 100000000)"),
    ("model.depth=3 model.width=200000", "lower model.width (now 200000), model.depth (now 3)"),
    ("train.epochs=1000000000000", "lower train.epochs (now 1000000000000)"),
    ("train.bees=1000000000", "train.bees (now 1000000000)"),
    ("train.record=[ypred,weights,biases] model.width=3000 model.depth=2 train.epochs=100000",
     "raise train.stride (now 1)"),
    ("train.memory_limit_gb=0.00001", "allowed (train.memory_limit_gb)"),
    ("+sweep.grid.target.points=[10,1000000000]", "target.points=1000000000 needs"),
    ("+sweep.grid.model.width=[2,100000000]", "lower model.width"),
]


@functools.cache
def base_config():
    return compose_config(CLI_TINY)


def composed(overrides: list[str]):
    """Hydra's composition of CLI_TINY + OVERRIDES, without recomposing the config tree for every
    row: Hydra's own override parser, applied as Hydra applies it (typed merge; `+` adds)."""
    cfg = copy.deepcopy(base_config())
    for o in OverridesParser.create().parse_overrides(overrides):
        key, value = o.key_or_group, o.value()
        if o.is_add():
            with open_dict(cfg):
                OmegaConf.update(cfg, key, value, merge=True)
        else:
            if OmegaConf.select(cfg, key, default=KeyError) is KeyError:
                raise ConfigCompositionException(f"Could not override '{key}': no such key")
            OmegaConf.update(cfg, key, value, merge=True)
    return cfg


def refusal(overrides: list[str], traced: bool = False) -> tuple[str, int]:
    """What `swarm run OVERRIDES` prints before training ('' if it would train), and the peak
    bytes numpy and Python allocated while checking (tracemalloc sees numpy's buffers)."""
    try:
        cfg = composed(overrides)
        if traced:
            tracemalloc.start()
        preflight.check(cfg)
    except Exception as e:  # what cli.main catches and formats
        return cli.error_message(e), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return "", 0


@pytest.mark.parametrize("overrides, message", BAD, ids=[r[0][:60] for r in BAD])
def test_bad_input_is_refused_in_one_line(overrides, message):
    line, _ = refusal(overrides.split(" "))
    assert line, f"{overrides} was accepted"
    assert "\n" not in line and message in line, line


@pytest.mark.parametrize("overrides, message", MEMORY, ids=[r[0][:60] for r in MEMORY])
def test_too_big_is_refused_before_allocating(overrides, message):
    line, peak = refusal(overrides.split(" "), traced=True)
    assert line, f"{overrides} was accepted"
    assert "\n" not in line and message in line, line
    assert 0 < peak < 64 << 20  # no data, parameter or recording was built


def test_the_table_is_wide():
    groups = {o.split(".")[0].split("=")[0].lstrip("+") for o, _ in BAD + MEMORY}
    assert {"target", "model", "optim", "schedule", "train", "sweep", "render",
            "objective"} <= groups
    assert len(BAD + MEMORY) >= 60


def test_a_good_config_passes_the_same_checks():
    assert refusal(["+sweep.grid.model.width=[1,3,10]", "target.eval_points=300"])[0] == ""
    preflight.check(compose_config([*CLI_TINY, "+sweep=weight_distribution"]))


@pytest.mark.parametrize("overrides, message", [
    (["model.activation=swish"], "model.activation='swish' is not one of"),
    (["+sweep.grid.model.width=[2,0]"], "model.width=0 must be an integer >= 1"),
    (["train.bees=1000000000"], "train.bees (now 1000000000)"),
    (["render.what=[movie]"], "render.what='movie' is not one of"),
    (["optim.lr=fast"], "optim.lr"),
    (["+sweep=nope"], "Could not find 'sweep/nope'"),
    # a sweep that sets optim (or target) wins over a group choice: refused, not trained silently
    (["+sweep=width_activation", "optim=adam"],
     "optim=adam is replaced by the sweep's optim.name=sgd; give optim.name=adam"),
    (["target=cos", "+sweep=width_activation"],
     "target=cos is replaced by the sweep's target.name=sin; give target.name=cos"),
])
def test_cli_exits_2_with_one_line_and_makes_no_run_dir(overrides, message, tmp_path, capsys):
    run_dir = tmp_path / "outputs" / "run"
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", *CLI_TINY, f"hydra.run.dir={run_dir}", *overrides])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("swarm: error: ") and message in err[0], err
    assert not (tmp_path / "outputs").exists()


def test_group_choices_a_sweep_keeps_are_accepted():
    assert preflight.overridden_group("optim", ["+sweep=width_activation", "optim=sgd"],
                                      compose_config(["+sweep=width_activation"])) is None
    assert preflight.overridden_group("optim", ["optim=adam"], compose_config(["optim=adam"])) \
        is None


def test_each_multirun_job_checks_group_choices_too():
    """A multirun job has no pre-flight; the job itself refuses (cli.hydra_run)."""
    cfg = compose_config(["+sweep=width_activation", "optim=adam"])
    with pytest.raises(SwarmError, match="optim=adam is replaced by the sweep's optim.name=sgd"):
        preflight.check_group_choices(cfg, ["+sweep=width_activation", "optim=adam"])


def test_a_real_process_refuses_and_leaves_no_outputs_dir(tmp_path):
    proc = swarm("run", *CLI_TINY, "model.width=100000000", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "lower model.width (now 100000000)" in err[0], proc.stderr
    assert list(tmp_path.iterdir()) == []  # no outputs/DATE/TIME, no .hydra, no swarm.log
