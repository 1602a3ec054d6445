"""What a job prints goes to the terminal and, line by line, into its `swarm.log`.

Hydra gives every job a log file (a FileHandler on the root logger), but the results table, the
timings and the run dir line are printed, not logged, so the log stayed empty. `JobOutput` is the
stream a job prints to: each complete line is also handed, as an INFO record of the `swarmcli`
logger, to the job's file handlers only (the console handler would print it twice). In a
multirun the terminal gets the job's lines as one block when the job ends, headed by the job's
number and overrides, so jobs that run at once (joblib) cannot interleave their tables.
"""

from __future__ import annotations

import io
import logging
import sys

from hydra.experimental.callback import Callback


class JobOutput(io.TextIOBase):
    def __init__(self, terminal=None, header: str | None = None):
        self.terminal = terminal or sys.stdout
        self.header = header  # None: a single run, printed as it comes
        self.held: list[str] = [] if header is None else [header + "\n"]
        self.partial = ""
        if header is not None:
            to_log_file(header)

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if self.header is None:
            self.terminal.write(s)
        else:
            self.held.append(s)
        *lines, self.partial = (self.partial + s).split("\n")
        for line in lines:
            to_log_file(line)
        return len(s)

    def flush(self) -> None:
        self.terminal.flush()

    def finish(self) -> None:
        """Log an unfinished last line; in a multirun, print the job's block at once."""
        if self.partial:
            to_log_file(self.partial)
            self.partial = ""
        if self.header is not None:
            if self.held[1:]:
                self.terminal.write("".join(self.held))
            self.held = [self.header + "\n"]
        self.terminal.flush()


def to_log_file(line: str) -> None:
    """One INFO line of the `swarmcli` logger, into the log files only."""
    record = logging.LogRecord("swarmcli", logging.INFO, __file__, 0, line, None, None)
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler) and record.levelno >= h.level:
            h.handle(record)


class QuietSetup(Callback):
    """A Hydra callback (configs/config.yaml) that keeps a sweeper's set-up chatter off the
    terminal: optuna announces every study at INFO on its own coloured stderr handler, raw ANSI
    codes in a log or a pipe. Optuna's records go instead through Hydra's logging, warnings
    only."""

    def on_multirun_start(self, config, **kwargs) -> None:
        if "optuna" in str(config.hydra.sweeper.get("_target_", "")):
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            optuna.logging.disable_default_handler()
            optuna.logging.enable_propagation()
