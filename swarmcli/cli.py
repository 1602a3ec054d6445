"""`swarm`: a small dispatcher in front of a real Hydra app.

`swarm run ...` hands the rest of argv to a `@hydra.main` function, so every Hydra feature works
(overrides, -m, --cfg, --info, --help, --config-dir, hydra.run.dir, tab completion). The other
verbs (rerun, render, report, collect, list) work on saved runs and never train unless asked to.

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

from swarmcli import completion, joblog, lock, stops
from swarmcli.errors import USER_FULL_ERROR, Refused, SwarmError

log = logging.getLogger("swarmcli")
# Hydra calls this callback before it writes into the run dir (see preflight.py); named here as
# a string, so commands that do not train never import it (it needs torch).
PREFLIGHT = "++hydra.callbacks.swarm_preflight._target_=swarmcli.preflight.PreFlight"

USAGE = """usage: swarm COMMAND [ARGS]

commands:
  run [OVERRIDES]            train a hive (a Hydra app: --help, -m, --cfg job, --config-dir ...)
  rerun RUN_DIR [OVERRIDES]  re-execute a saved run into a new dir; report bit-identity
  render RUN_DIR [KEY=VALUE] re-draw stills and animations from saved results (no training)
  collect MULTIRUN_DIR       one table + plots from every job of a multirun; rerun failed jobs
  report RUN_DIR|MULTIRUN_DIR  one self-contained HTML page (report.html) to open offline
  list                       sweeps, targets, activations, optimizers, inits, schedules,
                             tasks, surfaces
"""



@hydra.main(version_base="1.3", config_path="pkg://swarmcli.configs", config_name="config")
def hydra_run(cfg: DictConfig) -> float:
    """One Hydra job: train, save, render; return the swarm's median final loss (for sweepers)."""
    from swarmcli import loggers, preflight, runner  # torch: only a job that trains pays

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    out = joblog.JobOutput(header=f"job {hc.job.num}: {' '.join(hc.overrides.task)}"
                           if hc.mode == RunMode.MULTIRUN else None)
    logging.captureWarnings(True)  # warnings into swarm.log too
    try:
        preflight.check_render(cfg)  # a multirun job has had no pre-flight
        preflight.check_group_choices(cfg, hc.overrides.task)
        with loggers.session(cfg, run_dir, out=out) as tracker:  # logger=...: trackers
            summary = runner.run(cfg, run_dir, out=out, tracker=tracker)
            _render_after_run(cfg, run_dir, out)
        print(f"run dir: {run_dir}", file=out)
    except BaseException as e:
        if stops.interrupted_by(e):
            raise stops.Interrupted(run_dir) from None
        if not isinstance(e, (SwarmError, OSError)):
            # Hydra 1.3.8 keeps a failed multirun job's traceback out of its log: log it here.
            log.exception("job failed")
            raise
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            # One job of a sweep: say why in its own log, and let Hydra carry on with the other
            # jobs (exiting here would end the whole sweep under the basic launcher).
            log.error("job failed: %s", error_message(e))
            raise
        if os.environ.get(USER_FULL_ERROR) == "1":
            raise
        fail(error_message(e))  # exit here: past this point Hydra would log the job's overrides
    finally:
        out.finish()
        logging.captureWarnings(False)
    return summary.objective


def fail(message: str) -> None:
    """The error as one line (a YAML parser's or a library's multi-line text joined), status 2."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"swarm: error: {line}", file=sys.stderr)
    sys.exit(2)


def _render_after_run(cfg, run_dir: Path, out) -> None:
    what = list(cfg.render.what)
    if what and what != ["none"]:
        from swarmcli import render

        render.render_run(run_dir, OmegaConf.to_container(cfg.render), out=out)
    if cfg.render.get("report", True):  # after the figures: the page links them
        from swarmcli import report

        print(f"report: {report.write_run_page(run_dir)}", file=out)


NOT_A_RUN = ("-m", "--multirun", "-c", "--cfg", "-i", "--info", "-h", "--help", "--hydra-help",
             "-sc", "--shell-completion")


def _run_hydra(rest: list[str]) -> None:
    """The Hydra app, on `rest` as its command line; a single run gets the pre-flight check
    (preflight.py), which must run before Hydra writes into the run dir."""
    from swarmcli import config  # numpy and the schema: only commands that compose pay for them

    config.register_schema()
    # optuna's storage imports alembic, which logs each of its plugins at INFO
    logging.getLogger("alembic").setLevel(logging.WARNING)
    run = not any(a in NOT_A_RUN for a in rest)
    sys.argv = [sys.argv[0], *rest, *([PREFLIGHT] if run else [])]
    hydra_run()


def cmd_run(rest: list[str]) -> None:
    _run_hydra(rest)


def _saved_config(run_dir: Path) -> Path:
    """RUN_DIR/.hydra/config.yaml, checked to be a config `swarm run` could have written."""
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        raise SwarmError(f"{run_dir} has no .hydra/config.yaml; give a run dir of `swarm run`")
    try:
        saved = OmegaConf.load(path)
    except Exception as e:  # yaml's scanner/parser errors, binary content, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SwarmError(f"{path} is damaged: {first}") from None
    if not isinstance(saved, DictConfig):
        raise SwarmError(f"{path} is damaged: not a mapping of config keys")
    return path


def cmd_rerun(rest: list[str]) -> None:
    from swarmcli import config, results

    if not rest or rest[0].startswith("-"):
        raise SwarmError("usage: swarm rerun RUN_DIR [OVERRIDES]")
    old = Path(rest[0]).resolve()
    results.load_checked(old)
    config.to_schema(OmegaConf.load(_saved_config(old)))
    overrides = rest[1:]
    if not any(o.startswith("hydra.run.dir=") for o in overrides):
        overrides.append(f"hydra.run.dir={old.parent / (old.name + '-rerun')}")
    if not any(o.lstrip("+").startswith("overwrite=") for o in overrides):
        overrides.append("++overwrite=false")  # not the saved run's own choice
    new_dir = Path(next(o for o in overrides if o.startswith("hydra.run.dir=")).split("=", 1)[1])
    _run_hydra(["--config-path", str(old / ".hydra"), "--config-name", "config", *overrides])

    same, total, diff = results.compare(old, new_dir)
    if diff:
        print(f"rerun differs from {old}: {len(diff)} of {total} arrays differ: "
              f"{', '.join(diff[:5])}")
    else:
        print(f"rerun is bit-identical to {old}: {same} of {total} arrays equal")


def cmd_render(rest: list[str]) -> None:
    from swarmcli import config, render, results

    if not rest or "=" in rest[0]:
        raise SwarmError("usage: swarm render RUN_DIR [KEY=VALUE ...]")
    run_dir = Path(rest[0])
    results.load_checked(run_dir)
    saved = run_dir / ".hydra" / "config.yaml"
    base = OmegaConf.load(_saved_config(run_dir)).get("render", {}) if saved.exists() else {}
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(config.RenderConfig), base)
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
                         ("datasets", choices.DATASETS),
                         ("activations", choices.ACTIVATIONS), ("optimizers", choices.OPTIMIZERS),
                         ("inits", choices.INITS), ("schedules", choices.SCHEDULES),
                         ("tasks", choices.TASKS), ("surfaces", choices.SURFACES)]:
        print(f"{title + ':':13} {', '.join(names)}")
    print("optimizer defaults (any optim.* key left null takes them):")
    for name, defaults in choices.DEFAULTS.items():
        print(f"  {name + ':':9} {', '.join(f'{k}={v}' for k, v in defaults.items())}")


def cmd_collect(rest: list[str]) -> None:
    from swarmcli.collect import command

    command.main(rest)


def cmd_report(rest: list[str]) -> None:
    from swarmcli import report

    if len(rest) != 1 or rest[0].startswith("-"):
        raise SwarmError("usage: swarm report RUN_DIR|MULTIRUN_DIR")
    for path in report.write_report(Path(rest[0])):
        print(f"report: {path}")


COMMANDS = {"run": cmd_run, "rerun": cmd_rerun, "render": cmd_render, "collect": cmd_collect,
            "report": cmd_report, "list": cmd_list}


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
    if isinstance(e, OSError) and (e.filename or lock.held()):
        # Hydra's own writes (.hydra/*.yaml) fail without naming the file: name the run dir
        where = e.filename or f"in {lock.held()[0]}"
        return f"cannot write {where}: {e.strerror or e}"
    return lines[0] if lines else type(e).__name__


def main(argv: list[str] | None = None) -> None:
    argv_given = argv is not None
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
    handlers = stops.terminate_as_interrupt()
    log_errors = logging.raiseExceptions
    logging.raiseExceptions = False  # a full disk: swarm.log's handler fails quietly
    try:
        COMMANDS[command](rest)
    except BaseException as e:
        if stops.interrupted_by(e):
            stops.ignore_signals()
            print(f"swarm: interrupted{interrupt_report(e)}", file=sys.stderr)
            sys.exit(130)
        if isinstance(e, Refused):
            if full_error:
                raise e.args[0] from None
            fail(error_message(e.args[0]))
        if full_error or not isinstance(e, (SwarmError, HydraException, OmegaConfBaseException,
                                            OSError)):
            raise
        fail(error_message(e))
    finally:  # main() may be called in-process (tests, notebooks): leave the process as found
        stops.ignore_signals()  # the command is over: a late Ctrl-C must not cut the clean-up
        lock.release_all()
        if argv_given:  # called in-process: Ctrl-C works again; as the `swarm` program, ignored
            stops.restore(handlers)  # through exit (Python's teardown would die of it silently)
        logging.raiseExceptions = log_errors
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def interrupt_report(e: BaseException) -> str:
    """What the run dir's swarm.json says after a stop (a run still `running` is marked
    `interrupted` first, so the line never claims what the file does not say). The run dir is
    the job's, or the one this process holds (a stop inside Hydra, before or after the job)."""
    held = lock.held()
    run_dir = e.run_dir if isinstance(e, stops.Interrupted) else held[0] if held else None
    if run_dir is None:
        return ""
    from swarmcli import results

    return f"; {results.mark_stopped(run_dir, 'interrupted')}"
