"""Every training regime of seed 003 against plain torch.nn + torch.optim, bee for bee:
losses, penalties, dropout (injected masks), batch norm, mini-batches, validation, early stopping,
initialisations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from reference import train_one_bee

from swarmcli import engine, nn

X = np.linspace(-3, 3, 41)
Y = np.sin(X)
BEES, EPOCHS, WIDTH, DEPTH = 3, 30, 8, 2
SGD = dict(lr=0.01, momentum=0.9, dampening=0.0, weight_decay=0.0)
ADAM = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)


def batch(optimizer="sgd", **kw):
    hyper = SGD if optimizer == "sgd" else ADAM
    args = dict(depth=DEPTH, widths=[WIDTH], bees=BEES, activation="tanh", optimizer=optimizer,
                hyper={k: [v] for k, v in hyper.items()}, x=X, y=Y, epochs=EPOCHS, seed=5,
                frames=list(range(EPOCHS + 1)), dtype="float64")
    args.update(kw)
    return engine.Batch(**args)


def reference(b: engine.Batch, bee: int, **kw):
    init = nn.init_params(b.seed, b.depth, b.widths[0], b.bees, b.init, b.init_std,
                          b.init_bounds)
    hyper = {k: v[0] for k, v in b.hyper.items()} | {"nesterov": False}
    return train_one_bee([(w[bee], bb[bee]) for w, bb in init], b.x, b.y, b.depth,
                         b.widths[0], b.activation, b.optimizer, hyper, b.epochs, torch.float64,
                         loss=b.loss, l1=b.l1, l2=b.l2, batch_norm=b.batch_norm,
                         batch_size=b.batch_size, val=b.val_mask, **kw)


def assert_matches(res, b, tol=1e-10, **kw):
    for bee in range(b.bees):
        ref = reference(b, bee, **kw)
        np.testing.assert_allclose(res.loss[bee], ref[0], rtol=tol, atol=tol)
        np.testing.assert_allclose(res.ypred[bee], ref[1], rtol=tol, atol=tol)
        if b.val_mask is not None:
            np.testing.assert_allclose(res.val_loss[bee], ref[2], rtol=tol, atol=tol)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
@pytest.mark.parametrize("gradient", ["fused", "autograd"])
def test_losses(loss, gradient):
    b = batch(loss=loss, huber_delta=1.0)
    assert_matches(engine.train(b, gradient=gradient), b)


@pytest.mark.parametrize("penalty", [{"l1": 1e-3}, {"l2": 1e-3}, {"l1": 1e-3, "l2": 2e-3}])
@pytest.mark.parametrize("gradient", ["fused", "autograd"])
def test_l1_l2_penalties(penalty, gradient):
    b = batch(**penalty)
    res = engine.train(b, gradient=gradient)
    assert_matches(res, b)
    plain = engine.train(batch())
    assert not np.allclose(res.loss, plain.loss)  # the penalty changed training


def test_dropout_with_injected_masks():
    """The engine's masks are handed to the reference's dropout layers: same drops, same bees."""
    b = batch("adam", dropout=0.25)
    gen = torch.Generator().manual_seed(0)
    masks = {}

    def draw(epoch, step, layer, shape):
        key = (epoch, step, layer)
        if key not in masks:
            masks[key] = ((torch.rand(shape, generator=gen, dtype=torch.float64) >= 0.25)
                          / 0.75)
        return masks[key]

    res = engine.train(b, dropout_masks=draw)
    for bee in range(b.bees):
        loss, pred = reference(b, bee, masks=lambda e, s, layer, i=bee: masks[(e, s, layer)][i])
        np.testing.assert_allclose(res.loss[bee], loss, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(res.ypred[bee], pred, rtol=1e-10, atol=1e-10)
    assert res.ypred_train is not None and not np.allclose(res.ypred_train, res.ypred)


def test_default_dropout_masks_drop_the_asked_share():
    b = batch(dropout=0.3)
    draw = engine.default_dropout_masks(b, "cpu", torch.float64)
    m = draw(0, 0, 0, (50, 41, 8))
    assert abs((m == 0).double().mean().item() - 0.3) < 0.02
    assert torch.allclose(m[m > 0], torch.tensor(1 / 0.7, dtype=torch.float64))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_batch_norm_train_and_eval(optimizer):
    """Full-batch BatchNorm1d: batch statistics in training, running statistics in the
    recorded (evaluation-mode) predictions.

    With Adam the tolerance is 1e-8 relative: the bias before a batch norm has a true gradient
    of 0, so its float gradient is rounding noise (~1e-17) that Adam rescales to full-size steps.
    The bias cancels in training but moves the running mean, so two correct implementations'
    eval predictions part slowly (seen: 8e-10 to 8e-8 relative after 30 epochs, depending on
    rounding order); eps 1e-6 damps, but cannot remove, that amplification."""
    b = batch(optimizer, batch_norm=True)
    if optimizer == "adam":
        b.hyper["eps"] = [1e-6]
    assert_matches(engine.train(b), b, tol=1e-10 if optimizer == "sgd" else 1e-8)


@pytest.mark.parametrize("gradient,optimizer", [("fused", "sgd"), ("fused", "adam"),
                                                ("autograd", "sgd")])
def test_mini_batches_each_bee_its_own_order(gradient, optimizer):
    """Batches of 10 out of 41 points (the last one short), each bee shuffling on its own."""
    b = batch(optimizer, batch_size=10)
    res = engine.train(b, gradient=gradient)
    gens = engine.shuffle_generators(b, 0, b.bees)
    n = len(X)
    perms = [[torch.randperm(n, generator=g) for _ in range(EPOCHS)] for g in gens]
    assert not torch.equal(perms[0][0], perms[1][0])
    for bee in range(b.bees):
        loss, pred = reference(b, bee, perms=perms[bee])
        np.testing.assert_allclose(res.loss[bee], loss, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(res.ypred[bee], pred, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("gradient, norm", [("fused", False), ("autograd", False),
                                            ("fused", True)])
def test_mini_batches_with_penalties(gradient, norm):
    """l1 and l2 on each mini-batch's step: both gradient paths, and batch norm (which takes
    the autograd step whatever the gradient)."""
    b = batch("sgd", batch_size=16, l1=1e-3, l2=2e-3, epochs=10, frames=list(range(11)),
              batch_norm=norm)
    res = engine.train(b, gradient=gradient)
    gens = engine.shuffle_generators(b, 0, b.bees)
    perms = [[torch.randperm(len(X), generator=g) for _ in range(b.epochs)] for g in gens]
    for bee in range(b.bees):
        loss, pred = reference(b, bee, perms=perms[bee])
        np.testing.assert_allclose(res.loss[bee], loss, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(res.ypred[bee], pred, rtol=1e-10, atol=1e-10)


FIRST_ORDERS = [[0, 5, 4, 3, 1, 2], [5, 2, 0, 3, 4, 1]]


def test_each_bees_shuffle_order_is_fixed_by_seed_and_bee():
    """The orders are part of what a run dir records (swarm rerun reproduces it bit for bit):
    a bee's order depends on (seed, its index in the cell) only, and does not change between
    versions unnoticed. The numbers below are the first orders of seed 5's bees 0 and 1."""
    b = batch("sgd", batch_size=4)
    gens = engine.shuffle_generators(b, 0, b.bees)
    first = [torch.randperm(6, generator=g).tolist() for g in gens[:2]]
    assert first == FIRST_ORDERS
    again = engine.shuffle_generators(b, b.bees, 2 * b.bees)  # the next cell's bees 0..2
    assert [torch.randperm(6, generator=g).tolist() for g in again[:2]] == FIRST_ORDERS


@pytest.mark.parametrize("gradient", ["fused", "autograd"])
def test_validation_loss_on_held_out_points(gradient):
    val = np.zeros(len(X), bool)
    val[15:25] = True  # an interpolation gap
    b = batch(val_mask=val)
    assert_matches(engine.train(b, gradient=gradient), b)


def test_early_stopping_freezes_each_bee_at_its_own_epoch():
    val = np.zeros(len(X), bool)
    val[::4] = True
    noisy = Y + np.random.default_rng(0).normal(0, 0.3, len(X))
    b = batch("adam", y=noisy, val_mask=val, patience=5, epochs=300, widths=[40],
              frames=[0, 300], record=("ypred", "weights"))
    res = engine.train(b)
    stopped = res.stopped_epoch
    assert (stopped > 0).all() and len(set(stopped.tolist())) > 1
    for bee in range(b.bees):
        s = stopped[bee]
        v = res.val_loss[bee]
        best = v[:s + 1].argmin()
        assert s - best == b.patience  # stopped `patience` epochs after its best
        assert (res.loss[bee, s + 1:] == res.loss[bee, s + 1]).all()  # frozen from then on
    unstopped = engine.train(batch("adam", y=noisy, val_mask=val, epochs=300, widths=[40],
                                   frames=[0, 300]))
    assert (unstopped.stopped_epoch == -1).all()


INIT_STATS = {  # (mean, std or bound check) per scheme for fan_in 20, fan_out 20
    "xavier_uniform": ("uniform", math.sqrt(6 / 40)),
    "xavier_normal": ("normal", math.sqrt(2 / 40)),
    "kaiming_uniform": ("uniform", math.sqrt(6 / 20)),
    "kaiming_normal": ("normal", math.sqrt(2 / 20)),
    "normal": ("normal", 0.1),
    "uniform": ("uniform", 0.1),
}


@pytest.mark.parametrize("init", list(INIT_STATS))
def test_init_distributions(init):
    """Hidden-layer weights follow torch.nn.init's distribution (moments and a KS distance)."""
    w = nn.init_params(0, 2, 20, 500, init)[1][0].reshape(-1).numpy()
    kind, scale = INIT_STATS[init]
    assert abs(w.mean()) < 0.02 * scale * 3
    if kind == "uniform":
        assert np.abs(w).max() <= scale and np.abs(w).max() > 0.99 * scale
        assert abs(w.std() - scale / math.sqrt(3)) < 0.02 * scale
        cdf = np.clip((np.sort(w) + scale) / (2 * scale), 0, 1)
    else:
        assert abs(w.std() - scale) < 0.02 * scale
        cdf = 0.5 * (1 + np.vectorize(math.erf)(np.sort(w) / (scale * math.sqrt(2))))
    ks = np.abs(cdf - (np.arange(1, w.size + 1) / w.size)).max()
    assert ks < 1.63 / math.sqrt(w.size)  # Kolmogorov-Smirnov at the 1% level
    biases = nn.init_params(0, 2, 20, 5, init)[1][1]
    assert (biases == 0).all()


def test_seeded_normal_draw_is_exact():
    """normal init = sqrt(2) * std * erfinv(2u - 1) of the (seed, layer, shape) generator's u."""
    w = nn.init_params(3, 1, 4, 2, "normal", std=0.5)[1][0]
    gen = nn._generator(3, 1, (4, 1), 0)
    u = torch.rand((2, 4, 1), generator=gen, dtype=torch.float64)
    assert torch.equal(w, torch.erfinv(2 * u - 1) * (0.5 * 2**0.5))


def test_zeros_init_shows_the_symmetry_problem():
    """All-zero weights: every hidden unit stays identical to the others, forever."""
    b = batch(init="zeros", record=("weights",), frames=[EPOCHS])
    res = engine.train(b)
    w_hidden = res.weights[1][:, -1]  # [bees, width, width]
    assert np.allclose(w_hidden, w_hidden[:, :1, :1])


OPTIMIZER_ZOO = {
    "adamw": dict(lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.01),
    "adamax": dict(lr=0.02, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0),
    "nadam": dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                  momentum_decay=0.004),
    "rmsprop": dict(lr=0.005, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.5),
    "adagrad": dict(lr=0.05, lr_decay=0.001, weight_decay=0.0, initial_accumulator_value=0.1,
                    eps=1e-10),
}


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("name", list(OPTIMIZER_ZOO))
def test_every_optimizer_in_the_engine(name, dtype, tol):
    """Each optimizer trains the MLP exactly as torch.optim does, bee for bee. rmsprop runs
    centered in float64 (so the flag reaches the batched optimizer); in float32 centered rmsprop
    divides by sqrt(v - m^2), which turns rounding-order differences into 3e-5 after 30 epochs,
    so float32 checks the plain variant. Even plain rmsprop's early, nearly sign-like steps
    amplify float32 rounding: torch's own float32 run ends 1.6e-5 from its float64 run (the
    engine's 9e-7), so in float32 each value must be within tol of torch's float32 or float64."""
    hyper = OPTIMIZER_ZOO[name]
    flags = {"centered": dtype == "float64"} if name == "rmsprop" else {}
    b = batch(name, hyper={k: [v] for k, v in hyper.items()}, flags=flags, dtype=dtype)
    res = engine.train(b)
    init = nn.init_params(b.seed, b.depth, WIDTH, b.bees)

    def reference(bee, dt):
        return train_one_bee([(w[bee], bb[bee]) for w, bb in init], X, Y, DEPTH, WIDTH, "tanh",
                             name, {**hyper, "centered": False, **flags}, EPOCHS, dt)

    for bee in range(b.bees):
        got, want = (res.loss[bee], res.ypred[bee]), reference(bee, getattr(torch, dtype))
        if dtype == "float32":  # torch's own float32 run can stray from float64 by more than tol
            exact = reference(bee, torch.float64)
            for g, w, e in zip(got, want, exact):
                close = lambda a, r: np.abs(a - r) <= tol * (1 + np.abs(r))  # noqa: E731
                assert (close(g, w) | close(g, e)).all(), np.abs(g - w).max()
        else:
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


@pytest.mark.parametrize("schedule, params", [
    ("step", {"step_size": 7, "gamma": 0.5}), ("exponential", {"gamma": 0.95}),
    ("cosine", {"t_max": EPOCHS, "eta_min": 0.001}), ("cyclic", {"max_lr": 0.05,
                                                                 "step_size_up": 5}),
    ("warmup", {"start_factor": 0.2, "warmup_epochs": 10})])
def test_schedules_in_the_engine(schedule, params):
    """The engine's schedule equals torch.optim.lr_scheduler stepped once per epoch."""
    b = batch("sgd", schedule=schedule, schedule_params=params)
    res = engine.train(b)
    init = nn.init_params(b.seed, b.depth, WIDTH, b.bees)
    make = {
        "step": lambda o: torch.optim.lr_scheduler.StepLR(o, **params),
        "exponential": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, **params),
        "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(
            o, T_max=params["t_max"], eta_min=params["eta_min"]),
        "cyclic": lambda o: torch.optim.lr_scheduler.CyclicLR(
            o, base_lr=SGD["lr"], max_lr=params["max_lr"], step_size_up=params["step_size_up"],
            cycle_momentum=False),
        "warmup": lambda o: torch.optim.lr_scheduler.LinearLR(
            o, start_factor=params["start_factor"], total_iters=params["warmup_epochs"]),
    }
    for bee in range(b.bees):
        net = reference_net(init, bee)
        opt = torch.optim.SGD(net.parameters(), lr=SGD["lr"], momentum=SGD["momentum"])
        sched = make[schedule](opt)
        xt, yt = torch.as_tensor(X).reshape(-1, 1), torch.as_tensor(Y).reshape(-1, 1)
        for epoch in range(EPOCHS + 1):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(xt), yt)
            assert abs(loss.item() - res.loss[bee, epoch]) < 1e-10 * max(1, loss.item())
            if epoch < EPOCHS:
                loss.backward()
                opt.step()
                sched.step()


def reference_net(init, bee):
    from reference import sequential

    net = sequential(DEPTH, WIDTH, "tanh").double()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, (w, b) in zip(linears, init):
            lin.weight.copy_(w[bee].T)
            lin.bias.copy_(b[bee].reshape(-1))
    return net


def stop_epoch(val_loss: np.ndarray, patience: int, min_delta: float) -> int:
    """Early stopping worked out by hand: an epoch counts as better only when its validation
    loss is below the best so far by more than min_delta; `patience` epochs in a row without
    one stop the bee (-1: never)."""
    best, wait = math.inf, 0
    for epoch, v in enumerate(val_loss.astype(np.float64)):
        if v < best - min_delta:
            best, wait = v, 0
        else:
            wait += 1
        if wait >= patience:
            return epoch
    return -1


def test_early_stopping_counts_only_improvements_above_min_delta(tiny_run):
    """train.min_delta from the config to the engine: each bee's saved stop epoch is the one
    worked out by hand from its saved validation loss, and min_delta > 0 stops bees earlier
    than min_delta = 0 from the same start."""
    from swarmcli import load

    run = load(tiny_run("target.name=noisy_sin", "target.noise_sd=0.2", "target.points=30",
                        "target.domain=[-5,5]", "target.split.kind=random", "optim=adam",
                        "optim.lr=0.01", "model.width=20", "train.epochs=150", "train.bees=4",
                        "train.patience=8", "train.record=[]",
                        "+sweep.grid.train.min_delta=[0.0,0.002]"))
    stops = {}
    for cell in run.cells:
        min_delta = float(cell.values["train.min_delta"])
        val, stopped = cell.array("val_loss"), np.asarray(cell.array("stopped_epoch"))
        want = [stop_epoch(val[bee], 8, min_delta) for bee in range(4)]
        assert stopped.tolist() == want, (min_delta, stopped, want)
        stops[min_delta] = stopped
    plain, strict = stops[0.0], stops[0.002]
    assert (plain >= 0).all() and (strict >= 0).all()
    assert (strict <= plain).all() and (strict < plain).any(), (strict, plain)
