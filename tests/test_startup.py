"""Commands that train nothing import no torch: a user waits for them at the prompt, and bash
runs one on every Tab. Each runs in a fresh process that reports the heavy modules it loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import SWARM

PROBE = """
import json, os, sys
from swarmcli import cli
sys.argv[0] = {swarm!r}
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
with open(os.environ["PROBE_OUT"], "w") as f:
    json.dump([m for m in ("torch", "matplotlib", "numpy") if m in sys.modules], f)
"""


def loaded(args: list[str], tmp_path, env: dict | None = None) -> set[str]:
    """The heavy modules `swarm ARGS` imported (run in-process in a fresh interpreter)."""
    out = tmp_path / "probe.json"
    proc = subprocess.run([sys.executable, "-c", PROBE.format(swarm=SWARM), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {}), "PROBE_OUT": str(out)})
    assert out.exists(), proc.stderr
    return set(json.loads(out.read_text()))


def completion_env(line: str) -> dict:
    return {"COMP_LINE": line, "COMP_POINT": str(len(line))}


@pytest.mark.parametrize("args, env, absent", [
    (["--help"], {}, {"torch", "matplotlib", "numpy"}),
    (["list"], {}, {"torch", "matplotlib"}),
    (["run", "--help"], {}, {"torch", "matplotlib"}),
    (["run", "--cfg", "job", "+sweep=width_activation"], {}, {"torch", "matplotlib", "numpy"}),
    (["-sc", "query=bash"], completion_env("swarm r"), {"torch", "matplotlib", "numpy"}),
    (["-sc", "query=bash"], completion_env("swarm run model.activation="),
     {"torch", "matplotlib", "numpy"}),
    (["-sc", "query=bash"], completion_env("swarm run render.what=[hi"),
     {"torch", "matplotlib", "numpy"}),
    (["-sc", "query=bash"], completion_env("swarm run mod"), {"torch", "matplotlib"}),
    (["run", "-sc", "install=bash"], {}, {"torch", "matplotlib"}),
    (["run", "model.width=0"], {}, {"matplotlib"}),  # validation happens in the job: torch is fine
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_commands_that_do_not_train_import_no_torch(args, env, absent, tmp_path):
    assert not loaded(args, tmp_path, env) & absent


def test_render_and_collect_import_no_torch(tiny_run, tmp_path):
    run_dir = tiny_run(name="multi/0")
    assert "torch" not in loaded(["render", str(run_dir), "what=[loss]"], tmp_path)
    assert (run_dir / "figures").is_dir()  # it did render
    assert "torch" not in loaded(["collect", str(run_dir.parent), "--no-render"], tmp_path)


def test_a_run_still_trains(tmp_path):
    """The lazy imports reach the engine when a job trains."""
    got = loaded(["run", "train.epochs=2", "train.bees=2", "progress=false",
                  "render.what=[none]", "hydra.run.dir=r"], tmp_path)
    assert "torch" in got and (tmp_path / "r" / "summary.csv").exists()
