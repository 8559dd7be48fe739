"""Test support for embedders and for this project's tests: manual time and injected crashes.

Nothing in production needs these, which is why they live here and not on the classes
they reach into:

* :class:`ManualClock` and :class:`ManualScheduler` stand in for the real clock and
  timer thread, so a 30-minute backoff is checked by stepping time, not by sleeping;
* :func:`crash_backend`, :func:`crash_health` and :func:`crash_reporter` make an actor
  of a running vMCP fail *outside* its guard, as an unexpected bug would, to exercise
  supervision: the actor dies, and what supervises it must rebuild it.

Importing this module imports neither the MCP SDK nor pykka; the crash helpers import
what they need when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmcp_actors.actorkit.timers import ManualClock, ManualScheduler

if TYPE_CHECKING:
    from vmcp_actors.actorkit.guard import Mailbox
    from vmcp_actors.reporting.actor_reporter import ActorReporter
    from vmcp_actors.runtime.runtime import Runtime

__all__ = ["ManualClock", "ManualScheduler", "crash_backend", "crash_health", "crash_reporter", "inject_crash"]


def inject_crash(target: Mailbox, error: Exception) -> None:
    """Make the guarded actor behind ``target`` raise ``error`` outside its guard, and so die."""
    from vmcp_actors.actorkit.guard import _InjectedCrash

    target.tell(_InjectedCrash(error))


def crash_backend(runtime: Runtime, name: str, error: Exception) -> None:
    """Crash the actor running backend ``name``; raises :class:`KeyError` for an unknown backend."""
    from vmcp_actors.runtime.messages import BackendActorQuery

    ref = runtime._actor_ref(BackendActorQuery(name))  # noqa: SLF001 - the runtime's one test hook
    if ref is None:
        raise KeyError(name)
    inject_crash(ref, error)


def crash_health(runtime: Runtime, error: Exception) -> None:
    """Crash the runtime's health actor (if one is running)."""
    from vmcp_actors.runtime.messages import HealthActorQuery

    ref = runtime._actor_ref(HealthActorQuery())  # noqa: SLF001 - the runtime's one test hook
    if ref is not None:
        inject_crash(ref, error)


def crash_reporter(reporter: ActorReporter, error: Exception) -> None:
    """Crash the actor behind an :class:`ActorReporter` (if it has been started)."""
    ref = reporter._actor_ref  # noqa: SLF001 - the reporter's one test hook
    if ref is not None:
        inject_crash(ref, error)
