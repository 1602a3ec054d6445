"""`swarmcli.run(overrides) -> Run`: `swarm run` from Python (a notebook, a script, a test).

The config is composed by Hydra's compose API from the same packaged configs and overrides the
CLI takes, and checked by the same pre-flight (config, sweep, memory, render keys, trackers), so
a bad value raises the SwarmError whose text `swarm run` prints. Nothing of Hydra's global state
outlives the call: `initialize_config_module` is a context, and the HydraConfig the job sees
(for `${hydra:...}` values) is put back as it was, so `run` may be called again and again in one
process, and next to a user's own Hydra app.
"""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path

from swarmcli.errors import SwarmError

# A value the override grammar takes as it is; anything else is quoted (see _value).
_PLAIN = re.compile(r"^[A-Za-z_][\w.\-]*$")


def run(overrides=None, run_dir=None, *, config_dir=None, quiet: bool = False):
    """Train a hive as `swarm run OVERRIDES` does and return its `Run` (swarmcli.load).

    `overrides`: a list of Hydra override strings (`["+sweep=width_activation",
    "train.bees=20"]`) or a dict (`{"+sweep": "width_activation", "train": {"bees": 20}}`,
    nested dicts flattened to dotted keys). `run_dir`: where results go; default Hydra's
    outputs/DATE/TIME, as on the command line. `config_dir`: a folder of your own configs laid
    out like configs/ (the CLI's --config-dir), e.g. DIR/sweep/mine.yaml for +sweep=mine.
    `quiet=True` prints nothing (the table and the timings still go to RUN_DIR/swarm.log).
    Bad input raises SwarmError before anything is written."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from swarmcli import joblog, lock, loggers, preflight, results, runner

    args = to_overrides(overrides)
    search = []
    if config_dir is not None:
        if not Path(config_dir).is_dir():
            raise SwarmError(f"config_dir={str(config_dir)!r} is not a folder")
        search = [f"hydra.searchpath=[{_value(Path(config_dir).resolve().as_uri())}]"]
    cfg = _compose(args + search)
    hydra_cfg = HydraConfig.instance()
    saved_hydra = hydra_cfg.cfg
    try:
        run_dir = Path(cfg.hydra.run.dir if run_dir is None else run_dir)  # outputs/DATE/TIME
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir.resolve())
        hydra_cfg.set_config(cfg)  # a ${hydra:...} value resolves as in the CLI
        task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        try:
            preflight.check(task)
        except SwarmError:
            raise
        except Exception as e:
            raise SwarmError(_message(e)) from None
        preflight.claim(run_dir, bool(task.overwrite))
        try:
            _save_hydra_files(run_dir, task, args)
            out = joblog.JobOutput(terminal=_Null() if quiet else sys.stdout)
            with _log_file(run_dir / "swarm.log"):
                with loggers.session(task, run_dir, out=out) as tracker:
                    runner.run(task, run_dir, out=out, tracker=tracker)
                    _render(task, run_dir, out)
                    print(f"run dir: {run_dir}", file=out)
                out.finish()
        finally:
            lock.release(run_dir)
    finally:
        hydra_cfg.cfg = saved_hydra
    return results.load(run_dir)


def to_overrides(overrides) -> list[str]:
    """Override strings from a list (kept as given) or a dict (nested dicts -> dotted keys,
    values written in the override grammar, strings quoted where they need it)."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        raise TypeError("overrides must be a list of strings or a dict, not one string: "
                        f"[{overrides!r}]")
    if isinstance(overrides, dict):
        return [f"{k}={_value(v)}" for k, v in _flatten(overrides)]
    out = list(overrides)
    for o in out:
        if not isinstance(o, str):
            raise TypeError(f"override {o!r} is not a string like 'train.bees=20'")
    return out


def _flatten(d: dict, prefix: str = ""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _value(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_value(x)}" for k, x in v.items()) + "}"
    s = str(v)
    if _PLAIN.match(s) and s not in ("null", "true", "false"):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _compose(args: list[str]):
    """The composed config with its `hydra` node, as `swarm run` sees it; errors as SwarmError
    with the CLI's one line."""
    from hydra import compose, initialize_config_module

    from swarmcli import config

    config.register_schema()
    try:
        with initialize_config_module(config_module="swarmcli.configs", version_base="1.3"):
            return compose(config_name="config", overrides=args, return_hydra_config=True)
    except SwarmError:
        raise
    except Exception as e:  # Hydra's and OmegaConf's exceptions: the CLI's line for them
        raise SwarmError(_message(e)) from None


def _message(e: BaseException) -> str:
    from swarmcli.cli import error_message

    return " ".join(p.strip() for p in error_message(e).splitlines() if p.strip())


def _save_hydra_files(run_dir: Path, task, args: list[str]) -> None:
    """.hydra/config.yaml and overrides.yaml, as Hydra writes them: `swarm rerun` and `swarm
    collect` read a run made from Python like any other."""
    from omegaconf import OmegaConf

    from swarmcli import results

    d = run_dir / ".hydra"
    d.mkdir(parents=True, exist_ok=True)
    results.atomic_write_bytes(d / "config.yaml", OmegaConf.to_yaml(task).encode())
    results.atomic_write_bytes(d / "overrides.yaml", OmegaConf.to_yaml(args).encode())


@contextlib.contextmanager
def _log_file(path: Path):
    """RUN_DIR/swarm.log for the run's lines (joblog writes into the root logger's file
    handlers), removed again afterwards so the caller's logging is left as found."""
    import logging

    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def _render(task, run_dir: Path, out) -> None:
    from omegaconf import OmegaConf

    what = list(task.render.what)
    if what and what != ["none"]:
        from swarmcli import render

        render.render_run(run_dir, OmegaConf.to_container(task.render), out=out)


class _Null:
    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass
