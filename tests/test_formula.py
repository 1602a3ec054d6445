"""The formula parser: values match numpy, everything outside the whitelist is refused with a
one-line message naming the bad token, and nothing is ever eval'd."""

from __future__ import annotations

import ast
import builtins
import pickle

import numpy as np
import pytest

from swarmcli import formula
from swarmcli.config import SwarmError
from swarmcli.formula import check_values, compile_formula, evaluate

X = np.linspace(-3.0, 3.0, 25)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("sin(3*x)*exp(-x**2/4)", lambda x: np.sin(3 * x) * np.exp(-(x**2) / 4)),
        ("-x", lambda x: -x),
        ("2**x", lambda x: 2.0**x),
        ("abs(x)-pi", lambda x: np.abs(x) - np.pi),
        ("1/(1+exp(-x))", lambda x: 1 / (1 + np.exp(-x))),
        ("e**x - exp(x)", lambda x: np.e**x - np.exp(x)),
        ("sqrt(abs(x)) + log(1 + x**2)", lambda x: np.sqrt(np.abs(x)) + np.log(1 + x**2)),
        ("atan(x) + arctan(x)/2", lambda x: 1.5 * np.arctan(x)),
        ("tanh(x)*cosh(x) - sinh(x)", lambda x: np.tanh(x) * np.cosh(x) - np.sinh(x)),
        ("floor(x) + ceil(x/2) + sign(x)", lambda x: np.floor(x) + np.ceil(x / 2) + np.sign(x)),
        ("log2(1+x**2) - log10(4+x)", lambda x: np.log2(1 + x**2) - np.log10(4 + x)),
        ("asin(x/4) + acos(x/4) + tan(x/4)", lambda x: np.pi / 2 + np.tan(x / 4)),
        ("+x - -x", lambda x: 2 * x),
        ("  1.5e-1 * x ", lambda x: 0.15 * x),
    ],
)
def test_values_match_numpy(text, expected):
    y = compile_formula(text)(X)
    assert y.dtype == np.float64 and y.shape == X.shape
    np.testing.assert_allclose(y, expected(X), rtol=1e-12, atol=1e-12)


def test_constant_formula_is_broadcast_to_x():
    y = compile_formula("2*pi")(X)
    assert y.shape == X.shape
    np.testing.assert_array_equal(y, np.full_like(X, 2 * np.pi))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("-x**2", lambda x: -(x**2)),  # ** binds tighter than unary minus
        ("2**-x", lambda x: 2.0 ** (-x)),
        ("2**3**x", lambda x: 2.0 ** (3.0**x)),  # right-associative
        ("1-2-x", lambda x: (1 - 2) - x),  # left-associative
        ("8/x/2", lambda x: (8 / x) / 2),
        ("1+2*x**2", lambda x: 1 + 2 * (x**2)),
    ],
)
def test_operator_precedence(text, expected):
    x = np.array([-2.0, -0.5, 0.5, 1.5, 3.0])
    np.testing.assert_allclose(compile_formula(text)(x), expected(x), rtol=1e-12)
    assert compile_formula("-x**2")(np.array([3.0]))[0] == -9.0


# (text, token named in the message, 1-based column or None)
REJECTED = [
    ("__import__('os')", "__import__", 1),
    ("sin(x)+os.system(1)", "os", 8),
    ("x.real", ".real", 2),
    ("[x][0]", "[x]", 1),
    ("(x)[0]", "[0]", 4),
    ("lambda: 1", "lambda", 1),
    ("y", "y", 1),
    ("x + open", "open", 5),
    ("x if x else 1", "if", 3),
    ("x < 1", "<", 3),
    ("x % 2", "%", 3),
    ("x and 1", "and", 3),
    ("not x", "not", 1),
    ("'a'", "'a'", 1),
    ("True", "True", 1),
    ("1j*x", "1j", 1),
    ("sin(x, x)", "sin", 1),
    ("sin(x=1)", "x=", 5),
    ("cos(**x)", "**x", 5),
    ("sin", "sin", 1),
    ("x(2)", "x", 1),
    ("eval('1')", "eval", 1),
    ("[i for i in x]", "[i for i in x]", 1),
    ("(y := 1)", ":=", 4),
    ("9**9**9", "9**9**9", 1),
    ("x + 9**9**9", "9**9**9", 5),
    ("log(0) + x", "log(0)", 1),
    ("1e400*x", "1e400", 1),
    ("  y", "y", 3),
]


@pytest.mark.parametrize("text, token, column", REJECTED)
def test_rejected_constructs_name_the_bad_token(text, token, column):
    with pytest.raises(SwarmError) as err:
        compile_formula(text)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("target.expr: ")
    assert repr(token) in msg
    assert f"column {column} " in msg
    assert repr(text) in msg  # the whole formula, so the column can be found in it


def test_not_allowed_message_lists_the_allowed_parts():
    with pytest.raises(SwarmError, match=r"^target\.expr: 'os' is not allowed at column 8 ") as e:
        compile_formula("sin(x)+os.system(1)")
    assert str(e.value).endswith(formula.ALLOWED)
    assert "sin, cos, tan" in formula.ALLOWED and "x, pi, e, numbers, + - * / **" in formula.ALLOWED


@pytest.mark.parametrize(
    "text, column, why",
    [("sin(x", 4, "'(' was never closed"), ("x y", 3, "invalid syntax"), (" x ) ", 4, "")],
)
def test_syntax_errors_give_the_column(text, column, why):
    with pytest.raises(SwarmError) as err:
        compile_formula(text)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"syntax error at column {column} of {text!r}" in msg
    assert why in msg


@pytest.mark.parametrize(
    "text, needle",
    [
        ("x" * 10_000, "is 10000 characters long"),
        ("x\n+1", "'\\n' is not allowed at column 2"),
        ("x\x00", "'\\x00' is not allowed at column 2"),
        ("\u03c0*x", "'\u03c0' is not allowed at column 1"),
        ("", "target.expr is empty"),
        ("   ", "target.expr is empty"),
        ("-" * 150 + "x", "nested more than 100 deep"),
    ],
)
def test_size_and_character_limits(text, needle):
    with pytest.raises(SwarmError) as err:
        compile_formula(text)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)
    assert len(str(err.value)) < 400  # a 10,000-character formula is not echoed


def test_node_limit(monkeypatch):
    compile_formula("x+x+x")  # 5 parts
    monkeypatch.setattr(formula, "MAX_NODES", 4)
    with pytest.raises(SwarmError, match="has 5 parts; at most 4"):
        compile_formula("x+x+x")


def test_non_string_is_refused():
    with pytest.raises(SwarmError, match=r"target\.expr=3 must be a formula in x"):
        compile_formula(3)


def test_key_names_the_setting():
    with pytest.raises(SwarmError, match=r"^sweep\.expr: 'y' is not allowed"):
        compile_formula("y", key="sweep.expr")


def test_no_eval_exec_or_code_compile(monkeypatch):
    """With eval and exec gone and compile allowed only to build an AST (what ast.parse does),
    parsing and evaluating still work: no code object is ever made from the user's text."""
    calls = []
    real_compile = builtins.compile

    def ast_only_compile(source, filename, mode, flags=0, *args, **kwargs):
        calls.append(flags)
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError(f"compile to code called on {source!r}")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError(f"called with {args!r}")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", ast_only_compile)
    y = evaluate("sin(3*x)*exp(-x**2/4) + 2**x", X)
    np.testing.assert_allclose(y, np.sin(3 * X) * np.exp(-(X**2) / 4) + 2.0**X, rtol=1e-12)
    with pytest.raises(SwarmError, match="'eval' is not allowed"):
        compile_formula("eval('1')")
    assert calls and all(f & ast.PyCF_ONLY_AST for f in calls)
    with pytest.raises(AssertionError):  # the patches are live
        builtins.eval("1")


def test_check_values_names_the_first_bad_x():
    x = np.linspace(-1.0, 1.0, 5)
    with pytest.raises(SwarmError) as err:
        evaluate("1/x", x)
    msg = str(err.value)
    assert "'1/x' is inf at x=0 " in msg and "not finite at 1 of 5 points" in msg
    with pytest.raises(SwarmError, match=r"'log\(x\)' is nan at x=-1 .* at 3 of 5 points"):
        evaluate("log(x)", x)
    with pytest.raises(SwarmError, match=r"is inf at x=-1 "):
        evaluate("exp(exp(exp(-10*x)))", x)
    with pytest.raises(SwarmError, match=r"^target\.expr: the formula is nan at x=2 "):
        check_values([1.0, 2.0], [0.5, np.nan])
    y = check_values(x, [1, 2, 3, 4, 5])
    assert y.dtype == np.float64 and y.tolist() == [1, 2, 3, 4, 5]


def test_evaluation_is_silent_and_does_not_raise_on_overflow():
    with np.errstate(all="raise"):
        y = compile_formula("exp(x) + 1/x")(np.array([1000.0, 0.0]))
    assert np.isinf(y).all()


def test_formula_pickles_as_its_text():
    f = compile_formula("sin(x) + x**2")
    g = pickle.loads(pickle.dumps(f))
    assert g.text == "sin(x) + x**2" and repr(g) == "Formula('sin(x) + x**2')"
    np.testing.assert_array_equal(g(X), f(X))
