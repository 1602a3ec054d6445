"""Predictions are recorded on a dense grid over the domain plus the training points, so curves
show what a bee does between and beyond its points; recording never changes training."""

from __future__ import annotations

import numpy as np
import pytest

from swarmcli import load


@pytest.mark.parametrize("extra", [[], ["model.dropout=0.2", "train.batch_size=8"]])
def test_eval_grid_holds_the_training_points_and_changes_no_loss(tiny_run, extra):
    over = ["+sweep=width_activation", "sweep.grid.model.width=[3]", "target.points=21", *extra]
    dense = load(tiny_run(*over, "target.eval_points=50", name="dense"))
    plain = load(tiny_run(*over, "target.eval_points=0", name="plain"))
    ex = dense.eval_x
    assert len(ex) == len(np.union1d(np.linspace(-5, 5, 50), plain.x)) and np.all(np.diff(ex) > 0)
    at_train = np.isin(ex, plain.x)
    assert at_train.sum() == 21 and np.array_equal(plain.eval_x, plain.x)
    for a, b in zip(dense.cells, plain.cells):
        assert np.array_equal(a.loss, b.loss)  # recording more points trains nothing differently
        assert a.ypred.shape == (3, 7, len(ex)) and b.ypred.shape == (3, 7, 21)
        np.testing.assert_allclose(a.ypred[:, :, at_train], b.ypred, rtol=1e-5, atol=1e-6)
        # between training points the curve is the network's, not a straight line
        assert np.isfinite(a.ypred).all()
