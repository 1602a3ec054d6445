"""Where and how a group trains: the device, chunks of bees that keep the working set in cache,
the allocator's behaviour, and the random generators of dropout and mini-batch shuffling (seeded
by the run's seed, so every run is reproducible)."""

from __future__ import annotations

import ctypes
import functools
import os

import numpy as np
import torch

from swarmcli.engine.parts import CellGroup


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is available (choices: auto, cpu)")
    return device


def default_chunk(group: CellGroup, device: str) -> int:
    """Bees per chunk: all of them on a GPU; on a CPU, enough that one activation tensor
    [bees, width, points] stays around a few MB, to keep the epoch loop in cache."""
    if device != "cpu":
        return group.total_bees
    item = 4 if group.runtime.dtype == "float32" else 8
    per_bee = len(group.data.x) * group.network.width * item
    return max(1, min(group.total_bees, group.runtime.chunk_bytes // per_bee))


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed buffers for reuse. By default it returns a freed buffer of more
    than 128 KB to the OS (or trims the heap), and the next epoch faults the memory back in page
    by page: measured here up to a million page faults and 2-5x the time per run for 5,000 bees,
    depending on the heap's history. Only on glibc (Linux); elsewhere nothing changes."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def default_dropout_masks(group: CellGroup, device, dtype):
    """Masks drawn from generators seeded by the run's seed: reproducible. Recording
    (epoch -1: the train-mode predictions of a frame) draws from a generator of its own, so what
    and where a run records never changes how it trains."""
    train_gen = torch.Generator(device=device).manual_seed(group.seed * 7919 + 17)
    record_gen = torch.Generator(device=device).manual_seed(group.seed * 7919 + 18)
    p = group.network.dropout
    keep = 1.0 - p

    def draw(epoch: int, step: int, layer: int, shape) -> torch.Tensor:
        gen = record_gen if epoch < 0 else train_gen
        u = torch.rand(shape, generator=gen, device=device, dtype=dtype)
        return (u >= p).to(dtype) / keep

    return draw


def shuffle_generators(group: CellGroup, lo: int, hi: int):
    """One generator per bee, seeded by (seed, bee index in its cell): each bee its own order."""
    gens = []
    for i in range(lo, hi):
        key = np.random.SeedSequence([group.seed, 2, i % group.bees]).generate_state(1)[0]
        gens.append(torch.Generator().manual_seed(int(key)))
    return gens


def keep_compile_cache() -> str:
    """Point Inductor's on-disk cache at $XDG_CACHE_HOME/swarm/torchinductor (~/.cache/...)
    unless TORCHINDUCTOR_CACHE_DIR is set; returns the folder used."""
    if not os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(base, "swarm", "torchinductor")
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]
