"""What a backend's SDK session calls for what the backend sends on its own.

The data plane fills these in (see :mod:`vmcp_actors.backend.routes`): server-to-client
requests (sampling, elicitation, roots), log messages, and the other notifications
(``list_changed``, ``resources/updated``).  The session module only passes them on.
"""

from __future__ import annotations

import attrs
from mcp.client.session import ElicitationFnT, ListRootsFnT, LoggingFnT, MessageHandlerFnT, SamplingFnT

__all__ = ["ClientCallbacks"]


@attrs.frozen
class ClientCallbacks:
    """The SDK session's callbacks for one connection.

    A callback left ``None`` keeps the SDK's default, which also means the capability is
    not declared to the backend (no sampling callback: the backend is told the client
    cannot sample).
    """

    sampling: SamplingFnT | None = attrs.field(default=None, eq=False)
    elicitation: ElicitationFnT | None = attrs.field(default=None, eq=False)
    list_roots: ListRootsFnT | None = attrs.field(default=None, eq=False)
    logging: LoggingFnT | None = attrs.field(default=None, eq=False)
    message: MessageHandlerFnT | None = attrs.field(default=None, eq=False)
