"""Config composition: every spelling of a choice gives the same settings."""

from __future__ import annotations

import pytest
from conftest import compose_config
from omegaconf import OmegaConf

from swarmcli import config, optim


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_optim_name_override_equals_optim_group(name):
    """`optim.name=X` and `optim=X` compose the same config, so X gets exactly its defaults."""
    by_key = OmegaConf.to_container(compose_config([f"optim.name={name}"]))
    by_group = OmegaConf.to_container(compose_config([f"optim={name}"]))
    assert by_key == by_group
    typed = config.validate(config.to_schema(by_key))
    assert optim.effective(typed.optim) == {**optim.effective(typed.optim), **optim.DEFAULTS[name]}


def test_adamw_takes_its_own_weight_decay():
    """adamw's decoupled weight decay 0.01 is torch's default; adam has none."""
    eff = {n: optim.effective(config.to_schema(compose_config([f"optim.name={n}"])).optim)
           for n in ("adam", "adamw")}
    assert eff["adamw"]["weight_decay"] == 0.01
    assert eff["adam"]["weight_decay"] == 0.0
    hyper = optim.hyper_parameters("adamw", [config.to_schema(
        compose_config(["optim.name=adamw"])).optim])
    assert hyper["weight_decay"].item() == 0.01


def test_explicit_value_beats_the_optimizers_default():
    typed = config.to_schema(compose_config(["optim.name=adagrad", "optim.eps=1e-6"]))
    assert optim.effective(typed.optim)["eps"] == 1e-6
    assert optim.effective(config.to_schema(compose_config(["optim=adagrad"])).optim)["eps"] \
        == 1e-10
