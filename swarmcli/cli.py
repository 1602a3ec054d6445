"""`swarm`: a small dispatcher in front of a real Hydra app.

`swarm run ...` hands the rest of argv to a `@hydra.main` function, so every Hydra feature works
(overrides, -m, --cfg, --info, --help, --config-dir, hydra.run.dir, tab completion). The other
verbs (rerun, render, collect, list) work on saved runs and never train unless asked to.

Errors a user can fix are printed as one line and exit with status 2; HYDRA_FULL_ERROR=1 shows
the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from swarmcli import completion, joblog
from swarmcli.errors import USER_FULL_ERROR, SwarmError

log = logging.getLogger("swarmcli")

USAGE = """usage: swarm COMMAND [ARGS]

commands:
  run [OVERRIDES]            train a hive (a Hydra app: --help, -m, --cfg job, --config-dir ...)
  rerun RUN_DIR [OVERRIDES]  re-execute a saved run into a new dir; report bit-identity
  render RUN_DIR [KEY=VALUE] re-draw stills and animations from saved results (no training)
  collect MULTIRUN_DIR       one table + plots from every job of a multirun; rerun failed jobs
  list                       sweeps, targets, activations, optimizers, inits, schedules
"""



@hydra.main(version_base="1.3", config_path="pkg://swarmcli.configs", config_name="config")
def hydra_run(cfg: DictConfig) -> float:
    """One Hydra job: train, save, render; return the swarm's median final loss (for sweepers)."""
    from swarmcli import runner  # torch: only a job that trains pays for importing it

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    out = joblog.JobOutput(header=f"job {hc.job.num}: {' '.join(hc.overrides.task)}"
                           if hc.mode == RunMode.MULTIRUN else None)
    logging.captureWarnings(True)  # warnings into swarm.log too
    try:
        summary = runner.run(cfg, run_dir, out=out)
        _render_after_run(cfg, run_dir, out)
        print(f"run dir: {run_dir}", file=out)
    except SwarmError as e:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            # One job of a sweep: say why in its own log, and let Hydra carry on with the other
            # jobs (exiting here would end the whole sweep under the basic launcher).
            log.error("job failed: %s", e)
            raise
        if os.environ.get(USER_FULL_ERROR) == "1":
            raise
        fail(str(e))  # exit here: past this point Hydra would log the job's overrides first
    except BaseException:
        # Hydra 1.3.8 keeps a failed multirun job's traceback out of its log: log it ourselves.
        log.exception("job failed")
        raise
    finally:
        out.finish()
        logging.captureWarnings(False)
    return summary.objective


def fail(message: str) -> None:
    print(f"swarm: error: {message}", file=sys.stderr)
    sys.exit(2)


def _render_after_run(cfg, run_dir: Path, out) -> None:
    what = list(cfg.render.what)
    if what and what != ["none"]:
        from swarmcli import render

        render.render_run(run_dir, OmegaConf.to_container(cfg.render), out=out)


def _run_hydra(rest: list[str]) -> None:
    """The Hydra app, on `rest` as its command line."""
    from swarmcli import config  # numpy and the schema: only commands that compose pay for them

    config.register_schema()
    # optuna's storage imports alembic, which logs each of its plugins at INFO
    logging.getLogger("alembic").setLevel(logging.WARNING)
    sys.argv = [sys.argv[0], *rest]
    hydra_run()


def cmd_run(rest: list[str]) -> None:
    _run_hydra(rest)


def cmd_rerun(rest: list[str]) -> None:
    if not rest or rest[0].startswith("-"):
        raise SwarmError("usage: swarm rerun RUN_DIR [OVERRIDES]")
    old = Path(rest[0]).resolve()
    saved = old / ".hydra" / "config.yaml"
    if not saved.exists():
        raise SwarmError(f"{rest[0]!r} has no .hydra/config.yaml; give a run dir of `swarm run`")
    overrides = rest[1:]
    if not any(o.startswith("hydra.run.dir=") for o in overrides):
        overrides.append(f"hydra.run.dir={old.parent / (old.name + '-rerun')}")
    new_dir = Path(next(o for o in overrides if o.startswith("hydra.run.dir=")).split("=", 1)[1])
    _run_hydra(["--config-path", str(old / ".hydra"), "--config-name", "config", *overrides])
    from swarmcli import results

    same, total, diff = results.compare(old, new_dir)
    if diff:
        print(f"rerun differs from {old}: {len(diff)} of {total} arrays differ: "
              f"{', '.join(diff[:5])}")
    else:
        print(f"rerun is bit-identical to {old}: {same} of {total} arrays equal")


def cmd_render(rest: list[str]) -> None:
    from swarmcli import config, render

    if not rest or "=" in rest[0]:
        raise SwarmError("usage: swarm render RUN_DIR [KEY=VALUE ...]")
    run_dir = Path(rest[0])
    if not (run_dir / "swarm.json").exists():
        raise SwarmError(f"{rest[0]!r} is not a swarm run directory (no swarm.json)")
    saved = run_dir / ".hydra" / "config.yaml"
    base = OmegaConf.load(saved).get("render", {}) if saved.exists() else {}
    cfg = OmegaConf.merge(OmegaConf.structured(config.RenderConfig), base)
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(rest[1:]))
    except OmegaConfBaseException as e:
        raise SwarmError(config.one_line(e)) from None
    render.render_run(run_dir, OmegaConf.to_container(cfg), out=sys.stdout)


def cmd_list(rest: list[str]) -> None:
    from importlib.resources import files

    from swarmcli import choices, targets

    sweeps = sorted(p.name[:-5] for p in (files("swarmcli.configs") / "sweep").iterdir()
                    if p.name.endswith(".yaml"))
    for title, names in [("sweeps", sweeps), ("targets", targets.TARGETS),
                         ("activations", choices.ACTIVATIONS), ("optimizers", choices.OPTIMIZERS),
                         ("inits", choices.INITS), ("schedules", choices.SCHEDULES)]:
        print(f"{title + ':':13} {', '.join(names)}")
    print("optimizer defaults (any optim.* key left null takes them):")
    for name, defaults in choices.DEFAULTS.items():
        print(f"  {name + ':':9} {', '.join(f'{k}={v}' for k, v in defaults.items())}")


def cmd_collect(rest: list[str]) -> None:
    from swarmcli import collect

    collect.main(rest)


COMMANDS = {"run": cmd_run, "rerun": cmd_rerun, "render": cmd_render, "collect": cmd_collect,
            "list": cmd_list}


def error_message(e: BaseException) -> str:
    """One line for a user's mistake, naming the bad value (and the choices, where known)."""
    if isinstance(e, SwarmError):
        return str(e)
    if isinstance(e, OmegaConfBaseException) or isinstance(e.__cause__, OmegaConfBaseException):
        from swarmcli import config

        inner = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else e
        return config.one_line(inner)
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    if lines and "Could not find" in lines[0]:
        stop = next((i for i, ln in enumerate(lines) if ln.startswith("Config search path")),
                    len(lines))
        options = [ln for ln in lines[1:stop] if not ln.startswith("Available options")]
        missing = lines[0].split(": ", 1)[-1] if lines[0].startswith("In '") else lines[0]
        return f"{missing}; available: {', '.join(options)}" if options else missing
    if isinstance(e, OSError) and e.filename:
        return f"cannot write {e.filename!r}: {e.strerror}"
    return lines[0] if lines else type(e).__name__


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-sc", "--shell-completion"):
        if completion.answer(argv[1:], COMMANDS):
            return
        argv = ["run", *argv]
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        sys.exit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"swarm: error: unknown command {command!r}; choices: {', '.join(COMMANDS)}",
              file=sys.stderr)
        sys.exit(2)
    saved = {k: os.environ.get(k) for k in ("HYDRA_FULL_ERROR", USER_FULL_ERROR)}
    full_error = saved["HYDRA_FULL_ERROR"] == "1"
    os.environ[USER_FULL_ERROR] = "1" if full_error else "0"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us, to print them as one line
    try:
        COMMANDS[command](rest)
    except KeyboardInterrupt:
        print("swarm: interrupted; the run dir is marked interrupted", file=sys.stderr)
        sys.exit(130)
    except (SwarmError, HydraException, OmegaConfBaseException, OSError) as e:
        if full_error:
            raise
        fail(error_message(e))
    finally:  # main() may be called in-process (tests, notebooks): leave the environment as found
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
