"""Engine inputs for tests: a CellGroup from a few keywords, the rest at the engine's defaults."""

from __future__ import annotations

from swarmcli.engine import parts


def make_group(*, depth, widths, activation, optimizer, hyper, x, y, epochs, seed, bees,
               flags=None, frames=(), dtype="float32", record=("ypred",), network=None,
               data=None, **part_fields) -> parts.CellGroup:
    """`activation` is one name for every cell or a list, one per cell; `hyper` maps each
    per-bee hyper-parameter to one value per cell. `network`/`data` add fields to those parts;
    `loss`, `stopping`, `schedule`, `runtime` are whole parts."""
    acts = [activation] * len(widths) if isinstance(activation, str) else list(activation)
    schedule = part_fields.pop("schedule", parts.Schedule())
    return parts.CellGroup(
        network=parts.Network(depth=depth, widths=tuple(widths), activations=tuple(acts),
                              **(network or {})),
        data=parts.Data(x=x, y=y, **(data or {})),
        optimizer=parts.Optimizer(optimizer, dict(hyper), dict(flags or {}), schedule),
        bees=bees, epochs=epochs, seed=seed,
        recording=parts.Recording(tuple(record), tuple(frames)),
        runtime=part_fields.pop("runtime", parts.Runtime(dtype=dtype)), **part_fields)
