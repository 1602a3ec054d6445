"""Shared fixtures: compose real configs with Hydra's compose API and train tiny runs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from swarmcli import config, runner

# Tiny tensors: one intra-op thread is faster, and keeps timings sane when pytest shares the CPU.
torch.set_num_threads(1)


compose_config = config.compose


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
