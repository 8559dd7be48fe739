"""MCP client connections over stdio, streamable HTTP and SSE, built on the official SDK.

Everything here runs on the :class:`~vmcp_actors.actorkit.loop.LoopThread` event loop; actors call
it through ``loop_thread.submit(...)`` and never block on the network themselves.

Shape of a connection
---------------------
The SDK's transports and :class:`~mcp.client.session.ClientSession` are async context
managers backed by anyio task groups, and anyio requires a task group to be exited by
the task that entered it.  So every :class:`McpConnection` has one long-lived *owner
task* that enters the transport and the session, performs the handshake
(``initialize`` then ``tools/list``) under a single ``connect_timeout`` deadline, reports
readiness, waits until it is told to close (or the connection dies), and exits the
contexts itself.  Requests (:meth:`McpConnection.ping`, :meth:`McpConnection.list_tools`)
are sent from the caller's task: the SDK correlates responses through memory streams,
which any task may use.

What the SDK does not tell us, and how we find out
--------------------------------------------------
* HTTP status codes: streamable HTTP turns every non-2xx response into a generic
  JSON-RPC error (-32603 "Server returned an error response", or -32600 "Session not
  found"), dropping the status and ``WWW-Authenticate``.  The connection's httpx client
  has a response hook (:class:`_HttpObserver`) that records failed POSTs, and errors are
  re-described as :class:`~vmcp_actors.backend.failures.HttpStatusError` before classification.
* A forgotten session (muster #999): a 404 answer to any request that carried an
  ``Mcp-Session-Id`` marks the connection lost with ``SESSION_LOST`` at once, so a
  restarted server is noticed by the next request (or the listening GET stream), and
  never reported healthy.
* A failed POST over SSE: the SDK's SSE client logs it and its POST writer stops for
  good, so the request waits forever.  The same hook fails a handshake at once and marks
  an established SSE connection lost, with the status.
* A dead stdio process or SSE stream: the transport just closes its read stream.  The
  session's read stream is wrapped (:class:`_WatchedReadStream`) to notice that end of
  stream, and also the parse errors the stdio transport passes along for lines that are
  not JSON-RPC.  Garbage on stdout during the handshake fails the connect at once with
  ``PROTOCOL`` (the stdio transport spec forbids anything but MCP messages on stdout);
  later garbage lines are logged (without their content) and skipped, as the SDK does.

Every error that leaves this module is a :class:`~vmcp_actors.backend.failures.BackendError`
carrying a classified :class:`~vmcp_actors.backend.failures.Failure`.

Protocol era: connections use the classic ``initialize`` handshake (the SDK's "legacy"
mode), not the 2026-07-28 ``server/discover`` negotiation the SDK's high-level ``Client``
defaults to.  The lifecycle needs ``ping`` (removed in the 2026 revision) and the
session-id semantics that make a forgotten session detectable.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import IO, Any, Literal, Self, TextIO, TypeVar, cast

import anyio
import attrs
import httpx2
import mcp_types as types
from mcp.client.session import ClientSession, ElicitationFnT, ListRootsFnT, LoggingFnT, MessageHandlerFnT, SamplingFnT
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from vmcp_actors.backend.failures import (
    BackendError,
    CommandLaunchError,
    Failure,
    FailureKind,
    HttpStatusError,
    classify,
    redact_url,
)
from vmcp_actors.backend.http_reuse import DrainingTransport, env_proxy_configured

__all__ = [
    "BackendError",
    "ClientCallbacks",
    "ConnectParams",
    "McpConnection",
    "ServerInfo",
    "TransportKind",
    "connect",
]

_log = logging.getLogger(__name__)

TransportKind = Literal["stdio", "streamable-http", "sse"]

CLIENT_NAME = "vmcp-actors"
CLIENT_VERSION = "0.1.0"

DEFAULT_CLOSE_TIMEOUT = 10.0
"""Upper bound for :meth:`McpConnection.close`.  The SDK's stdio shutdown alone may take
about 6 s against a process that ignores both stdin EOF and SIGTERM (2 s grace, SIGTERM,
2 s, SIGKILL, reap), so this leaves headroom before the owner task is cancelled."""

_SSE_READ_TIMEOUT = 300.0
"""How long an idle event stream may stay silent (SDK default): streams idle legitimately."""

_MAX_TOOL_PAGES = 100
"""A server whose ``tools/list`` cursor never ends cannot keep a connect busy forever."""

_LOST_EXPLANATION_WAIT = 1.0
"""How long a failed request waits for the owner task to learn why the connection died."""

_MCP_SESSION_ID = "mcp-session-id"

_T = TypeVar("_T")


def _freeze_pairs(value: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> tuple[tuple[str, str], ...]:
    """Normalise a mapping or an iterable of pairs into an immutable tuple of pairs."""
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(key), str(val)) for key, val in items)


def _freeze_args(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("args must be a sequence of strings, not a single string")
    return tuple(str(arg) for arg in value)


@attrs.frozen(repr=False)
class ConnectParams:
    """Everything needed to open one MCP connection; immutable and safe to log.

    ``env`` and ``headers`` are stored as tuples of ``(name, value)`` pairs (a mapping is
    accepted and frozen) so the object is hashable and can travel between threads.  The
    repr shows their names only: values are credentials more often than not.

    A stdio server gets the SDK's minimal inherited environment (``HOME``, ``LOGNAME``,
    ``PATH``, ``SHELL``, ``TERM``, ``USER``) plus ``env``, not our whole environment, so
    our own secrets do not leak into every child.  Its stderr is inherited.
    """

    name: str
    transport: TransportKind
    command: str | None = None
    args: tuple[str, ...] = attrs.field(default=(), converter=_freeze_args)
    env: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_freeze_pairs)
    cwd: str | None = None
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_freeze_pairs)
    connect_timeout: float = 30.0

    def __attrs_post_init__(self) -> None:
        if self.transport not in ("stdio", "streamable-http", "sse"):
            raise ValueError(f"transport: unsupported MCP transport {self.transport!r}")
        if self.transport == "stdio" and not self.command:
            raise ValueError("command: required for the stdio transport")
        if self.transport != "stdio" and not self.url:
            raise ValueError(f"url: required for the {self.transport} transport")
        if not (self.connect_timeout > 0 and math.isfinite(self.connect_timeout)):
            raise ValueError("connect_timeout: must be a positive number of seconds")

    @property
    def is_remote(self) -> bool:
        """True for the HTTP transports (muster's notion of a "remote" server)."""
        return self.transport != "stdio"

    def __repr__(self) -> str:
        env = ", ".join(f"{key}=<redacted>" for key, _ in self.env)
        headers = ", ".join(f"{key}: <redacted>" for key, _ in self.headers)
        url = redact_url(self.url) if self.url else None
        return (
            f"ConnectParams(name={self.name!r}, transport={self.transport!r}, command={self.command!r}, "
            f"args={self.args!r}, env={{{env}}}, cwd={self.cwd!r}, url={url!r}, headers={{{headers}}}, "
            f"connect_timeout={self.connect_timeout!r})"
        )

    __str__ = __repr__


@attrs.frozen
class ClientCallbacks:
    """What the SDK session calls for what the backend sends on its own (the data plane's hooks).

    Server-to-client requests (sampling, elicitation, roots), log messages and other
    notifications (``list_changed``, ``resources/updated``).  A callback left ``None`` keeps
    the SDK's default, which also means the capability is not declared to the backend.
    """

    sampling: SamplingFnT | None = attrs.field(default=None, eq=False)
    elicitation: ElicitationFnT | None = attrs.field(default=None, eq=False)
    list_roots: ListRootsFnT | None = attrs.field(default=None, eq=False)
    logging: LoggingFnT | None = attrs.field(default=None, eq=False)
    message: MessageHandlerFnT | None = attrs.field(default=None, eq=False)


@attrs.frozen
class ServerInfo:
    """Who answered ``initialize`` (the SDK's ``Implementation``, minus SDK types)."""

    name: str
    version: str
    title: str | None = None


# ---------------------------------------------------------------------------- plumbing


class _HttpObserver:
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
            session_id_sent=_MCP_SESSION_ID in request.headers,
        )
        if request.method == "POST":
            self._sequence += 1
            self._latest = error
        self._on_failure(error)


class _WatchedReadStream:
    """Wraps the transport's read stream to see end-of-stream and in-band errors.

    The SDK transports report a dead peer only by closing this stream, and the stdio
    transport forwards unparseable stdout lines as ``Exception`` items; both are facts
    the connection needs, so they are reported to it.  Exception items are consumed here
    (the session would only hand them to a no-op message handler).
    """

    def __init__(self, inner: ReadStream[SessionMessage | Exception], connection: McpConnection) -> None:
        self._inner = inner
        self._connection = connection

    @property
    def last_context(self) -> Any:
        """The sender's contextvars snapshot, which the dispatcher reads when present."""
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        while True:
            try:
                item = await self._inner.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self._connection._on_stream_end()
                raise
            if isinstance(item, Exception):
                self._connection._on_stream_exception(item)
                continue
            return item

    async def aclose(self) -> None:
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


def _stderr_target(stack: AsyncExitStack) -> TextIO:
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

    def __init__(
        self,
        params: ConnectParams,
        on_lost: Callable[[Failure], None] | None = None,
        callbacks: ClientCallbacks | None = None,
    ) -> None:
        self._params = params
        self._on_lost = on_lost
        self._callbacks = callbacks or ClientCallbacks()
        self._observer = _HttpObserver(self._on_http_failure)
        self._session: ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
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
    def params(self) -> ConnectParams:
        """The parameters this connection was opened with."""
        return self._params

    @property
    def name(self) -> str:
        """The backend name from the parameters."""
        return self._params.name

    @property
    def is_open(self) -> bool:
        """True while the session is usable: connected, not closing, not lost."""
        return self._session is not None and not self._end.is_set()

    @property
    def lost(self) -> Failure | None:
        """Why the connection died on its own, or ``None`` (alive, or closed by us)."""
        return self._lost

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
        elif _is_connection_closed(exc):
            # The transport is gone; the owner task is finding out why (for streamable
            # HTTP the real error surfaces when it exits the transport's task group).
            with anyio.move_on_after(min(max(deadline - time.monotonic(), 0.1), _LOST_EXPLANATION_WAIT)):
                await self._done.wait()
            failure = self._lost or classify(exc)
        elif isinstance(exc, TimeoutError):
            failure = Failure(FailureKind.TIMEOUT, f"no answer within {timeout:g}s")
        else:
            failure = classify(exc)
        if failure.kind is FailureKind.SESSION_LOST or _is_connection_closed(exc):
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
                    read_stream, write_stream = await self._open_transport(stack)
                    callbacks = self._callbacks
                    session = await stack.enter_async_context(
                        ClientSession(
                            _WatchedReadStream(read_stream, self),
                            write_stream,
                            sampling_callback=callbacks.sampling,
                            elicitation_callback=callbacks.elicitation,
                            list_roots_callback=callbacks.list_roots,
                            logging_callback=callbacks.logging,
                            message_handler=callbacks.message,
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

    async def _open_transport(
        self, stack: AsyncExitStack
    ) -> tuple[ReadStream[SessionMessage | Exception], WriteStream[SessionMessage]]:
        params = self._params
        headers = dict(params.headers)
        timeout = params.connect_timeout
        if params.transport == "stdio":
            assert params.command is not None  # validated by ConnectParams
            server = StdioServerParameters(
                command=params.command,
                args=list(params.args),
                env=dict(params.env) or None,
                cwd=params.cwd,
            )
            try:
                return await stack.enter_async_context(stdio_client(server, errlog=_stderr_target(stack)))
            except (OSError, ValueError) as exc:
                raise CommandLaunchError(params.command, params.cwd, exc) from exc
        assert params.url is not None  # validated by ConnectParams
        hooks = {"response": [self._observer.on_response]}
        if params.transport == "streamable-http":
            client = httpx2.AsyncClient(
                headers=headers,
                timeout=httpx2.Timeout(timeout, read=_SSE_READ_TIMEOUT),
                event_hooks=hooks,
                # Keep-alive across requests (see http_reuse); not when the environment
                # configures a proxy, which only httpx's default transport honours.
                transport=None if env_proxy_configured() else DrainingTransport(),
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
                sse_read_timeout=_SSE_READ_TIMEOUT,
                httpx_client_factory=client_factory,
            )
        )

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


def _is_connection_closed(exc: BaseException) -> bool:
    if isinstance(exc, MCPError):
        return exc.code == types.CONNECTION_CLOSED
    return isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream)


async def connect(
    params: ConnectParams,
    *,
    on_lost: Callable[[Failure], None] | None = None,
    callbacks: ClientCallbacks | None = None,
) -> McpConnection:
    """Open a connection: start the transport, ``initialize``, ``tools/list``.

    The whole handshake is bounded by ``params.connect_timeout``.  On failure everything
    started (subprocess, HTTP client, tasks) is cleaned up before :class:`BackendError`
    is raised.  ``on_lost`` is called once, on the event loop, if the connection later
    dies on its own; it is not called after :meth:`McpConnection.close`.  ``callbacks``
    answer what the backend sends on its own (see :class:`ClientCallbacks`).
    """
    connection = McpConnection(params, on_lost, callbacks)
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    connection._ready = ready
    connection._task = loop.create_task(connection._own(ready), name=f"mcp-connection:{params.name}")
    try:
        await asyncio.shield(ready)
    except asyncio.CancelledError:
        # The caller gave up: tear down whatever was started, then let the cancel through.
        connection._closing = True
        connection._abort_connect(Failure(FailureKind.TRANSIENT, "connect was cancelled"))
        await connection.close()
        if ready.done() and not ready.cancelled():
            ready.exception()  # consumed, so asyncio does not log it as never retrieved
        raise
    return connection
