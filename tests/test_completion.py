"""Tab completion as bash asks for it: `swarm -sc query=bash` with COMP_LINE and COMP_POINT set,
and once through the real script that `swarm run -sc install=bash` prints."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from conftest import SWARM, swarm

from swarmcli import choices, cli, completion, config


def complete(line: str, cwd, monkeypatch, capsys) -> list[str]:
    """The candidates `swarm -sc query=bash` prints for `line` (cursor at its end)."""
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("COMP_LINE", line)
    monkeypatch.setenv("COMP_POINT", str(len(line)))
    monkeypatch.setattr(sys, "argv", [SWARM])
    capsys.readouterr()
    with contextlib.suppress(SystemExit):
        cli.main(["-sc", "query=bash"])
    return capsys.readouterr().out.split()


@pytest.fixture
def comp(tmp_path, monkeypatch, capsys):
    return lambda line, cwd=tmp_path: complete(line, cwd, monkeypatch, capsys)


def test_subcommands(comp):
    assert comp("swarm r") == ["run", "rerun", "render", "report"]
    assert comp("swarm co") == ["collect"]
    assert comp("swarm ") == ["run", "rerun", "render", "collect", "report", "list"]


@pytest.mark.parametrize("key, names", [
    ("model.activation", choices.ACTIVATIONS), ("optim.name", choices.OPTIMIZERS),
    ("model.init", choices.INITS), ("train.loss", ("mse", "mae", "huber")),
    ("schedule.name", tuple(choices.SCHEDULES)), ("train.device", ("auto", "cpu", "cuda")),
    ("train.dtype", ("float32", "float64")), ("train.compile", ("auto", "on", "off")),
    ("target.name", ("sin", "cos", "exp", "abs", "step", "noisy_sin")),
    ("render.format", ("mp4", "gif")), ("progress", ("true", "false")),
])
def test_every_choice_of_an_enumerated_key(comp, key, names):
    assert comp(f"swarm run {key}=") == [f"{key}={n}" for n in names]
    assert len(names) > 1  # more than the current value, which is all Hydra offers


def test_a_typed_prefix_and_the_next_item_of_a_sweep_or_list(comp):
    assert comp("swarm run model.activation=ta") == ["model.activation=tanh",
                                                      "model.activation=tanhshrink"]
    assert comp("swarm run -m optim.name=sgd,ada") == ["optim.name=sgd,adam",
                                                        "optim.name=sgd,adamw",
                                                        "optim.name=sgd,adagrad",
                                                        "optim.name=sgd,adamax"]
    assert comp("swarm run +sweep.grid.model.activation=[relu,s") == [
        "+sweep.grid.model.activation=[relu,sigmoid", "+sweep.grid.model.activation=[relu,silu",
        "+sweep.grid.model.activation=[relu,softplus", "+sweep.grid.model.activation=[relu,sin"]
    assert comp("swarm run train.record=[ypred,w") == ["train.record=[ypred,weights"]
    assert "render.what=[hive_animation" in comp("swarm run render.what=[h")


def test_config_groups_and_keys_come_from_hydra(comp):
    assert comp("swarm run +sweep=wi") == ["+sweep=width_activation"]
    assert "model." in comp("swarm run mod")
    assert comp("swarm rerun outputs/x optim.lr") == ["optim.lr=", "optim.lr_decay="]
    launchers = comp("swarm run hydra/launcher=")
    assert {"hydra/launcher=basic", "hydra/launcher=slurm_cpu"} <= set(launchers)


def test_run_dirs_for_render_rerun_and_collect(tmp_path, comp):
    single = tmp_path / "outputs" / "2026-12-02" / "10-00-00"
    multi = tmp_path / "multirun" / "2026-12-02" / "12-00-00"
    for d in (single / ".hydra", multi / "0" / ".hydra", multi / "0" / "cells" / "000",
              tmp_path / "notes"):
        d.mkdir(parents=True)
    for f in (single / "swarm.json", single / ".hydra" / "config.yaml", multi / "multirun.yaml",
              multi / "0" / "swarm.json", multi / "0" / ".hydra" / "config.yaml"):
        f.write_text("{}")
    dirs = ["multirun/", "notes/", "outputs/"]
    assert comp("swarm render ") == [*dirs[:1], "multirun/2026-12-02/12-00-00/0", *dirs[1:],
                                     "outputs/2026-12-02/10-00-00"]
    assert comp("swarm rerun out") == ["outputs/", "outputs/2026-12-02/10-00-00"]
    assert comp("swarm collect ") == ["multirun/", "multirun/2026-12-02/12-00-00", "notes/",
                                      "outputs/"]
    assert comp("swarm render outputs/2026-12-02/") == ["outputs/2026-12-02/10-00-00/",
                                                        "outputs/2026-12-02/10-00-00"]
    assert comp(f"swarm render {tmp_path}/no") == [f"{tmp_path}/notes/"]
    assert comp("swarm render outputs/2026-12-02/10-00-00 fo") == ["format="]
    assert comp("swarm render outputs/2026-12-02/10-00-00 format=") == ["format=mp4",
                                                                         "format=gif"]
    assert comp("swarm collect multirun/2026-12-02/12-00-00 --no") == ["--no-render"]


def test_completing_mid_line_looks_at_the_word_under_the_cursor(monkeypatch, capsys, tmp_path):
    line = "swarm run optim.name=ad model.width=3"
    monkeypatch.setenv("COMP_LINE", line)
    monkeypatch.setenv("COMP_POINT", str(len("swarm run optim.name=ad")))
    capsys.readouterr()
    cli.main(["-sc", "query=bash"])
    assert capsys.readouterr().out.split()[0] == "optim.name=adam"


def test_every_enumerated_and_boolean_key_of_the_schema_completes():
    """A key added to the schema with a fixed set of values needs its choices here too."""
    free = {"target.expr", "sweep.name", "sweep.lesson"}  # strings without a fixed set of values

    def walk(cls, prefix=""):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                yield from walk(hints[f.name], f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}", hints[f.name]

    for key, hint in walk(config.SwarmConfig):
        if hint in (str, list[str], bool) and key not in free:
            assert completion.options(key), key


def test_render_names_match_the_renderers():
    from swarmcli import render

    # every name a config may give has a drawer, and every drawer a name
    assert set(choices.RENDER_WHAT) == {*render.STILLS, *render.ANIMATIONS, "none"}


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_through_the_installed_bash_script(tmp_path):
    (tmp_path / "outputs" / "run").mkdir(parents=True)
    (tmp_path / "outputs" / "run" / "swarm.json").write_text("{}")
    script = swarm("run", "-sc", "install=bash", cwd=tmp_path).stdout
    bin_dir = str(Path(SWARM).parent)
    probe = script + """
comp() { COMP_LINE="$1"; COMP_POINT=${#1}; read -ra COMP_WORDS <<< "$1"
  [[ "$1" == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]}-1))
  COMPREPLY=(); hydra_bash_completion; echo "${COMPREPLY[*]}"; }
comp "swarm re"
comp "swarm run optim.name=rm"
comp "swarm render out"
"""
    proc = subprocess.run(["bash", "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert proc.stdout.splitlines() == ["rerun render report", "optim.name=rmsprop",
                                        "outputs/ outputs/run"], proc.stderr
