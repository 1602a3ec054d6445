"""The batched engine equals the plain per-bee torch.nn + torch.optim loop, bee for bee."""

from __future__ import annotations

import itertools
import platform
from dataclasses import replace

import numpy as np
import pytest
import torch
from groups import make_group
from reference import train_one_bee

from swarmcli import nn
from swarmcli.engine import loop, native, parts, runtime

EPOCHS = 40
BEES = 2
WIDTHS = [1, 3, 20]  # padded into one group: 1 and 3 to 20
X = np.linspace(-3, 3, 61)  # wide enough to bend, narrow enough that no bee diverges
Y = np.sin(X)
TOL = {"float64": 1e-10, "float32": 1e-5}
# Epochs compared: all in float64; in float32 the first 20. Adaptive steps (lr * g / sqrt(v))
# turn a gradient's last-bit rounding into a step of size ~lr wherever g is near zero, so the
# per-bee loop and the engine, which sum in different orders, drift apart later (measured:
# 1e-7 up to epoch 20, then up to 8e-4 by epoch 44 for RMSprop and NAdam in float32).
COMPARED = {"float64": EPOCHS + 1, "float32": 21}

OPTIMIZERS = {  # key -> (optimizer, per-bee hyper-parameters, flags)
    "sgd": ("sgd", dict(lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0), {}),
    "sgd_momentum": ("sgd", dict(lr=0.01, momentum=0.9, dampening=0.1, weight_decay=0.01), {}),
    "nesterov": ("sgd", dict(lr=0.01, momentum=0.9, dampening=0.0, weight_decay=0.0),
                 {"nesterov": True}),
    "adam": ("adam", dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01), {}),
    "adamw": ("adamw", dict(lr=0.002, beta1=0.8, beta2=0.99, eps=1e-8, weight_decay=0.05), {}),
    "rmsprop": ("rmsprop", dict(lr=0.001, alpha=0.9, eps=1e-8, weight_decay=0.01,
                                momentum=0.5), {}),
    "adagrad": ("adagrad", dict(lr=0.05, lr_decay=0.01, weight_decay=0.0,
                                initial_accumulator_value=0.1, eps=1e-10), {}),
    "adamax": ("adamax", dict(lr=0.002, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0), {}),
    "nadam": ("nadam", dict(lr=0.002, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                            momentum_decay=4e-3), {}),
}
DEPTHS = [1, 2, 3]
DTYPES = ["float64", "float32"]


def covering_rows():
    """Every activation with every optimizer, depth and dtype chosen so that every pair of
    levels of any two factors meets at least once (pairwise coverage: 99 cases, not the full
    product's 594). `test_rows_cover_every_pair` holds that property."""
    rows = []
    for a, o in itertools.product(range(len(nn.ACTIVATIONS)), range(len(OPTIMIZERS))):
        rows.append((list(nn.ACTIVATIONS)[a], list(OPTIMIZERS)[o], DEPTHS[(a + o) % 3],
                     DTYPES[(a + o) % 2]))
    return rows


ROWS = covering_rows()


def test_rows_cover_every_pair():
    levels = [list(nn.ACTIVATIONS), list(OPTIMIZERS), DEPTHS, DTYPES]
    for i, j in itertools.combinations(range(4), 2):
        seen = {(r[i], r[j]) for r in ROWS}
        missing = set(itertools.product(levels[i], levels[j])) - seen
        assert not missing, f"factors {i}, {j}: pairs never tested: {sorted(missing)[:5]}"


def reference_run(depth, activation, opt_key, dtype, widths=WIDTHS, x=X, y=Y, epochs=EPOCHS):
    name, hyper, flags = OPTIMIZERS[opt_key]
    h = {**hyper, "nesterov": False, "centered": False, **flags}
    losses, preds = [], []
    for width in widths:
        init = nn.init_params(seed=3, depth=depth, width=width, bees=BEES)
        for bee in range(BEES):
            loss, pred = train_one_bee([(w[bee], b[bee]) for w, b in init], x, y, depth, width,
                                       activation, name, h, epochs, getattr(torch, dtype))
            losses.append(loss)
            preds.append(pred)
    return np.stack(losses), np.stack(preds)


def engine_group(depth, activation, opt_key, dtype, widths=WIDTHS, epochs=EPOCHS, **kw):
    name, hyper, flags = OPTIMIZERS[opt_key]
    return make_group(depth=depth, widths=widths, activation=activation, optimizer=name,
                      hyper={k: [v] * len(widths) for k, v in hyper.items()}, flags=flags,
                      x=X, y=Y, epochs=epochs, seed=3, bees=BEES,
                      frames=range(epochs + 1), dtype=dtype, **kw)


@pytest.mark.parametrize(("activation", "opt_key", "depth", "dtype"), ROWS)
def test_engine_matches_per_bee_reference(activation, opt_key, depth, dtype):
    """Widths 1, 3, 20 train padded into one group and match the reference in loss and
    ypred (see COMPARED for the epochs). The autograd path (the hand-derived one's own reference) is
    held to it in float64: in float32 its different rounding order can flip a ReLU gate near
    zero (seen: one bee 1.8e-5 off after 50 epochs), which is float noise, not a bug."""
    ref_loss, ref_pred = reference_run(depth, activation, opt_key, dtype)
    group = engine_group(depth, activation, opt_key, dtype)
    assert np.isfinite(ref_loss).all()
    paths = [("hand-derived", group, False)]
    if dtype == "float64":
        paths.append(("autograd", group, True))
    if native.unsupported(group) is None:  # the C kernel, where it covers the optimizer
        paths.append(("native", replace(group, runtime=replace(group.runtime, native=True)),
                      False))
    elif OPTIMIZERS[opt_key][0] in native.KERNEL_OPTIMIZERS:
        pytest.fail(f"the native kernel should train this group: {native.unsupported(group)}")
    for what, g, use_autograd in paths:
        res = loop.train(g, use_autograd=use_autograd)
        e = COMPARED[dtype]
        np.testing.assert_allclose(res.loss[:, :e], ref_loss[:, :e], rtol=TOL[dtype],
                                   atol=TOL[dtype], err_msg=f"{what} loss")
        np.testing.assert_allclose(res.ypred[:, :e], ref_pred[:, :e], rtol=TOL[dtype],
                                   atol=TOL[dtype], err_msg=f"{what} ypred")


CENTERED = ("rmsprop", dict(lr=0.001, alpha=0.9, eps=1e-8, weight_decay=0.01, momentum=0.5),
            {"centered": True})


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_centered_rmsprop_matches_in_float64(activation, monkeypatch):
    """Centered RMSprop divides by sqrt(E[g^2] - E[g]^2), a difference of nearly equal numbers:
    in float32 one rounding step apart grows to 1e-3 within 40 epochs (measured, whichever way
    round), so it is held to the reference in float64, across depths, padded widths and both
    gradients (test_optim holds its single steps to torch.optim in float32 too)."""
    monkeypatch.setitem(OPTIMIZERS, "centered", CENTERED)
    for depth in DEPTHS:
        ref_loss, ref_pred = reference_run(depth, activation, "centered", "float64")
        group = engine_group(depth, activation, "centered", "float64")
        for use_autograd in (False, True):
            res = loop.train(group, use_autograd=use_autograd)
            np.testing.assert_allclose(res.loss, ref_loss, rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(res.ypred, ref_pred, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("width", [1, 20])
def test_unpadded_group_matches_reference(width):
    ref_loss, ref_pred = reference_run(2, "tanh", "adam", "float64", widths=[width])
    res = loop.train(engine_group(2, "tanh", "adam", "float64", widths=[width]))
    np.testing.assert_allclose(res.loss, ref_loss, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(res.ypred, ref_pred, rtol=1e-10, atol=1e-10)


# Two inputs (classification): a fixed plane of points, labelled by a curved boundary, so no
# bee fits it exactly within the compared epochs.
X2 = np.random.default_rng(5).uniform(-1.5, 1.5, size=(40, 2))
Y2 = (X2[:, 1] > 0.6 * np.sin(2 * X2[:, 0])).astype(float)
ROWS_2D = [  # (activation, optimizer, depth, dtype, loss, batch_size)
    ("relu", "sgd_momentum", 2, "float64", "bce", None),
    ("tanh", "adam", 1, "float64", "bce", None),
    ("sigmoid", "nesterov", 3, "float64", "mse", None),  # act(0) != 0: the padding mask
    ("gelu", "adagrad", 1, "float64", "bce", None),
    ("relu", "rmsprop", 2, "float32", "bce", None),
    ("tanh", "sgd", 2, "float64", "bce", 8),  # each bee its own mini-batches of 8 points
]


@pytest.mark.parametrize(("activation", "opt_key", "depth", "dtype", "loss", "batch"), ROWS_2D)
def test_two_inputs_match_per_bee_reference(activation, opt_key, depth, dtype, loss, batch):
    """in_dim 2 (widths 3 and 10 padded into one group): the fused path and autograd equal a
    per-bee torch.nn.Sequential with 2 inputs and BCEWithLogitsLoss (or MSE) bee for bee."""
    name, hyper, flags = OPTIMIZERS[opt_key]
    h = {**hyper, "nesterov": False, "centered": False, **flags}
    widths, epochs = [3, 10], 30
    group = make_group(depth=depth, widths=widths, activation=activation, optimizer=name,
                       hyper={k: [v] * len(widths) for k, v in hyper.items()}, flags=flags,
                       x=X2, y=Y2, epochs=epochs, seed=4, bees=BEES,
                       frames=range(epochs + 1), dtype=dtype, network={"in_dim": 2},
                       data={"batch_size": batch}, loss=parts.Loss(kind=loss))
    gens = runtime.shuffle_generators(group, 0, group.total_bees) if batch else None
    ref_loss, ref_pred = [], []
    for k, width in enumerate(widths):
        init = nn.init_params(seed=4, depth=depth, width=width, bees=BEES, in_dim=2)
        for bee in range(BEES):
            perms = None if gens is None else [
                torch.randperm(len(X2), generator=gens[k * BEES + bee]) for _ in range(epochs)]
            out = train_one_bee([(w[bee], b[bee]) for w, b in init], X2, Y2, depth, width,
                                activation, name, h, epochs, getattr(torch, dtype), loss=loss,
                                perms=perms, batch_size=batch)
            ref_loss.append(out[0])
            ref_pred.append(out[1])
    ref_loss, ref_pred = np.stack(ref_loss), np.stack(ref_pred)
    assert np.isfinite(ref_loss).all() and ref_loss[:, -1].max() < ref_loss[:, 0].max()
    tol, e = TOL[dtype], COMPARED[dtype]
    for use_autograd in (False, True) if dtype == "float64" else (False,):
        res = loop.train(group, use_autograd=use_autograd)
        what = "autograd" if use_autograd else "hand-derived"
        np.testing.assert_allclose(res.loss[:, :e], ref_loss[:, :e], rtol=tol, atol=tol,
                                   err_msg=f"{what} loss")
        np.testing.assert_allclose(res.ypred[:, :e], ref_pred[:, :e], rtol=tol, atol=tol,
                                   err_msg=f"{what} ypred")


@pytest.mark.slow
def test_two_inputs_compiled_matches_eager():
    """train.compile=on with 2 inputs and the BCE loss: the same epoch through Inductor."""
    group = make_group(depth=2, widths=[3, 10], activation=["tanh", "relu"], optimizer="adam",
                       hyper={k: [v] * 2 for k, v in OPTIMIZERS["adam"][1].items()}, x=X2,
                       y=Y2, epochs=20, seed=4, bees=BEES, frames=range(21), dtype="float64",
                       network={"in_dim": 2}, loss=parts.Loss(kind="bce"))
    eager = loop.train(group)
    fast = loop.train(replace(group, runtime=parts.Runtime(dtype="float64", compile=True)))
    np.testing.assert_allclose(fast.loss, eager.loss, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fast.ypred, eager.ypred, rtol=1e-10, atol=1e-10)


MIXED = [("relu", 3), ("sigmoid", 20), ("sigmoid", 1), ("tanh", 20), ("softplus", 3)]


@pytest.mark.parametrize("chunk_bees", [None, 3])
@pytest.mark.parametrize("use_autograd", [False, True])
def test_cells_of_different_activations_share_a_group(use_autograd, chunk_bees):
    """Cells that differ in activation (and width) train as one group, each activation on its
    own slice of the bee axis, and still match the reference bee for bee; sigmoid and softplus
    (act(0) != 0) need the padding mask, relu and tanh do not. A chunk of 3 bees spans cells."""
    group = engine_group(2, [a for a, _ in MIXED], "adam", "float64", widths=[w for _, w in MIXED])
    res = loop.train(group, use_autograd=use_autograd, chunk_bees=chunk_bees)
    for k, (activation, width) in enumerate(MIXED):
        ref_loss, ref_pred = reference_run(2, activation, "adam", "float64", widths=[width])
        cell = slice(k * BEES, (k + 1) * BEES)
        np.testing.assert_allclose(res.loss[cell], ref_loss, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(res.ypred[cell], ref_pred, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("use_autograd", [False, True])
def test_mixed_batch_equals_separate_groups_exactly(use_autograd):
    """A batch of several activations gives bit for bit (torch.equal) the losses, predictions
    and trained weights of training each activation's cells as a group of their own: the
    per-activation slicing of the bee axis (nn.Mixed) may change speed, never a result bit.
    W1's activations plus sigmoid, whose act(0) != 0 brings in the padding mask."""
    acts, widths = ["relu", "tanh", "tanhshrink", "sigmoid"], [3, 20]
    recording = parts.Recording(("ypred", "weights", "biases"), (0, 10, EPOCHS))

    def run(names):
        cells = [(a, w) for a in names for w in widths]
        group = engine_group(2, [a for a, _ in cells], "adam", "float64",
                             widths=[w for _, w in cells])
        return loop.train(replace(group, recording=recording), use_autograd=use_autograd)

    mixed = run(acts)
    for k, act in enumerate(acts):
        alone = run([act])
        rows = slice(k * len(widths) * BEES, (k + 1) * len(widths) * BEES)
        for name in ("loss", "ypred"):
            assert torch.equal(torch.as_tensor(getattr(mixed, name)[rows]),
                               torch.as_tensor(getattr(alone, name))), (act, name)
        for name in ("weights", "biases"):
            for m, a in zip(getattr(mixed, name), getattr(alone, name)):
                assert torch.equal(torch.as_tensor(m[rows]), torch.as_tensor(a)), (act, name)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_mixed_writes_each_activation_bit_for_bit(dtype):
    """nn.Mixed writes every activation's forward and backward into slices of one buffer
    (fn_into, chain_into); each part is torch.equal to the activation's own fn and chain on its
    bees, for every activation, and autograd (which takes the cat path) gets the same values."""
    names = list(nn.ACTIVATIONS)
    per = 3
    gen = torch.Generator().manual_seed(0)
    shape = (per * len(names), 7, 37)  # 37 points: a tail past any vector width
    z, g = (torch.randn(shape, generator=gen, dtype=dtype) * 3 for _ in range(2))
    mixed = nn.activation_of_bees(names, per, 0, shape[0])
    a = mixed.fn(z)
    dz = mixed.chain(g, z, a)
    for k, name in enumerate(names):
        act, rows = nn.ACTIVATIONS[name], slice(k * per, (k + 1) * per)
        assert torch.equal(a[rows], act.fn(z[rows])), name
        assert torch.equal(dz[rows], act.chain(g[rows], z[rows], a[rows])), name
    assert torch.equal(mixed.fn(z.clone().requires_grad_(True)).detach(), a)


def test_per_bee_hyper_parameters_in_one_group():
    """Cells differing only in lr and momentum share a group and still match the reference."""
    lrs, moms = [0.002, 0.01, 0.05], [0.7, 0.9, 0.95]
    group = make_group(depth=1, widths=[10] * 3, bees=BEES, activation="relu", optimizer="sgd",
                       hyper={"lr": lrs, "momentum": moms, "dampening": [0.0] * 3,
                              "weight_decay": [0.0] * 3}, x=X, y=Y, epochs=EPOCHS, seed=3,
                       frames=[0, EPOCHS], dtype="float64")
    res = loop.train(group)
    init = nn.init_params(3, 1, 10, BEES)
    for c, (lr, mom) in enumerate(zip(lrs, moms)):
        for bee in range(BEES):
            loss, _ = train_one_bee([(w[bee], b[bee]) for w, b in init], X, Y, 1, 10, "relu",
                                    "sgd", dict(lr=lr, momentum=mom, dampening=0.0,
                                                weight_decay=0.0, nesterov=False),
                                    EPOCHS, torch.float64)
            np.testing.assert_allclose(res.loss[c * BEES + bee], loss, rtol=1e-10, atol=1e-10)


def test_recorded_weights_match_reference_parameters():
    """weights/biases recordings hold the parameters at each recorded epoch (0 = initial)."""
    group = engine_group(1, "relu", "sgd_momentum", "float64", widths=[3], epochs=5)
    group = replace(group, recording=parts.Recording(("ypred", "weights", "biases"), (0, 5)))
    res = loop.train(group)
    init = nn.init_params(3, 1, 3, BEES)
    np.testing.assert_array_equal(res.weights[0][:, 0], init[0][0].numpy())
    np.testing.assert_array_equal(res.biases[1][:, 0], init[1][1].numpy()[:, 0])
    assert not np.array_equal(res.weights[0][:, 1], res.weights[0][:, 0])  # it trained
    # the prediction at the last frame is the recorded parameters' prediction
    w0, b0, w1, b1 = (res.weights[0][:, 1], res.biases[0][:, 1], res.weights[1][:, 1],
                      res.biases[1][:, 1])
    h = np.maximum(X[None, :, None] * w0 + b0[:, None, :], 0)
    pred = (h @ w1)[..., 0] + b1
    np.testing.assert_allclose(res.ypred[:, 1], pred, rtol=1e-12, atol=1e-12)


def test_chunked_training_equals_one_chunk():
    """Bees are independent: training in chunks of bees changes nothing but float rounding
    (kernels may vectorise differently for another batch size)."""
    group = engine_group(2, "tanhshrink", "adam", "float64", widths=[3, 20])
    whole = loop.train(group, chunk_bees=10**6)
    chunked = loop.train(group, chunk_bees=3)
    np.testing.assert_allclose(whole.loss, chunked.loss, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(whole.ypred, chunked.ypred, rtol=1e-12, atol=1e-12)


@pytest.mark.slow  # torch.compile of the whole epoch (~18 s)
def test_compiled_step_matches_eager():
    """train.compile=on runs the same epoch (optimizer step, hand-derived loss and gradient,
    divergence mask) through torch.compile (Inductor), here for two activations in one group."""
    group = engine_group(2, ["tanh", "relu"], "adam", "float64", widths=[3, 20], epochs=20)
    eager = loop.train(group)
    fast = loop.train(replace(group, runtime=parts.Runtime(dtype="float64", compile=True)))
    np.testing.assert_allclose(fast.loss, eager.loss, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fast.ypred, eager.ypred, rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    """The same group on a GPU: float64 results equal the CPU's to rounding."""
    group = engine_group(2, "relu", "adam", "float64", widths=[3, 20], epochs=30)
    cpu = loop.train(group)
    gpu = loop.train(replace(group, runtime=parts.Runtime(device="cuda", dtype="float64")))
    np.testing.assert_allclose(gpu.loss, cpu.loss, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(gpu.ypred, cpu.ypred, rtol=1e-9, atol=1e-9)


def test_freed_memory_is_kept_on_glibc():
    """loop.train asks glibc (where it runs on glibc) to keep freed buffers: the values it
    sets must be ones glibc accepts, or the call silently does nothing."""
    on_glibc = platform.libc_ver()[0] == "glibc"
    assert runtime.keep_freed_memory() is on_glibc


def test_compiled_kernels_are_cached_in_the_user_cache_folder(monkeypatch, tmp_path):
    from swarmcli.engine import runtime

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert runtime.keep_compile_cache() == str(tmp_path / "swarm" / "torchinductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))  # the user's choice
    assert runtime.keep_compile_cache() == str(tmp_path / "mine")
