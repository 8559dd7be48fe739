"""The HTTP side of ``vmcp-actors serve``: ``/mcp`` and toolhive's operational endpoints, on Starlette.

Routes:

* ``/mcp``: the MCP server over streamable HTTP (the SDK's session manager; both the 2025
  revisions' ``initialize`` and the 2026-07-28 per-request negotiation), with DNS-rebinding
  protection: a ``Host`` or ``Origin`` not in the allowed lists is refused;
* ``/health``, ``/readyz``, ``/status``, ``/api/backends/health`` and ``/metrics``: see
  :mod:`vmcp_actors.serve.status_routes`.

:class:`McpEndpoint` wraps ``/mcp`` to know what is in flight: it counts requests being
answered, so a shutdown can wait for calls to finish, and it holds the long-lived event
streams (GET), which a shutdown ends once the calls are done.  It also forgets a client when
its session is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final

import anyio
import attrs
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.subscriptions import ListenHandler
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from vmcp_actors.dataplane.notify import BackendLog, CatalogueChanged, ResourceUpdated, RuntimeEvent
from vmcp_actors.runtime.runtime import Runtime
from vmcp_actors.serve.clients import ClientRegistry
from vmcp_actors.serve.server import build_server
from vmcp_actors.serve.status_routes import status_routes

__all__ = ["McpEndpoint", "ServeApp", "build_app", "security_settings"]

log = logging.getLogger(__name__)

SESSION_IDLE_TIMEOUT: Final = 30 * 60.0
_LOOPBACK: Final = ("127.0.0.1", "localhost", "[::1]")


def security_settings(host: str, extra_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """DNS-rebinding protection: the loopback names and the bound host (any port), plus ``extra_hosts``."""
    names = list(_LOOPBACK)
    bound = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if bound not in names and bound not in ("0.0.0.0", "[::]"):
        names.append(bound)
    names.extend(extra_hosts)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{name}:*" for name in names] + list(names),
        allowed_origins=[f"{scheme}://{name}:*" for name in names for scheme in ("http", "https")]
        + [f"{scheme}://{name}" for name in names for scheme in ("http", "https")],
    )


class McpEndpoint:
    """ASGI wrapper of ``/mcp``: counts requests in flight, holds the event streams (see the module doc)."""

    def __init__(
        self,
        inner: Callable[[Scope, Receive, Send], Awaitable[None]],
        clients: ClientRegistry,
        listen: ListenHandler | None = None,
    ) -> None:
        self._inner = inner
        self._clients = clients
        self._listen = listen
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._streams: set[anyio.CancelScope] = set()

    @property
    def in_flight(self) -> int:
        """Requests being answered now (event streams not counted)."""
        return self._in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request on ``/mcp``."""
        method = scope.get("method")
        if method == "GET":
            await self._stream(scope, receive, send)
            return
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._inner(scope, receive, send)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
        if method == "DELETE":
            session_id = _session_id(scope)
            if session_id is not None:
                await self._clients.forget(session_id)

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = {"started": False, "done": False}

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state["done"] = True
            await send(message)

        session_id = _session_id(scope)
        with anyio.CancelScope() as scope_:
            self._streams.add(scope_)
            if session_id is not None:
                self._clients.streaming(session_id, +1)
            try:
                await self._inner(scope, receive, tracked)
            finally:
                self._streams.discard(scope_)
                if session_id is not None:
                    self._clients.streaming(session_id, -1)
        if scope_.cancelled_caught and state["started"] and not state["done"]:
            with contextlib.suppress(OSError, RuntimeError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def drain(self, timeout: float) -> bool:
        """Wait (at most ``timeout``) for the requests in flight, then end the event streams.

        Returns whether every request finished in time.  2026-era ``subscriptions/listen``
        streams are requests too: they are asked to end first, gracefully.
        """
        if self._listen is not None:
            self._listen.close()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            finished = True
        except TimeoutError:
            finished = False
            log.warning("%d request(s) still in flight after %.1fs; stopping anyway", self._in_flight, timeout)
        for stream in list(self._streams):
            stream.cancel()
        return finished


def _session_id(scope: Scope) -> str | None:
    value = dict(scope.get("headers") or ()).get(b"mcp-session-id")
    return value.decode("latin-1") if value else None


@attrs.define
class ServeApp:
    """The Starlette app and the parts a shutdown needs."""

    app: Starlette
    endpoint: McpEndpoint
    clients: ClientRegistry


def build_app(runtime: Runtime, host: str, *, extra_hosts: Sequence[str] = ()) -> ServeApp:
    """The whole HTTP app of ``serve``; it must run on the runtime's own event loop."""

    async def subscribe_backend(uri: str, subscribe: bool) -> object:
        return await runtime.asubscribe_resource(uri, subscribe=subscribe)

    clients = ClientRegistry(subscribe_backend, SESSION_IDLE_TIMEOUT, time.monotonic)
    listen = ListenHandler(clients.bus)
    server = build_server(runtime, clients, listen)
    security = security_settings(host, extra_hosts)
    manager = StreamableHTTPSessionManager(
        app=server,
        security_settings=security,
        session_idle_timeout=SESSION_IDLE_TIMEOUT,
    )
    endpoint = McpEndpoint(manager.handle_request, clients, listen)
    loop_thread = runtime.io_thread
    events: asyncio.Queue[RuntimeEvent] = asyncio.Queue()

    def on_event(event: RuntimeEvent) -> None:
        if isinstance(event, CatalogueChanged | ResourceUpdated | BackendLog):
            with contextlib.suppress(RuntimeError):
                loop_thread.call_soon(events.put_nowait, event)

    async def pump() -> None:
        while True:
            event = await events.get()
            try:
                if isinstance(event, CatalogueChanged):
                    await clients.catalogue_changed(event.kinds)
                elif isinstance(event, ResourceUpdated):
                    await clients.resource_updated(event.uri)
                elif isinstance(event, BackendLog):
                    await clients.backend_log(event.params)
            except Exception:
                log.exception("telling clients about %s failed", type(event).__name__)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        unsubscribe = runtime.subscribe(on_event)
        async with manager.run():
            task = asyncio.create_task(pump(), name="vmcp-serve-events")
            try:
                yield
            finally:
                unsubscribe()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    routes = [Route("/mcp", endpoint, methods=["GET", "POST", "DELETE"]), *status_routes(runtime, security)]
    app = Starlette(routes=routes, lifespan=lifespan)
    return ServeApp(app, endpoint, clients)
