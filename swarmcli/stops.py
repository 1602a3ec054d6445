"""Stopping cleanly: Ctrl-C and SIGTERM both end a run as KeyboardInterrupt, and a write that must
be whole holds them off until it is done.

A run directory stays truthful only if no write is cut in half: a `*.tmp` left behind, or a
swarm.json still saying `running` after the process has gone. Writes run inside `deferred()`,
which notes a signal that arrives meanwhile and delivers it the moment the write is over.
"""

from __future__ import annotations

import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run, carrying the run directory so the CLI can say, from the
    directory's own swarm.json, what state it was left in."""

    def __init__(self, run_dir):
        super().__init__(str(run_dir))
        self.run_dir = run_dir


def interrupted_by(e: BaseException) -> bool:
    """Whether `e` is a KeyboardInterrupt or was raised while one was propagating: Ctrl-C can
    land inside a library (OmegaConf, Hydra) whose clean-up then fails with an error of its own,
    e.g. AttributeError; that is still a stop, not a bug to report."""
    todo, seen = [e], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        todo += [e.__cause__, e.__context__]
    return False


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def terminate_as_interrupt() -> dict:
    """Make SIGTERM (a cluster's time limit, `kill`) stop a run as Ctrl-C does; returns the
    handlers as they were, for `restore`."""
    if not _main_thread():
        return {}
    old = {s: signal.getsignal(s) for s in SIGNALS}
    signal.signal(signal.SIGTERM, _interrupt)
    return old


def restore(handlers: dict) -> None:
    for s, handler in handlers.items():
        signal.signal(s, handler)


def ignore_signals() -> None:
    """While the CLI reports a stop: a second Ctrl-C must not cut that report short."""
    if _main_thread():
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)


_holding = False  # a deferred() block is open (main thread only)


@contextlib.contextmanager
def deferred():
    """Hold off SIGINT and SIGTERM inside the block; deliver one that came once the block ends
    normally (only the main thread receives signals, so elsewhere this does nothing). Inside
    another such block it costs nothing: the outer one already holds them (a cell's many files
    are written under one)."""
    global _holding
    if _holding or not _main_thread():
        yield
        return
    caught: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in SIGNALS}
    _holding = True
    try:
        yield
    finally:
        _holding = False
        for s, handler in old.items():
            signal.signal(s, handler)
    if caught:
        handler = old[caught[0]]
        if callable(handler):
            handler(caught[0], None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(caught[0])
