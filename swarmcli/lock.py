"""One run per directory: RUN_DIR/.swarm.lock, held with flock(2) while a run writes there.

flock is released by the kernel when its holder dies, however it dies (SIGKILL, out of memory,
a node lost), so a lock left behind by a killed run is simply free: no pid to probe for
staleness, no host to compare. The file only records who holds it, for the message a refused
second run prints. Holding is re-entrant within a process (the CLI claims the directory before
Hydra writes into it, then the runner holds it while training).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path

from swarmcli.errors import SwarmError

LOCK = ".swarm.lock"
_held: dict[Path, list] = {}  # resolved run dir -> [fd, depth]


class Busy(SwarmError):
    """Another live process holds the run directory."""


def acquire(run_dir) -> None:
    """Claim `run_dir` (created if missing), or raise Busy naming the holder."""
    d = Path(run_dir).resolve()
    if d in _held:
        _held[d][1] += 1
        return
    path = d / LOCK
    while True:
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise SwarmError(f"cannot write {e.filename or path}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise Busy(f"{run_dir} is in use by {holder}; wait for that run to end or choose "
                       "another hydra.run.dir") from None
        # The last holder unlinks the file as it lets go: if that happened between our open and
        # our flock, we hold a lock nobody else can see; open the path again.
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    with contextlib.suppress(OSError):  # a full disk: the lock holds without the note
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    _held[d] = [fd, 1]


def release(run_dir) -> None:
    d = Path(run_dir).resolve()
    entry = _held.get(d)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] == 0:
        del _held[d]
        with contextlib.suppress(OSError):
            os.unlink(d / LOCK)  # while still holding it, so no one can lock the old file
        os.close(entry[0])


def held() -> list[Path]:
    """The run dirs this process holds."""
    return list(_held)


def release_all() -> None:
    for d in list(_held):
        _held[d][1] = 1
        release(d)


@contextlib.contextmanager
def hold(run_dir):
    acquire(run_dir)
    try:
        yield
    finally:
        release(run_dir)
