"""The landscapes particles descend, torch-free: each named surface is a formula text in x and y
(one checked tree serves numpy for drawing and torch for exact gradients), and the two data
landscapes (`mean`, `line`) are losses over samples drawn once from `surface.sample_seed`.

`resolve(cfg.surface)` turns a config into a `Landscape`: what the particles minimise, where they
start, the region drawn and the known minima; `check` is the validation `config.validate` runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swarmcli import choices, formula
from swarmcli.checks import check_choice, check_number
from swarmcli.errors import SwarmError

# Himmelblau's four minima (all f = 0), to 6 decimals.
_HIMMELBLAU_MINIMA = [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186),
                      (3.584428, -1.848126)]


@dataclass(frozen=True)
class Named:
    """A shipped surface: its formula (bowl's takes `condition`), default start and drawn region,
    its minima (None: none known in closed form)."""

    expr: str
    start: tuple[float, ...]
    domain: tuple[float, ...]
    minima: list[tuple[float, ...]] | None


NAMED = {
    # seed 003's toy surface; start and drawn region as the lecture has them
    "beale": Named("(1.5 - x + x*y)**2 + (2.25 - x + x*y**2)**2 + (2.625 - x + x*y**3)**2",
                   (0.8, 1.6), (-2.0, 3.5, -3.5, 2.0), [(3.0, 0.5)]),
    "rosenbrock": Named("(1 - x)**2 + 100*(y - x**2)**2", (-1.2, 1.0), (-2.0, 2.0, -1.0, 3.0),
                        [(1.0, 1.0)]),
    "himmelblau": Named("(x**2 + y - 11)**2 + (x + y**2 - 7)**2", (0.0, 0.0),
                        (-5.0, 5.0, -5.0, 5.0), _HIMMELBLAU_MINIMA),
    "bowl": Named("(x**2 + {condition!r}*y**2)/2", (-4.0, 2.0), (-5.0, 5.0, -3.0, 3.0),
                  [(0.0, 0.0)]),
    # bounded below: a saddle at the origin between two minima at y = +-1 (f = -1/4), so a path
    # that stalls on the saddle and one that escapes can be told apart
    "saddle": Named("x**2 + y**4/4 - y**2/2", (-2.0, 0.001), (-2.5, 2.5, -2.0, 2.0),
                    [(0.0, 1.0), (0.0, -1.0)]),
    "rastrigin": Named("20 + x**2 - 10*cos(2*pi*x) + y**2 - 10*cos(2*pi*y)", (3.0, 2.5),
                       (-5.12, 5.12, -5.12, 5.12), [(0.0, 0.0)]),
}
DATA = ("mean", "line")
assert set(NAMED) | set(DATA) == set(choices.SURFACES)

MAX_GRID = 2001  # points per side of the drawn surface (2001^2 float64 = 32 MB)
MAX_SAMPLES = 10**6


@dataclass
class Landscape:
    """What a landscape run needs, in plain numpy: `expr` for a formula surface, else `samples`
    (mean: x_i; line: x_i and y_i) for a data loss."""

    name: str  # a shipped name, or "expr"
    dims: int  # 1 (mean) or 2
    start: np.ndarray  # [dims]
    domain: tuple[float, ...]  # [lo, hi] per dimension
    minima: np.ndarray  # [k, dims]; the empirical mean, the least-squares line, the grid's lowest
    expr: str | None = None
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # scalars the figures mark (true mean, ...)

    def numpy_loss(self, *coords: np.ndarray) -> np.ndarray:
        """The loss at points given per dimension (any broadcastable shapes), float64; for
        `mean` with a sample per particle, [particles, *shape]."""
        if self.expr is not None:
            return formula.compile_formula(self.expr, "surface.expr", ("x", "y"))(*coords)
        if self.name == "mean":
            xs = self.samples["x"]
            mu = np.asarray(coords[0], dtype=np.float64)
            if xs.ndim == 2:  # [particles, n]: one curve per particle
                rows = xs.reshape(xs.shape[0], *([1] * mu.ndim), xs.shape[1])
                return ((mu[None, ..., None] - rows) ** 2).mean(-1)
            return ((mu[..., None] - xs) ** 2).mean(-1)
        w, b = (np.asarray(c, dtype=np.float64)[..., None] for c in coords)
        return ((w * self.samples["x"] + b - self.samples["y"]) ** 2).mean(-1)

    def mesh(self, points: int) -> tuple[np.ndarray, ...]:
        """The drawn surface: (x, z) for one dimension, (x, y, z) on a points x points mesh for
        two; non-finite values stay as they are (the figure masks them)."""
        axes = [np.linspace(self.domain[2 * d], self.domain[2 * d + 1], points)
                for d in range(self.dims)]
        if self.dims == 1:
            return axes[0], self.numpy_loss(axes[0])
        gx, gy = np.meshgrid(*axes)
        if self.expr is not None:
            return gx, gy, self.numpy_loss(gx, gy)
        z = np.stack([self.numpy_loss(gx[i], gy[i]) for i in range(points)])  # row by row
        return gx, gy, z


def samples(s, bees: int = 1) -> dict[str, np.ndarray]:
    """The data of a data landscape, drawn once: `mean`, n ~ N(true_mean, sd^2) ([bees, n] when
    each particle draws its own, particle i from the seed (sample_seed, i)); `line`, x uniform
    on [-2, 2] and y = w x + b + N(0, sd^2). The first n of a larger n are the same samples
    (numpy's generator fills in order)."""
    rng = np.random.default_rng(s.sample_seed)
    if s.name == "mean" and s.resample:
        return {"x": np.stack([s.true_mean + s.sd * np.random.default_rng(
            [s.sample_seed, i]).standard_normal(s.n) for i in range(bees)])}
    if s.name == "mean":
        return {"x": s.true_mean + s.sd * rng.standard_normal(s.n)}
    x = rng.uniform(-2.0, 2.0, s.n)
    w, b = s.true_line
    return {"x": x, "y": w * x + b + s.sd * rng.standard_normal(s.n)}


def resolve(s, bees: int = 1) -> Landscape:
    """A checked SurfaceConfig as the run uses it (`bees`: particles per cell, for data drawn
    per particle)."""
    if s.expr is not None:
        start = tuple(s.start) if s.start is not None else (0.0, 0.0)
        domain = tuple(s.domain) if s.domain is not None else (-5.0, 5.0, -5.0, 5.0)
        land = Landscape("expr", 2, np.asarray(start, float), domain, np.zeros((0, 2)), s.expr)
        gx, gy, z = land.mesh(s.grid)
        if np.isfinite(z).any():  # no closed form: the lowest point of the drawn grid
            i = np.nanargmin(np.where(np.isfinite(z), z, np.nan))
            land.minima = np.array([[gx.flat[i], gy.flat[i]]])
            land.info["minimum"] = "lowest on the drawn grid"
        return land
    if s.name in NAMED:
        named = NAMED[s.name]
        expr = named.expr.format(condition=float(s.condition))
        start = tuple(s.start) if s.start is not None else named.start
        domain = tuple(s.domain) if s.domain is not None else named.domain
        return Landscape(s.name, 2, np.asarray(start, float), domain,
                         np.asarray(named.minima, float), expr)
    data = samples(s, bees)
    if s.name == "mean":
        start = np.asarray(s.start if s.start is not None else [-0.5], float)
        emp = data["x"].mean(-1).reshape(-1, 1)  # [1 or particles, 1]
        marks = [float(start[0]), *emp[:, 0], s.true_mean]
        domain = tuple(s.domain) if s.domain is not None else (min(marks) - 1.5,
                                                               max(marks) + 1.5)
        info = {"true_mean": float(s.true_mean)}
        if not s.resample:
            info["empirical_mean"] = float(emp[0, 0])
        return Landscape("mean", 1, start, tuple(map(float, domain)), emp, samples=data,
                         info=info)
    a = np.stack([data["x"], np.ones_like(data["x"])], axis=1)
    best = np.linalg.lstsq(a, data["y"], rcond=None)[0]
    start = np.asarray(s.start if s.start is not None else [0.0, 0.0], float)
    pts = np.stack([start, best, np.asarray(s.true_line, float)])
    lo, hi = pts.min(0) - 1.5, pts.max(0) + 1.5
    domain = tuple(s.domain) if s.domain is not None else (lo[0], hi[0], lo[1], hi[1])
    return Landscape("line", 2, start, tuple(map(float, domain)), best[None, :], samples=data,
                     info={"true_line": [float(v) for v in s.true_line]})


def check(s) -> None:
    """Every surface.* key, before anything is built: one line naming the bad value."""
    if s.expr is None:
        check_choice("surface.name", s.name, choices.SURFACES)
    dims = 1 if s.expr is None and s.name == "mean" else 2
    if s.start is not None:
        if len(s.start) != dims:
            raise SwarmError(f"surface.start={list(s.start)!r} must be {dims} number"
                             f"{'s' * (dims > 1)} for this surface")
        for v in s.start:
            check_number("surface.start", v)
    if s.domain is not None:
        d = list(s.domain)
        if len(d) != 2 * dims or not all(isinstance(v, (int, float)) and np.isfinite(v)
                                         for v in d) \
                or not all(d[2 * i] < d[2 * i + 1] for i in range(dims)):
            shape = "[lo, hi]" if dims == 1 else "[x_lo, x_hi, y_lo, y_hi]"
            raise SwarmError(f"surface.domain={d!r} must be {shape} with lo < hi")
    check_number("surface.spread", s.spread, low=0)
    check_number("surface.condition", s.condition, low=0, low_open=True)
    check_number("surface.grid", s.grid, low=2, high=MAX_GRID, integer=True)
    check_number("surface.n", s.n, low=1, high=MAX_SAMPLES, integer=True)
    check_number("surface.true_mean", s.true_mean)
    check_number("surface.sd", s.sd, low=0)
    check_number("surface.sample_seed", s.sample_seed, low=0, integer=True)
    if s.resample and (s.expr is not None or s.name != "mean"):
        raise SwarmError("surface.resample=true needs surface.name=mean (one sample per "
                         "particle of the mean landscape)")
    if len(s.true_line) != 2:
        raise SwarmError(f"surface.true_line={list(s.true_line)!r} must be [w, b]")
    for v in s.true_line:
        check_number("surface.true_line", v)
    if s.expr is not None:
        f = formula.compile_formula(s.expr, "surface.expr", ("x", "y"))
        start = s.start if s.start is not None else (0.0, 0.0)
        v = float(f(np.float64(start[0]), np.float64(start[1])))
        if not np.isfinite(v):
            raise SwarmError(f"surface.expr: {s.expr!r} is {v} at the start {list(start)}; "
                             "change the formula or surface.start")
