"""Opening an MCP session: transport, ``ClientSession``, ``initialize``, ``tools/list``.

Called by a connection's owner task (:class:`~vmcp_actors.backend.session.McpConnection`)
inside its exit stack, so the same task exits everything again.  The watchers the
connection needs (:class:`Watchers`) are wired in here: the HTTP response hooks, the
read-stream wrapper that sees the stream end and records the server's error responses.
A JSON-RPC error the server itself sent to ``initialize`` or ``tools/list`` is reported
as the server's (``PROTOCOL``), whatever its code (see
:mod:`~vmcp_actors.backend.attribution`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack

import attrs
import mcp_types as types
from mcp.client.session import ClientSession

from vmcp_actors.backend.attribution import Attribution
from vmcp_actors.backend.classify import classify
from vmcp_actors.backend.client_callbacks import ClientCallbacks
from vmcp_actors.backend.connect_params import ConnectParams, ServerInfo
from vmcp_actors.backend.failures import BackendError, Failure, FailureKind
from vmcp_actors.backend.stdio_transport import StdioServer
from vmcp_actors.backend.transport_watch import WatchedReadStream
from vmcp_actors.backend.transports import ResponseHook, open_transport
from vmcp_actors.version import __version__

__all__ = [
    "CLIENT_NAME",
    "CLIENT_VERSION",
    "Handshake",
    "Watchers",
    "handshake_timeout",
    "list_tool_names",
    "open_session",
]

#: How this client introduces itself in ``initialize``.
CLIENT_NAME = "vmcp-actors"
CLIENT_VERSION = __version__

_MAX_TOOL_PAGES = 100
"""A server whose ``tools/list`` cursor never ends cannot keep a connect busy forever."""


@attrs.frozen
class Watchers:
    """What the connection watches the transport with."""

    attribution: Attribution
    http_hooks: tuple[ResponseHook, ...]
    on_stream_end: Callable[[], None]
    on_stream_exception: Callable[[Exception], None]


@attrs.frozen
class Handshake:
    """An open session and what the server said about itself."""

    session: ClientSession = attrs.field(eq=False)
    server_info: ServerInfo
    protocol_version: str
    tool_names: tuple[str, ...]


async def list_tool_names(session: ClientSession) -> tuple[str, ...]:
    """All tool names, following ``nextCursor`` pagination (bounded)."""
    names: list[str] = []
    cursor: str | None = None
    for _ in range(_MAX_TOOL_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        result = await session.list_tools(params=params)
        names.extend(tool.name for tool in result.tools)
        cursor = result.next_cursor
        if not cursor:
            break
    return tuple(names)


def handshake_timeout(params: ConnectParams, noise_lines: int) -> Failure:
    """The failure of a handshake that did not complete in time, saying what was skipped."""
    message = f"no complete MCP handshake (initialize + tools/list) within {params.connect_timeout:g}s"
    if noise_lines:
        message += f" ({noise_lines} non-JSON-RPC line(s) on the server's stdout were skipped)"
    return Failure(FailureKind.TIMEOUT, message)


async def open_session(
    params: ConnectParams,
    stack: AsyncExitStack,
    watch: Watchers,
    stdio: StdioServer | None,
    callbacks: ClientCallbacks | None = None,
) -> Handshake:
    """Enter the transport and the session on ``stack``; ``initialize``; list the tools.

    Raises whatever the transport or the SDK raises (classified by the caller), or a
    :class:`BackendError` for an error response the server sent.
    """
    read_stream, write_stream = await open_transport(params, stack, watch.http_hooks, stdio)
    watched = WatchedReadStream(
        read_stream,
        on_end=watch.on_stream_end,
        on_exception=watch.on_stream_exception,
        peer_errors=watch.attribution.peer_errors,
    )
    hooks = callbacks or ClientCallbacks()
    session = await stack.enter_async_context(
        ClientSession(
            watched,
            write_stream,
            sampling_callback=hooks.sampling,
            elicitation_callback=hooks.elicitation,
            list_roots_callback=hooks.list_roots,
            logging_callback=hooks.logging,
            message_handler=hooks.message,
            client_info=types.Implementation(name=CLIENT_NAME, version=CLIENT_VERSION),
        )
    )
    mark = watch.attribution.mark()
    try:
        result = await session.initialize()
        tool_names = await list_tool_names(session)
    except Exception as exc:
        peer_error = watch.attribution.peer_error(exc, mark)
        if peer_error is None:
            raise
        raise BackendError(classify(peer_error)) from exc
    info = result.server_info
    return Handshake(
        session=session,
        server_info=ServerInfo(name=info.name, version=info.version, title=info.title),
        protocol_version=result.protocol_version,
        tool_names=tool_names,
    )
