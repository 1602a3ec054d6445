"""Top of torch.profiler's operator table for one workload, per engine path: where an epoch's
time goes before (autograd) and after (fused, eager and compiled).

    python benchmarks/profile_engine.py                 # W2: seed 002's swarm, 100 epochs
    python benchmarks/profile_engine.py --workload W1 --only fused_eager --stacks
                                                        # the mixed-activation hive, eager, with
                                                        # the Python line that spent the time
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import CONTENDERS, ENGINE, for_device, product_batches  # noqa: E402

from swarmcli.engine import loop  # noqa: E402

WORKLOADS = {  # key -> `swarm run` overrides (the quick suite's W1 and W2 structure)
    "W1": ["+sweep=width_activation"],  # relu, tanh, tanhshrink cells in one batch (nn.Mixed)
    "W2": ["+sweep=weight_distribution"],  # one activation
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", choices=sorted(WORKLOADS), default="W2")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--only", help="comma-separated engine paths: " + ", ".join(ENGINE))
    ap.add_argument("--rows", type=int, default=8, help="operators listed per path")
    ap.add_argument("--stacks", action="store_true",
                    help="group by the Python line that called each operator (slower)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    (batch,) = for_device(product_batches([*WORKLOADS[args.workload],
                                           f"train.epochs={args.epochs}"]))
    keys = args.only.split(",") if args.only else list(ENGINE)
    for key in keys:
        use_autograd, compiled = ENGINE[key]
        b = dataclasses.replace(batch, runtime=dataclasses.replace(batch.runtime,
                                                                   compile=compiled))
        loop.train(b, use_autograd=use_autograd)  # warm up (and compile)
        with profile(activities=[ProfilerActivity.CPU], with_stack=args.stacks) as prof:
            loop.train(b, use_autograd=use_autograd)
        print(f"\n### {CONTENDERS[key]}, {args.workload}\n")
        avg = prof.key_averages(group_by_stack_n=4 if args.stacks else 0)
        print(avg.table(sort_by="self_cpu_time_total", row_limit=args.rows,
                        max_name_column_width=40, max_src_column_width=90))


if __name__ == "__main__":
    main()
