"""The backend lifecycle's values: its states, its numbers, and the state record itself.

:class:`Lifecycle` is everything the backend actor knows about one backend, as one
immutable value; :func:`vmcp_actors.backend.lifecycle.transition` is the only thing that
makes a new one.  :class:`LifecyclePolicy` holds muster's numbers (backoff, unreachable
threshold, restart grace), each defined once here.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Final

import attrs

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.failures import Failure
from vmcp_actors.config.health_settings import DEFAULT_HEALTH_CHECK_TIMEOUT

__all__ = [
    "AUTH_RETRY_BACKOFF",
    "BACKOFF_JITTER",
    "CREDENTIALS_POLL_INTERVAL",
    "DEFAULT_BACKOFF",
    "INITIAL_BACKOFF",
    "MAX_BACKOFF",
    "PROBE_FAILURES_BEFORE_RECONNECT",
    "RESTART_GRACE_PERIOD",
    "UNREACHABLE_THRESHOLD",
    "Health",
    "Lifecycle",
    "LifecyclePolicy",
    "State",
]

#: muster ``UnreachableThreshold``.
UNREACHABLE_THRESHOLD: Final = 3
#: muster ``InitialBackoff`` (configurable here, as muster's env override allows).
INITIAL_BACKOFF: Final = 30.0
#: muster ``MaxBackoff``.
MAX_BACKOFF: Final = 30 * 60.0
#: Jitter muster lacks: up to 10 % added, never past the cap, never below the base delay.
BACKOFF_JITTER: Final = 0.1
DEFAULT_BACKOFF: Final = Backoff(initial=INITIAL_BACKOFF, maximum=MAX_BACKOFF, factor=2.0, jitter=BACKOFF_JITTER)
#: How an auth-required backend is retried when its credentials do not visibly change
#: (a token rotated at the server, or one the watch cannot see): slowly, 1 min doubling
#: to 30 min.  A rewritten token file or a new spec retries at once instead.
AUTH_RETRY_BACKOFF: Final = Backoff(initial=60.0, maximum=MAX_BACKOFF, factor=2.0, jitter=BACKOFF_JITTER)
#: How often the actor of an auth-required backend re-reads its token to notice a rotation.
CREDENTIALS_POLL_INTERVAL: Final = 1.0
#: muster ``RestartGracePeriod``.
RESTART_GRACE_PERIOD: Final = 0.2
#: Consecutive failed probes after which the session is presumed dead (muster PR #1187).
PROBE_FAILURES_BEFORE_RECONNECT: Final = 3


class State(enum.StrEnum):
    """muster's service states used by an MCP server."""

    UNKNOWN = "unknown"
    STARTING = "starting"
    RUNNING = "running"  # stdio, session open
    CONNECTED = "connected"  # remote, session open
    STOPPING = "stopping"
    STOPPED = "stopped"  # stdio, stopped on request
    DISCONNECTED = "disconnected"  # remote, stopped on request
    FAILED = "failed"
    UNREACHABLE = "unreachable"  # remote, too many transient failures in a row
    AUTH_REQUIRED = "auth_required"  # remote answered 401

    @property
    def active(self) -> bool:
        """A session is open (muster ``IsActiveState``)."""
        return self in (State.RUNNING, State.CONNECTED)

    @property
    def stopped(self) -> bool:
        """Stopped on request: nothing happens until the next Start."""
        return self in (State.STOPPED, State.DISCONNECTED)

    @property
    def session_gone(self) -> bool:
        """No usable session: the health rules treat these as unhealthy at once."""
        return self in (State.FAILED, State.UNREACHABLE, State.STOPPED, State.DISCONNECTED)


class Health(enum.StrEnum):
    """What the lifecycle knows of the session's health: its connect and probe results."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@attrs.frozen
class LifecyclePolicy:
    """The numbers; defaults are muster's, the backoff's initial delay is configurable.

    ``probe_timeout`` bounds one MCP ping; its default is the health check timeout's.
    ``auth_retry`` spaces the retries of a backend whose credentials were rejected, and
    ``credentials_poll`` is how often its actor looks for new ones meanwhile.
    """

    backoff: Backoff = DEFAULT_BACKOFF
    unreachable_threshold: int = UNREACHABLE_THRESHOLD
    restart_grace: float = RESTART_GRACE_PERIOD
    probe_timeout: float = DEFAULT_HEALTH_CHECK_TIMEOUT
    probe_failures_before_reconnect: int = PROBE_FAILURES_BEFORE_RECONNECT
    auth_retry: Backoff = AUTH_RETRY_BACKOFF
    credentials_poll: float = CREDENTIALS_POLL_INTERVAL


@attrs.frozen
class Lifecycle:
    """Everything the actor knows about one backend; the snapshot is built from it.

    ``attempt`` numbers connections (a result from another attempt is stale);
    ``timer_token`` numbers timers (a timer with another token is obsolete);
    ``mcp_revision`` is the protocol version the last session negotiated;
    ``auth_failures`` counts the credential rejections since the last session (it spaces
    the auth retries; the 401 itself resets the other counters, as muster does).
    """

    name: str
    remote: bool
    state: State = State.UNKNOWN
    health: Health = Health.UNKNOWN
    attempt: int = 0
    want_running: bool = False
    restart_pending: bool = False
    consecutive_failures: int = 0
    transient_failures: int = 0
    probe_failures: int = 0
    probe_in_flight: bool = False
    last_attempt_at: datetime | None = None
    next_retry_at: float | None = None
    next_retry_wall: datetime | None = None
    timer_token: int = 0
    last_error: Failure | None = None
    last_probe_latency: float | None = None
    tool_names: tuple[str, ...] = ()
    mcp_revision: str = ""
    auth_failures: int = 0

    @property
    def active_state(self) -> State:
        """The state an open session has: ``connected`` for remote, ``running`` for stdio."""
        return State.CONNECTED if self.remote else State.RUNNING

    @property
    def stopped_state(self) -> State:
        """The state after a requested stop: ``disconnected`` for remote, ``stopped`` for stdio."""
        return State.DISCONNECTED if self.remote else State.STOPPED
