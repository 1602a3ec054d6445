"""The batched engine equals the plain per-bee torch.nn + torch.optim loop, bee for bee."""

from __future__ import annotations

import platform

import numpy as np
import pytest
import torch
from reference import train_one_bee

from swarmcli import engine, nn

EPOCHS = 50
BEES = 2
WIDTHS = [1, 3, 20, 60]
X = np.linspace(-3, 3, 61)  # wide enough to bend, narrow enough that no bee diverges
Y = np.sin(X)
TOL = {"float64": 1e-10, "float32": 1e-5}

OPTIMIZERS = {
    "sgd": ("sgd", dict(lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0), False),
    "sgd_momentum": ("sgd", dict(lr=0.01, momentum=0.9, dampening=0.1, weight_decay=0.01), False),
    "nesterov": ("sgd", dict(lr=0.01, momentum=0.9, dampening=0.0, weight_decay=0.0), True),
    "adam": ("adam", dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01), False),
}


def reference_run(depth, activation, opt_key, dtype, widths=WIDTHS, x=X, y=Y, epochs=EPOCHS):
    name, hyper, nesterov = OPTIMIZERS[opt_key]
    losses, preds = [], []
    for width in widths:
        init = nn.init_params(seed=3, depth=depth, width=width, bees=BEES)
        for bee in range(BEES):
            loss, pred = train_one_bee([(w[bee], b[bee]) for w, b in init], x, y, depth, width,
                                       activation, name, {**hyper, "nesterov": nesterov}, epochs,
                                       getattr(torch, dtype))
            losses.append(loss)
            preds.append(pred)
    return np.stack(losses), np.stack(preds)


def engine_batch(depth, activation, opt_key, dtype, widths=WIDTHS, epochs=EPOCHS):
    name, hyper, nesterov = OPTIMIZERS[opt_key]
    return engine.Batch(depth=depth, widths=list(widths), bees=BEES, activation=activation,
                        optimizer=name, hyper={k: [v] * len(widths) for k, v in hyper.items()},
                        x=X, y=Y, epochs=epochs, seed=3, flags={"nesterov": nesterov},
                        frames=list(range(epochs + 1)), dtype=dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("opt_key", list(OPTIMIZERS))
@pytest.mark.parametrize("activation", list(nn.ACTIVATIONS))
def test_engine_matches_per_bee_reference(activation, opt_key, depth, dtype):
    """Widths 1, 3, 20, 60 train padded into one batch and match the reference in loss and ypred
    over the first 50 epochs. The autograd path (the fused path's own reference) is held to it in
    float64: in float32 its different rounding order can flip a ReLU gate near zero (seen: one
    bee 1.8e-5 off after 50 epochs), which is float noise, not a bug."""
    ref_loss, ref_pred = reference_run(depth, activation, opt_key, dtype)
    batch = engine_batch(depth, activation, opt_key, dtype)
    assert np.isfinite(ref_loss).all()
    for gradient in ("fused", "autograd") if dtype == "float64" else ("fused",):
        res = engine.train(batch, gradient=gradient)
        np.testing.assert_allclose(res.loss, ref_loss, rtol=TOL[dtype], atol=TOL[dtype],
                                   err_msg=f"{gradient} loss")
        np.testing.assert_allclose(res.ypred, ref_pred, rtol=TOL[dtype], atol=TOL[dtype],
                                   err_msg=f"{gradient} ypred")


@pytest.mark.parametrize("width", [1, 20])
def test_unpadded_batch_matches_reference(width):
    ref_loss, ref_pred = reference_run(2, "tanh", "adam", "float64", widths=[width])
    res = engine.train(engine_batch(2, "tanh", "adam", "float64", widths=[width]))
    np.testing.assert_allclose(res.loss, ref_loss, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(res.ypred, ref_pred, rtol=1e-10, atol=1e-10)


MIXED = [("relu", 3), ("sigmoid", 20), ("sigmoid", 1), ("tanh", 20), ("softplus", 3)]


@pytest.mark.parametrize("chunk_bees", [None, 3])
@pytest.mark.parametrize("gradient", ["fused", "autograd"])
def test_cells_of_different_activations_share_a_batch(gradient, chunk_bees):
    """Cells that differ in activation (and width) train as one batch, each activation on its
    own slice of the bee axis, and still match the reference bee for bee; sigmoid and softplus
    (act(0) != 0) need the padding mask, relu and tanh do not. A chunk of 3 bees spans cells."""
    batch = engine_batch(2, [a for a, _ in MIXED], "adam", "float64", widths=[w for _, w in MIXED])
    res = engine.train(batch, gradient=gradient, chunk_bees=chunk_bees)
    for k, (activation, width) in enumerate(MIXED):
        ref_loss, ref_pred = reference_run(2, activation, "adam", "float64", widths=[width])
        cell = slice(k * BEES, (k + 1) * BEES)
        np.testing.assert_allclose(res.loss[cell], ref_loss, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(res.ypred[cell], ref_pred, rtol=1e-10, atol=1e-10)


def test_per_bee_hyper_parameters_in_one_batch():
    """Cells differing only in lr and momentum share a batch and still match the reference."""
    lrs, moms = [0.002, 0.01, 0.05], [0.7, 0.9, 0.95]
    batch = engine.Batch(depth=1, widths=[10] * 3, bees=BEES, activation="relu", optimizer="sgd",
                         hyper={"lr": lrs, "momentum": moms, "dampening": [0.0] * 3,
                                "weight_decay": [0.0] * 3}, x=X, y=Y, epochs=EPOCHS, seed=3,
                         frames=[0, EPOCHS], dtype="float64")
    res = engine.train(batch)
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
    batch = engine_batch(1, "relu", "sgd_momentum", "float64", widths=[3], epochs=5)
    batch.record = ("ypred", "weights", "biases")
    batch.frames = [0, 5]
    res = engine.train(batch)
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
    batch = engine_batch(2, "tanhshrink", "adam", "float64", widths=[3, 20])
    whole = engine.train(batch, chunk_bees=10**6)
    chunked = engine.train(batch, chunk_bees=3)
    np.testing.assert_allclose(whole.loss, chunked.loss, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(whole.ypred, chunked.ypred, rtol=1e-12, atol=1e-12)


def test_compiled_step_matches_eager():
    """train.compile=on runs the same epoch (optimizer step, fused loss and gradient, divergence
    mask) through torch.compile (Inductor), here for two activations in one batch."""
    batch = engine_batch(2, ["tanh", "relu"], "adam", "float64", widths=[3, 20], epochs=20)
    eager = engine.train(batch)
    batch.compile = True
    fast = engine.train(batch)
    np.testing.assert_allclose(fast.loss, eager.loss, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fast.ypred, eager.ypred, rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    """The same batch on a GPU: float64 results equal the CPU's to rounding."""
    batch = engine_batch(2, "relu", "adam", "float64", widths=[3, 20], epochs=30)
    cpu = engine.train(batch)
    batch.device = "cuda"
    gpu = engine.train(batch)
    np.testing.assert_allclose(gpu.loss, cpu.loss, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(gpu.ypred, cpu.ypred, rtol=1e-9, atol=1e-9)


def test_freed_memory_is_kept_on_glibc():
    """engine.train asks glibc (where it runs on glibc) to keep freed buffers: the values it
    sets must be ones glibc accepts, or the call silently does nothing."""
    on_glibc = platform.libc_ver()[0] == "glibc"
    assert engine.keep_freed_memory() is on_glibc
