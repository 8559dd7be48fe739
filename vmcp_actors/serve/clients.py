"""The clients connected to ``vmcp-actors serve``: their sessions, log levels and subscriptions.

The SDK's server hands a handler a per-request ``ServerSession``; any of them can also send
on its connection's standalone stream (the GET event stream of streamable HTTP).  The
:class:`ClientRegistry` keeps the latest one per ``Mcp-Session-Id``, so that what happens
outside any request reaches every client of the 2025 protocol revisions: ``list_changed``
when the catalogue changes, ``resources/updated`` for a subscribed resource, and backend log
messages no request claims (at the level each client set with ``logging/setLevel``).
Clients of the 2026-07-28 revision have no standalone stream; they get change events
through ``subscriptions/listen`` (the SDK's subscription bus, fed by :meth:`publish`).

A resource subscription is made once at its backend, for the first client that asks, and
dropped when the last one unsubscribes (or its session ends).

Everything here runs on the I/O loop, so it needs no lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, get_args

import attrs
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from vmcp_actors.backend.catalogue import ListKind

__all__ = ["ClientRegistry", "level_allows", "session_id_of"]

log = logging.getLogger(__name__)

LEVELS: Final[tuple[str, ...]] = get_args(types.LoggingLevel)


def level_allows(minimum: str | None, level: str) -> bool:
    """Whether a message at ``level`` passes a client's minimum (``None``: everything)."""
    if minimum is None:
        return True
    try:
        return LEVELS.index(level) >= LEVELS.index(minimum)
    except ValueError:
        return True


def session_id_of(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """The ``Mcp-Session-Id`` of the request behind ``ctx`` (``None`` for 2026-era requests)."""
    headers = getattr(ctx.request, "headers", None)
    if headers is None:
        return None
    value = headers.get("mcp-session-id")
    return value if isinstance(value, str) else None


@attrs.define
class _Client:
    session: ServerSession
    seen: float
    level: str | None = None
    resources: set[str] = attrs.field(factory=set)
    streams: int = 0


class ClientRegistry:
    """The 2025-era client sessions by id, plus the subscription bus for 2026-era clients."""

    def __init__(
        self,
        subscribe_backend: Callable[[str, bool], Awaitable[object]],
        idle_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus = InMemorySubscriptionBus()
        self._subscribe_backend = subscribe_backend
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._clients: dict[str, _Client] = {}
        self._watchers: dict[str, set[str]] = {}
        self._streams: dict[str, int] = {}

    # ------------------------------------------------------------------ sessions

    def seen(self, ctx: ServerRequestContext[Any, Any]) -> str | None:
        """Record the client behind ``ctx`` (called for every request and notification)."""
        session_id = session_id_of(ctx)
        if session_id is None or ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return None
        client = self._clients.get(session_id)
        if client is None:
            self._clients[session_id] = _Client(ctx.session, self._clock(), streams=self._streams.get(session_id, 0))
        else:
            client.session = ctx.session
            client.seen = self._clock()
        return session_id

    def allows(self, ctx: ServerRequestContext[Any, Any], level: str) -> bool:
        """Whether a log message at ``level`` may go to the client behind ``ctx``.

        2025 revisions: the level set with ``logging/setLevel`` (everything until then).
        2026-07-28: the level the request opted in to in its ``_meta`` (nothing without one).
        """
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            requested = (ctx.meta or {}).get(types.LOG_LEVEL_META_KEY)
            return isinstance(requested, str) and level_allows(requested, level)
        client = self._clients.get(session_id_of(ctx) or "")
        return level_allows(client.level if client is not None else None, level)

    def set_level(self, ctx: ServerRequestContext[Any, Any], level: str) -> None:
        """``logging/setLevel``."""
        session_id = self.seen(ctx)
        if session_id is not None:
            self._clients[session_id].level = level

    async def forget(self, session_id: str) -> None:
        """The client ended its session: drop it and the backend subscriptions only it held."""
        client = self._clients.pop(session_id, None)
        if client is not None:
            for uri in list(client.resources):
                await self._unwatch(session_id, uri)

    def streaming(self, session_id: str, change: int) -> None:
        """A client's event stream (GET) opened (+1) or closed (-1): it is alive while one is open."""
        count = self._streams.get(session_id, 0) + change
        if count > 0:
            self._streams[session_id] = count
        else:
            self._streams.pop(session_id, None)
        client = self._clients.get(session_id)
        if client is not None:
            client.streams = max(count, 0)
            client.seen = self._clock()

    def count(self) -> int:
        """Clients known now."""
        return len(self._clients)

    def _live(self) -> Iterable[tuple[str, _Client]]:
        """The clients with an event stream open or seen within the idle timeout (as the SDK keeps them)."""
        cutoff = self._clock() - self._idle_timeout
        for session_id, client in list(self._clients.items()):
            if client.seen < cutoff and not client.streams:
                self._clients.pop(session_id, None)
                continue
            yield session_id, client

    # ------------------------------------------------------------------ resource subscriptions

    async def subscribe(self, ctx: ServerRequestContext[Any, Any], uri: str) -> None:
        """``resources/subscribe``: the backend is subscribed for the first client."""
        session_id = self.seen(ctx)
        if session_id is None:
            return
        watchers = self._watchers.setdefault(uri, set())
        if not watchers:
            try:
                await self._subscribe_backend(uri, True)
            except BaseException:
                self._watchers.pop(uri, None)
                raise
        watchers.add(session_id)
        self._clients[session_id].resources.add(uri)

    async def unsubscribe(self, ctx: ServerRequestContext[Any, Any], uri: str) -> None:
        """``resources/unsubscribe``: the backend is unsubscribed after the last client."""
        session_id = self.seen(ctx)
        if session_id is not None:
            await self._unwatch(session_id, uri)

    async def _unwatch(self, session_id: str, uri: str) -> None:
        client = self._clients.get(session_id)
        if client is not None:
            client.resources.discard(uri)
        watchers = self._watchers.get(uri)
        if watchers is None or session_id not in watchers:
            return
        watchers.discard(session_id)
        if not watchers:
            del self._watchers[uri]
            try:
                await self._subscribe_backend(uri, False)
            except Exception as error:  # noqa: BLE001 - the backend may be gone; nothing to undo
                log.info("unsubscribing %s at its backend failed: %s", uri, error)

    # ------------------------------------------------------------------ fan-out

    async def catalogue_changed(self, kinds: frozenset[ListKind]) -> None:
        """Tell every client which listings changed."""
        for kind in kinds:
            await self.bus.publish(_EVENTS[kind])
        for _, client in self._live():
            if ListKind.TOOLS in kinds:
                await client.session.send_tool_list_changed()
            if ListKind.RESOURCES in kinds:
                await client.session.send_resource_list_changed()
            if ListKind.PROMPTS in kinds:
                await client.session.send_prompt_list_changed()

    async def resource_updated(self, uri: str) -> None:
        """Tell the clients subscribed to ``uri`` that it changed."""
        await self.bus.publish(ResourceUpdated(uri=uri))
        watchers = self._watchers.get(uri, set())
        for session_id, client in self._live():
            if session_id in watchers:
                await client.session.send_resource_updated(uri)

    async def backend_log(self, params: types.LoggingMessageNotificationParams) -> None:
        """A backend log message no request claims: to every client whose level lets it through."""
        notification = types.LoggingMessageNotification(params=params)
        for _, client in self._live():
            if level_allows(client.level, params.level):
                await client.session.send_notification(notification)


_EVENTS: Final[dict[ListKind, ServerEvent]] = {
    ListKind.TOOLS: ToolsListChanged(),
    ListKind.RESOURCES: ResourcesListChanged(),
    ListKind.PROMPTS: PromptsListChanged(),
}
