"""One MCP client session with a backend over stdio, streamable HTTP or SSE, on the official SDK.

Everything here runs on the :class:`~vmcp_actors.actorkit.loop.LoopThread` event loop; actors call
it through ``loop_thread.submit(...)`` and never block on the network themselves.

Shape of a connection
---------------------
The SDK's transports and :class:`~mcp.client.session.ClientSession` are async context
managers backed by anyio task groups, and anyio requires a task group to be exited by
the task that entered it.  So every :class:`McpConnection` has one long-lived *owner
task* that enters the transport (:func:`~vmcp_actors.backend.transports.open_transport`)
and the session, performs the handshake (``initialize`` then ``tools/list``) under a
single ``connect_timeout`` deadline, reports readiness, waits until it is told to close
(or the connection dies), and exits the contexts itself.  Requests
(:meth:`McpConnection.ping`, :meth:`McpConnection.list_tools`) are sent from the
caller's task: the SDK correlates responses through memory streams, which any task may
use.

What the SDK does not tell us is watched for (:mod:`vmcp_actors.backend.transport_watch`)
and judged here: an HTTP error status is attributed to the request that failed; a 404 to
a request that carried an ``Mcp-Session-Id`` (muster #999) and any failed POST over SSE
(whose POST writer then stops for good) mark the connection lost at once; a dead stdio
process or SSE stream ends it; garbage on stdout fails a handshake with ``PROTOCOL``
(the stdio transport spec forbids anything but MCP messages there) and is logged, once
and without its content, afterwards.

Every error that leaves this module is a :class:`~vmcp_actors.backend.failures.BackendError`
carrying a classified :class:`~vmcp_actors.backend.failures.Failure`.

Protocol era: connections use the classic ``initialize`` handshake (the SDK's "legacy"
mode), not the 2026-07-28 ``server/discover`` negotiation the SDK's high-level ``Client``
defaults to.  The lifecycle needs ``ping`` (removed in the 2026 revision) and the
session-id semantics that make a forgotten session detectable.  The revision the server
agreed to is kept as :attr:`McpConnection.protocol_version`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TypeVar

import anyio
import attrs
import mcp_types as types
from mcp.client.session import ClientSession

from vmcp_actors.backend.classify import classify, is_connection_closed
from vmcp_actors.backend.connect_params import ConnectParams, ServerInfo
from vmcp_actors.backend.failures import BackendError, Failure, FailureKind, HttpStatusError
from vmcp_actors.backend.transport_watch import HttpObserver, WatchedReadStream
from vmcp_actors.backend.transports import open_transport
from vmcp_actors.version import __version__

__all__ = ["CLIENT_NAME", "CLIENT_VERSION", "McpConnection", "connect"]

_log = logging.getLogger(__name__)

#: How this client introduces itself in ``initialize``.
CLIENT_NAME = "vmcp-actors"
CLIENT_VERSION = __version__

DEFAULT_CLOSE_TIMEOUT = 10.0
"""Upper bound for :meth:`McpConnection.close`.  The SDK's stdio shutdown alone may take
about 6 s against a process that ignores both stdin EOF and SIGTERM (2 s grace, SIGTERM,
2 s, SIGKILL, reap), so this leaves headroom before the owner task is cancelled."""

_MAX_TOOL_PAGES = 100
"""A server whose ``tools/list`` cursor never ends cannot keep a connect busy forever."""

_LOST_EXPLANATION_WAIT = 1.0
"""How long a failed request waits for the owner task to learn why the connection died."""

_T = TypeVar("_T")


async def _list_tool_names(session: ClientSession) -> tuple[str, ...]:
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


# -------------------------------------------------------------------------- connection


class McpConnection:
    """One open MCP session with a backend; create it with :func:`connect`.

    All methods must be called on the event loop that created the connection (the
    :class:`~vmcp_actors.actorkit.loop.LoopThread`).  The connection ends either because
    :meth:`close` was called or because it died on its own (process exited, server
    forgot the session, transport failed); in the latter case ``on_lost`` (given to
    :func:`connect`) is called exactly once with the :class:`Failure`, and
    :meth:`wait_closed` returns it.
    """

    def __init__(self, params: ConnectParams, on_lost: Callable[[Failure], None] | None = None) -> None:
        self._params = params
        self._on_lost = on_lost
        self._observer = HttpObserver(self._on_http_failure)
        self._session: ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._end = asyncio.Event()
        self._done = asyncio.Event()
        self._connect_scope: anyio.CancelScope | None = None
        self._connected = False
        self._closing = False
        self._abort_failure: Failure | None = None
        self._lost: Failure | None = None
        self._last_stream_error: Exception | None = None
        self._garbage_lines = 0
        self.server_info = ServerInfo(name="", version="")
        self.protocol_version = ""
        self.tool_names: tuple[str, ...] = ()

    # ---------------------------------------------------------------- public API

    @property
    def name(self) -> str:
        """The backend name from the parameters."""
        return self._params.name

    @property
    def is_open(self) -> bool:
        """True while the session is usable: connected, not closing, not lost."""
        return self._session is not None and not self._end.is_set()

    async def open(self) -> None:
        """Start the owner task and wait for the handshake; :func:`connect` is the way to call it.

        Raises :class:`BackendError` after cleaning up whatever was started.  If the
        caller is cancelled meanwhile, everything started is torn down before the
        cancellation propagates.
        """
        if self._task is not None:
            raise RuntimeError(f"MCP connection {self.name!r} was already opened")
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._task = loop.create_task(self._own(ready), name=f"mcp-connection:{self.name}")
        try:
            await asyncio.shield(ready)
        except asyncio.CancelledError:
            # The caller gave up: tear down whatever was started, then let the cancel through.
            self._closing = True
            self._abort_connect(Failure(FailureKind.TRANSIENT, "connect was cancelled"))
            await self.close()
            if ready.done() and not ready.cancelled():
                ready.exception()  # consumed, so asyncio does not log it as never retrieved
            raise

    async def ping(self, timeout: float) -> float:
        """Send an MCP ``ping`` and return the round-trip time in seconds.

        Raises :class:`BackendError`: ``TIMEOUT`` after ``timeout`` seconds,
        ``SESSION_LOST`` if the server forgot the session or the connection is gone,
        ``TRANSIENT``/``AUTH_REQUIRED``/... (with ``http_status``) for HTTP failures.
        """
        started = time.monotonic()
        await self._request("ping", timeout, lambda session: session.send_ping())
        return time.monotonic() - started

    async def list_tools(self, timeout: float) -> tuple[str, ...]:
        """Fetch the tool names again (all pages); also updates :attr:`tool_names`."""
        names = await self._request("tools/list", timeout, _list_tool_names)
        self.tool_names = names
        return names

    async def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Close the session and release everything; idempotent, never raises.

        Waits (up to ``timeout``) for the owner task to exit the SDK contexts: for stdio
        that ends the server process (stdin closed, then SIGTERM, then SIGKILL, reaped);
        for streamable HTTP the session is deleted on the server.  If the owner task has
        not finished by then it is cancelled.  Cancellation of the caller still
        propagates (it is not an error).
        """
        self._closing = True
        self._end.set()
        task = self._task
        if task is None or task is asyncio.current_task() or task.done():
            return
        try:
            finished, _ = await asyncio.wait({task}, timeout=max(0.0, timeout))
            if not finished:
                _log.warning("MCP backend %r did not close within %.1fs; cancelling it", self.name, timeout)
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - close() never raises; logged with traceback
            _log.exception("MCP backend %r: unexpected error while closing", self.name)

    async def wait_closed(self) -> Failure | None:
        """Wait until the connection has ended and released its resources.

        Returns the :class:`Failure` if it died on its own, ``None`` if it was closed.
        """
        await self._done.wait()
        return self._lost

    def __repr__(self) -> str:
        state = "open" if self.is_open else ("lost" if self._lost else "closed")
        return f"<McpConnection {self.name!r} {self._params.transport} {state}>"

    # ------------------------------------------------------------------- requests

    async def _request(self, op: str, timeout: float, call: Callable[[ClientSession], Awaitable[_T]]) -> _T:
        session = self._session
        if session is None or self._end.is_set():
            raise BackendError(self._not_open_failure(op))
        mark = self._observer.mark()
        deadline = time.monotonic() + timeout
        try:
            with anyio.fail_after(timeout):
                return await call(session)
        except Exception as exc:
            failure = await self._request_failure(op, exc, mark, deadline, timeout)
            raise BackendError(failure) from exc

    async def _request_failure(self, op: str, exc: Exception, mark: int, deadline: float, timeout: float) -> Failure:
        http_error = self._observer.failure_since(mark)
        if http_error is not None:
            failure = classify(http_error)
        elif is_connection_closed(exc):
            # The transport is gone; the owner task is finding out why (for streamable
            # HTTP the real error surfaces when it exits the transport's task group).
            with anyio.move_on_after(min(max(deadline - time.monotonic(), 0.1), _LOST_EXPLANATION_WAIT)):
                await self._done.wait()
            failure = self._lost or classify(exc)
        elif isinstance(exc, TimeoutError):
            failure = Failure(FailureKind.TIMEOUT, f"no answer within {timeout:g}s")
        else:
            failure = classify(exc)
        if failure.kind is FailureKind.SESSION_LOST or is_connection_closed(exc):
            self._signal_lost(failure)
        return attrs.evolve(failure, message=f"{op} failed: {failure.message}")

    def _not_open_failure(self, op: str) -> Failure:
        if self._lost is not None:
            return attrs.evolve(self._lost, message=f"{op} failed: connection was lost: {self._lost.message}")
        return Failure(FailureKind.SESSION_LOST, f"{op} failed: the connection is closed")

    # --------------------------------------------------------- signals from below

    def _on_http_failure(self, error: HttpStatusError) -> None:
        session_gone = error.status == 404 and error.session_id_sent
        if not (session_gone or error.method == "POST"):
            return  # listening-stream trouble: the transports retry or report it themselves
        failure = classify(error)
        if not self._connected:
            # Fail the handshake now: the SSE transport would otherwise just log the
            # failed POST and leave initialize waiting until connect_timeout.
            self._abort_connect(failure)
        elif session_gone or self._params.transport == "sse":
            # A forgotten session is final; and the SDK's SSE POST writer stops for good
            # after any failed POST, so that connection can never send again.
            self._signal_lost(failure)

    def _on_stream_end(self) -> None:
        # Streamable HTTP closes its read stream only while its task group is being torn
        # down, and then the owner task learns the real cause from the exception group.
        if self._closing or self._end.is_set() or self._params.transport == "streamable-http":
            return
        if self._params.transport == "stdio":
            what = "the stdio server process exited (its stdout closed)"
        else:
            what = "the server closed the SSE event stream"
        if self._last_stream_error is not None:
            what = f"{what} ({classify(self._last_stream_error).message})"
        if self._connected:
            self._signal_lost(Failure(FailureKind.SESSION_LOST, what))
        else:
            self._abort_connect(Failure(FailureKind.TRANSIENT, f"{what} before the handshake completed"))

    def _on_stream_exception(self, exc: Exception) -> None:
        self._last_stream_error = exc
        if self._params.transport == "stdio":
            self._garbage_lines += 1
            if not self._connected:
                self._abort_connect(
                    Failure(
                        FailureKind.PROTOCOL,
                        f"stdio server {self._params.command!r} wrote output to stdout that is not JSON-RPC "
                        "(a stdio MCP server must write only MCP messages to stdout; logs belong on stderr)",
                    )
                )
            elif self._garbage_lines == 1:
                _log.warning(
                    "MCP backend %r wrote a non-JSON-RPC line to stdout; ignoring it (further ones are not logged)",
                    self.name,
                )
            return
        if not self._connected:
            self._abort_connect(classify(exc))
        elif self._params.transport == "sse":
            # The SSE reader reports its fatal error this way right before the stream
            # ends; the loss reported then carries it, so this is only a debug detail.
            _log.debug("MCP backend %r: SSE transport reported %s", self.name, type(exc).__name__)
        else:
            _log.warning("MCP backend %r: transport reported %s", self.name, type(exc).__name__)

    def _abort_connect(self, failure: Failure) -> None:
        if self._abort_failure is None:
            self._abort_failure = failure
        if self._connect_scope is not None:
            self._connect_scope.cancel()

    def _signal_lost(self, failure: Failure) -> None:
        """Record that the connection died on its own; first cause wins, fired once."""
        if self._lost is not None or self._closing or not self._connected:
            return
        self._lost = failure
        self._end.set()
        _log.info("MCP backend %r connection lost: %s", self.name, failure.message)
        if self._on_lost is not None:
            asyncio.get_running_loop().call_soon(self._fire_on_lost, self._on_lost, failure)

    def _fire_on_lost(self, callback: Callable[[Failure], None], failure: Failure) -> None:
        try:
            callback(failure)
        except Exception:  # noqa: BLE001 - a faulty callback must not break the event loop
            _log.exception("MCP backend %r: on_lost callback raised", self.name)

    # ----------------------------------------------------------------- owner task

    async def _own(self, ready: asyncio.Future[None]) -> None:
        """The owner task: enter transport + session, handshake, wait, exit (same task)."""
        failure: Failure | None = None
        params = self._params
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + params.connect_timeout) as scope:
                self._connect_scope = scope
                async with AsyncExitStack() as stack:
                    read_stream, write_stream = await open_transport(params, stack, self._observer.on_response)
                    session = await stack.enter_async_context(
                        ClientSession(
                            WatchedReadStream(
                                read_stream, on_end=self._on_stream_end, on_exception=self._on_stream_exception
                            ),
                            write_stream,
                            client_info=types.Implementation(name=CLIENT_NAME, version=CLIENT_VERSION),
                        )
                    )
                    result = await session.initialize()
                    tool_names = await _list_tool_names(session)
                    scope.deadline = math.inf
                    self._connect_scope = None
                    info = result.server_info
                    self.server_info = ServerInfo(name=info.name, version=info.version, title=info.title)
                    self.protocol_version = result.protocol_version
                    self.tool_names = tool_names
                    self._session = session
                    self._connected = True
                    if not self._end.is_set():
                        ready.set_result(None)
                        await self._end.wait()
                    self._session = None
            if not self._connected:
                failure = self._abort_failure or Failure(
                    FailureKind.TIMEOUT,
                    f"no complete MCP handshake (initialize + tools/list) within {params.connect_timeout:g}s",
                )
        except asyncio.CancelledError:
            # Cancelled from outside (close() escalating, or the loop shutting down):
            # that is an ending we asked for, not a loss to report through on_lost.
            self._closing = True
            failure = Failure(FailureKind.TRANSIENT, "the connection task was cancelled")
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is classified and reported
            failure = self._explain(exc)
        finally:
            self._session = None
            self._connect_scope = None
            self._finish(ready, failure)

    def _explain(self, exc: BaseException) -> Failure | None:
        """Turn whatever the owner task caught into the failure to report (or None)."""
        if self._closing and self._lost is None:
            _log.debug("MCP backend %r: error while closing (ignored)", self.name, exc_info=exc)
            return None
        if self._abort_failure is not None:
            return self._abort_failure
        if self._lost is not None:
            return self._lost
        http_error = self._observer.failure_since(0)
        return classify(http_error if http_error is not None and not self._connected else exc)

    def _finish(self, ready: asyncio.Future[None], failure: Failure | None) -> None:
        """Publish the outcome once the contexts are exited: connect result or loss."""
        if not ready.done():
            if failure is None:
                failure = Failure(FailureKind.SESSION_LOST, "the connection closed during the handshake")
            ready.set_exception(BackendError(failure))
        elif failure is not None:
            self._signal_lost(failure)
        self._end.set()
        self._done.set()


async def connect(params: ConnectParams, *, on_lost: Callable[[Failure], None] | None = None) -> McpConnection:
    """Open a connection: start the transport, ``initialize``, ``tools/list``.

    The whole handshake is bounded by ``params.connect_timeout``.  On failure everything
    started (subprocess, HTTP client, tasks) is cleaned up before :class:`BackendError`
    is raised.  ``on_lost`` is called once, on the event loop, if the connection later
    dies on its own; it is not called after :meth:`McpConnection.close`.
    """
    connection = McpConnection(params, on_lost)
    await connection.open()
    return connection
