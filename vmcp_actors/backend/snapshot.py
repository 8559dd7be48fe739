"""What anyone outside the backend actor may read about a backend, without waiting for it.

After every message the actor stores a fresh immutable :class:`BackendSnapshot` in its
:class:`SnapshotCell`; :func:`snapshot_of` is the one place that decides what a snapshot
shows of a spec and a lifecycle (secrets redacted).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from vmcp_actors.backend.lifecycle_state import Health, Lifecycle, State
from vmcp_actors.config.backend_spec import BackendSpec

__all__ = ["BackendSnapshot", "SnapshotCell", "snapshot_of"]


@attrs.frozen
class BackendSnapshot:
    """What muster's getters answer, as one immutable value (secrets redacted).

    ``mcp_revision`` is the MCP protocol version the last session negotiated (empty until
    a first connect); ``service_data`` is the redacted spec.
    """

    name: str
    transport: str
    url: str
    state: State
    health: Health
    consecutive_failures: int
    last_attempt: datetime | None
    next_retry_after: datetime | None
    tool_names: tuple[str, ...]
    last_error: str
    last_error_kind: str
    http_status: int | None
    last_probe_latency: float | None
    has_outgoing_auth: bool
    attempt: int
    mcp_revision: str
    service_data: dict[str, Any] = attrs.field(eq=False)

    @property
    def running(self) -> bool:
        """A session is open (muster's ``IsActiveState``, its client is ready)."""
        return self.state.active

    @property
    def tool_count(self) -> int:
        """How many tools the backend offered when it connected."""
        return len(self.tool_names)


def snapshot_of(spec: BackendSpec, lc: Lifecycle) -> BackendSnapshot:
    """The snapshot of a backend configured as ``spec`` whose lifecycle is ``lc``."""
    error = lc.last_error
    return BackendSnapshot(
        name=spec.name,
        transport=str(spec.type),
        url=spec.redacted_url or "",
        state=lc.state,
        health=lc.health,
        consecutive_failures=lc.consecutive_failures,
        last_attempt=lc.last_attempt_at,
        next_retry_after=lc.next_retry_wall,
        tool_names=lc.tool_names,
        last_error=error.message if error else "",
        last_error_kind=error.kind.value if error else "",
        http_status=error.http_status if error else None,
        last_probe_latency=lc.last_probe_latency,
        has_outgoing_auth=spec.auth.configured,
        attempt=lc.attempt,
        mcp_revision=lc.mcp_revision,
        service_data=spec.redacted(),
    )


class SnapshotCell:
    """Holds the latest snapshot of one backend: written by its actor, read by anyone.

    A single reference assignment is atomic, so readers never see a half-built value and
    never wait for the actor, even while it is busy.
    """

    __slots__ = ("value",)

    def __init__(self, value: BackendSnapshot) -> None:
        self.value = value
