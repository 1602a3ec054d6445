"""Held-out validation points: which x each split kind holds out, and its error messages."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from swarmcli import splits
from swarmcli.config import SwarmError
from swarmcli.splits import check, held_out, split

X11 = np.linspace(0.0, 10.0, 11)  # 0, 1, ..., 10
X61 = np.linspace(-5.0, 5.0, 61)  # the default target.domain and target.points


def assert_partition(train, val, n):
    assert train.dtype == bool and val.dtype == bool
    assert train.shape == val.shape == (n,)
    assert not (train & val).any()  # disjoint
    assert (train | val).all()  # together, every point


def test_none_trains_on_everything():
    train, val = split(X61, "none")
    assert_partition(train, val, 61)
    assert train.all() and not val.any()


def test_random_size_and_reproducibility():
    train, val = split(X61, "random", fraction=0.2, seed=3)
    assert_partition(train, val, 61)
    assert val.sum() == 12 and train.sum() == 49  # round(0.2 * 61)
    again = split(X61, "random", fraction=0.2, seed=3)[1]
    np.testing.assert_array_equal(val, again)
    other = split(X61, "random", fraction=0.2, seed=4)[1]
    assert other.sum() == 12 and not np.array_equal(val, other)
    expected = np.zeros(61, bool)
    expected[np.random.default_rng(3).choice(61, size=12, replace=False)] = True
    np.testing.assert_array_equal(val, expected)


def test_random_keeps_one_val_and_two_train_points():
    assert split(X11, "random", fraction=0.01, seed=0)[1].sum() == 1
    train, val = split(X11, "random", fraction=0.99, seed=0)
    assert train.sum() == 2 and val.sum() == 9
    train, val = split(X11[:3], "random", fraction=0.5, seed=0)
    assert train.sum() == 2 and val.sum() == 1


def test_gap_default_is_the_middle_fraction():
    train, val = split(X61, "gap", fraction=0.2)  # [-1, 1] of [-5, 5]
    assert_partition(train, val, 61)
    np.testing.assert_array_equal(np.flatnonzero(val), np.arange(24, 37))
    assert X61[val].min() == pytest.approx(-1.0) and X61[val].max() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "gap, held",
    [
        ([2.5, 4.5], [3, 4]),
        ([2.0, 3.0], [2, 3]),  # both ends included
        ([0.0, 1.5], [0, 1]),  # a gap may touch the domain's edge
        (OmegaConf.create([6, 9.2]), [6, 7, 8, 9]),  # as it comes from a config
    ],
)
def test_gap_holds_out_the_interval(gap, held):
    train, val = split(X11, "gap", fraction=0.9, seed=0, gap=gap)  # fraction unused
    assert_partition(train, val, 11)
    assert X11[val].tolist() == held


def test_extrapolate_holds_out_the_right_end():
    train, val = split(X11, "extrapolate", fraction=0.3)  # x > 7
    assert_partition(train, val, 11)
    assert X11[val].tolist() == [8.0, 9.0, 10.0]
    assert X11[train].max() == 7.0
    _, val = split(X61, "extrapolate", fraction=0.2)  # x > 3
    assert val.sum() == 12 and X61[val].min() == pytest.approx(3 + 1 / 6)


def test_held_out_intervals():
    assert held_out("gap", 0.2, None, (-5, 5)) == pytest.approx((-1.0, 1.0))
    assert held_out("gap", 0.2, [2, 3], (-5, 5)) == (2.0, 3.0)
    assert held_out("extrapolate", 0.3, None, (0, 10)) == pytest.approx((7.0, 10.0))
    assert held_out("random", 0.3, None, (0, 10)) is None
    assert held_out("none") is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"kind": "middle"},
            "target.split.kind='middle' is not one of: none, random, gap, extrapolate",
        ),
        ({"kind": "random", "fraction": 0}, "target.split.fraction=0 must be a number in (0, 1)"),
        ({"kind": "random", "fraction": 1.0}, "target.split.fraction=1.0 must be a number in"),
        ({"kind": "extrapolate", "fraction": -0.1}, "target.split.fraction=-0.1 must be"),
        ({"kind": "gap", "fraction": True}, "target.split.fraction=True must be"),
        ({"kind": "random", "fraction": "0.2"}, "target.split.fraction='0.2' must be"),
        ({"kind": "random", "seed": -1}, "target.split.seed=-1 must be an integer >= 0"),
        ({"kind": "random", "seed": 1.5}, "target.split.seed=1.5 must be an integer >= 0"),
        ({"kind": "gap", "gap": [-1, 12]}, "target.split.gap=[-1.0, 12.0] must lie inside"),
        ({"kind": "gap", "gap": [4, 2]}, "target.split.gap=[4, 2] must be [low, high]"),
        ({"kind": "gap", "gap": [1, 2, 3]}, "target.split.gap=[1, 2, 3] must be [low, high]"),
        ({"kind": "gap", "gap": [1, float("nan")]}, "must be [low, high] in x units"),
        ({"kind": "gap", "gap": 3}, "target.split.gap=3 must be [low, high]"),
        ({"kind": "gap", "gap": [2.2, 2.8]}, "target.split.gap=[2.2, 2.8] holds out no point"),
        ({"kind": "gap", "gap": [0, 10]}, "holds out every point of x, leaving none to train"),
    ],
)
def test_bad_settings_raise_one_line(kwargs, message):
    with pytest.raises(SwarmError) as err:
        split(X11, **kwargs)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_x():
    with pytest.raises(SwarmError, match="needs at least 3 points, not 2"):
        split(X11[:2], "random", fraction=0.5)
    with pytest.raises(SwarmError, match="x must be a non-empty, sorted 1-D array"):
        split(X11[::-1], "gap")
    with pytest.raises(SwarmError, match=r"fraction=0\.05 holds out no point .* 2 apart"):
        split(X11[::2], "gap", fraction=0.05)  # x = 0, 2, ..., 10; the gap is [4.75, 5.25]
    with pytest.raises(SwarmError, match="x must be a non-empty, sorted 1-D array"):
        split(np.array([]), "none")


def test_check_without_data():
    check("gap", 0.2, 0, [-1, 1], domain=[-5, 5])
    check("none", fraction=7)  # fraction is unused by `none`
    check("gap", fraction=7, gap=[1, 2])  # ... and by a gap given in x units
    with pytest.raises(SwarmError, match=r"^target\.split\.gap=\[-6\.0, 1\.0\] must lie inside"):
        check("gap", gap=[-6, 1], domain=[-5, 5])
    with pytest.raises(SwarmError, match=r"^cell\.split\.kind='x' is not one of"):
        check("x", key="cell.split")
    assert splits.KINDS == ("none", "random", "gap", "extrapolate")
