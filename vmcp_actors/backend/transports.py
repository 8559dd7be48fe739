"""Opening the transport (stdio, streamable HTTP, SSE) that :class:`ConnectParams` describe.

The transports are async context managers; :func:`open_transport` enters the right one
on the caller's exit stack, so the owner task of the connection exits it again.  stdio
is :class:`~vmcp_actors.backend.stdio_transport.StdioServer` (created by the caller, which
needs its details); the HTTP ones are the SDK's.  Every HTTP client gets the
connection's response hooks: the body watch (:class:`~vmcp_actors.backend.http_bodies.BodyWatch`,
size limit and stream ends) first, then the status observer
(:class:`~vmcp_actors.backend.transport_watch.HttpObserver`), which is how HTTP statuses
the SDK swallows are seen.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import IO, TextIO, cast

import httpx2
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import SessionMessage

from vmcp_actors.backend.connect_params import ConnectParams
from vmcp_actors.backend.http_bodies import ACCEPT_ENCODING
from vmcp_actors.backend.http_reuse import DrainingTransport, env_proxy_configured
from vmcp_actors.backend.stdio_transport import StdioServer

__all__ = ["SSE_READ_TIMEOUT", "ResponseHook", "Streams", "open_transport", "stderr_target"]

SSE_READ_TIMEOUT = 300.0
"""How long an idle event stream may stay silent (SDK default): streams idle legitimately."""

ResponseHook = Callable[[httpx2.Response], Awaitable[None]]
Streams = tuple[ReadStream[SessionMessage | Exception], WriteStream[SessionMessage]]


async def open_transport(
    params: ConnectParams,
    stack: AsyncExitStack,
    on_response: tuple[ResponseHook, ...],
    stdio: StdioServer | None = None,
) -> Streams:
    """Start the transport of ``params`` inside ``stack``; return its read and write streams.

    ``stdio`` is the server to run for the stdio transport; ``on_response`` are the
    HTTP client's response hooks, in order.  Raises
    :class:`~vmcp_actors.backend.failures.CommandLaunchError` when a stdio command cannot
    be started; the transports' own errors propagate for classification.
    """
    if params.transport == "stdio":
        assert stdio is not None  # the caller creates it: it needs its details
        return await stack.enter_async_context(stdio.run())
    assert params.url is not None  # validated by ConnectParams
    headers = {"Accept-Encoding": ACCEPT_ENCODING, **dict(params.headers)}
    timeout = params.connect_timeout
    hooks = {"response": list(on_response)}
    if params.transport == "streamable-http":
        client = httpx2.AsyncClient(
            headers=headers,
            timeout=httpx2.Timeout(timeout, read=SSE_READ_TIMEOUT),
            event_hooks=hooks,
            # Keep-alive across requests (see http_reuse); not when the environment
            # configures a proxy, which only httpx's default transport honours.
            transport=None if env_proxy_configured() else DrainingTransport(),
        )
        await stack.enter_async_context(client)
        return await stack.enter_async_context(
            streamable_http_client(params.url, http_client=client, max_sse_event_size=params.max_response_bytes)
        )

    def client_factory(
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, event_hooks=hooks)

    return await stack.enter_async_context(
        sse_client(
            params.url,
            headers=headers,
            timeout=timeout,
            sse_read_timeout=SSE_READ_TIMEOUT,
            httpx_client_factory=client_factory,
        )
    )


def stderr_target(stack: AsyncExitStack) -> TextIO:
    """Where a stdio server's stderr goes: ours if it is a real file, else /dev/null.

    Inheriting stderr is what MCP hosts do (server logs end up next to ours, e.g. in the
    pod log); but the child needs a file descriptor, and ``sys.stderr`` may be a stream
    without one (test capture, embedding applications).
    """
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        devnull: IO[str] = open(os.devnull, "w")  # noqa: SIM115 - closed by the exit stack
        stack.callback(devnull.close)
        return cast(TextIO, devnull)
    return sys.stderr
