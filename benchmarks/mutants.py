"""Mutation testing, our own small version: do the fast tests notice a small bug in a core module?

Mutants are made mechanically with `ast`: a comparison flipped (< <=, > >=, == !=, is, in), an
arithmetic operator swapped (+ -, * /, // /, ** *), a number changed (0 <-> 1, n -> n + 1,
True <-> False), `and` <-> `or`, a `not` dropped, a unary minus dropped, or one statement
replaced by `pass`. A fixed-seed sample of them per module is applied, one at a time, to a
temporary copy of the package (the tree itself is never touched); the tests mapped to that
module run against the copy (`pytest -x -q`, with a timeout: a timeout counts as killed).

    .venv/bin/python benchmarks/mutants.py                    # the default modules, 8 each
    .venv/bin/python benchmarks/mutants.py swarmcli/stats.py --per-module 20
    .venv/bin/python benchmarks/mutants.py --list swarmcli/grid.py   # the mutants, no tests

Prints one line per mutant, then kill rates per module and in total, and the survivors
(file:line, the change). Survivors judged equivalent (no test could tell them apart from the
original) are listed in EQUIVALENT with the reason; the rate over the others is printed too.
"""

from __future__ import annotations

import argparse
import ast
import copy
import glob
import os
import queue
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CORE = ["swarmcli/optim.py", "swarmcli/schedules.py", "swarmcli/grid.py", "swarmcli/stats.py",
        "swarmcli/results.py", "swarmcli/stops.py", "swarmcli/splits.py",
        "swarmcli/objective.py", "swarmcli/render/data.py"]
ENGINE_GLOBS = ["swarmcli/engine*.py", "swarmcli/engine/*.py"]

ENGINE_TESTS = ["tests/test_regimes.py", "tests/test_init_and_divergence.py",
                "tests/test_optim.py"]
# The fast tests that exercise each module (a module not listed gets DEFAULT_TESTS).
TESTS = {
    "swarmcli/optim.py": ["tests/test_optim.py", "tests/test_regimes.py",
                          "tests/test_init_and_divergence.py"],
    "swarmcli/schedules.py": ["tests/test_optim.py", "tests/test_regimes.py",
                              "tests/test_bad_input.py"],
    "swarmcli/grid.py": ["tests/test_sweeps.py", "tests/test_config.py", "tests/test_bad_input.py",
                         "tests/test_init_and_divergence.py", "tests/test_eval_grid.py"],
    "swarmcli/stats.py": ["tests/test_stats.py"],
    "swarmcli/results.py": ["tests/test_damaged.py", "tests/test_stops.py", "tests/test_lock.py"],
    "swarmcli/stops.py": ["tests/test_stops.py", "tests/test_damaged.py"],
    "swarmcli/splits.py": ["tests/test_splits.py"],
    "swarmcli/objective.py": ["tests/test_collect.py", "tests/test_bad_input.py"],
    "swarmcli/render/data.py": ["tests/test_render.py", "tests/test_figures.py"],
}
DEFAULT_TESTS = ENGINE_TESTS
# Slow tests (real processes, signals, memory measurements): left out of every mutant's run.
DESELECT = [
    "tests/test_stops.py::test_random_interrupts_and_kills_leave_truthful_run_dirs",
    "tests/test_stops.py::test_the_estimate_bounds_what_a_run_allocates",
    "tests/test_stops.py::test_a_real_full_disk",
    "tests/test_render.py::test_ctrl_c_while_rendering_leaves_no_trace_and_prints_one_line",
    "tests/test_render.py::test_swarm_render_in_a_new_process",
    "tests/test_render.py::test_frames_split_across_processes_join_in_order",
]

# Survivors no test can kill: (file, the original line stripped, the change) -> why.
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("swarmcli/objective.py",
     "def check_objective(stat: str, q: float = 0.5, threshold: float = 0.01) -> None:",
     "0.01 -> 1.01"): "a default threshold is only checked to be finite; every caller passes "
                      "its own",
    ("swarmcli/engine/loop.py",
     "drops = [self.drop(-1, f, i, (self.n, x.shape[1], net.width))",
     "-1 -> 1"): "the key that draws the recorded ypred_train's dropout masks: any key is a "
                 "valid draw (-1 only keeps them apart from training's keys)",
}


@dataclass
class Mutant:
    path: str  # relative to ROOT
    line: int
    index: int  # which candidate of the module's walk
    before: str
    after: str
    source_line: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.path, self.source_line, f"{self.before} -> {self.after}"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.before} -> {self.after}"


CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
            ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
            ast.In: ast.NotIn, ast.NotIn: ast.In}
BIN_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
            ast.FloorDiv: ast.Div, ast.Pow: ast.Mult}
SIMPLE_STMT = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Return, ast.Raise,
               ast.Assert, ast.Delete)


def new_constant(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return {0: 1, 1: 0}.get(value, value + 1)
    if isinstance(value, float):
        return {0.0: 1.0, 1.0: 0.0}.get(value, value + 1)
    return None


def skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes never mutated: docstrings, f-strings' insides, annotations, __all__."""
    skip = set()
    for node in ast.walk(tree):
        inside = []
        if isinstance(node, ast.JoinedStr):
            inside = [node]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside = [a.annotation for a in [*node.args.args, *node.args.kwonlyargs,
                                               *node.args.posonlyargs] if a.annotation]
            inside += [node.returns] if node.returns else []
        elif isinstance(node, ast.AnnAssign):
            inside = [node.annotation]
        elif (isinstance(node, ast.Assign) and len(node.targets) == 1
              and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "__all__"):
            inside = [node]
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                inside.append(body[0])
        for n in inside:
            skip.update(id(m) for m in ast.walk(n))
    return skip


def candidates(tree: ast.AST):
    """(node, kind, mutate) for every mutation of `tree`, in a fixed walk order; `mutate(node)`
    returns the replacement node (or the string 'pass' for a deleted statement)."""
    skip = skipped_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip or not hasattr(node, "lineno"):
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in CMP_SWAP:
                    def flip(n, i=i):
                        n.ops[i] = CMP_SWAP[type(n.ops[i])]()
                        return n
                    yield node, flip
        elif (isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in BIN_SWAP
              and not joins_paths(node)):
            def swap(n):
                n.op = BIN_SWAP[type(n.op)]()
                return n
            yield node, swap
        elif isinstance(node, ast.BoolOp):
            def andor(n):
                n.op = ast.Or() if isinstance(n.op, ast.And) else ast.And()
                return n
            yield node, andor
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            yield node, lambda n: n.operand
        elif (isinstance(node, ast.Constant) and not isinstance(node.value, str)
              and new_constant(node.value) is not None):
            yield node, lambda n: ast.Constant(new_constant(n.value))
        if isinstance(node, SIMPLE_STMT) and not (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            yield node, lambda n: "pass"


def joins_paths(node) -> bool:
    """`dir / "name"`: a Path join, whose swap only raises TypeError (killed by any test)."""
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and any(
        isinstance(n, (ast.JoinedStr, ast.Constant)) and isinstance(getattr(n, "value", ""), str)
        for n in (node.left, node.right))


def offsets(text: str) -> list[int]:
    """Character offset of each line's start (ast's col_offset counts UTF-8 bytes, so the
    replacement works on bytes)."""
    out, pos = [], 0
    for line in text.encode().splitlines(keepends=True):
        out.append(pos)
        pos += len(line)
    return out


def mutants_of(path: str) -> list[Mutant]:
    text = (ROOT / path).read_text()
    tree = ast.parse(text)
    lines = text.splitlines()
    out = []
    for k, (node, mutate) in enumerate(candidates(tree)):
        new = mutate(copy.deepcopy(node))
        before = ast.get_source_segment(text, node) or ast.unparse(node)
        after = "pass" if new == "pass" else ast.unparse(new)
        if len(before) > 60:
            before, after = ast.unparse(node)[:60], after[:60]
        out.append(Mutant(path, node.lineno, k, " ".join(before.split()),
                          " ".join(after.split()), lines[node.lineno - 1].strip()))
    return out


def mutated_source(m: Mutant) -> str:
    """The module's text with mutant `m` applied: the node's source replaced by its
    mutated form (parenthesised), or a statement by `pass`; the rest of the file untouched."""
    text = (ROOT / m.path).read_text()
    tree = ast.parse(text)
    node, mutate = list(candidates(tree))[m.index]
    new = mutate(copy.deepcopy(node))
    starts = offsets(text)
    raw = text.encode()
    a = starts[node.lineno - 1] + node.col_offset
    b = starts[node.end_lineno - 1] + node.end_col_offset
    code = "pass" if new == "pass" else f"({ast.unparse(new)})"
    out = (raw[:a] + code.encode() + raw[b:]).decode()
    ast.parse(out)  # still Python
    return out


def tests_for(path: str) -> list[str]:
    if path in TESTS:
        return TESTS[path]
    return DEFAULT_TESTS


class Sandbox:
    """A copy of the package and tests in a temporary directory; tests run there with the copy
    first on sys.path (it shadows the editable install; configs still come from the tree)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="swarm-mutants-"))
        for name in ("swarmcli", "tests"):
            shutil.copytree(ROOT / name, self.dir / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pyproject.toml", self.dir)

    def run(self, path: str, source: str | None, timeout: float) -> tuple[str, float]:
        """('killed' | 'survived' | 'timeout' | 'error', seconds) of the mapped tests with
        `path` replaced by `source` (None: the original)."""
        target = self.dir / path
        original = target.read_text()
        try:
            if source is not None:
                target.write_text(source)
            args = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                    *tests_for(path), *(f"--deselect={d}" for d in DESELECT)]
            env = {**os.environ, "PYTHONPATH": str(self.dir), "OMP_NUM_THREADS": "1",
                   "PYTHONDONTWRITEBYTECODE": "1"}
            start = time.monotonic()
            try:
                proc = subprocess.run(args, cwd=self.dir, env=env, capture_output=True,
                                      text=True, timeout=timeout, start_new_session=True)
            except subprocess.TimeoutExpired:
                return "timeout", time.monotonic() - start
            seconds = time.monotonic() - start
            if proc.returncode == 0:
                return "survived", seconds
            if proc.returncode == 1:
                return "killed", seconds
            return "error", seconds  # collection error, usage error: also a kill, but shown
        finally:
            target.write_text(original)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def default_modules() -> list[str]:
    engine = sorted({str(Path(p).relative_to(ROOT)) for g in ENGINE_GLOBS
                     for p in glob.glob(str(ROOT / g))})
    return CORE + [p for p in engine if not p.endswith("__init__.py")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help="paths relative to the repo (default: core)")
    ap.add_argument("--per-module", type=int, default=8, help="mutants sampled per module")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds per mutant (default: 3 x the unmutated run, at least 30)")
    ap.add_argument("--jobs", type=int, default=1, help="modules tested at once (own copies)")
    ap.add_argument("--list", action="store_true", help="print the sampled mutants, run nothing")
    ap.add_argument("--only", type=Path, help="run only the sampled mutants whose line "
                    "('path:line: before -> after', as printed) appears in this file")
    args = ap.parse_args(argv)
    modules = args.modules or default_modules()
    rng = random.Random(args.seed)
    plan = {}
    for path in modules:
        every = mutants_of(path)
        plan[path] = sorted(rng.sample(every, min(args.per_module, len(every))),
                            key=lambda m: m.index)
        if args.only:
            wanted = args.only.read_text()
            plan[path] = [m for m in plan[path] if str(m) in wanted]
        print(f"{path}: {len(every)} mutants, {len(plan[path])} sampled", flush=True)
    if args.list:
        for ms in plan.values():
            for m in ms:
                print(f"  {m}")
        return 0

    start = time.monotonic()
    boxes = queue.Queue()
    for _ in range(args.jobs):
        boxes.put(Sandbox())
    results: dict[str, list[tuple[Mutant, str]]] = {}

    def one_module(path: str) -> None:
        box = boxes.get()
        try:
            status, base = box.run(path, None, timeout=1800)
            if status != "survived":
                print(f"{path}: the mapped tests fail without a mutant ({status}); skipped")
                return
            timeout = args.timeout or max(30.0, 3 * base)
            print(f"{path}: tests {' '.join(tests_for(path))} pass in {base:.0f} s; "
                  f"timeout {timeout:.0f} s", flush=True)
            rows = []
            for m in plan[path]:
                status, seconds = box.run(path, mutated_source(m), timeout)
                rows.append((m, status))
                note = "  (equivalent)" if m.key in EQUIVALENT else ""
                print(f"  {status:8} {seconds:5.0f} s  {m}{note}", flush=True)
            results[path] = rows
        finally:
            boxes.put(box)

    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(one_module, plan))
    finally:
        while not boxes.empty():
            boxes.get().close()
    report({p: results[p] for p in plan if p in results})
    print(f"\n{time.monotonic() - start:.0f} s with {args.jobs} job(s); "
          f"command: {' '.join(['benchmarks/mutants.py', *(argv or sys.argv[1:])])}")
    return 0


def report(results) -> None:
    print("\nmodule                         mutants  killed  survived  equivalent  kill rate  "
          "kill rate (non-equivalent)")
    tot = [0, 0, 0, 0]
    survivors = []
    for path, rows in results.items():
        n = len(rows)
        killed = sum(s != "survived" for _, s in rows)
        equiv = sum(s == "survived" and m.key in EQUIVALENT for m, s in rows)
        surv = n - killed
        survivors += [m for m, s in rows if s == "survived"]
        for i, v in enumerate((n, killed, surv, equiv)):
            tot[i] += v
        print(f"{path:30} {n:7}  {killed:6}  {surv:8}  {equiv:10}  {pct(killed, n):>9}  "
              f"{pct(killed, n - equiv):>9}")
    n, killed, surv, equiv = tot
    print(f"{'total':30} {n:7}  {killed:6}  {surv:8}  {equiv:10}  {pct(killed, n):>9}  "
          f"{pct(killed, n - equiv):>9}")
    if survivors:
        print("\nsurvivors:")
        for m in survivors:
            why = EQUIVALENT.get(m.key)
            print(f"  {m}" + (f"  [equivalent: {why}]" if why else ""))


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.0f}%" if b else "-"


if __name__ == "__main__":
    sys.exit(main())
