"""The messages a :class:`~vmcp_actors.backend.actor.BackendActor` accepts and the ones it sends.

Commands come from the supervisor (start, stop, restart, a new spec), probe requests
from the health actor; what goes out is a :class:`BackendEvent` per state or health
change (to every subscriber, in order) and a :class:`ProbeOutcome` per probe request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from vmcp_actors.backend.failures import Failure
from vmcp_actors.backend.lifecycle_messages import LifecycleEvent
from vmcp_actors.backend.snapshot import BackendSnapshot
from vmcp_actors.config.backend_spec import BackendSpec

if TYPE_CHECKING:
    import concurrent.futures

    from vmcp_actors.actorkit.guard import Mailbox

__all__ = [
    "BackendCommand",
    "BackendEvent",
    "ProbeBackend",
    "ProbeOutcome",
    "RestartBackend",
    "StartBackend",
    "StopBackend",
    "Subscribe",
    "UpdateBackend",
]


@attrs.frozen
class StartBackend:
    """Connect (a no-op while connecting or connected)."""


@attrs.frozen
class StopBackend:
    """Stop; ``done`` (if given) resolves once the backend has reached a stopped state."""

    done: concurrent.futures.Future[None] | None = attrs.field(default=None, eq=False)


@attrs.frozen
class RestartBackend:
    """Stop, wait the grace period, start again."""


@attrs.frozen
class UpdateBackend:
    """Swap the spec; restart only if muster's ``config_changed`` says so."""

    spec: BackendSpec


@attrs.frozen
class ProbeBackend:
    """Ping the backend; the outcome is told to ``reply_to`` (a ProbeOutcome)."""

    reply_to: Mailbox | None = attrs.field(default=None, eq=False)
    token: int = 0


@attrs.frozen
class Subscribe:
    """Send every future :class:`BackendEvent` to ``subscriber`` too."""

    subscriber: Mailbox = attrs.field(eq=False)


BackendCommand = StartBackend | StopBackend | RestartBackend | UpdateBackend | ProbeBackend | Subscribe


@attrs.frozen
class BackendEvent:
    """A published state or health change; ``seq`` increases by one per backend."""

    name: str
    seq: int
    change: LifecycleEvent
    snapshot: BackendSnapshot


@attrs.frozen
class ProbeOutcome:
    """The answer to one :class:`ProbeBackend`: the latency, or why the ping failed or was skipped."""

    name: str
    token: int
    ok: bool
    latency: float | None = None
    failure: Failure | None = None
    skipped: str = ""
