"""Opening the SDK transport (stdio, streamable HTTP, SSE) that :class:`ConnectParams` describe.

The transports are async context managers; :func:`open_transport` enters the right one
on the caller's exit stack, so the owner task of the connection exits it again.  Every
HTTP client gets the connection's response hook, which is how HTTP statuses the SDK
swallows are seen (:class:`~vmcp_actors.backend.transport_watch.HttpObserver`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import IO, TextIO, cast

import httpx2
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import SessionMessage

from vmcp_actors.backend.connect_params import ConnectParams
from vmcp_actors.backend.failures import CommandLaunchError

__all__ = ["SSE_READ_TIMEOUT", "open_transport", "stderr_target"]

SSE_READ_TIMEOUT = 300.0
"""How long an idle event stream may stay silent (SDK default): streams idle legitimately."""

ResponseHook = Callable[[httpx2.Response], Awaitable[None]]
Streams = tuple[ReadStream[SessionMessage | Exception], WriteStream[SessionMessage]]


async def open_transport(params: ConnectParams, stack: AsyncExitStack, on_response: ResponseHook) -> Streams:
    """Start the transport of ``params`` inside ``stack``; return its read and write streams.

    Raises :class:`~vmcp_actors.backend.failures.CommandLaunchError` when a stdio command
    cannot be started; the transports' own errors propagate for classification.
    """
    if params.transport == "stdio":
        assert params.command is not None  # validated by ConnectParams
        server = StdioServerParameters(
            command=params.command,
            args=list(params.args),
            env=dict(params.env) or None,
            cwd=params.cwd,
        )
        try:
            return await stack.enter_async_context(stdio_client(server, errlog=stderr_target(stack)))
        except (OSError, ValueError) as exc:
            raise CommandLaunchError(params.command, params.cwd, exc) from exc
    assert params.url is not None  # validated by ConnectParams
    headers = dict(params.headers)
    timeout = params.connect_timeout
    hooks = {"response": [on_response]}
    if params.transport == "streamable-http":
        client = httpx2.AsyncClient(
            headers=headers,
            timeout=httpx2.Timeout(timeout, read=SSE_READ_TIMEOUT),
            event_hooks=hooks,
        )
        await stack.enter_async_context(client)
        return await stack.enter_async_context(streamable_http_client(params.url, http_client=client))

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
