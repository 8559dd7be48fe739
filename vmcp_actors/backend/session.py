"""One MCP client session with a backend over stdio, streamable HTTP or SSE, on the official SDK.

Everything here runs on the :class:`~vmcp_actors.actorkit.loop.LoopThread` event loop; actors call
it through ``loop_thread.submit(...)`` and never block on the network themselves.

Shape of a connection
---------------------
The transports (the SDK's HTTP ones, :mod:`~vmcp_actors.backend.stdio_transport` for
stdio) and :class:`~mcp.client.session.ClientSession` are async context managers backed
by anyio task groups, and anyio requires a task group to be exited by
the task that entered it.  So every :class:`McpConnection` has one long-lived *owner
task* that enters the transport (:func:`~vmcp_actors.backend.transports.open_transport`)
and the session, performs the handshake (``initialize`` then ``tools/list``) under a
single ``connect_timeout`` deadline, reports readiness, waits until it is told to close
(or the connection dies), and exits the contexts itself.  Requests
(:meth:`McpConnection.ping`, :meth:`McpConnection.list_tools`) are sent from the
caller's task: the SDK correlates responses through memory streams, which any task may
use.

What the SDK does not tell us is watched for (:mod:`vmcp_actors.backend.transport_watch`,
:mod:`vmcp_actors.backend.http_bodies`, :mod:`vmcp_actors.backend.attribution`) and judged
(:mod:`vmcp_actors.backend.diagnosis`): an HTTP error status is attributed to the request
that failed, and a JSON-RPC error to the server only if the server really sent it; an
unknown session (404, or the TypeScript SDK's 400, on a request that carried an
``Mcp-Session-Id``; muster #999) and any failed POST over SSE (whose POST writer then
stops for good) mark the connection lost at once; a dead stdio process or SSE stream
ends it; the standalone event stream of streamable HTTP breaking makes the connection
check at once (a ping) whether the server is still there, so a dead server is noticed in
milliseconds, not at the next probe; a message over ``max_response_bytes`` fails the
connection with an error naming the limit.
Lines on a stdio server's stdout that are not JSON-RPC are skipped, counted
(:attr:`McpConnection.noise_lines`) and logged once, without their content.

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
from mcp.client.session import ClientSession

from vmcp_actors.backend.client_callbacks import ClientCallbacks
from vmcp_actors.backend.connect_params import ConnectParams, ServerInfo
from vmcp_actors.backend.diagnosis import Diagnosis
from vmcp_actors.backend.failures import BackendError, Failure, FailureKind
from vmcp_actors.backend.handshake import (
    CLIENT_NAME,
    CLIENT_VERSION,
    Watchers,
    handshake_timeout,
    list_tool_names,
    open_session,
)
from vmcp_actors.backend.http_bodies import BodyEnd, BodyWatch
from vmcp_actors.backend.lifeline import Lifeline
from vmcp_actors.backend.stdio_transport import StdioServer
from vmcp_actors.backend.transports import stderr_target

__all__ = ["CLIENT_NAME", "CLIENT_VERSION", "McpConnection", "connect"]

_log = logging.getLogger(__name__)

DEFAULT_CLOSE_TIMEOUT = 10.0
"""Upper bound for :meth:`McpConnection.close`.  A stdio server's stop fits into 90 % of
the timeout given (see :mod:`~vmcp_actors.backend.stdio_transport`; about 2 s at most
without one), the rest is headroom before the owner task is cancelled."""

_STOP_SHARE = 0.9
"""Share of a close's timeout the stdio stop sequence may use."""

_VERIFY_TIMEOUT = 10.0
"""Longest ping that checks a server after its event stream broke (or the connect timeout)."""

_T = TypeVar("_T")

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

    def __init__(
        self,
        params: ConnectParams,
        on_lost: Callable[[Failure], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        callbacks: ClientCallbacks | None = None,
    ) -> None:
        self._params = params
        self._on_warning = on_warning
        self._callbacks = callbacks
        self._line = Lifeline(params.name, on_lost)
        self._diagnosis = Diagnosis(params, self._line)
        self._attribution = self._diagnosis.attribution
        self._body_watch = BodyWatch(
            params.max_response_bytes, on_too_large=self._diagnosis.on_too_large, on_end=self._on_body_end
        )
        self._stdio: StdioServer | None = None
        self._verify_task: asyncio.Task[None] | None = None
        self._session: ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self.server_info = ServerInfo(name="", version="")
        self.protocol_version = ""
        self.tool_names: tuple[str, ...] = ()

    # ---------------------------------------------------------------- public API

    @property
    def name(self) -> str:
        """The backend name from the parameters."""
        return self._params.name

    @property
    def noise_lines(self) -> int:
        """How many lines a stdio server wrote to stdout that were not JSON-RPC (skipped)."""
        return self._stdio.noise_lines if self._stdio is not None else 0

    @property
    def is_open(self) -> bool:
        """True while the session is usable: connected, not closing, not lost."""
        return self._session is not None and not self._line.end.is_set()

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
            self._line.closing = True
            self._line.abort_connect(Failure(FailureKind.TRANSIENT, "connect was cancelled"))
            await self.close()
            if ready.done() and not ready.cancelled():
                ready.exception()  # consumed, so asyncio does not log it as never retrieved
            raise

    @property
    def session(self) -> ClientSession | None:
        """The live SDK session while the connection is open (for the data plane), else ``None``.

        Requests may be sent on it from any task of the loop, many at once; send them
        through :meth:`request` so failures are classified and a dead session is noticed.
        """
        return self._session if self.is_open else None

    async def request(self, op: str, timeout: float, call: Callable[[ClientSession], Awaitable[_T]]) -> _T:
        """Run ``call`` on the live session within ``timeout`` seconds.

        Raises :class:`BackendError` with the classified failure; its ``__cause__`` is what
        the SDK raised (an ``MCPError`` carrying the backend's own JSON-RPC error, say).
        """
        return await self._request(op, timeout, call)

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
        names = await self._request("tools/list", timeout, list_tool_names)
        self.tool_names = names
        return names

    async def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Close the session and release everything; idempotent, never raises.

        Waits (up to ``timeout``) for the owner task to exit the SDK contexts: for stdio
        that ends the server's whole process group (stdin closed, then SIGTERM, then
        SIGKILL, fitted into the timeout); for streamable HTTP the session is deleted on
        the server.  If the owner task has not finished by then it is cancelled (which
        SIGKILLs a stdio server's group at once).  Cancellation of the caller still
        propagates (it is not an error).
        """
        self._line.closing = True
        if self._stdio is not None:
            self._stdio.stop_deadline = time.monotonic() + max(0.0, timeout) * _STOP_SHARE
        if self._verify_task is not None:
            self._verify_task.cancel()
        self._line.end.set()
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
        await self._line.done.wait()
        return self._line.lost

    def __repr__(self) -> str:
        state = "open" if self.is_open else ("lost" if self._line.lost else "closed")
        return f"<McpConnection {self.name!r} {self._params.transport} {state}>"

    # ------------------------------------------------------------------- requests

    async def _request(self, op: str, timeout: float, call: Callable[[ClientSession], Awaitable[_T]]) -> _T:
        session = self._session
        if session is None or self._line.end.is_set():
            raise BackendError(self._diagnosis.not_open_failure(op))
        mark = self._attribution.mark()
        deadline = time.monotonic() + timeout
        try:
            with anyio.fail_after(timeout):
                return await call(session)
        except Exception as exc:
            failure = await self._diagnosis.request_failure(op, exc, mark, deadline, timeout)
            raise BackendError(failure) from exc

    # ------------------------------------------------------- the event stream's end

    def _on_body_end(self, end: BodyEnd) -> None:
        self._attribution.body_ended(end)
        if end.method != "GET" or self._params.transport != "streamable-http":
            return
        if self._line.connected and not self._line.end.is_set() and self._verify_task is None:
            how = "broke" if end.broken else "was closed by the server"
            self._verify_task = asyncio.get_running_loop().create_task(
                self._verify_alive(f"the server's event stream {how}"), name=f"mcp-verify:{self.name}"
            )

    async def _verify_alive(self, why: str) -> None:
        """After the standalone event stream ended: is the server still there?  Lost if not.

        The loss may be reported by whichever part sees the ping fail first (for a refused
        connection, the transport's task group); ``_suspicion`` makes it say why it looked.
        """
        self._line.suspicion = why
        try:
            await self.ping(min(self._params.connect_timeout, _VERIFY_TIMEOUT))
            self._line.suspicion = ""
        except BackendError as exc:
            self._line.lose(exc.failure)
        finally:
            self._verify_task = None

    # ----------------------------------------------------------------- owner task

    async def _own(self, ready: asyncio.Future[None]) -> None:
        """The owner task: enter transport + session, handshake, wait, exit (same task)."""
        failure: Failure | None = None
        params = self._params
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + params.connect_timeout) as scope:
                self._line.connect_scope = scope
                async with AsyncExitStack() as stack:
                    session = await self._handshake(stack)
                    scope.deadline = math.inf
                    self._line.connect_scope = None
                    self._session = session
                    self._line.connected = True
                    if not self._line.end.is_set():
                        ready.set_result(None)
                        await self._line.end.wait()
                    self._session = None
            if not self._line.connected:
                failure = self._line.abort_failure or handshake_timeout(self._params, self.noise_lines)
        except asyncio.CancelledError:
            # Cancelled from outside (close() escalating, or the loop shutting down):
            # that is an ending we asked for, not a loss to report through on_lost.
            self._line.closing = True
            failure = Failure(FailureKind.TRANSIENT, "the connection task was cancelled")
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is classified and reported
            failure = self._diagnosis.explain(exc)
        finally:
            self._session = None
            self._line.connect_scope = None
            self._line.finish(ready, failure)

    async def _handshake(self, stack: AsyncExitStack) -> ClientSession:
        """Start the transport and the session, ``initialize``, ``tools/list``."""
        if self._params.transport == "stdio":
            self._stdio = StdioServer(
                self._params, stderr_target(stack), on_warning=self._on_warning, on_fatal=self._line.fail
            )
            self._diagnosis.stdio = self._stdio
        watch = Watchers(
            self._attribution,
            (self._body_watch.on_response, self._attribution.observer.on_response),
            on_stream_end=self._diagnosis.on_stream_end,
            on_stream_exception=self._diagnosis.on_stream_exception,
        )
        result = await open_session(self._params, stack, watch, self._stdio, self._callbacks)
        self.server_info = result.server_info
        self.protocol_version = result.protocol_version
        self.tool_names = result.tool_names
        return result.session


async def connect(
    params: ConnectParams,
    *,
    on_lost: Callable[[Failure], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    callbacks: ClientCallbacks | None = None,
) -> McpConnection:
    """Open a connection: start the transport, ``initialize``, ``tools/list``.

    The whole handshake is bounded by ``params.connect_timeout``.  On failure everything
    started (subprocess, HTTP client, tasks) is cleaned up before :class:`BackendError`
    is raised.  ``on_lost`` is called once, on the event loop, if the connection later
    dies on its own; it is not called after :meth:`McpConnection.close`.  ``on_warning``
    is called (on the event loop, once per warning) when the server does something wrong
    that does not fail it.  ``callbacks`` answer what the backend sends on its own
    (see :class:`~vmcp_actors.backend.client_callbacks.ClientCallbacks`).
    """
    connection = McpConnection(params, on_lost, on_warning, callbacks)
    await connection.open()
    return connection
