"""Every figure of every shipped sweep reads cleanly: no text overlaps another, covers a panel it
does not belong to, or leaves the canvas; and every figure uses the shared style."""

from __future__ import annotations

import io

import pytest
from conftest import compose_config

from swarmcli import results, runner
from swarmcli.render import (
    ANIMATIONS,
    DEFAULTS,
    NEEDS,
    STILLS,
    animation_scenes,
    figures,
    layout,
    style,
)
from swarmcli.render.data import wrap_grid

SWEEPS = ["width_activation", "lr_momentum", "weight_distribution", "tiny_nets", "optimizer_zoo",
          "lr_schedules", "init_schemes", "regularization", "depth_width", "early_stopping"]
TINY = ["train.epochs=3", "train.bees=2", "train.stride=1", "progress=false",
        "render.what=[none]"]


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    """One tiny run per sweep, trained on first use and shared by the tests of this module."""
    runs = {}

    def get(name: str):
        if name not in runs:
            cfg = compose_config([f"+sweep={name}", *TINY])
            run_dir = tmp_path_factory.mktemp(name)
            runner.run(cfg, run_dir, out=io.StringIO())
            runs[name] = (results.load(run_dir), list(cfg.render.what))
        return runs[name]

    return get


def drawable(run, shipped: list[str]) -> list[str]:
    """Every still this run has the recordings for, the hive animation, and the animations the
    sweep ships (swarm_loss on a 2 x 8 grid would be 32 panels: no sweep asks for that)."""
    has_weights = run.cells[0].has("weights_0")
    return [w for w in [*STILLS, *ANIMATIONS]
            if (has_weights or "weights" not in NEEDS.get(w, []))  # kinks, units
            and (w != "activations" or "activations" in shipped)  # same for every sweep
            and (w in STILLS or w == "hive_animation" or w in shipped)]


@pytest.mark.parametrize("sweep", SWEEPS)
def test_no_text_overlaps_or_leaves_the_canvas(sweep_run, sweep):
    run, shipped = sweep_run(sweep)
    cfg = {**DEFAULTS, "epochs": [-1]}
    bad = []
    for what in drawable(run, shipped):
        if what in STILLS:
            for name, fig in figures(run, what, cfg):
                bad += [f"{name}: {p}" for p in layout.problems(fig)]
        else:
            for name, sc in animation_scenes(run, what, cfg):
                sc.update(len(run.frames) - 1)  # the counter at its widest
                bad += [f"{name}: {p}" for p in layout.problems(sc.fig)]
    assert bad == []


def test_tick_labels_are_at_least_8_points(sweep_run):
    run, _ = sweep_run("optimizer_zoo")
    for what in ("hive", "final_loss", "compare"):
        for _, fig in figures(run, what, {**DEFAULTS, "epochs": [-1]}):
            fig.canvas.draw()
            sizes = [t.get_fontsize() for desc, t, _ in layout.texts(fig)]
            assert min(sizes) >= style.MIN_FONT, what


def test_the_problems_checker_sees_overlaps_and_text_off_the_canvas():
    fig = style.new_figure(400, 300, 100)
    ax = fig.subplots()
    ax.set_title("a title long enough to run off both edges of a 400 pixel wide canvas " * 2)
    ax.text(0.5, 0.5, "one", transform=ax.transAxes)
    ax.text(0.5, 0.5, "two", transform=ax.transAxes)
    found = layout.problems(fig)
    assert any("leaves the canvas" in p and "title" in p for p in found)
    assert any("'one' overlaps text 'two'" in p for p in found)


def test_long_labels_wrap_at_setting_boundaries_then_shrink():
    text = "name=sgd, momentum=0.0, nesterov=False, lr=0.05"
    wrapped, size = layout.fit(text, 200, 9.5, 100)
    assert wrapped.split("\n")[0].endswith(",") and "\n" in wrapped
    assert layout.text_width(wrapped, size, 100) <= 200
    short, size = layout.fit(text, 60, 9.5, 100, max_lines=2)
    assert size == style.MIN_FONT and short.endswith("…") and short.count("\n") <= 1
    assert layout.text_width(short, size, 100) <= 60
    one_word, _ = layout.fit("init=xavier_uniform", 75, 9.5, 100, max_lines=3)
    assert one_word == "init=\nxavier_\nuniform"  # no spaces: broken after '=' and '_'


@pytest.mark.parametrize("n, grid", [(1, (1, 1)), (3, (2, 2)), (4, (2, 2)), (6, (3, 2)),
                                     (9, (3, 3)), (16, (4, 4))])
def test_one_axis_wraps_into_a_near_square_grid(n, grid):
    assert wrap_grid(n, 4 / 3) == grid


def test_a_one_axis_sweep_of_4_is_2_by_2_not_4_strips(sweep_run):
    run, _ = sweep_run("regularization")
    _, fig = next(figures(run, "hive", {**DEFAULTS, "epochs": [-1]}))
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == 4
    assert len({round(ax.get_position().x0, 3) for ax in panels}) == 2  # two columns


def test_collect_figures_share_the_style_and_read_cleanly(tmp_path, monkeypatch):
    """`swarm collect`'s box plots and heat map: the shared look, no overlapping text."""
    import numpy as np
    from matplotlib.figure import Figure

    from swarmcli import collect
    from swarmcli.collect import plots

    rng = np.random.default_rng(0)
    rows = [{"job": j, "optim.lr": lr, "model.width": w, "bee": b,
             "final_loss": float(rng.lognormal(-3, 1)) if b else float("nan")}
            for j, (lr, w) in enumerate([(lr, w) for lr in (0.001, 0.01, 0.1)
                                         for w in (3, 10, 30, 100)]) for b in range(8)]
    result = collect.CollectResult(tmp_path, [], rows, list(rows[0]),
                                   ["optim.lr", "model.width"], True)
    drawn = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: drawn.append(fig))
    plots.draw_all(result, tmp_path)
    assert len(drawn) == 2  # final_loss_by_key and one heat map
    for fig in drawn:
        assert layout.problems(fig) == []
        fig.draw_without_rendering()
        ticks = [t for d, t, _ in layout.texts(fig) if d.startswith("tick label")]
        assert ticks and {t.get_fontsize() for t in ticks} == {style.RC["xtick.labelsize"]}
        assert not fig.axes[0].spines["top"].get_visible()  # the style's, not matplotlib's
