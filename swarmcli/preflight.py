"""What `swarm run` checks before Hydra creates or writes anything in the run directory.

Hydra's run_job makes the run dir, writes .hydra/ (config, overrides) and opens swarm.log before
it calls the task function. Checking there would leave an empty run dir behind after a config
error, and a second run into a running or finished run dir would overwrite that run's
.hydra/config.yaml before being refused. Hydra calls a callback's `on_run_start` earlier, with
the composed config: `PreFlight` validates the config, sizes its memory and claims the run dir
there, so a refused run writes nothing. The CLI adds it to `swarm run` and `swarm rerun`; a
multirun's jobs each get a fresh numbered dir, which the runner still locks.
"""

from __future__ import annotations

import copy
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf, open_dict

from swarmcli import lock, loggers, results, runner
from swarmcli.errors import Refused, SwarmError


def claim(run_dir: Path, overwrite: bool) -> None:
    """Hold `run_dir` for this process; refuse one that holds a run unless `overwrite`, and then
    clear the old results first."""
    lock.acquire(run_dir)
    try:
        if (run_dir / results.MANIFEST).exists():
            try:
                state = results.read_manifest(run_dir)["state"]
            except results.DamagedRun as e:
                raise SwarmError(f"{e}; not replacing it, even with overwrite=true") from None
            if not overwrite:
                raise SwarmError(f"{run_dir} already holds a {state} run; add overwrite=true to "
                                 "replace it, or choose another hydra.run.dir")
            results.clear(run_dir)
    except BaseException:
        lock.release(run_dir)
        raise


def check_render(cfg) -> None:
    """The figures `swarm run` draws after training, checked before training: their keys, and
    that the run records what each needs (a render refused after an hour of training is an hour
    lost)."""
    what = list(cfg.render.what)
    if what and what != ["none"]:
        from swarmcli import render

        for w in render.check_config(OmegaConf.to_container(cfg.render)):
            missing = [n for n in render.NEEDS.get(w, []) if n not in cfg.train.record]
            if missing:
                raise SwarmError(f"render.what={w} needs train.record to include "
                                 f"{' and '.join(missing)} (now {list(cfg.train.record)})")


NAMED_GROUPS = ("optim", "target")  # config groups whose options set the group's `name`


def overridden_group(group: str, overrides: list[str], task) -> str | None:
    """Why a group choice on the command line (`optim=adam`) did not take, or None. A sweep
    that writes the group's keys (`optim: {name: sgd, ...}`) is merged after the group's option,
    so its name wins; training it would silently ignore what the user asked for."""
    for o in overrides:
        key, sep, value = o.partition("=")
        if sep and key == group and value and value != task[group].get("name", value):
            return (f"{group}={value} is replaced by the sweep's {group}.name="
                    f"{task[group].name}; give {group}.name={value} instead (after the sweep's "
                    f"settings, as any key)")
    return None


def check_group_choices(task, overrides) -> None:
    """Refuse the first group choice on the command line that the config replaced."""
    for group in NAMED_GROUPS:
        if why := overridden_group(group, list(overrides), task):
            raise SwarmError(why)


def check(cfg) -> None:
    """Everything `swarm run` refuses before training: runner.prepare's config, sweep and memory
    checks, the render keys, and the trackers' packages."""
    runner.prepare(cfg)
    check_render(cfg)
    loggers.check(cfg)


class PreFlight(Callback):
    def on_run_start(self, config, **kwargs) -> None:
        task = copy.deepcopy(config)
        with open_dict(task):
            del task["hydra"]
        try:
            check_group_choices(task, config.hydra.overrides.task)
            check(task)
        except SwarmError as e:
            raise Refused(e) from e
        except Exception:  # e.g. a ${hydra:...} value, known only inside the job:
            pass  # the task function validates again and reports it there
        try:
            claim(Path(config.hydra.run.dir), bool(task.get("overwrite", False)))
        except SwarmError as e:
            raise Refused(e) from e
