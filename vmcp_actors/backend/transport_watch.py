"""Watching the SDK transports for the facts they swallow: HTTP statuses, dead streams.

* HTTP status codes: streamable HTTP turns every non-2xx response into a generic
  JSON-RPC error (-32603 "Server returned an error response", or -32600 "Session not
  found"), dropping the status and ``WWW-Authenticate``; the SSE client only logs a
  failed POST.  The connection's httpx client gets :class:`HttpObserver` as a response
  hook, which records failed POSTs (so a failing request can be attributed to its
  status) and reports every failure as it happens.
* A dead stdio process or SSE stream: the transport just closes its read stream, and
  the stdio transport passes lines that are not JSON-RPC along as exception items.
  :class:`WatchedReadStream` wraps the read stream the session consumes and reports
  both.

What a reported fact means for the connection is decided by
:class:`~vmcp_actors.backend.session.McpConnection`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import anyio
import httpx2
from mcp.shared._stream_protocols import ReadStream
from mcp.shared.message import SessionMessage

from vmcp_actors.backend.failures import HttpStatusError

__all__ = ["MCP_SESSION_ID", "HttpObserver", "WatchedReadStream"]

MCP_SESSION_ID = "mcp-session-id"
"""The header that carries the MCP session id (httpx headers are case-insensitive)."""


class HttpObserver:
    """httpx response hook: remembers failed POSTs and reports failures as they happen.

    Failed POSTs are kept so a failing request can be attributed to its HTTP status.
    ``on_failure`` sees every failed response except DELETE (session termination on
    close); the connection decides which ones matter (the listening GET stream of
    streamable HTTP fails legitimately, e.g. 405 from servers without one, and retries
    on its own).
    """

    def __init__(self, on_failure: Callable[[HttpStatusError], None]) -> None:
        self._on_failure = on_failure
        self._sequence = 0
        self._latest: HttpStatusError | None = None

    def mark(self) -> int:
        """A position to later ask "what failed since then?"."""
        return self._sequence

    def failure_since(self, mark: int) -> HttpStatusError | None:
        """The latest failed POST recorded after ``mark``, if any."""
        return self._latest if self._sequence > mark else None

    async def on_response(self, response: httpx2.Response) -> None:
        """The response hook: record and report an error status."""
        status = response.status_code
        request = response.request
        if status < 400 or request.method == "DELETE":
            return
        error = HttpStatusError(
            status,
            reason=response.reason_phrase,
            method=request.method,
            url=str(request.url),
            www_authenticate=response.headers.get("www-authenticate"),
            session_id_sent=MCP_SESSION_ID in request.headers,
        )
        if request.method == "POST":
            self._sequence += 1
            self._latest = error
        self._on_failure(error)


class WatchedReadStream:
    """Wraps the transport's read stream to see end-of-stream and in-band errors.

    The SDK transports report a dead peer only by closing this stream, and the stdio
    transport forwards unparseable stdout lines as ``Exception`` items; both are facts
    the connection needs, so they are reported through ``on_end`` and ``on_exception``.
    Exception items are consumed here (the session would only hand them to a no-op
    message handler).
    """

    def __init__(
        self,
        inner: ReadStream[SessionMessage | Exception],
        *,
        on_end: Callable[[], None],
        on_exception: Callable[[Exception], None],
    ) -> None:
        self._inner = inner
        self._on_end = on_end
        self._on_exception = on_exception

    @property
    def last_context(self) -> Any:
        """The sender's contextvars snapshot, which the dispatcher reads when present."""
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        """The next message; exception items are reported and skipped."""
        while True:
            try:
                item = await self._inner.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self._on_end()
                raise
            if isinstance(item, Exception):
                self._on_exception(item)
                continue
            return item

    async def aclose(self) -> None:
        """Close the wrapped stream."""
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        return None
