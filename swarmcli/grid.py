"""Sweep expansion: a config with a `sweep` becomes cells, and cells become groups.

A grid axis is one config key and its list of values; a paired axis is several keys whose lists
vary together (seed 001's 1x60 vs 2x10). Cells are the product of the axes, first axis outermost.
Cells that differ only in width, activation or optimizer hyper-parameters train as one group: width
by zero-padding, activation by slices of the bee axis, hyper-parameters as per-bee tensors.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
from dataclasses import dataclass

from omegaconf import OmegaConf

from swarmcli import choices, config
from swarmcli.config import SwarmConfig, SwarmError

# Keys that may differ between the cells of one group (engine.parts: widths, activations and the
# optimizers' per-bee numbers); every other key must match for cells to train together.
PER_CELL = ("model.width", "model.activation",
            *sorted({f"optim.{k}" for d in choices.DEFAULTS.values() for k in d}
                    - {f"optim.{f}" for f in choices.OPTIM_FLAGS}))


@dataclass(frozen=True)
class Axis:
    name: str  # the config key, or the paired group's name
    keys: tuple[str, ...]
    values: tuple[tuple, ...]  # one tuple of key values per position on the axis
    labels: tuple[str, ...] | None = None  # the sweep's `labels:` for this axis, if given

    def label(self, i: int) -> str:
        """The sweep's own label, else the value; for a paired axis only the keys that vary
        along it (a figure title should say what differs, not repeat what does not)."""
        if self.labels is not None:
            return str(self.labels[i])
        vals = self.values[i]
        if len(self.keys) == 1:
            return str(vals[0])
        varying = [j for j in range(len(self.keys)) if len({repr(v[j]) for v in self.values}) > 1]
        return ", ".join(f"{self.keys[j].rsplit('.', 1)[-1]}={vals[j]}" for j in varying)


@dataclass
class Cell:
    index: int
    position: tuple[int, ...]  # index along each axis
    labels: dict[str, str]  # axis name -> value label
    values: dict[str, object]  # dotted key -> value
    cfg: SwarmConfig


def _flatten(node, prefix: str, where: str) -> dict[str, list]:
    out = {}
    for k, v in node.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key, where))
        elif isinstance(v, list):
            if not v:
                raise SwarmError(f"{where}.{key} is an empty list; give at least one value")
            out[key] = v
        else:
            raise SwarmError(f"{where}.{key}={v!r} must be a list of values")
    return out


def _check_key(key: str, where: str) -> None:
    known = [f"{g}.{f.name}" for g in ("target", "model", "optim", "schedule", "train", "surface")
             for f in dataclasses.fields(SwarmConfig.__dataclass_fields__[g].default_factory())]
    if key not in known:
        raise SwarmError(f"{where} key {key!r} is not a config key; valid: {', '.join(known)}")


def axes(cfg) -> list[Axis]:
    """The sweep's axes, in the order the config lists them."""
    sweep = OmegaConf.to_container(cfg.sweep, resolve=True) if not isinstance(cfg.sweep, dict) \
        else cfg.sweep
    out = []
    for key, vals in _flatten(sweep.get("grid") or {}, "", "sweep.grid").items():
        _check_key(key, "sweep.grid")
        out.append(Axis(key, (key,), tuple((v,) for v in vals)))
    for name, group in (sweep.get("paired") or {}).items():
        if not isinstance(group, dict):
            raise SwarmError(f"sweep.paired.{name} must map config keys to lists")
        flat = _flatten(group, "", f"sweep.paired.{name}")
        for key in flat:
            _check_key(key, f"sweep.paired.{name}")
        lengths = {len(v) for v in flat.values()}
        if len(lengths) != 1:
            raise SwarmError(f"sweep.paired.{name} lists must have equal lengths, got "
                             f"{ {k: len(v) for k, v in flat.items()} }")
        out.append(Axis(name, tuple(flat), tuple(zip(*flat.values()))))
    labels = sweep.get("labels") or {}
    for name, given in labels.items():
        hit = [a for a in out if a.name == name]
        if not hit:
            raise SwarmError(f"sweep.labels.{name} names no axis; axes: "
                             f"{', '.join(a.name for a in out) or 'none'}")
        if not isinstance(given, list) or len(given) != len(hit[0].values):
            raise SwarmError(f"sweep.labels.{name} must list {len(hit[0].values)} labels, one "
                             f"per value of the axis")
    out = [dataclasses.replace(a, labels=tuple(map(str, labels[a.name])))
           if a.name in labels else a for a in out]
    seen = [k for a in out for k in a.keys]
    dup = {k for k in seen if seen.count(k) > 1}
    if dup:
        raise SwarmError(f"sweep sets {sorted(dup)} on more than one axis")
    return out


def expand(cfg) -> tuple[list[Axis], list[Cell]]:
    """All cells of the sweep, each with its own validated config.

    OmegaConf types the base config once and each axis value once; a cell is then the base with
    its values replaced (plain frozen-in-practice dataclasses sharing what they do not change), so
    config handling costs well under a millisecond per cell; an OmegaConf merge per cell cost
    ~60 ms and dominated large grids."""
    from omegaconf.errors import OmegaConfBaseException

    ax = axes(cfg)
    sections: dict[str, object] = {}  # an OmegaConf schema per config section an axis touches
    try:
        if OmegaConf.is_config(cfg) and OmegaConf.get_type(cfg) is SwarmConfig:
            base = OmegaConf.to_object(cfg)  # Hydra composed it on the schema: typed already
        else:
            base = config.to_schema(cfg)
        typed = [[tuple(_typed(sections, k, v) for k, v in zip(a.keys, vals)) for vals in a.values]
                 for a in ax]
    except OmegaConfBaseException as e:
        raise SwarmError(config.one_line(e)) from None
    cells = []
    for i, position in enumerate(itertools.product(*(range(len(a.values)) for a in ax))):
        cell_cfg, values = base, {}
        for a, p, vals in zip(ax, position, typed):
            for key, raw, v in zip(a.keys, a.values[p], vals[p]):
                cell_cfg = _replaced(cell_cfg, key.split("."), v)
                values[key] = raw
        labels = {a.name: a.label(p) for a, p in zip(ax, position)}
        cells.append(Cell(i, position, labels, values, config.validate(cell_cfg)))
    return ax, cells


_PLAIN = {"int": int, "float": float, "str": str, "bool": bool}


def _typed(sections: dict, key: str, value):
    """`value` as the schema types `key` (1 -> 1.0 for a float; a bad type raises). A plain
    value already of its field's plain type is taken as it is: OmegaConf would return it
    unchanged, at a third of a millisecond each."""
    section, rest = key.split(".", 1)
    field = _field_type(section, rest)
    plain = field is not None and (type(value) is field or field is float and type(value) is int)
    try:
        if plain and not (isinstance(value, str) and ("${" in value or value == "???")):
            return field(value)
        return _typed_by_schema(sections, key, value)
    except OverflowError:  # an int with hundreds of digits, for a float
        text = str(value)
        raise SwarmError(f"sweep value {key}={text[:12]}...({len(text)} digits) is past the "
                         f"range of a float (about 1.8e308)") from None


def _typed_by_schema(sections: dict, key: str, value):
    section, rest = key.split(".", 1)
    if section not in sections:
        sections[section] = OmegaConf.structured(SwarmConfig.__dataclass_fields__[section]
                                                 .default_factory())
    node = sections[section]
    OmegaConf.update(node, rest, value, merge=False)
    got = OmegaConf.select(node, rest)
    return OmegaConf.to_object(got) if OmegaConf.is_config(got) else got


@functools.cache
def _field_type(section: str, name: str) -> type | None:
    """The plain Python type of config field section.name (`float` for `float | None`: a
    float value is typed alike), or None (nested, list, Any)."""
    fields = {f.name: f for f in dataclasses.fields(
        SwarmConfig.__dataclass_fields__[section].default_factory())}
    return _PLAIN.get(fields[name].type.removesuffix(" | None")) if name in fields else None


def _replaced(obj, path: list[str], value):
    """A copy of `obj` with the value at `path` replaced; the parts off the path are shared."""
    head, *rest = path
    new = _replaced(getattr(obj, head), rest, value) if rest else copy.deepcopy(value)
    return dataclasses.replace(obj, **{head: new})


def group_key(cell: Cell) -> str:
    """Everything that must match for cells to train in one group (the config less its
    `PER_CELL` keys, sweep, render and progress), as text: dataclass reprs are exact and cheap."""
    parts = []
    for f in dataclasses.fields(cell.cfg):
        if f.name in ("sweep", "render", "progress"):
            continue
        value = getattr(cell.cfg, f.name)
        blank = {k.split(".")[1]: None for k in PER_CELL if k.split(".")[0] == f.name}
        parts.append(repr(dataclasses.replace(value, **blank) if blank else value))
    return "\n".join(parts)


def groups(cells: list[Cell]) -> list[list[Cell]]:
    """Group cells that can train together, in order of first appearance; within a group, cells
    of one activation sit next to each other (one kernel per activation)."""
    found: dict[str, list[Cell]] = {}
    for c in cells:
        found.setdefault(group_key(c), []).append(c)
    out = []
    for group in found.values():
        order = list(dict.fromkeys(c.cfg.model.activation for c in group))
        out.append(sorted(group, key=lambda c: order.index(c.cfg.model.activation)))
    return out
