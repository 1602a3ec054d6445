"""Shared fixtures: compose real configs with Hydra's compose API and train tiny runs."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from swarmcli import config, runner

# Tiny tensors: one intra-op thread is faster, and keeps timings sane when pytest shares the CPU.
torch.set_num_threads(1)


compose_config = config.compose

SWARM = str(Path(sys.executable).with_name("swarm"))  # the installed CLI
CLI_TINY = ["train.epochs=5", "train.bees=2", "progress=false", "render.what=[none]"]


def swarm(*args: str, cwd=None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`swarm ARGS` in a subprocess, one torch thread; `env` adds to (or overrides) os.environ."""
    return subprocess.run([SWARM, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def ctrl_c_reaches_it() -> None:
    """Popen's preexec_fn for a child a test sends Ctrl-C: a shell starts background jobs (and
    so maybe this test run) with SIGINT ignored, which children inherit, and Python then leaves
    Ctrl-C ignored; a terminal's Ctrl-C is what the test means to send."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


TINY = ["train.epochs=6", "train.bees=3", "progress=false"]


@pytest.fixture
def tiny_run(tmp_path):
    """Train a tiny run into tmp_path/NAME and return its directory."""

    def make(*overrides, name="run") -> Path:
        cfg = compose_config([*TINY, *overrides])
        run_dir = tmp_path / name
        runner.run(cfg, run_dir, out=io.StringIO())
        return run_dir

    return make
