"""Every training regime of seed 003 against plain torch.nn + torch.optim, bee for bee:
losses, penalties, dropout (injected masks), batch norm, mini-batches, validation, early stopping,
initialisations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from groups import make_group
from reference import train_one_bee

from swarmcli import nn, schedules
from swarmcli.engine import loop, parts, runtime

X = np.linspace(-3, 3, 41)
Y = np.sin(X)
BEES, EPOCHS, WIDTH, DEPTH = 3, 30, 8, 2
SGD = dict(lr=0.01, momentum=0.9, dampening=0.0, weight_decay=0.0)
ADAM = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)


def group(optimizer="sgd", *, widths=(WIDTH,), epochs=EPOCHS, frames=None, hyper=None, y=Y,
          **parts_and_fields):
    """One tanh cell of BEES bees (or one per width), float64; the rest as tests/groups.py."""
    hyper = hyper or {k: [v] for k, v in (SGD if optimizer == "sgd" else ADAM).items()}
    return make_group(depth=DEPTH, widths=widths, activation="tanh", optimizer=optimizer,
                      hyper=hyper, x=X, y=y, epochs=epochs, seed=5, bees=BEES, dtype="float64",
                      frames=range(epochs + 1) if frames is None else frames,
                      **parts_and_fields)


def reference(g: parts.CellGroup, bee: int, **kw):
    net = g.network
    init = nn.init_params(g.seed, net.depth, net.widths[0], g.bees, net.init, net.init_std,
                          net.init_bounds)
    hyper = {k: v[0] for k, v in g.optimizer.hyper.items()} | {"nesterov": False}
    return train_one_bee([(w[bee], bb[bee]) for w, bb in init], g.data.x, g.data.y, net.depth,
                         net.widths[0], net.activations[0], g.optimizer.name, hyper, g.epochs,
                         torch.float64, loss=g.loss.kind, l1=g.loss.l1, l2=g.loss.l2,
                         batch_norm=net.batch_norm, batch_size=g.data.batch_size,
                         val=g.data.val_mask, **kw)


def assert_matches(res, g, tol=1e-10, **kw):
    for bee in range(g.bees):
        ref = reference(g, bee, **kw)
        np.testing.assert_allclose(res.loss[bee], ref[0], rtol=tol, atol=tol)
        np.testing.assert_allclose(res.ypred[bee], ref[1], rtol=tol, atol=tol)
        if g.data.val_mask is not None:
            np.testing.assert_allclose(res.val_loss[bee], ref[2], rtol=tol, atol=tol)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
@pytest.mark.parametrize("use_autograd", [False, True])
def test_losses(loss, use_autograd):
    b = group(loss=parts.Loss(loss, huber_delta=1.0))
    assert_matches(loop.train(b, use_autograd=use_autograd), b)


@pytest.mark.parametrize("penalty", [{"l1": 1e-3}, {"l2": 1e-3}, {"l1": 1e-3, "l2": 2e-3}])
@pytest.mark.parametrize("use_autograd", [False, True])
def test_l1_l2_penalties(penalty, use_autograd):
    b = group(loss=parts.Loss(**penalty))
    res = loop.train(b, use_autograd=use_autograd)
    assert_matches(res, b)
    plain = loop.train(group())
    assert not np.allclose(res.loss, plain.loss)  # the penalty changed training


def test_dropout_with_injected_masks():
    """The engine's masks are handed to the reference's dropout layers: same drops, same bees."""
    b = group("adam", network={"dropout": 0.25})
    gen = torch.Generator().manual_seed(0)
    masks = {}

    def draw(epoch, step, layer, shape):
        key = (epoch, step, layer)
        if key not in masks:
            masks[key] = ((torch.rand(shape, generator=gen, dtype=torch.float64) >= 0.25)
                          / 0.75)
        return masks[key]

    res = loop.train(b, dropout_masks=draw)
    for bee in range(b.bees):
        loss, pred = reference(b, bee, masks=lambda e, s, layer, i=bee: masks[(e, s, layer)][i])
        np.testing.assert_allclose(res.loss[bee], loss, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(res.ypred[bee], pred, rtol=1e-10, atol=1e-10)
    assert res.ypred_train is not None and not np.allclose(res.ypred_train, res.ypred)


def test_default_dropout_masks_drop_the_asked_share():
    b = group(network={"dropout": 0.3})
    draw = runtime.default_dropout_masks(b, "cpu", torch.float64)
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
    hyper = {k: [v] for k, v in (SGD if optimizer == "sgd" else ADAM | {"eps": 1e-6}).items()}
    b = group(optimizer, hyper=hyper, network={"batch_norm": True})
    assert_matches(loop.train(b), b, tol=1e-10 if optimizer == "sgd" else 1e-8)


@pytest.mark.parametrize("use_autograd,optimizer", [(False, "sgd"), (False, "adam"),
                                                    (True, "sgd")])
def test_mini_batches_each_bee_its_own_order(use_autograd, optimizer):
    """Batches of 10 out of 41 points (the last one short), each bee shuffling on its own."""
    b = group(optimizer, data={"batch_size": 10})
    res = loop.train(b, use_autograd=use_autograd)
    gens = runtime.shuffle_generators(b, 0, b.bees)
    n = len(X)
    perms = [[torch.randperm(n, generator=g) for _ in range(EPOCHS)] for g in gens]
    assert not torch.equal(perms[0][0], perms[1][0])
    for bee in range(b.bees):
        loss, pred = reference(b, bee, perms=perms[bee])
        np.testing.assert_allclose(res.loss[bee], loss, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(res.ypred[bee], pred, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("use_autograd, norm", [(False, False), (True, False), (False, True)])
def test_mini_batches_with_penalties(use_autograd, norm):
    """l1 and l2 on each mini-batch's step: both gradient paths, and batch norm (which takes
    the autograd step whatever the gradient)."""
    b = group("sgd", data={"batch_size": 16}, loss=parts.Loss(l1=1e-3, l2=2e-3), epochs=10,
              network={"batch_norm": norm})
    res = loop.train(b, use_autograd=use_autograd)
    gens = runtime.shuffle_generators(b, 0, b.bees)
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
    b = group("sgd", data={"batch_size": 4})
    gens = runtime.shuffle_generators(b, 0, b.bees)
    first = [torch.randperm(6, generator=g).tolist() for g in gens[:2]]
    assert first == FIRST_ORDERS
    again = runtime.shuffle_generators(b, b.bees, 2 * b.bees)  # the next cell's bees 0..2
    assert [torch.randperm(6, generator=g).tolist() for g in again[:2]] == FIRST_ORDERS


@pytest.mark.parametrize("use_autograd", [False, True])
def test_validation_loss_on_held_out_points(use_autograd):
    val = np.zeros(len(X), bool)
    val[15:25] = True  # an interpolation gap
    b = group(data={"val_mask": val})
    assert_matches(loop.train(b, use_autograd=use_autograd), b)


def test_early_stopping_freezes_each_bee_at_its_own_epoch():
    val = np.zeros(len(X), bool)
    val[::4] = True
    noisy = Y + np.random.default_rng(0).normal(0, 0.3, len(X))
    b = group("adam", y=noisy, data={"val_mask": val}, stopping=parts.Stopping(patience=5),
              epochs=300, widths=[40], frames=[0, 300], record=("ypred", "weights"))
    res = loop.train(b)
    stopped = res.stopped_epoch
    assert (stopped > 0).all() and len(set(stopped.tolist())) > 1
    for bee in range(b.bees):
        s = stopped[bee]
        v = res.val_loss[bee]
        best = v[:s + 1].argmin()
        assert s - best == b.stopping.patience  # stopped `patience` epochs after its best
        assert (res.loss[bee, s + 1:] == res.loss[bee, s + 1]).all()  # frozen from then on
    unstopped = loop.train(group("adam", y=noisy, data={"val_mask": val}, epochs=300,
                                 widths=[40], frames=[0, 300]))
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
    b = group(network={"init": "zeros"}, record=("weights",), frames=[EPOCHS])
    res = loop.train(b)
    w_hidden = res.weights[1][:, -1]  # [bees, width, width]
    assert np.allclose(w_hidden, w_hidden[:, :1, :1])


@pytest.mark.parametrize("schedule, params", [
    ("step", {"step_size": 7, "gamma": 0.5}), ("exponential", {"gamma": 0.95}),
    ("cosine", {"t_max": EPOCHS, "eta_min": 0.001}), ("cyclic", {"max_lr": 0.05,
                                                                 "step_size_up": 5}),
    ("warmup", {"start_factor": 0.2, "warmup_epochs": 10})])
def test_schedules_in_the_engine(schedule, params):
    """The engine's schedule equals torch.optim.lr_scheduler stepped once per epoch."""
    b = group("sgd", schedule=parts.Schedule(schedule, schedules.resolve(schedule, params)))
    res = loop.train(b)
    init = nn.init_params(b.seed, DEPTH, WIDTH, b.bees)
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
