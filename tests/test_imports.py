"""The import graph of `swarmcli`: no cycles, and the commands that train nothing load no torch.

The graph is read from the source with `ast` (nothing is imported to build it), so a cycle is
named even where Python would tolerate it today. An edge is `import swarmcli.X` or
`from swarmcli.X import Y` (to swarmcli.X.Y when that is a module); imports under
`if TYPE_CHECKING:` are not edges, and a package is not an edge of its own submodules.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import swarmcli
from swarmcli import results

ROOT = Path(swarmcli.__file__).parent


def modules(root: Path = ROOT, package: str = "swarmcli") -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package is its __init__.py)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([package, *parts])] = path
    return found


def _type_checking(node: ast.AST) -> bool:
    t = node.test if isinstance(node, ast.If) else None
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports(path: Path, name: str, known: set[str]) -> list[tuple[str, bool]]:
    """(imported swarmcli module, imported at module level?) for each import in a file; an
    import inside a function body is not module-level (it runs only when the function does)."""
    is_package = path.name == "__init__.py"
    out = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for sub in child.orelse:
                    visit_one(sub, top)
                continue
            visit_one(child, top)

    def visit_one(node: ast.AST, top: bool) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                target = a.name
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target:
                    out.append((target, top))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join([*pkg, *([base] if base else [])])
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in known:
                    out.append((sub, top))
                elif base in known:
                    out.append((base, top))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            visit(node, False)
        else:
            visit(node, top)

    visit(ast.parse(path.read_text(), str(path)), True)
    return [(m, top) for m, top in out if m != name]


def graph(module_level_only: bool, root: Path = ROOT, package: str = "swarmcli"):
    mods = modules(root, package)
    edges = {}
    for name, path in mods.items():
        edges[name] = sorted({m for m, top in imports(path, name, set(mods))
                              if top or not module_level_only})
    return edges


def cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """One cycle (as a path back to its start) per strongly connected component (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, []):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(_path(v, set(comp), edges))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return found


def _path(start: str, comp: set[str], edges) -> list[str]:
    """A shortest cycle through `start` inside its component (breadth-first)."""
    prev, todo = {start: None}, [start]
    while todo:
        v = todo.pop(0)
        for w in edges[v]:
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [*reversed(path), start]
            if w in comp and w not in prev:
                prev[w] = v
                todo.append(w)
    return [start]


def named(found: list[list[str]]) -> str:
    return "; ".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize("module_level_only", [True, False], ids=["module-level", "all"])
def test_no_import_cycles(module_level_only):
    found = cycles(graph(module_level_only))
    assert not found, f"import cycle(s) in swarmcli: {named(found)}"


def test_the_graph_sees_real_edges_and_names_a_planted_cycle(tmp_path):
    edges = graph(module_level_only=False)
    assert len(edges) > 30 and "swarmcli.collect.command" in edges
    assert "swarmcli.errors" in edges["swarmcli.cli"]  # from swarmcli.errors import ...
    assert "swarmcli.collect.command" in edges["swarmcli.cli"]  # inside a function
    assert "swarmcli.collect.command" not in graph(True)["swarmcli.cli"]
    assert "swarmcli.results.schema" in edges["swarmcli.results"]
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from .. import a\nif TYPE_CHECKING:\n    import pkg.b\n")
    assert cycles(graph(True, pkg, "pkg")) == []
    assert named(cycles(graph(False, pkg, "pkg"))) == "pkg.a -> pkg.b -> pkg.sub.c -> pkg.a"


PROBE = """
import json, os, sys
{code}
with open(os.environ["PROBE_OUT"], "w") as f:
    json.dump(sorted(m for m in ("torch", "matplotlib") if m in sys.modules), f)
"""


def loaded(code: str, tmp_path) -> list[str]:
    """The heavy modules `code` loaded, in a fresh interpreter."""
    out = tmp_path / "probe.json"
    proc = subprocess.run([sys.executable, "-c", PROBE.format(code=code)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PROBE_OUT": str(out)})
    assert proc.returncode == 0 and out.exists(), proc.stdout + proc.stderr
    return json.loads(out.read_text())


def test_importing_collect_and_results_loads_no_torch(tmp_path):
    names = [m for m in modules() if m.startswith(("swarmcli.collect.", "swarmcli.results."))
             and not m.endswith("__main__")]
    assert "torch" not in loaded("\n".join(f"import {m}" for m in names), tmp_path)


def fake_multirun(d: Path) -> Path:
    """A basic-sweeper multirun of model.width=3,5 x optim.lr=0.1,0.2, written by hand (no
    training, so no torch): jobs 0-2 complete with two bees each, job 3 never started."""
    d.mkdir()
    mr = {"hydra": {
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                    "params": None},
        "launcher": {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"},
        "overrides": {"task": ["model.width=3,5", "optim.lr=0.1,0.2"], "hydra": []},
        "runtime": {"cwd": str(d.parent), "config_sources": [
            {"path": "swarmcli.configs", "schema": "pkg", "provider": "main"}]},
        "job": {"config_name": "config"}}}
    (d / "multirun.yaml").write_text(yaml.safe_dump(mr))
    for num, (width, lr) in enumerate([(3, 0.1), (3, 0.2), (5, 0.1)]):
        job = d / str(num)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(
            yaml.safe_dump([f"model.width={width}", f"optim.lr={lr}"]))
        cell = {"index": 0, "labels": {}, "values": {}, "position": [], "bees": 2,
                "width": width, "saved": True}
        writer = results.RunWriter(job, {"format": results.FORMAT, "epochs": 2,
                                         "frames": [0, 2], "record": [], "axes": [],
                                         "cells": [cell]})
        loss = np.array([[1.0, 0.5, 0.1 * width], [1.0, lr, lr]])
        writer.save_summary(results.summary_rows([], {}, 0, {
            "loss": loss, "diverged_epoch": np.array([-1, -1])}))
        writer.set_state("complete")
    return d


def test_swarm_collect_with_plots_loads_no_torch(tmp_path):
    d = fake_multirun(tmp_path / "multi")
    code = ("from swarmcli import cli\n"
            f"cli.main(['collect', {str(d)!r}])")
    got = loaded(code, tmp_path)
    assert "matplotlib" in got  # it did draw
    assert "torch" not in got
    assert sorted(p.name for p in (d / "collect").glob("*.png")) == [
        "final_loss_by_key.png", "heatmap_optim.lr_vs_model.width.png"]
    jobs = (d / "collect" / "jobs.csv").read_text().splitlines()
    assert [j.split(",")[1] for j in jobs[1:]] == ["complete"] * 3 + ["missing"]
