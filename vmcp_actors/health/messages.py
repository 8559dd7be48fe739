"""What the health actor is told and asked, as frozen values.

The supervisor sends the backend-set changes (add, remove, replace, gave up) and the
runtime's ``Refresh``/``BuildFinalStatus``; the actor sends itself the timer messages.
Backend events and probe outcomes come from the backend actors, in the backend's
vocabulary (:mod:`vmcp_actors.backend.actor`).  The actor tells its observers (metrics)
each :class:`ProbeObserved`.
"""

from __future__ import annotations

import attrs

from vmcp_actors.actorkit.guard import Mailbox
from vmcp_actors.backend.lifecycle_state import State
from vmcp_actors.backend.messages import ProbeOutcome
from vmcp_actors.health.status_builder import BackendView

__all__ = [
    "AddBackend",
    "BackendGaveUp",
    "BuildFinalStatus",
    "InitialWaitOver",
    "ProbeDue",
    "ProbeObserved",
    "Reassert",
    "Refresh",
    "RemoveBackend",
    "ReplaceBackendRef",
]


@attrs.frozen
class ProbeObserved:
    """A probe's outcome and how long the monitor waited for it, told to observers (metrics).

    ``seconds`` is ``None`` for a probe that did not run (``outcome.skipped``).
    """

    outcome: ProbeOutcome
    seconds: float | None


@attrs.frozen
class AddBackend:
    """Track a backend; ``ref`` is the actor that answers its probes.

    ``state`` is the backend's lifecycle state when a restarted health actor is told
    about a backend that is already running, so it need not wait for the next event.
    """

    view: BackendView
    ref: Mailbox = attrs.field(eq=False)
    has_outgoing_auth: bool = False
    state: State | None = None


@attrs.frozen
class RemoveBackend:
    """Stop tracking a backend; it leaves the status at once."""

    name: str


@attrs.frozen
class BackendGaveUp:
    """The supervisor stopped restarting this backend's actor: count it as failed."""

    name: str
    reason: str


@attrs.frozen
class ReplaceBackendRef:
    """The supervisor restarted the backend's actor: probe the new one."""

    name: str
    ref: Mailbox = attrs.field(eq=False)


@attrs.frozen
class Refresh:
    """Build and report the status now if it changed; the first one also starts the initial wait."""


@attrs.frozen
class BuildFinalStatus:
    """Answered (via ``ask``) with the final status after a graceful stop, which is also reported.

    Pending with Ready=False reason ``Stopped`` (``status_builder.stopped_status``), not the
    Failed the builder's rules would give once every backend is stopped on purpose.
    """


@attrs.frozen
class ProbeDue:
    """The timer of a backend's next probe fired; ``token`` says which schedule set it."""

    name: str
    token: int


@attrs.frozen
class Reassert:
    """The status interval has passed: report the status again."""


@attrs.frozen
class InitialWaitOver:
    """Stop waiting for backends that have not reported since startup."""
