"""Config composition: every spelling of a choice gives the same settings."""

from __future__ import annotations

import pytest
from conftest import compose_config
from omegaconf import OmegaConf

from swarmcli import choices, config, optim


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_optim_name_override_equals_optim_group(name):
    """`optim.name=X` and `optim=X` compose the same config, so X gets exactly its defaults."""
    by_key = OmegaConf.to_container(compose_config([f"optim.name={name}"]))
    by_group = OmegaConf.to_container(compose_config([f"optim={name}"]))
    assert by_key == by_group
    typed = config.validate(config.to_schema(by_key))
    eff = choices.effective(typed.optim)
    assert eff == {**eff, **optim.DEFAULTS[name]}


def test_adamw_takes_its_own_weight_decay():
    """adamw's decoupled weight decay 0.01 is torch's default; adam has none."""
    eff = {n: choices.effective(config.to_schema(compose_config([f"optim.name={n}"])).optim)
           for n in ("adam", "adamw")}
    assert eff["adamw"]["weight_decay"] == 0.01
    assert eff["adam"]["weight_decay"] == 0.0
    hyper = optim.hyper_parameters("adamw", [config.to_schema(
        compose_config(["optim.name=adamw"])).optim])
    assert hyper["weight_decay"].item() == 0.01


def test_explicit_value_beats_the_optimizers_default():
    typed = config.to_schema(compose_config(["optim.name=adagrad", "optim.eps=1e-6"]))
    assert choices.effective(typed.optim)["eps"] == 1e-6
    assert choices.effective(config.to_schema(compose_config(["optim=adagrad"])).optim)["eps"] \
        == 1e-10


def test_config_group_files_set_only_what_differs_from_the_schema():
    """Defaults have one owner, the schema's dataclasses: a group file (target, model, train,
    optim) restating a default would be a second copy that can drift from it."""
    import dataclasses
    from pathlib import Path

    import yaml

    root = Path(config.__file__).resolve().parent.parent / "configs"
    schema = config.SwarmConfig()
    restated = []
    for group in ("target", "model", "train", "optim"):
        defaults = dataclasses.asdict(getattr(schema, group))
        for path in sorted((root / group).glob("*.yaml")):
            for key, value in (yaml.safe_load(path.read_text()) or {}).items():
                if key != "name" and key in defaults and defaults[key] == value:
                    restated.append(f"{group}/{path.name}: {key}={value!r}")
    assert not restated, restated


def test_sweep_values_are_typed_as_the_schema_types_them_fast_or_not():
    """grid._typed takes a plain value of its field's plain type as it is; everything else goes
    through OmegaConf. Both routes must agree on every plain field for every kind of value."""
    import dataclasses

    from omegaconf.errors import OmegaConfBaseException

    from swarmcli import grid

    def typed(route, key, value):
        try:
            got = route({}, key, value)
            return type(got), got
        except OmegaConfBaseException as e:
            return "refused", type(e)

    fast = 0
    for section in ("target", "model", "optim", "schedule", "train", "surface"):
        schema = config.SwarmConfig.__dataclass_fields__[section].default_factory()
        for f in dataclasses.fields(schema):
            if grid._field_type(section, f.name) is None:
                continue
            for value in (3, 2.5, "relu", True, None, "${model.width}"):
                key = f"{section}.{f.name}"
                want = typed(grid._typed_by_schema, key, value)
                if "${" in str(value) and want[0] == "refused":
                    continue  # an interpolation with nothing to resolve it: refused either way
                assert typed(grid._typed, key, value) == want, (key, value)
                fast += want[0] != "refused"
    assert fast > 50
