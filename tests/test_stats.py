"""Statistics a reader can trust: bootstrap CIs of the median, Mann-Whitney U, Holm."""

from __future__ import annotations

import math

import numpy as np
import pytest

from swarmcli import stats


def test_median_ci_is_reproducible_and_brackets_the_median():
    a = np.random.default_rng(1).lognormal(size=30)
    m, lo, hi = stats.median_ci(a, seed=3)
    assert (m, lo, hi) == stats.median_ci(a, seed=3)
    assert m == np.median(a) and lo < m < hi
    assert stats.median_ci(a, seed=4) != (m, lo, hi)  # the seed matters


def test_median_ci_covers_the_true_median_about_95_percent_of_the_time():
    """Coverage over 300 samples of 40 from an exponential (true median log 2)."""
    rng = np.random.default_rng(0)
    hits = sum(lo <= math.log(2) <= hi for lo, hi in
               (stats.median_ci(rng.exponential(size=40), n_boot=500, seed=i)[1:]
                for i in range(300)))
    assert 0.90 <= hits / 300 <= 0.99


def test_a_diverged_bee_counts_as_infinite_loss():
    m, lo, hi = stats.median_ci([0.1, 0.2, np.nan, np.inf, np.inf])
    assert m == np.inf  # three of five failed: the typical bee failed
    assert stats.median_ci([0.1, 0.2, 0.3, np.nan, 0.4])[0] == 0.3


@pytest.mark.parametrize("n1,n2,ties", [(5, 6, False), (8, 8, False), (10, 12, False),
                                        (20, 20, True), (3, 30, True), (7, 4, True)])
def test_mann_whitney_matches_scipy(n1, n2, ties):
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(n1 * 100 + n2)
    for shift in (0.0, 0.5, 2.0):
        a, b = rng.normal(size=n1), rng.normal(shift, size=n2)
        if ties:
            a, b = np.round(a, 0), np.round(b, 0)
        want = scipy_stats.mannwhitneyu(a, b, alternative="two-sided").pvalue
        assert stats.mann_whitney_p(a, b) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_holm_matches_the_textbook_example():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    assert stats.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert np.isnan(stats.holm([0.2, np.nan])[1])


def test_compare_cells_marks_the_best_and_what_cannot_be_told_apart():
    rng = np.random.default_rng(5)
    best = rng.normal(1.0, 0.1, 20)
    same = rng.normal(1.02, 0.1, 20)
    worse = rng.normal(2.0, 0.1, 20)
    got = stats.compare_cells([worse, best, same])
    assert [g.verdict().split()[0] for g in got] == ["worse", "best", "tied"]
    assert got[0].p_vs_best < 0.001 and got[2].p_vs_best > 0.05
    assert got[1].ci_low < got[1].median < got[1].ci_high


def test_summary_csv_and_table_carry_each_cells_statistics(tiny_run):
    import csv
    import io

    from conftest import compose_config

    from swarmcli import load, runner

    run_dir = tiny_run("+sweep=width_activation", "sweep.grid.model.width=[1,10]")
    run = load(run_dir)
    rows = list(csv.DictReader(io.StringIO((run_dir / "summary.csv").read_text())))
    for cell in run.cells:
        mine = [r for r in rows if int(r["cell"]) == cell.index]
        want = stats.median_ci(cell.loss[:, -1], seed=10)
        assert float(mine[0]["cell_median"]) == pytest.approx(want[0])
        assert float(mine[0]["cell_median_ci_high"]) == pytest.approx(want[2])
    assert sum(r["p_vs_best"] == "nan" for r in rows) == 3  # the best cell's three bees
    out = io.StringIO()
    runner.run(compose_config(["train.epochs=3", "train.bees=3", "progress=false"]),
               run_dir.parent / "single", out=out)
    assert "median loss [95% CI]" in out.getvalue() and "best" in out.getvalue()


def test_the_interval_holds_the_central_level_share_of_bootstrap_medians():
    """Medians of 3 resampled values out of [0, 1, 2]: 0 and 2 each with chance 7/27 (0.26),
    1 otherwise. A 40% interval cuts 30% from each tail, so it excludes 0 and 2; a 60% one
    cuts 20% and keeps them."""
    assert stats.median_ci([0.0, 1.0, 2.0], level=0.4) == (1.0, 1.0, 1.0)
    assert stats.median_ci([0.0, 1.0, 2.0], level=0.6) == (1.0, 0.0, 2.0)


def test_a_p_value_equal_to_alpha_is_tied():
    """'worse' needs p < alpha: at p == alpha a cell still cannot be told apart from the best."""
    finals = [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.35, 0.45, 0.55, 0.65]]
    p = stats.compare_cells(finals)[1].p_vs_best
    assert 0 < p < 1
    at = stats.compare_cells(finals, alpha=p)
    assert at[1].p_vs_best == p and at[1].tied_with_best
    assert not stats.compare_cells(finals, alpha=p * 1.0001)[1].tied_with_best


def test_cells_without_bees_have_no_best_and_no_comparison():
    out = stats.compare_cells([[], []])
    assert all(math.isnan(c.median) and math.isnan(c.p_vs_best) for c in out)
    assert not any(c.tied_with_best for c in out)
    assert stats.compare_cells([]) == []


@pytest.mark.parametrize("n", [1, 2, 7, 10])
def test_row_medians_equal_numpys_bit_for_bit(n):
    rng = np.random.default_rng(n)
    rows = rng.lognormal(size=(500, n))
    rows[::7, 0] = np.inf  # diverged bees
    np.testing.assert_array_equal(stats._row_medians(rows), np.median(rows, axis=1))


def test_compare_cells_gives_each_cell_the_interval_median_ci_gives_it():
    """compare_cells draws the resampling indices once per cell size; each interval must still
    be median_ci's for that cell alone, bit for bit."""
    rng = np.random.default_rng(5)
    finals = [rng.random(10), rng.random(10) + 0.1, rng.random(7), np.r_[rng.random(9), np.inf]]
    for st, f in zip(stats.compare_cells(finals, seed=3), finals):
        assert (st.median, st.ci_low, st.ci_high) == stats.median_ci(f, seed=3)
