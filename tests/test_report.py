"""`swarm report`: the page's numbers come from the run dir, and a real browser (headless system
Chromium, offline) draws exactly them: the slider's epoch, the hovered bee, the sorted table, the
activation explorer. One browser and one tiny run for the whole module."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from browser import Browser
from conftest import compose_config

from swarmcli import cli, report, results, runner
from swarmcli.report import data as rdata
from swarmcli.report import numbers as rnum

TINY = ["train.epochs=8", "train.bees=3", "progress=false", "render.what=[none]",
        "+sweep.grid.model.width=[1,4]", "+sweep.grid.model.activation=[relu,tanh]",
        "train.record=[ypred,weights,biases]", "target.split.kind=random", "train.patience=2"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("report") / "run"
    runner.run(compose_config(TINY), d, out=io.StringIO())
    (d / "figures").mkdir()  # a figure already rendered: linked from the folder beside the page
    (d / "figures" / "hive_epoch0008.png").write_bytes(_png())
    report.write_run_page(d)
    return d


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def page(browser, run_dir):
    opened = browser.open(run_dir / "report.html")
    opened.wait("window.report && window.report.ready && window.explorer.two")
    return opened


def _png() -> bytes:
    import matplotlib.image

    buf = io.BytesIO()
    matplotlib.image.imsave(buf, np.tile(np.linspace(0, 1, 16), (8, 1)), format="png")
    return buf.getvalue()


def js(opened, expr: str, arg=None):
    return opened.page.evaluate(expr, arg)


def test_page_loads_offline_without_errors_or_foreign_requests(page, run_dir):
    assert page.errors == []
    assert page.foreign_requests(run_dir) == []  # only the page and its figures/ beside it
    assert (run_dir / "figures" / "hive_epoch0008.png").as_uri() in page.requests
    html = (run_dir / "report.html").read_text()
    for bad in ('src="http', "src='http", 'href="http', "url(http", "@import"):
        assert bad not in html


def test_slider_draws_that_epochs_saved_predictions(page, run_dir):
    run = results.load(run_dir)
    d = js(page, "JSON.parse(document.getElementById('data').textContent)")
    eval_x = run.eval_x
    pts = [int(np.abs(eval_x - x).argmin()) for x in d["x"]]
    assert np.allclose(eval_x[pts], d["x"], rtol=1e-5, atol=1e-6)
    assert len(d["frames"]) == len(run.frames) == 9  # a tiny run: under budget, every frame
    for f in (0, 4, len(d["frames"]) - 1):
        js(page, "f => { const s = document.getElementById('epoch'); s.value = f; "
                 "s.dispatchEvent(new Event('input')); }", f)
        assert js(page, "document.getElementById('epoch-label').textContent") == \
            f"epoch {d['frames'][f]} of 8"
        frame = int(np.flatnonzero(run.frames == d["frames"][f])[0])
        for c in run.cells:
            drawn = js(page, "i => window.report.drawn.hive[i]", c.index)
            assert drawn["epoch"] == d["frames"][f]
            got = np.array(drawn["bees"], dtype=float)
            want = np.asarray(c.ypred)[:, frame][:, pts]
            tol = (np.nanmax(c.ypred) - np.nanmin(c.ypred)) / 65534 + 1e-9
            np.testing.assert_allclose(got, want, rtol=0, atol=tol)
            # the kinks panel at that epoch: first-layer -b/w of every bee, binned on the domain
            k = -np.asarray(c.biases(0))[:, frame] / np.asarray(c.weights(0))[:, frame, 0]
            edges = np.linspace(run.x.min(), run.x.max(), rnum.KINK_BINS + 1)
            assert js(page, "i => window.report.drawn.kinks[i]", c.index) == \
                np.histogram(k[np.isfinite(k)], edges)[0].tolist()
    drawn = js(page, "window.report.plots.hive0._plot.drawn.map(d => [d.id, d.ys.length])")
    held = int(np.load(run_dir / "val_mask.npy").sum())
    assert ["target", len(d["target_x"])] in drawn and ["held-out", held] in drawn
    assert ["train", len(run.x) - held] in drawn and 0 < held < len(run.x)
    js(page, "() => window.report.setFrame(0)")
    f0 = js(page, "window.report.drawn.hive[0].bees")
    page.page.click("#play")  # plays from epoch 0 on; a second click pauses
    page.wait("window.report.frame >= 1")
    page.page.click("#play")
    assert js(page, "window.report.drawn.hive[0].bees") != f0
    assert js(page, "+document.getElementById('epoch').value") == js(page, "window.report.frame")


def test_hovering_a_bee_highlights_it_in_the_loss_plot(page):
    js(page, "() => window.report.setFrame(8)")
    cell, bee = 3, 1
    # a point where this bee's curve is farthest from the others', in page pixels
    where = js(page, """([cell, bee]) => {
        const cv = window.report.plots['hive' + cell], p = cv._plot;
        cv.scrollIntoView({block: 'center'});
        const r = cv.getBoundingClientRect();
        const ys = window.report.drawn.hive[cell].bees;
        const D = JSON.parse(document.getElementById('data').textContent);
        let best = 0, gap = -1;
        for (let k = 3; k < D.x.length - 3; k++) {
          const g = Math.min(...ys.map((y, b) =>
            b === bee ? Infinity : Math.abs(p.Y(y[k]) - p.Y(ys[bee][k]))));
          if (g > gap) { gap = g; best = k; }
        }
        return {x: r.left + p.X(D.x[best]), y: r.top + p.Y(ys[bee][best]), gap};
    }""", [cell, bee])
    assert where["gap"] > 3, where  # the bee is visibly apart from the others somewhere
    page.page.mouse.move(where["x"], where["y"])
    assert js(page, "window.report.hover") == {"cell": cell, "bee": bee}
    assert f"bee{bee}" in js(page, "i => window.report.drawn.loss[i]", cell)
    assert f"bee{bee}" not in js(page, "window.report.drawn.loss[0]")
    # training and held-out bands in every loss panel (the run holds out a random 20%)
    assert {"train-iqr", "train-median", "val-iqr", "val-median"} <= set(
        js(page, "window.report.drawn.loss[0]"))
    page.page.mouse.move(1, 1)


def test_summary_table_sorts_by_a_clicked_column(page):
    col = js(page, "Array.from(document.querySelectorAll('#summary th')).findIndex("
                   "th => th.textContent === 'median final loss')")
    read = ("c => Array.from(document.querySelectorAll('#summary tbody tr'))"
            ".map(r => parseFloat(r.cells[c].dataset.v))")
    heads = js(page, "Array.from(document.querySelectorAll('#summary th')).map(t => t.textContent)")
    assert heads == ["model.width", "model.activation", "median final loss", "95% CI", "IQR",
                     "diverged", "stopped", "vs best"]
    header = page.page.locator("#summary th", has_text="median final loss")
    header.click()
    up = js(page, read, col)
    assert up == sorted(up) and len(up) == 4
    header.click()
    assert js(page, read, col) == sorted(up, reverse=True)


def _set(page, sel: str, value) -> None:
    js(page, "([s, v]) => { const e = document.querySelector(s); e.value = v; "
             "e.dispatchEvent(new Event(e.tagName === 'SELECT' ? 'change' : 'input')); }",
       [sel, value])


def test_activation_explorer_draws_the_unit_and_the_two_unit_net(page):
    x = np.array(js(page, "window.explorer.x"))
    _set(page, "#ex1-w", 2)
    _set(page, "#ex1-b", -1)
    _set(page, "#ex1-act", "tanh")
    np.testing.assert_allclose(js(page, "window.explorer.one.ys"), np.tanh(2 * x - 1), atol=1e-12)
    p = {"v1": 1.5, "a1": -0.5, "v2": -2, "a2": 1, "w1": 0.8, "w2": -1.2, "b": 0.3}
    for k, v in p.items():
        _set(page, f"#ex2-{k}", v)
    _set(page, "#ex2-act", "relu")
    relu = lambda s: np.maximum(s, 0)  # noqa: E731
    want = p["w1"] * relu(p["v1"] * x + p["a1"]) + p["w2"] * relu(p["v2"] * x + p["a2"]) + p["b"]
    two = js(page, "window.explorer.two")
    np.testing.assert_allclose(two["ys"], want, atol=1e-12)
    assert two["mse"] == pytest.approx(np.mean((want + x ** 2) ** 2))  # seed 004's -x² target
    assert js(page, "document.querySelectorAll('[id]').length") == \
        len(set(js(page, "Array.from(document.querySelectorAll('[id]')).map(e => e.id)")))
    _set(page, "#ex2-act", "sigmoid")
    assert js(page, "window.explorer.two.ys")[50] == pytest.approx(  # x = 0
        0.8 / (1 + np.exp(0.5)) - 1.2 / (1 + np.exp(-1)) + 0.3)


def test_drawer_decodes_what_python_packed_and_picks_round_ticks(page):
    a = np.random.default_rng(0).normal(size=(3, 40)) * 7
    a[1, 5] = np.nan
    packed = rnum.pack16(a)
    got = np.array(js(page, "p => Array.from(Draw.unpack16(p), v => Number.isNaN(v) ? null : v)",
                      packed), dtype=float).reshape(a.shape)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(a))
    np.testing.assert_allclose(got, rnum.unpack16(packed), rtol=0, atol=1e-12)
    np.testing.assert_allclose(js(page, "Draw.niceTicks(0, 1, 5)"), [0, .2, .4, .6, .8, 1])
    np.testing.assert_allclose(js(page, "Draw.niceTicks(-5, 5, 5)"), [-4, -2, 0, 2, 4])
    np.testing.assert_allclose(js(page, "Draw.niceTicks(-5, 5, 4)"), [-5, 0, 5])
    assert js(page, "Draw.logTicks(0.005, 5, 10)") == [0.01, 0.1, 1]
    np.testing.assert_allclose(js(page, "Draw.logTicks(0.3, 0.9, 10)"), [0.3, 0.4, 0.5, 0.6,
                                                                         0.7, 0.8, 0.9])


def test_screenshot_is_not_blank(page, tmp_path):
    from PIL import Image

    shot = tmp_path / "hive.png"
    page.page.locator("#hive").screenshot(path=str(shot))
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    ink = (np.abs(img - 255).sum(axis=2) > 60).mean()
    colours = len({tuple(p) for p in img.reshape(-1, 3)[::7]})
    assert img.shape[1] > 600 and 0.01 < ink < 0.6 and colours > 20, (img.shape, ink, colours)


OTHER_TASKS = {
    "landscape": ["task=landscape", "+sweep.grid.optim.name=[sgd,adam]", "optim.lr=0.01"],
    "classification": ["task=classification", "dataset.samples=40", "dataset.grid=12",
                       "optim.name=adam", "optim.lr=0.02",
                       "+sweep.grid.model.activation=[relu,tanh]"]}


@pytest.fixture(scope="module", params=list(OTHER_TASKS))
def task_page(request, browser, tmp_path_factory):
    """(task, run dir, opened page) of a tiny landscape or classification run."""
    d = tmp_path_factory.mktemp(request.param) / "run"
    runner.run(compose_config(["train.epochs=10", "train.bees=3", "progress=false",
                               "render.what=[none]", *OTHER_TASKS[request.param]]), d,
               out=io.StringIO())
    (d / "figures").mkdir()
    (d / "figures" / "paths.png").write_bytes(_png())
    report.write_run_page(d)
    opened = browser.open(d / "report.html")
    opened.wait("window.report && window.report.ready")
    return request.param, d, opened


def test_other_tasks_get_loss_bands_table_and_their_figures_but_no_hive(task_page):
    task, d, opened = task_page
    assert opened.errors == [] and opened.foreign_requests(d) == []
    assert js(opened, "document.getElementById('hive')") is None
    assert js(opened, "document.getElementById('kinks')") is None
    assert js(opened, "document.querySelectorAll('#loss canvas').length") == 2
    assert js(opened, "document.querySelectorAll('#summary tbody tr').length") == 2
    assert js(opened, "[...document.images].some(i => i.src.endsWith('figures/paths.png'))")
    assert json.loads(js(opened, "document.getElementById('data').textContent"))["task"] == task
    # the table's medians and IQR are of what classify compared the cells on: test error
    header = js(opened, "document.querySelector('#summary thead').textContent")
    assert ("median test error" if task == "classification" else "median final loss") in header
    if task == "classification":
        rows, _, _ = results.read_summary(d)
        err = sorted(1 - r["final_test_accuracy"] for r in rows if r["cell"] == 0)
        shown = rdata.run_payload(d)["table"][0]
        assert shown["median"] == pytest.approx(np.median(err))
        assert shown["iqr"] == pytest.approx(list(np.quantile(err, [0.25, 0.75])))


def _slide(opened, f: int) -> None:
    js(opened, "f => { const s = document.getElementById('epoch'); s.value = f; "
               "s.dispatchEvent(new Event('input')); }", f)


def test_other_tasks_slider_draws_that_frames_saved_positions_or_probabilities(task_page):
    from swarmcli.report import tasks

    task, d, opened = task_page
    run = results.load(d)
    frames = js(opened, "JSON.parse(document.getElementById('data').textContent).frames")
    assert len(frames) == len(run.frames)  # a tiny run: every recorded frame
    n = len(run.y) if task == "classification" else 0
    for f in (0, 3, len(frames) - 1):
        _slide(opened, f)
        word = "step" if task == "landscape" else "epoch"
        assert js(opened, "document.getElementById('epoch-label').textContent") == \
            f"{word} {frames[f]} of 10"
        frame = int(np.flatnonzero(run.frames == frames[f])[0])
        for c in run.cells:
            if task == "landscape":
                drawn = js(opened, "i => window.report.drawn.paths[i]", c.index)
                x, y = c.array("surface_x"), c.array("surface_y")
                pos = tasks.visible(np.asarray(c.array("position")),
                                    (x[0], x[-1], y[0], y[-1]))
                want = pos[:, frame]
                got = np.array([p if p is not None else [np.nan] * 2 for p in drawn["pos"]],
                               dtype=float)
                tol = (np.nanmax(pos) - np.nanmin(pos)) / 65534 + 1e-12
            else:
                drawn = js(opened, "i => window.report.drawn.bounds[i]", c.index)
                side = int(run.manifest["grid"])
                z = np.asarray(c.ypred[:, frame, n:], dtype=float).reshape(-1, side, side)
                want = (1 / (1 + np.exp(-z))).mean(0).ravel()  # no bee diverges here
                got = np.array(drawn["mean"], dtype=float)
                tol = 1 / 65534 + 1e-12
                # each bee's boundary: its logit grid's 0-contour, segment for segment
                assert drawn["segments"] == [len(tasks.contour_segments(z[b])[0])
                                             for b in range(len(z))]
                assert sum(drawn["segments"]) > 0
            assert drawn["frame"] == f and drawn["epoch"] == frames[f]
            np.testing.assert_allclose(got, want, rtol=0, atol=tol)
    js(opened, "() => window.report.setFrame(0)")
    opened.page.click("#play")  # the hive's scrubber: plays from frame 0, a second click pauses
    opened.wait("window.report.frame >= 1")
    opened.page.click("#play")
    assert js(opened, "+document.getElementById('epoch').value") == \
        js(opened, "window.report.frame")
    assert opened.errors == []


def test_other_tasks_view_is_not_blank(task_page, tmp_path):
    from PIL import Image

    task, _, opened = task_page
    js(opened, "() => window.report.setFrame(window.report.frame)")
    shot = tmp_path / "view.png"
    opened.page.locator("#paths" if task == "landscape" else "#bounds").screenshot(path=str(shot))
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    ink = (np.abs(img - 255).sum(axis=2) > 60).mean()
    colours = len({tuple(p) for p in img.reshape(-1, 3)[::7]})
    assert img.shape[1] > 400 and 0.05 < ink < 0.95 and colours > 50, (img.shape, ink, colours)


def test_marching_squares_finds_contourpys_points():
    import contourpy

    from swarmcli.report import tasks

    g = np.arange(30.0)
    gx, gy = np.meshgrid(np.linspace(-2, 2, 30), np.linspace(-2, 2, 30))
    zs = np.stack([np.sin(3 * gx + k) + np.cos(2 * gy) * (k - 1) - 0.2 for k in range(3)])
    zs[1, 4, 5] = np.nan  # a diverged bee: no boundary
    seg, counts = tasks.contour_segments(zs)
    assert counts[1] == 0 and len(seg) == counts.sum()
    at = np.concatenate([[0], np.cumsum(counts)])
    for k in (0, 2):
        mine = seg[at[k]:at[k + 1]]
        pts = {tuple(np.round(p, 6)) for p in mine.reshape(-1, 2)}
        lines = contourpy.contour_generator(g, g, zs[k]).lines(0.0)
        assert pts == {tuple(np.round(p, 6)) for line in lines for p in line}
        length = np.hypot(*(mine[:, 2:] - mine[:, :2]).T).sum()
        assert length == pytest.approx(sum(np.hypot(*np.diff(line, axis=0).T).sum()
                                           for line in lines))


def test_budget_downsamples_and_roundtrips():
    b, f, p = rnum.plan_sizes(9, 10, 151, 261)  # the default width_activation run
    assert (b, p) == (10, rnum.MAX_POINTS) and 9 * b * f * p <= rnum.MAX_VALUES and f >= 60
    assert rnum.plan_sizes(1, 500, 401, 301)[0] == rnum.MAX_BEES
    assert rnum.plan_sizes(1, 3, 9, 20) == (3, 9, 20)  # small runs: everything
    b, f, _ = rnum.plan_sizes(9, 500, 401, 301)  # frames before the 11th-50th bee
    assert 10 <= b < 50 and f >= rnum.MIN_FRAMES
    for cells in (1, 9, 100, 1000):  # a big sweep: fewer frames, then fewer bees, same budget
        b, f, p = rnum.plan_sizes(cells, 500, 401, 301)
        assert cells * b * f * p <= rnum.MAX_VALUES and f >= 2 and b >= 1, (cells, b, f, p)
    a = np.array([[0.5, -2.0, np.nan], [3.0, np.inf, 1.0]])
    back = rnum.unpack16(rnum.pack16(a))
    assert np.isnan(back[0, 2]) and np.isnan(back[1, 1])
    fin = np.isfinite(a)
    np.testing.assert_allclose(back[fin], a[fin], atol=5 / 65534)
    assert list(rnum.spread(10, 4)) == [0, 3, 6, 9]


def test_swarm_run_writes_the_page_by_default_and_report_rewrites_it(tmp_path, capsys):
    d = tmp_path / "r"
    cli.main(["run", "train.epochs=2", "train.bees=2", "progress=false", "render.what=[none]",
              f"hydra.run.dir={d}"])
    assert f"report: {d / 'report.html'}" in capsys.readouterr().out
    assert (d / "report.html").stat().st_size > 10_000
    (d / "report.html").unlink()
    cli.main(["report", str(d)])
    assert capsys.readouterr().out.strip() == f"report: {d / 'report.html'}"
    assert (d / "report.html").stat().st_size > 10_000


def test_report_of_a_non_run_is_one_line_and_exit_2(tmp_path, capsys):
    for argv in (["report", str(tmp_path / "nope")], ["report"], ["report", str(tmp_path)]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1 and err[0].startswith("swarm: error:"), err


def test_tab_offers_run_and_multirun_dirs_to_report(run_dir, multirun_like, monkeypatch):
    from swarmcli import completion

    monkeypatch.chdir(run_dir.parent.parent)
    got = completion.candidates(["swarm", "report", ""], cli.COMMANDS)
    assert f"{run_dir.parent.name}/{run_dir.name}" in got
    assert f"{multirun_like.parent.name}/{multirun_like.name}" in got


@pytest.fixture
def multirun_like(run_dir):
    """A folder a multirun would leave (its multirun.yaml) beside the run."""
    d = run_dir.parent / "mr"
    d.mkdir(exist_ok=True)
    (d / "multirun.yaml").write_text("hydra: {}\n")
    return d


def test_report_loads_no_torch_nor_matplotlib():
    code = ("import sys, swarmcli.report, swarmcli.report.data, swarmcli.report.sweep; "
            "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.replace("'", '"')) == []


@pytest.fixture(scope="module")
def multirun(tmp_path_factory):
    """Two jobs in-process, each a 2 x 2 grid of lr x activation: momentum 0.5 completes,
    momentum -1 fails validation inside its job. render.report=false: no job writes a page."""
    d = tmp_path_factory.mktemp("sweep") / "mr"
    with pytest.raises(SystemExit):  # the failed job is reported at the end, exit 2
        cli.main(["run", "-m", f"hydra.sweep.dir={d}", "train.epochs=3", "train.bees=2",
                  "progress=false", "render.what=[none]", "render.report=false",
                  "+sweep.grid.optim.lr=[0.01,0.03]", "+sweep.grid.model.activation=[relu,tanh]",
                  "optim.momentum=0.5,-1"])
    assert (d / "0" / "swarm.json").is_file() and not (d / "0" / "report.html").exists()
    report.write_report(d)
    return d


@pytest.mark.slow  # a multirun (Hydra's basic launcher, in-process): ~6 s on 2 busy cores
def test_sweep_page_lists_jobs_links_pages_filters_and_draws_heat_maps(browser, multirun):
    opened = browser.open(multirun / "report.html")
    pg = opened.page
    opened.wait("window.sweep && window.sweep.ready")
    assert opened.errors == [] and opened.foreign_requests(multirun) == []
    links = pg.eval_on_selector_all("#jobs a", "as => as.map(a => a.getAttribute('href'))")
    assert links == ["0/report.html"] and (multirun / links[0]).is_file()
    failed = pg.inner_text("#failed")
    assert "job 1" in failed and "optim.momentum=-1" in failed and "swarm run -m" in failed
    assert "--rerun-failed" in pg.inner_text("body")
    assert js(opened, "window.sweep.shown") == 4  # job 0's four cells
    pg.fill("#filter", "tanh")
    assert js(opened, "window.sweep.shown") == 2
    pg.fill("#filter", "")
    heat = js(opened, "window.sweep.heat")
    assert (heat["x"], heat["y"]) == ("optim.lr", "model.activation")
    from swarmcli.collect.plots import heatmap_table
    from swarmcli.collect.table import collect

    xs, ys, med = heatmap_table(collect(multirun), "optim.lr", "model.activation")
    assert heat["xs"] == xs and heat["ys"] == ys
    np.testing.assert_allclose(np.array(heat["median"], dtype=float), med, rtol=1e-3)
    pg.select_option("#heat-x", "model.activation")
    pg.select_option("#heat-y", "optim.lr")
    flipped = js(opened, "window.sweep.heat")
    np.testing.assert_allclose(np.array(flipped["median"], dtype=float), med.T, rtol=1e-3)
    pg.locator("#cells th", has_text="median final loss").click()
    col = js(opened, "Array.from(document.querySelectorAll('#cells th')).findIndex("
                     "th => th.textContent === 'median final loss')")
    got = js(opened, "c => Array.from(document.querySelectorAll('#cells tbody tr'))"
                     ".map(r => parseFloat(r.cells[c].dataset.v))", col)
    assert got == sorted(got)
