"""A stdio server's process group: is any of it still alive, signal all of it, say how it ended.

Every stdio server is started as the leader of a new session (so of a new process group
whose id is its pid).  Whatever it spawns stays in that group unless it deliberately
leaves it, so the group, not the leader, is what has to be gone when a backend stops: a
helper that inherited the server's stdout outlives a server that exits on stdin EOF,
and nothing else would ever end it.

Liveness is judged from ``/proc`` where it exists: a member that is a zombie is dead
(it holds no pipe and runs no code; reaping it is its parent's job, and an orphan's
parent is init).  Without ``/proc`` a signal 0 to the group is the fallback, which
counts zombies as alive and so only errs on the side of escalating.
"""

from __future__ import annotations

import contextlib
import os
import signal

__all__ = ["describe_exit", "group_alive", "signal_group"]

_PROC = "/proc"
_DEAD_STATES = frozenset("ZXx")


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still running (zombies do not count)."""
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return _group_signallable(pgid)
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"{_PROC}/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # ended while we were looking, or not ours to read
        # Fields after the command name (which may contain spaces and parentheses).
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0].decode() not in _DEAD_STATES:
            return True
    return False


def _group_signallable(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process took the id: not ours to judge, assume alive
    return True


def signal_group(pgid: int, signum: signal.Signals) -> None:
    """Send ``signum`` to every process of group ``pgid``; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def describe_exit(returncode: int | None) -> str:
    """``exited with code 3`` / ``was killed by signal SIGKILL`` / ``is still running``."""
    if returncode is None:
        return "is still running"
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = str(-returncode)
    return f"was killed by signal {name}"
