"""What goes into the backend lifecycle and what comes out: inputs, effects, events.

Inputs are commands (start, stop, restart, reconfigure), I/O results reported by the
actor shell (connect, close, session lost, probe) and timers coming due.  Effects are
what the shell must do, in order: open or close a session, keep or discard a finished
connect, schedule a timer, ping, call the auth hook, publish a change.  All are frozen
values; the rules that map one to the other are in :mod:`vmcp_actors.backend.lifecycle`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from vmcp_actors.backend.failures import Failure
from vmcp_actors.backend.lifecycle_state import Health, State

if TYPE_CHECKING:
    from vmcp_actors.config.backend_spec import BackendSpec

__all__ = [
    "AdoptSession",
    "AuthRequired",
    "Close",
    "Closed",
    "Connect",
    "ConnectFailed",
    "ConnectSucceeded",
    "CredentialsChanged",
    "DiscardSession",
    "Effect",
    "Input",
    "LifecycleEvent",
    "Now",
    "Probe",
    "ProbeFailed",
    "ProbeRequested",
    "ProbeSkipped",
    "ProbeSucceeded",
    "Publish",
    "Reconfigure",
    "Restart",
    "RestartDue",
    "RetryDue",
    "ScheduleTimer",
    "SessionLost",
    "Start",
    "Stop",
]


@attrs.frozen
class Now:
    """The moment an input is handled: monotonic seconds, wall time, a jitter draw in [0, 1)."""

    monotonic: float
    wall: datetime
    draw: float = 0.5


# --------------------------------------------------------------------------- commands


@attrs.frozen
class Start:
    """Connect (muster ``Start``); a no-op while starting or active."""


@attrs.frozen
class Stop:
    """Close the session and stay down until the next Start (muster ``Stop``; never fails)."""


@attrs.frozen
class Restart:
    """Stop, wait the grace period, Start (muster ``Restart``)."""


@attrs.frozen
class Reconfigure:
    """The backend's spec was replaced by a valid new one.

    ``changed`` is muster's ``ConfigurationChanged`` (a change that needs a new session),
    ``remote`` the new spec's transport class, and ``auto_start_enabled`` whether
    ``autoStart`` went from false to true.  Build it with :meth:`between`.
    """

    changed: bool
    remote: bool
    auto_start_enabled: bool = False

    @classmethod
    def between(cls, old: BackendSpec, new: BackendSpec) -> Reconfigure:
        """What replacing ``old`` by ``new`` means for the lifecycle."""
        return cls(
            changed=old.config_changed(new),
            remote=new.remote,
            auto_start_enabled=new.auto_start and not old.auto_start,
        )


# --------------------------------------------------------------------------- I/O results and timers


@attrs.frozen
class ConnectSucceeded:
    """The connect of ``attempt`` finished: a session is open and waits to be adopted or discarded.

    ``mcp_revision`` is the protocol version the server agreed to in ``initialize``.
    """

    attempt: int
    tool_names: tuple[str, ...] = ()
    mcp_revision: str = ""


@attrs.frozen
class ConnectFailed:
    """The connect of ``attempt`` failed; nothing of it is left open."""

    attempt: int
    failure: Failure


@attrs.frozen
class Closed:
    """The shell finished closing everything of ``attempt``."""

    attempt: int


@attrs.frozen
class SessionLost:
    """An open session died on its own (process exited, server forgot the session)."""

    attempt: int
    failure: Failure


@attrs.frozen
class RetryDue:
    """The backoff after a failure has passed; ``token`` tells a current timer from an obsolete one."""

    token: int


@attrs.frozen
class RestartDue:
    """The restart grace period has passed; ``token`` tells a current timer from an obsolete one."""

    token: int


@attrs.frozen
class CredentialsChanged:
    """The backend's credentials now differ from the ones last rejected (a rotated token file)."""


@attrs.frozen
class ProbeRequested:
    """Check the session with an MCP ping."""


@attrs.frozen
class ProbeSucceeded:
    """The ping on the session of ``attempt`` answered after ``latency`` seconds."""

    attempt: int
    latency: float


@attrs.frozen
class ProbeFailed:
    """The ping on the session of ``attempt`` failed."""

    attempt: int
    failure: Failure


Input = (
    Start
    | Stop
    | Restart
    | Reconfigure
    | ConnectSucceeded
    | ConnectFailed
    | Closed
    | SessionLost
    | RetryDue
    | RestartDue
    | CredentialsChanged
    | ProbeRequested
    | ProbeSucceeded
    | ProbeFailed
)


# --------------------------------------------------------------------------- effects


@attrs.frozen
class Connect:
    """Open a session for ``attempt``; report ConnectSucceeded or ConnectFailed."""

    attempt: int


@attrs.frozen
class AdoptSession:
    """Keep the session ``attempt``'s connect opened: it is now the backend's session."""

    attempt: int


@attrs.frozen
class DiscardSession:
    """Close the session ``attempt``'s connect opened without reporting: nobody wants it."""

    attempt: int


@attrs.frozen
class Close:
    """Make sure nothing of ``attempt`` stays open, then report Closed(attempt).

    Cancels the connect, closes the session and reaps the process, whichever applies.
    """

    attempt: int


@attrs.frozen
class ScheduleTimer:
    """Deliver ``message`` after ``delay`` seconds."""

    delay: float
    message: RetryDue | RestartDue


@attrs.frozen
class Probe:
    """Ping the session of ``attempt`` within ``timeout`` seconds; report the result."""

    attempt: int
    timeout: float


@attrs.frozen
class ProbeSkipped:
    """No ping is possible now (``reason`` says why); answer the probe requests with that."""

    reason: str


@attrs.frozen
class AuthRequired:
    """Call the auth-required hook; always emitted before the Publish it explains."""

    failure: Failure


@attrs.frozen
class LifecycleEvent:
    """A state or health change, as subscribers see it."""

    name: str
    old_state: State
    new_state: State
    old_health: Health
    health: Health
    error: str
    at: datetime


@attrs.frozen
class Publish:
    """Tell the subscribers about ``event``."""

    event: LifecycleEvent


Effect = Connect | AdoptSession | DiscardSession | Close | ScheduleTimer | Probe | ProbeSkipped | AuthRequired | Publish
