"""Batched optimizers and lr schedules equal torch.optim and torch.optim.lr_scheduler, bee for bee.

Every bee starts from the same parameters and differs only in its hyper-parameters; the batched
optimizer steps all bees at once and each bee is compared with its own torch.optim optimizer.
Gradients come from a real loss (a tiny tanh MLP fitting sin), computed bee by bee with the same
function on both sides, so they depend on the parameters and any optimizer difference compounds.
"""

from __future__ import annotations

import inspect
import math
from types import SimpleNamespace

import pytest
import torch

from swarmcli import optim, schedules

STEPS = 50
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
HIDDEN = 8
X = torch.linspace(-2, 2, 17, dtype=torch.float64)
Y = torch.sin(2 * X)
P0 = torch.randn(3 * HIDDEN + 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

TORCH = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
         "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad,
         "adamax": torch.optim.Adamax, "nadam": torch.optim.NAdam}

BETAS = dict(beta1=[0.9, 0.5, 0.0, 0.95], beta2=[0.999, 0.9, 0.99, 0.5],
             eps=[1e-8, 1e-3, 1e-6, 1e-8])
# name -> (optimizer, flags, per-bee hyper-parameters for 4 bees)
CASES = {
    "sgd": ("sgd", {}, dict(lr=[0.05, 0.1, 0.02, 0.08], momentum=[0.0, 0.9, 0.5, 0.0],
                            dampening=[0.5, 0.1, 0.0, 0.0], weight_decay=[0.0, 0.01, 0.1, 0.05])),
    "sgd_nesterov": ("sgd", {"nesterov": True},
                     dict(lr=[0.05, 0.1, 0.02, 0.08], momentum=[0.9, 0.5, 0.99, 0.1],
                          dampening=[0.0] * 4, weight_decay=[0.0, 0.01, 0.0, 0.1])),
    "adam": ("adam", {}, dict(lr=[0.01, 0.05, 0.003, 0.02], **BETAS,
                              weight_decay=[0.0, 0.01, 0.1, 0.0])),
    "adamw": ("adamw", {}, dict(lr=[0.01, 0.05, 0.003, 0.02], **BETAS,
                                weight_decay=[0.01, 0.0, 0.1, 0.5])),
    "rmsprop": ("rmsprop", {}, dict(lr=[0.01, 0.003, 0.02, 0.001], alpha=[0.99, 0.9, 0.5, 0.0],
                                    eps=[1e-8, 1e-4, 1e-8, 1e-2],
                                    weight_decay=[0.0, 0.01, 0.1, 0.0],
                                    momentum=[0.0, 0.9, 0.0, 0.5])),
    # no bee with momentum: the momentum-free paths (no buffer at all)
    "sgd_plain": ("sgd", {}, dict(lr=[0.05, 0.1, 0.02, 0.08], momentum=[0.0] * 4,
                                  dampening=[0.0] * 4, weight_decay=[0.0, 0.01, 0.1, 0.05])),
    "rmsprop_plain": ("rmsprop", {}, dict(lr=[0.01, 0.003, 0.02, 0.001],
                                          alpha=[0.99, 0.9, 0.5, 0.0],
                                          eps=[1e-8, 1e-4, 1e-8, 1e-2],
                                          weight_decay=[0.0, 0.01, 0.1, 0.0], momentum=[0.0] * 4)),
    "rmsprop_centered": ("rmsprop", {"centered": True},
                         dict(lr=[0.01, 0.003, 0.02, 0.001], alpha=[0.99, 0.9, 0.5, 0.8],
                              eps=[1e-8, 1e-4, 1e-8, 1e-2], weight_decay=[0.0, 0.01, 0.1, 0.0],
                              momentum=[0.5, 0.0, 0.9, 0.0])),
    "adagrad": ("adagrad", {}, dict(lr=[0.1, 0.05, 0.2, 0.01], lr_decay=[0.0, 0.01, 0.1, 0.0],
                                    weight_decay=[0.0, 0.01, 0.0, 0.1],
                                    initial_accumulator_value=[0.0, 0.1, 1.0, 0.0],
                                    eps=[1e-10, 1e-6, 1e-10, 1e-3])),
    "adamax": ("adamax", {}, dict(lr=[0.01, 0.05, 0.002, 0.02], **BETAS,
                                  weight_decay=[0.0, 0.01, 0.1, 0.0])),
    "nadam": ("nadam", {}, dict(lr=[0.01, 0.05, 0.002, 0.02], **BETAS,
                                weight_decay=[0.0, 0.01, 0.1, 0.0],
                                momentum_decay=[4e-3, 0.0, 0.1, 1e-2])),
}
BEES = 4


def loss_grad(p: torch.Tensor) -> torch.Tensor:
    """Gradient of one bee's MSE loss, a 1-HIDDEN-1 tanh MLP fitting sin(2x)."""
    p = p.detach().clone().requires_grad_()
    x, y = X.to(p.dtype), Y.to(p.dtype)
    w1, b1, w2, b2 = p[:HIDDEN], p[HIDDEN:2 * HIDDEN], p[2 * HIDDEN:3 * HIDDEN], p[3 * HIDDEN]
    pred = torch.tanh(x[:, None] * w1 + b1) @ w2 + b2
    (g,) = torch.autograd.grad((pred - y).square().mean(), p)
    return g


def torch_kwargs(hyper: dict, bee: int) -> dict:
    kw = {k: v[bee] for k, v in hyper.items() if k not in ("beta1", "beta2")}
    if "beta1" in hyper:
        kw["betas"] = (hyper["beta1"][bee], hyper["beta2"][bee])
    return kw


def run_torch(name, flags, hyper, bee, dtype, steps=STEPS, scheduler=None, lrs=None):
    """One bee's parameters after `steps` torch.optim steps (with a scheduler stepped after each);
    `lrs` collects group['lr'] as each step saw it."""
    q = P0.to(dtype).clone().requires_grad_()
    opt = TORCH[name]([q], foreach=False, **flags, **torch_kwargs(hyper, bee))
    sched = scheduler(opt, hyper["lr"][bee]) if scheduler else None
    for _ in range(steps):
        if lrs is not None:
            lrs.append(opt.param_groups[0]["lr"])
        q.grad = loss_grad(q)
        opt.step()
        if sched:
            sched.step()
    return q.detach()


def run_batched(name, flags, hyper, dtype, steps=STEPS, die=None, lr_for=None):
    """All bees' parameters [bees, P] after `steps` batched steps. die={bee: step}: from that
    step on the bee is dead and its gradient NaN. lr_for(step) -> per-bee lr given to set_lr."""
    flat = P0.to(dtype).repeat(BEES, 1)
    opt = optim.OPTIMIZERS[name](flat, **flags, **{k: torch.tensor(v, dtype=torch.float64)
                                                    for k, v in hyper.items()})
    alive = torch.ones(BEES, 1, dtype=torch.bool)
    for t in range(steps):
        if lr_for is not None:
            opt.set_lr(lr_for(t))
        g = torch.stack([loss_grad(flat[b]) for b in range(BEES)])
        for bee, at in (die or {}).items():
            if t >= at:
                alive[bee] = False
                g[bee] = float("nan")
        opt.step(flat, g, alive)
    return flat


def assert_close(actual, expected, tol, msg=""):
    assert torch.isfinite(actual).all(), msg
    err = ((actual - expected).abs() / (1 + expected.abs())).max().item()
    assert err <= tol, f"{msg}: max relative error {err:.3g} > {tol:g}"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch_bee_for_bee(case, dtype):
    name, flags, hyper = CASES[case]
    flat = run_batched(name, flags, hyper, dtype)
    for bee in range(BEES):
        assert_close(flat[bee], run_torch(name, flags, hyper, bee, dtype), TOL[dtype], f"bee {bee}")
    # the hyper-parameters really differ: every pair of bees ended far apart
    for i in range(BEES):
        for j in range(i):
            assert (flat[i] - flat[j]).abs().max() > 1e-3, (i, j)


@pytest.mark.parametrize("case", ["adam", "adamax", "nadam"])
def test_step_factors_across_blocks(case, monkeypatch):
    """Bias corrections and the like are worked out a block of steps at a time: with blocks of
    7 steps, 50 steps cross seven block boundaries and still match torch bee for bee."""
    monkeypatch.setattr(optim, "STEP_BLOCK", 7)
    name, flags, hyper = CASES[case]
    flat = run_batched(name, flags, hyper, torch.float64)
    for bee in range(BEES):
        assert_close(flat[bee], run_torch(name, flags, hyper, bee, torch.float64), 1e-10)


@pytest.mark.parametrize("case", ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adamax",
                                  "nadam"])
def test_dead_bees_stay_frozen_with_nan_gradient(case):
    """Bees 1 and 2 die at steps 20 and 30 and get NaN gradients: their parameters stay bit for
    bit as after that step (equal to torch's then); the other bees still match torch after 50."""
    name, flags, hyper = CASES[case]
    die = {1: 20, 2: 30}
    flat = run_batched(name, flags, hyper, torch.float64, die=die)
    for bee, at in die.items():
        assert torch.equal(flat[bee], run_batched(name, flags, hyper, torch.float64, steps=at)[bee])
        assert_close(flat[bee], run_torch(name, flags, hyper, bee, torch.float64, steps=at), 1e-10)
    for bee in (0, 3):
        assert_close(flat[bee], run_torch(name, flags, hyper, bee, torch.float64), 1e-10,
                     f"bee {bee}")


SCHED_EPOCHS = 30
SCHEDULE_CASES = {  # name -> (schedules params, torch scheduler factory (optimizer, base lr))
    "constant": ({}, None),
    "step": ({"step_size": 7, "gamma": 0.5},
             lambda o, lr: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
    "exponential": ({"gamma": 0.9},
                    lambda o, lr: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9)),
    "cosine": ({"t_max": 12, "eta_min": 1e-4},  # past t_max the cosine climbs back up
               lambda o, lr: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12,
                                                                        eta_min=1e-4)),
    "cosine_default_t_max": ({}, lambda o, lr: torch.optim.lr_scheduler.CosineAnnealingLR(
        o, T_max=SCHED_EPOCHS)),
    "cyclic": ({"max_lr": 0.08, "step_size_up": 4},
               lambda o, lr: torch.optim.lr_scheduler.CyclicLR(
                   o, base_lr=lr, max_lr=0.08, step_size_up=4, mode="triangular",
                   cycle_momentum=False)),
    "warmup": ({"start_factor": 0.1, "warmup_epochs": 8},
               lambda o, lr: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1,
                                                               end_factor=1.0, total_iters=8)),
}
SCHED_OPTIMIZERS = {
    "sgd_momentum": ("sgd", {}, dict(lr=[0.01, 0.05, 0.002, 0.03], momentum=[0.9, 0.0, 0.5, 0.9],
                                     dampening=[0.0] * 4, weight_decay=[0.0] * 4)),
    "adam": ("adam", {}, dict(lr=[0.01, 0.05, 0.002, 0.03], beta1=[0.9] * 4, beta2=[0.999] * 4,
                              eps=[1e-8] * 4, weight_decay=[0.0] * 4)),
}


def check_schedule(name, flags, hyper, sched_key):
    params, factory = SCHEDULE_CASES[sched_key]
    sched_name = sched_key.removesuffix("_default_t_max")
    base = torch.tensor(hyper["lr"], dtype=torch.float64)

    def lr_for(t):
        return schedules.lr_for_epoch(sched_name, params, base, t, SCHED_EPOCHS)

    flat = run_batched(name, flags, hyper, torch.float64, steps=SCHED_EPOCHS, lr_for=lr_for)
    for bee in range(BEES):
        lrs = []
        ref = run_torch(name, flags, hyper, bee, torch.float64, steps=SCHED_EPOCHS,
                        scheduler=factory, lrs=lrs)
        ours = [lr_for(t)[bee].item() for t in range(SCHED_EPOCHS)]
        assert ours == pytest.approx(lrs, rel=1e-13, abs=1e-17), f"bee {bee} lr"
        assert_close(flat[bee], ref, 1e-10, f"bee {bee}")
    return flat


@pytest.mark.parametrize("opt_key", list(SCHED_OPTIMIZERS))
@pytest.mark.parametrize("sched_key", list(SCHEDULE_CASES))
def test_schedule_matches_torch_scheduler(sched_key, opt_key):
    check_schedule(*SCHED_OPTIMIZERS[opt_key], sched_key)


@pytest.mark.parametrize("case", ["sgd_nesterov", "adamw", "rmsprop_centered", "adagrad",
                                  "adamax", "nadam"])
def test_set_lr_matches_torch_scheduler_for_every_optimizer(case):
    """A cyclic schedule (lr down and up again, per-bee base lr) through set_lr equals torch's
    CyclicLR changing group['lr']; adagrad's own lr_decay applies on top, as in torch."""
    check_schedule(*CASES[case], "cyclic")


def test_schedule_changes_the_lr():
    """The schedules are not all the identity: the checks above would catch a lost set_lr."""
    base = torch.tensor([0.01, 0.05], dtype=torch.float64)
    for key, (params, _) in SCHEDULE_CASES.items():
        name = key.removesuffix("_default_t_max")
        lrs = torch.stack([schedules.lr_for_epoch(name, params, base, t, SCHED_EPOCHS)
                           for t in range(SCHED_EPOCHS)])
        assert lrs.dtype == torch.float64 and lrs.shape == (SCHED_EPOCHS, 2)
        assert torch.equal(lrs[0], base.double()) or name == "warmup"
        assert (lrs != base).any() or name == "constant", key
    # spot values: step halves every 7 epochs, warm-up starts at start_factor * lr
    assert schedules.lr_for_epoch("step", {"step_size": 7, "gamma": 0.5}, base, 14,
                                  30).tolist() == pytest.approx([0.0025, 0.0125])
    assert schedules.lr_for_epoch("warmup", {"start_factor": 0.1, "warmup_epochs": 8}, base, 0,
                                  30).tolist() == pytest.approx([0.001, 0.005])


@pytest.mark.parametrize("name, params, bad", [
    ("linear", {}, "schedule.name='linear'"),
    ("step", {"step_size": 0}, "schedule.step_size=0"),
    ("step", {"step_size": 2.5}, "schedule.step_size=2.5"),
    ("step", {"gamma": -0.1}, "schedule.gamma=-0.1"),
    ("step", {"gamma": True}, "schedule.gamma=True"),
    ("exponential", {"gamma": 0.0}, "schedule.gamma=0.0"),
    ("exponential", {"gamma": math.nan}, "schedule.gamma=nan"),
    ("cosine", {"t_max": 0}, "schedule.t_max=0"),
    ("cosine", {"eta_min": -1e-3}, "schedule.eta_min=-0.001"),
    ("cyclic", {"step_size_up": 3}, "schedule.max_lr=None"),
    ("cyclic", {"max_lr": 0.1, "step_size_up": 0}, "schedule.step_size_up=0"),
    ("cyclic", {"max_lr": -0.1}, "schedule.max_lr=-0.1"),
    ("warmup", {"start_factor": 0.0}, "schedule.start_factor=0.0"),
    ("warmup", {"start_factor": 1.5}, "schedule.start_factor=1.5"),
    ("warmup", {"warmup_epochs": 0}, "schedule.warmup_epochs=0"),
])
def test_bad_schedule_params_raise(name, params, bad):
    with pytest.raises(ValueError) as e:
        schedules.lr_for_epoch(name, params, torch.tensor([0.01]), 0, 10)
    assert str(e.value).startswith(bad) and "\n" not in str(e.value)


def test_schedule_ignores_other_settings_and_fills_defaults():
    """A config's schedule node carries every schedule's fields (None = default)."""
    node = {"name": "cosine", "step_size": None, "gamma": 0.5, "t_max": None, "eta_min": None,
            "max_lr": None, "step_size_up": None, "start_factor": None, "warmup_epochs": None}
    assert schedules.resolve("cosine", node, epochs=40) == {"t_max": 40, "eta_min": 0.0}
    assert schedules.resolve("warmup", node) == {"start_factor": 1 / 3, "warmup_epochs": 5}
    with pytest.raises(ValueError, match="schedule.t_max=None"):
        schedules.resolve("cosine", node)  # no epochs to default to


def test_defaults_are_torch_defaults():
    for name, defaults in optim.DEFAULTS.items():
        sig = inspect.signature(TORCH[name]).parameters
        for field, value in defaults.items():
            expected = sig[field].default
            assert (list(expected) if field == "betas" else expected) == value, (name, field)
    assert set(optim.DEFAULTS) == set(optim.OPTIMIZERS) == set(TORCH)


def test_hyper_parameters_stacks_cells_and_fills_torch_defaults():
    def cfg(**kw):
        base = dict(lr=0.01, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=None,
                    betas=[0.9, 0.999], eps=None, alpha=0.99, centered=False, lr_decay=0.0,
                    initial_accumulator_value=0.0, momentum_decay=4e-3)
        return SimpleNamespace(**{**base, **kw})

    cells = [cfg(lr=0.1, betas=[0.8, 0.99]), cfg(eps=1e-5, weight_decay=0.5)]
    adamw = optim.hyper_parameters("adamw", cells)
    assert set(adamw) == {"lr", "beta1", "beta2", "eps", "weight_decay"}
    assert adamw["lr"].tolist() == [0.1, 0.01] and adamw["beta1"].tolist() == [0.8, 0.9]
    assert adamw["beta2"].tolist() == [0.99, 0.999] and adamw["eps"].tolist() == [1e-8, 1e-5]
    assert adamw["weight_decay"].tolist() == [1e-2, 0.5] and adamw["lr"].dtype == torch.float64
    assert optim.hyper_parameters("adagrad", cells)["eps"].tolist() == [1e-10, 1e-5]
    assert optim.hyper_parameters("adam", cells)["weight_decay"].tolist() == [0.0, 0.5]
    assert optim.flags("rmsprop", cfg(centered=True)) == {"centered": True}
    assert optim.flags("sgd", cfg(centered=True)) == {"nesterov": False}
    assert optim.FLAGS == {"sgd": ("nesterov",), "rmsprop": ("centered",)}


@pytest.mark.parametrize("name, hyper, msg", [
    ("adam", dict(lr=0.01, beta1=1.0, beta2=0.9, eps=1e-8, weight_decay=0.0), "beta1=1.0"),
    ("sgd", dict(lr=-0.1, momentum=0.0, dampening=0.0, weight_decay=0.0), "lr=-0.1"),
    ("rmsprop", dict(lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.0, momentum=math.inf),
     "momentum=inf"),
])
def test_invalid_hyper_parameter_raises(name, hyper, msg):
    valid = {"beta1": 0.5, "lr": 0.01}  # bee 0 is valid, bee 1 has the bad value
    per_bee = {k: torch.tensor([valid.get(k, 0.0), v], dtype=torch.float64)
               for k, v in hyper.items()}
    with pytest.raises(ValueError, match=f"invalid {msg} for bee 1"):
        optim.OPTIMIZERS[name](torch.zeros(2, 3), **per_bee)


def test_nesterov_needs_momentum_and_no_dampening():
    hyper = dict(lr=torch.tensor([0.1, 0.1]), momentum=torch.tensor([0.9, 0.0]),
                 dampening=torch.zeros(2), weight_decay=torch.zeros(2))
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(torch.zeros(2, 3), nesterov=True, **hyper)
