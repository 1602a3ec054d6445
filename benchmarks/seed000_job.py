"""Seed 000's whole job, process start to last file: the original's way against `swarm run`.

    python benchmarks/seed000_job.py [--repeat 2]

The original's way (`ORIGINAL` below, run as its own process, as the blog post's notebook ran
it): a fresh `torch.nn.Sequential` and `torch.optim.SGD` per bee, 9 cells (width [1, 3, 10] x
[ReLU, Tanh, Tanhshrink]) x 10 bees x 150 epochs on sin at 61 points, predictions copied out
every epoch; then the hive animation as matplotlib users make one: a 3 x 3 figure of Line2D per
bee, `FuncAnimation` over every epoch, saved through matplotlib's ffmpeg writer (imageio-ffmpeg's
binary), 30 fps, 10 x 10 inches at 100 dpi, as the post sets `figure.figsize`.

swarm: `swarm run +sweep=width_activation` with `render.what=[hive_animation]` and no report
(the same job: train, then the hive animation), and the sweep's default job (six figures, the
animation and the report page). Each is timed from process start to exit, best of --repeat,
the rounds interleaved; one torch thread everywhere.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SWARM = Path(sys.executable).parent / "swarm"

ORIGINAL = r'''
import sys
import imageio_ffmpeg, matplotlib, numpy as np, torch
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation
torch.set_num_threads(1)
out = sys.argv[1]
x = torch.linspace(-5, 5, 61).reshape(-1, 1)
y = torch.sin(x)
cells = {}
for width in (1, 3, 10):
    for act in (torch.nn.ReLU, torch.nn.Tanh, torch.nn.Tanhshrink):
        preds = []
        for bee in range(10):
            torch.manual_seed(10 + bee)
            net = torch.nn.Sequential(torch.nn.Linear(1, width), act(), torch.nn.Linear(width, 1))
            opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
            ypred = []
            for epoch in range(150):
                opt.zero_grad()
                pred = net(x)
                loss = torch.nn.functional.mse_loss(pred, y)
                loss.backward()
                opt.step()
                ypred.append(pred.detach().numpy().ravel().copy())
                float(loss.item())
            preds.append(np.stack(ypred))
        cells[(width, act.__name__)] = np.stack(preds)  # [bees, epochs, points]
plt.rcParams["animation.ffmpeg_path"] = imageio_ffmpeg.get_ffmpeg_exe()
fig, axs = plt.subplots(3, 3, figsize=(10, 10), dpi=100, sharex=True, sharey=True)
lines = []
for ax, ((width, name), yp) in zip(axs.flat, cells.items()):
    ax.plot(x.ravel(), y.ravel(), color="silver")
    ax.set_title(f"width {width}, {name}")
    ax.set_ylim(-1.5, 1.5)
    lines.append((yp, [ax.plot(x.ravel(), yp[b, 0])[0] for b in range(yp.shape[0])]))
title = fig.suptitle("")
def update(f):
    for yp, bees in lines:
        for b, line in enumerate(bees):
            line.set_ydata(yp[b, f])
    title.set_text(f"epoch {f}")
FuncAnimation(fig, update, frames=range(150), cache_frame_data=False).save(
    out, writer="ffmpeg", fps=30, dpi=100)
'''


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="swarm-seed000-") as tmp:
        script = Path(tmp) / "original.py"
        script.write_text(ORIGINAL)
        jobs = {
            "original's way (train + hive animation)":
                lambda r: [sys.executable, str(script), f"{tmp}/original{r}.mp4"],
            "swarm run, train + hive animation":
                lambda r: [str(SWARM), "run", "+sweep=width_activation", "progress=false",
                           "render.what=[hive_animation]", "render.report=false",
                           f"hydra.run.dir={tmp}/anim{r}"],
            "swarm run, default job (6 figures, animation, report)":
                lambda r: [str(SWARM), "run", "+sweep=width_activation", "progress=false",
                           f"hydra.run.dir={tmp}/full{r}"],
        }
        for r in range(args.repeat):
            for name, cmd in jobs.items():
                s = timed(cmd(r), env)
                best[name] = min(best.get(name, float("inf")), s)
                print(f"round {r}: {name}: {s:.2f} s", flush=True)
    base = best["original's way (train + hive animation)"]
    print(f"\nload avg {os.getloadavg()[0]:.2f}; best of {args.repeat}, process start to exit")
    print("| job | seconds | original / this |\n|---|---|---|")
    for name, s in best.items():
        print(f"| {name} | {s:.2f} | {base / s:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
