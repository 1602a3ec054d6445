"""Top of torch.profiler's operator table for one workload, per engine path: where an epoch's
time goes before (autograd) and after (fused, eager and compiled).

    python benchmarks/profile_engine.py            # W2: seed 002's swarm, 100 epochs
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import CONTENDERS, ENGINE, for_device, product_batches  # noqa: E402

from swarmcli.engine import loop  # noqa: E402


def main(rows: int = 8) -> None:
    torch.set_num_threads(1)
    (batch,) = for_device(product_batches(["+sweep=weight_distribution", "train.epochs=100"]))
    for key, (use_autograd, compiled) in ENGINE.items():
        b = dataclasses.replace(batch, runtime=dataclasses.replace(batch.runtime,
                                                                   compile=compiled))
        loop.train(b, use_autograd=use_autograd)  # warm up (and compile)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            loop.train(b, use_autograd=use_autograd)
        print(f"\n### {CONTENDERS[key]}\n")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows,
                                        max_name_column_width=40))


if __name__ == "__main__":
    main()
