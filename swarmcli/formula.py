"""A user's own target as a formula in x, e.g. `sin(3*x)*exp(-x**2/4)`, or a loss surface in
x and y (task=landscape, `variables=("x", "y")`).

The text is parsed with `ast.parse(..., mode="eval")` and then checked against a whitelist:
numbers, the name `x`, the constants `pi` and `e`, the operators + - * / ** (and unary + -),
and one-argument calls of the math functions in `FUNCTIONS`. Anything else is rejected with a
one-line `SwarmError` naming the bad token and its column. The checked tree is compiled into
a tree of small closures over numpy ufuncs: the text is never given to eval, exec or compile.

Arithmetic is numpy float64, so `9**9**9` or `exp(1000)` gives inf rather than a huge integer
or a hang. A sub-expression without x (`9**9**9`, `log(0)`) is folded when compiled and
rejected there if it is not finite; a formula whose values are not finite on the training
domain (`1/x` at x = 0) is reported by `check_values`, which names the first bad x.

The compiled tree takes its operations from an `Ops` table (numpy's by default), so the landscape
task runs the very same checked tree on torch tensors (`Formula.apply(ops, x, y)`) and gets exact
gradients by autograd, while this module itself never imports torch.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from swarmcli.errors import SwarmError

MAX_LENGTH = 200  # characters
MAX_NODES = 200  # expression nodes (numbers, names, operators, calls)
MAX_DEPTH = 100  # nesting of expression nodes (x+x+...+x within MAX_LENGTH fits)

FUNCTIONS: dict[str, np.ufunc] = {
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arcsin": np.arcsin,
    "asin": np.arcsin,
    "arccos": np.arccos,
    "acos": np.arccos,
    "arctan": np.arctan,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "exp": np.exp,
    "log": np.log,
    "log10": np.log10,
    "log2": np.log2,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sign": np.sign,
    "floor": np.floor,
    "ceil": np.ceil,
}
CONSTANTS: dict[str, float] = {"pi": float(np.pi), "e": float(np.e)}
VARIABLE = "x"
BINARY: dict[type, np.ufunc] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
}
UNARY: dict[type, np.ufunc] = {ast.UAdd: np.positive, ast.USub: np.negative}



def allowed(variables: tuple[str, ...] = (VARIABLE,)) -> str:
    return (f"allowed: {', '.join(variables)}, pi, e, numbers, + - * / **, "
            f"{', '.join(FUNCTIONS)} (one argument each)")


ALLOWED = allowed()


@dataclass(frozen=True)
class Ops:
    """The operations a compiled formula calls, by name (functions) or ast operator type; `const`
    turns a folded constant into the library's scalar."""

    functions: dict
    binary: dict
    unary: dict
    const: Callable


NUMPY = Ops(FUNCTIONS, BINARY, UNARY, np.float64)

# What a rejected construct is called in the message, after its text.
_KINDS = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscript",
    ast.Lambda: "function definition",
    ast.IfExp: "conditional expression",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator",
    ast.NamedExpr: "assignment expression",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Set: "set",
    ast.Dict: "dict",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "generator expression",
    ast.JoinedStr: "f-string",
    ast.Starred: "unpacking",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slice",
}


class Formula:
    """A compiled formula: `f(x)` (or `f(x, y)` for two variables) takes arrays and returns
    float64 values of their broadcast shape; `apply(ops, *values)` runs it on another library's
    values (torch tensors).

    Pickles as its text (closures do not pickle), so it can be sent to worker processes."""

    def __init__(self, text: str, fn: Callable, variables: tuple[str, ...] = (VARIABLE,)):
        self.text = text
        self._fn = fn
        self.variables = tuple(variables)

    def __call__(self, *xs) -> np.ndarray:
        if len(xs) != len(self.variables):
            raise TypeError(f"{self!r} takes {len(self.variables)} arrays, not {len(xs)}")
        xs = tuple(np.asarray(x, dtype=np.float64) for x in xs)
        with np.errstate(all="ignore"):
            y = np.asarray(self._fn(xs, NUMPY), dtype=np.float64)
        return np.broadcast_to(y, np.broadcast_shapes(*(x.shape for x in xs))).copy()

    def apply(self, ops: Ops, *values):
        """The formula on `values` with `ops`' operations (a constant formula returns a
        scalar)."""
        return self._fn(tuple(values), ops)

    def __reduce__(self):
        return compile_formula, (self.text, "target.expr", self.variables)

    def __repr__(self) -> str:
        return f"Formula({self.text!r})"


def compile_formula(text: str, key: str = "target.expr",
                    variables: tuple[str, ...] = (VARIABLE,)) -> Formula:
    """Parse and check `text` and return it compiled; raise SwarmError (one line) if it is not
    a formula in `variables` made only of the allowed parts. `key` names the setting in
    messages."""
    variables = tuple(variables)
    names = " and ".join(variables)
    if not isinstance(text, str):
        raise SwarmError(f"{key}={text!r} must be a formula in {names}, e.g. sin(3*x)")
    if len(text) > MAX_LENGTH:
        raise SwarmError(
            f"{key} is {len(text)} characters long ({text[:20]!r}...); "
            f"at most {MAX_LENGTH} are allowed"
        )
    for i, ch in enumerate(text):
        if not (ch.isascii() and ch.isprintable()):
            raise SwarmError(
                f"{key}: {ch!r} is not allowed at column {i + 1} of {text!r}; "
                "use printable ASCII characters on one line"
            )
    body = text.lstrip(" ")
    if not body.strip():
        raise SwarmError(f"{key} is empty; write a formula in {names}, e.g. sin(3*x)")
    indent = len(text) - len(body)
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as e:
        col = e.offset + indent if e.offset and e.offset > 0 else len(text) + 1
        raise SwarmError(
            f"{key}: syntax error at column {col} of {text!r}: {e.msg}"
        ) from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise SwarmError(f"{key}: cannot parse {text!r}: {type(e).__name__}") from None
    checker = _Compiler(text, indent, key, variables)
    nodes = sum(isinstance(n, ast.expr) for n in ast.walk(tree))
    if nodes > MAX_NODES:
        raise SwarmError(
            f"{key}: {text[:20]!r}... has {nodes} parts; at most {MAX_NODES} are allowed"
        )
    with np.errstate(all="ignore"):  # folding 9**9**9 overflows to inf, reported as such
        fn, _ = checker.compile(tree.body, depth=1)
    return Formula(text, fn, variables)


def check_values(x, y, key: str = "target.expr", text: str | None = None) -> np.ndarray:
    """Return y as float64 if every value is finite; else raise SwarmError naming the first x
    where it is not (e.g. `log(x)` at x = 0)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    bad = ~np.isfinite(y)
    if bad.any():
        i = int(np.argmax(bad.ravel()))
        what = f"{text!r} is" if text is not None else "the formula is"
        raise SwarmError(
            f"{key}: {what} {y.ravel()[i]} at x={x.ravel()[i]:.6g} "
            f"(not finite at {int(bad.sum())} of {bad.size} points); "
            "change the formula or target.domain"
        )
    return y


def evaluate(text: str, x, key: str = "target.expr") -> np.ndarray:
    """compile_formula(text)(x), checked to be finite everywhere on x."""
    return check_values(x, compile_formula(text, key)(x), key, text)


def _constant(value: np.float64) -> Callable:
    return lambda vs, ops: ops.const(value)


class _Compiler:
    """Checks a node and returns (closure of x, folded value or None when it depends on x)."""

    def __init__(self, text: str, indent: int, key: str, variables: tuple[str, ...]):
        self.text, self.indent, self.key = text, indent, key
        self.variables = variables
        self.allowed = allowed(variables)

    # -- messages --------------------------------------------------------------------------

    def reject(self, token: str, col: int, why: str = "") -> SwarmError:
        note = f" ({why})" if why else ""
        return SwarmError(
            f"{self.key}: {token!r}{note} is not allowed at column {col + 1} "
            f"of {self.text!r}; {self.allowed}"
        )

    def start(self, node: ast.AST) -> int:
        return node.col_offset + self.indent

    def end(self, node: ast.AST) -> int:
        return node.end_col_offset + self.indent

    def source(self, node: ast.AST) -> str:
        s = self.text[self.start(node) : self.end(node)]
        return s if len(s) <= 30 else s[:27] + "..."

    def between(self, left: ast.AST, right: ast.AST) -> tuple[str, int]:
        """The operator token between two operands, and its column (0-based)."""
        a, b = self.end(left), self.start(right)
        seg = self.text[a:b]
        tok = seg.strip(" ()")
        return (tok, a + seg.index(tok)) if tok else (self.source(right), b)

    # -- the walk --------------------------------------------------------------------------

    def compile(self, node: ast.AST, depth: int):
        if depth > MAX_DEPTH:
            raise SwarmError(
                f"{self.key}: nested more than {MAX_DEPTH} deep at column "
                f"{self.start(node) + 1} of {self.text!r}"
            )
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            return self.binop(node, depth)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise self.bad_construct(node, depth)

    def constant(self, node: ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            kind = {str: "a string", bytes: "bytes", complex: "a complex number"}
            why = "a boolean" if isinstance(v, bool) else kind.get(type(v), "not a number")
            raise self.reject(self.source(node), self.start(node), why)
        try:
            value = np.float64(float(v))
        except OverflowError:
            value = np.float64(np.inf)
        if not np.isfinite(value):
            raise self.reject(self.source(node), self.start(node), "too large for float64")
        return _constant(value), value

    def name(self, node: ast.Name):
        if node.id in self.variables:
            i = self.variables.index(node.id)
            return (lambda vs, ops: vs[i]), None
        if node.id in CONSTANTS:
            value = np.float64(CONSTANTS[node.id])
            return _constant(value), value
        why = f"a function: call it as {node.id}(...)" if node.id in FUNCTIONS else ""
        raise self.reject(node.id, self.start(node), why)

    def binop(self, node: ast.BinOp, depth: int):
        op = BINARY.get(type(node.op))
        if op is None:
            tok, col = self.between(node.left, node.right)
            raise self.reject(tok, col, "operator")
        kind = type(node.op)
        left, lc = self.compile(node.left, depth + 1)
        right, rc = self.compile(node.right, depth + 1)
        if lc is not None and rc is not None:
            return self.fold(node, op(lc, rc))
        return (lambda vs, ops: ops.binary[kind](left(vs, ops), right(vs, ops))), None

    def unary(self, node: ast.UnaryOp, depth: int):
        op = UNARY.get(type(node.op))
        if op is None:
            tok = self.text[self.start(node) : self.start(node.operand)].strip(" ()")
            raise self.reject(tok or self.source(node), self.start(node), "operator")
        kind = type(node.op)
        arg, c = self.compile(node.operand, depth + 1)
        if c is not None:
            return self.fold(node, op(c))
        return (lambda vs, ops: ops.unary[kind](arg(vs, ops))), None

    def call(self, node: ast.Call, depth: int):
        func = node.func
        if not isinstance(func, ast.Name):
            # Report the first bad token: `os` in os.system(1), `.real` in x.real(...).
            self.compile(func, depth + 1)
            raise self.reject(self.source(func), self.start(func), "not a function")
        if func.id not in FUNCTIONS:
            why = "not a function" if func.id in CONSTANTS or func.id in self.variables else ""
            raise self.reject(func.id, self.start(func), why)
        if node.keywords:
            kw = node.keywords[0]
            tok = f"{kw.arg}=" if kw.arg is not None else f"**{self.source(kw.value)}"
            why = f"keyword argument; {func.id} takes one positional argument"
            raise self.reject(tok, self.start(kw), why)
        if len(node.args) != 1:
            raise SwarmError(
                f"{self.key}: {func.id!r} at column {self.start(func) + 1} of {self.text!r} "
                f"takes exactly 1 argument, not {len(node.args)}; {self.allowed}"
            )
        name, ufunc = func.id, FUNCTIONS[func.id]
        arg, c = self.compile(node.args[0], depth + 1)
        if c is not None:
            return self.fold(node, ufunc(c))
        return (lambda vs, ops: ops.functions[name](arg(vs, ops))), None

    def fold(self, node: ast.AST, value) -> tuple[Callable, np.float64]:
        """A part without x, computed once; rejected here if it is not finite."""
        value = np.float64(value)
        if not np.isfinite(value):
            raise SwarmError(
                f"{self.key}: {self.source(node)!r} at column {self.start(node) + 1} of "
                f"{self.text!r} is {value} in float64, not a finite number"
            )
        return _constant(value), value

    def bad_construct(self, node: ast.AST, depth: int) -> SwarmError:
        """The error for a node type that is not allowed, pointing at its own token."""
        kind = _KINDS.get(type(node), type(node).__name__)
        if isinstance(node, ast.Attribute):
            self.compile(node.value, depth + 1)  # `os` in os.system is reported first
            col = self.end(node) - len(node.attr) - 1
            return self.reject(f".{node.attr}", col, kind)
        if isinstance(node, ast.Subscript):
            self.compile(node.value, depth + 1)
            _, col = self.between(node.value, node.slice)
            return self.reject(f"[{self.source(node.slice)}]", col, kind)
        if isinstance(node, ast.Compare):
            tok, col = self.between(node.left, node.comparators[0])
            return self.reject(tok, col, kind)
        if isinstance(node, ast.BoolOp):
            tok, col = self.between(node.values[0], node.values[1])
            return self.reject(tok, col, kind)
        if isinstance(node, ast.IfExp):
            tok, col = self.between(node.body, node.test)
            return self.reject(tok, col, kind)
        if isinstance(node, ast.NamedExpr):
            tok, col = self.between(node.target, node.value)
            return self.reject(tok, col, kind)
        if isinstance(node, ast.Lambda):
            return self.reject("lambda", self.start(node), kind)
        return self.reject(self.source(node), self.start(node), kind)
