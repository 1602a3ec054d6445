"""`make gallery`: run every shipped sweep at its default size and keep, in docs/gallery/, one
still that shows its lesson, its final hive, and three frames of its animation where it has one,
with docs/gallery/README.md listing each sweep's lesson (read from its YAML, so it stays true).

Images are written as 256-colour PNGs to keep the folder small. Run dirs go to a temporary folder
(or --runs DIR, to keep them); `--only NAME` redraws a few sweeps.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from omegaconf import OmegaConf
from PIL import Image

OUT = Path(__file__).resolve().parent / "gallery"
SWARM = str(Path(sys.executable).with_name("swarm"))
# the first of these a run drew is its lesson still (paths: a landscape run's particle paths)
LESSON_FIGURES = ("compare", "kinks", "final_loss", "final_accuracy", "paths")


def sweeps() -> list[str]:
    return sorted(p.name[:-5] for p in (files("swarmcli.configs") / "sweep").iterdir()
                  if p.name.endswith(".yaml"))


def lesson(name: str) -> str:
    text = (files("swarmcli.configs") / "sweep" / f"{name}.yaml").read_text()
    return str(OmegaConf.create(text).sweep.get("lesson", ""))


def save_png(img: Image.Image, path: Path) -> Path:
    img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
        path, optimize=True)
    return path


def last_epoch(paths: list[Path]) -> Path | None:
    return max(paths, key=lambda p: p.stem.rsplit("epoch", 1)[-1]) if paths else None


def video_frames(video: Path, count: int = 3) -> Image.Image:
    """`count` frames spread over the video (first, middle, last), side by side."""
    reader = imageio_ffmpeg.read_frames(str(video))
    meta = next(reader)
    w, h = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]
    picks = [frames[round(i * (len(frames) - 1) / (count - 1))] for i in range(count)]
    return Image.fromarray(np.concatenate(picks, axis=1)).reduce(2)


def gallery_of(name: str, runs: Path) -> list[Path]:
    run_dir = runs / name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    subprocess.run([SWARM, "run", f"+sweep={name}", f"hydra.run.dir={run_dir}",
                    "progress=false"], check=True, stdout=subprocess.DEVNULL)
    figs = run_dir / "figures"
    kept = []
    hive = last_epoch(sorted(figs.glob("hive_epoch*.png")) or sorted(figs.glob("hive*_epoch*.png"))
                      or sorted(figs.glob("boundaries*_epoch*.png")))  # classification's hive
    if hive:
        kept.append(save_png(Image.open(hive), OUT / f"{name}_hive.png"))
    for fig in LESSON_FIGURES:
        found = sorted(figs.glob(f"{fig}*.png"))
        if found:
            pick = last_epoch(found) if "epoch" in found[0].stem else found[0]
            kept.append(save_png(Image.open(pick), OUT / f"{name}_{fig}.png"))
            break
    videos = sorted(figs.glob("*.mp4"))
    if videos:
        kept.append(save_png(video_frames(videos[0]), OUT / f"{name}_{videos[0].stem}_frames.png"))
    return kept


def write_index(kept: dict[str, list[Path]]) -> None:
    lines = ["# Gallery", "",
             "Every shipped sweep at its default size (`make gallery` redraws this page), with "
             "the lesson its YAML states and a test in `tests/test_lessons.py` holds.", ""]
    for name in sweeps():
        images = sorted(OUT.glob(f"{name}_*.png"),  # the hive, the lesson still, the frames
                        key=lambda p: (not p.stem.endswith("_hive"), "frames" in p.stem))
        lines += [f"## `{name}`", "", f"**Lesson.** {lesson(name)}", "",
                  f"`swarm run +sweep={name}`", ""]
        lines += [f"![{p.stem}]({p.name})" for p in images] + [""]
    (OUT / "README.md").write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, help="sweeps to redraw (default: all)")
    ap.add_argument("--runs", type=Path, default=None, help="keep the run dirs here")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    runs = args.runs or Path(tempfile.mkdtemp(prefix="swarm-gallery-"))
    kept = {}
    for name in args.only or sweeps():
        for old in OUT.glob(f"{name}_*.png"):
            old.unlink()
        kept[name] = gallery_of(name, runs)
        print(f"{name}: {', '.join(p.name for p in kept[name])}", flush=True)
    write_index(kept)


if __name__ == "__main__":
    main()
