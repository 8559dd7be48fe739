"""Watching the SDK transports for the facts they swallow: HTTP statuses, dead streams.

* HTTP status codes: streamable HTTP turns every non-2xx response into a generic
  JSON-RPC error (-32603 "Server returned an error response", or -32600 "Session not
  found"), dropping the status and ``WWW-Authenticate``; the SSE client only logs a
  failed POST.  The connection's httpx client gets :class:`HttpObserver` as a response
  hook, which records failed POSTs (so a failing request can be attributed to its
  status) and reports every failure as it happens.
  A 400 on a request that carried an ``Mcp-Session-Id`` gets its (small) body read:
  servers built on the TypeScript SDK answer an unknown session that way, with a body
  that talks about the session, where others answer 404.
* A dead SSE stream: the transport just closes its read stream, and passes in-band
  errors along as exception items.  :class:`WatchedReadStream` wraps the read stream the
  session consumes and reports both.
* Who sent an error response: the SDK raises its own conditions (connection closed,
  request timed out) with JSON-RPC codes a server may use for its own errors, so
  :class:`WatchedReadStream` records the error responses that really came through the
  read stream (:class:`PeerErrors`), and the connection attributes an error by that.

What a reported fact means for the connection is decided by
:class:`~vmcp_actors.backend.session.McpConnection`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import anyio
import httpx2
import mcp_types
from mcp.shared._stream_protocols import ReadStream
from mcp.shared.message import SessionMessage

from vmcp_actors.backend.failures import HttpStatusError

__all__ = ["MCP_SESSION_ID", "HttpObserver", "PeerErrors", "WatchedReadStream"]

MCP_SESSION_ID = "mcp-session-id"
"""The header that carries the MCP session id (httpx headers are case-insensitive)."""

_SESSION_BODY_LIMIT = 64 * 1024
"""Largest 400 body read to see whether it is about the session (error bodies are small)."""

_PEER_ERRORS_KEPT = 32


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
        session_id_sent = MCP_SESSION_ID in request.headers
        error = HttpStatusError(
            status,
            reason=response.reason_phrase,
            method=request.method,
            url=str(request.url),
            www_authenticate=response.headers.get("www-authenticate"),
            session_id_sent=session_id_sent,
            unknown_session=session_id_sent and status == 400 and await _body_mentions_session(response),
        )
        if request.method == "POST":
            self._sequence += 1
            self._latest = error
        self._on_failure(error)


async def _body_mentions_session(response: httpx2.Response) -> bool:
    """Whether a small error body talks about the MCP session (read once; httpx caches it)."""
    try:
        length = int(response.headers.get("content-length", ""))
    except ValueError:
        return False  # unannounced length: not read, it could be anything
    if length > _SESSION_BODY_LIMIT:
        return False
    try:
        body = await response.aread()
    except httpx2.HTTPError:
        return False
    return b"session" in body.lower()


class PeerErrors:
    """The JSON-RPC error responses that arrived from the server, recent ones first to go.

    ``mark``/``sent_since`` work like :class:`HttpObserver`'s: a request marks before it
    is sent and asks afterwards whether its error was among those that arrived.
    """

    def __init__(self) -> None:
        self._sequence = 0
        self._recent: deque[tuple[int, int, str]] = deque(maxlen=_PEER_ERRORS_KEPT)

    def mark(self) -> int:
        """A position to later ask "did the server send this error since then?"."""
        return self._sequence

    def record(self, code: int, message: str) -> None:
        """An error response arrived through the read stream."""
        self._sequence += 1
        self._recent.append((self._sequence, code, message))

    def sent_since(self, mark: int, code: int, message: str) -> bool:
        """Whether an error response with this code and message arrived after ``mark``."""
        return any(seq > mark and (c, m) == (code, message) for seq, c, m in self._recent)


class WatchedReadStream:
    """Wraps the transport's read stream to see its end, in-band errors and error responses.

    The transports report a dead peer only by closing this stream, and the SDK's HTTP
    transports forward unparseable messages as ``Exception`` items; both are facts the
    connection needs, so they are reported through ``on_end`` and ``on_exception``.
    Exception items are consumed here (the session would only hand them to a no-op
    message handler).  Every JSON-RPC error response passing through is recorded in
    ``peer_errors``.
    """

    def __init__(
        self,
        inner: ReadStream[SessionMessage | Exception],
        *,
        on_end: Callable[[], None],
        on_exception: Callable[[Exception], None],
        peer_errors: PeerErrors,
    ) -> None:
        self._inner = inner
        self._on_end = on_end
        self._on_exception = on_exception
        self._peer_errors = peer_errors

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
            if isinstance(item.message, mcp_types.JSONRPCError):
                self._peer_errors.record(item.message.error.code, item.message.error.message)
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
