"""A backend's capabilities over its SDK session: full listings, and what it sends back mid-call.

Everything here runs on the :class:`~vmcp_actors.actorkit.loop.LoopThread`, next to the
:class:`~vmcp_actors.backend.session.McpConnection` it uses.

Listings
--------
:func:`fetch_catalogue` lists what the backend declared at ``initialize`` (tools, resources
and templates, prompts), following every ``nextCursor`` (bounded), and returns one
:class:`~vmcp_actors.backend.catalogue.BackendCatalogue`.  A listing the backend refuses
with a JSON-RPC error is logged and left empty; a transport failure is raised, classified.

Who a backend's message is for
------------------------------
During a call a backend may send progress, log messages, and requests of its own
(``sampling/createMessage``, ``elicitation/create``, ``roots/list``) that belong to the
client whose call caused them.  :class:`SessionEvents` holds the session's callbacks and
finds that client, a :class:`CallPeer`:

* over streamable HTTP a backend sends them on the POST stream of the call, and the SDK
  runs the callback in the context of the task that read that stream, which descends from
  the caller's: the peer set in a context variable by :meth:`SessionEvents.calling` is seen;
* otherwise (stdio, SSE, or a message on the standalone stream) only one call in flight on
  the session leaves no doubt;
* when neither tells, the backend's request is refused with a JSON-RPC error that says
  why, and a log message goes to everyone (``on_log``).  Nothing waits.

Progress needs none of this: the SDK routes it by progress token to the call's callback.
``notifications/*/list_changed`` and ``notifications/resources/updated`` go to the hooks
given to :class:`SessionEvents`.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol, TypeVar

import mcp_types as types
from mcp.client.session import ClientRequestContext, IncomingMessage
from mcp.shared.exceptions import MCPError, NoBackChannelError

from vmcp_actors.backend.catalogue import BackendCatalogue, ListKind
from vmcp_actors.backend.client_callbacks import ClientCallbacks
from vmcp_actors.backend.failures import BackendError
from vmcp_actors.backend.scrub_models import scrub_model
from vmcp_actors.backend.session import McpConnection
from vmcp_actors.config.secret_values import SecretRedactor

__all__ = ["CallPeer", "SessionEvents", "fetch_catalogue", "list_all"]

log = logging.getLogger(__name__)

MAX_PAGES = 100
"""A listing whose cursor never ends cannot keep the backend's catalogue refresh busy forever."""

_T = TypeVar("_T")


# --------------------------------------------------------------------------- listings


async def list_all(
    fetch: Callable[[types.PaginatedRequestParams | None], Awaitable[tuple[list[_T], str | None]]],
) -> tuple[_T, ...]:
    """Every item of a paginated listing, following ``nextCursor`` (at most :data:`MAX_PAGES` pages)."""
    items: list[_T] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page, cursor = await fetch(types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        items.extend(page)
        if not cursor:
            break
    return tuple(items)


async def _tools(session: Any) -> tuple[types.Tool, ...]:
    async def page(params: types.PaginatedRequestParams | None) -> tuple[list[types.Tool], str | None]:
        result = await session.list_tools(params=params)
        return result.tools, result.next_cursor

    return await list_all(page)


async def _resources(session: Any) -> tuple[types.Resource, ...]:
    async def page(params: types.PaginatedRequestParams | None) -> tuple[list[types.Resource], str | None]:
        result = await session.list_resources(params=params)
        return result.resources, result.next_cursor

    return await list_all(page)


async def _templates(session: Any) -> tuple[types.ResourceTemplate, ...]:
    async def page(params: types.PaginatedRequestParams | None) -> tuple[list[types.ResourceTemplate], str | None]:
        result = await session.list_resource_templates(params=params)
        return result.resource_templates, result.next_cursor

    return await list_all(page)


async def _prompts(session: Any) -> tuple[types.Prompt, ...]:
    async def page(params: types.PaginatedRequestParams | None) -> tuple[list[types.Prompt], str | None]:
        result = await session.list_prompts(params=params)
        return result.prompts, result.next_cursor

    return await list_all(page)


async def _listing(
    connection: McpConnection, op: str, timeout: float, lister: Callable[[Any], Awaitable[tuple[_T, ...]]]
) -> tuple[_T, ...]:
    """One listing; the backend refusing it (a JSON-RPC error) yields nothing, a broken transport raises."""
    try:
        return await connection.request(op, timeout, lister)
    except BackendError as error:
        cause = error.__cause__
        if isinstance(cause, MCPError) and cause.code not in (types.CONNECTION_CLOSED, types.REQUEST_TIMEOUT):
            log.warning("backend %r refused %s (%s); treating it as empty", connection.name, op, cause.error.message)
            return ()
        raise


async def fetch_catalogue(
    connection: McpConnection,
    timeout: float,
    previous: BackendCatalogue | None = None,
    kinds: frozenset[ListKind] = frozenset(ListKind),
) -> BackendCatalogue:
    """List ``kinds`` afresh (what the backend declared) and keep the rest from ``previous``.

    Raises :class:`~vmcp_actors.backend.failures.BackendError` when the connection fails.
    """
    session = connection.session
    if session is None:
        return await connection.request("list", timeout, _never)  # raises the classified "not open"
    caps = session.server_capabilities or types.ServerCapabilities()
    base = previous or BackendCatalogue(backend=connection.name)
    tools, resources, templates, prompts = base.tools, base.resources, base.resource_templates, base.prompts
    if ListKind.TOOLS in kinds:
        tools = await _listing(connection, "tools/list", timeout, _tools) if caps.tools else ()
    if ListKind.RESOURCES in kinds:
        resources = await _listing(connection, "resources/list", timeout, _resources) if caps.resources else ()
        templates = (
            await _listing(connection, "resources/templates/list", timeout, _templates) if caps.resources else ()
        )
    if ListKind.PROMPTS in kinds:
        prompts = await _listing(connection, "prompts/list", timeout, _prompts) if caps.prompts else ()
    return BackendCatalogue(
        backend=connection.name,
        tools=tools,
        resources=resources,
        resource_templates=templates,
        prompts=prompts,
        supports_subscribe=bool(caps.resources and caps.resources.subscribe),
        supports_logging=caps.logging is not None,
        supports_completions=caps.completions is not None,
    )


async def _never(_: Any) -> BackendCatalogue:  # pragma: no cover - request() refuses before calling it
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- the caller of a request


class CallPeer(Protocol):
    """The client of one in-flight request: receives what the backend sends for that request."""

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        """A ``notifications/progress`` for the request."""

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """A ``notifications/message`` the backend sent while serving the request."""

    async def request(self, request: types.ServerRequest) -> dict[str, Any]:
        """Relay a backend request (sampling, elicitation, roots); raise ``MCPError`` to refuse it."""


_CURRENT: contextvars.ContextVar[tuple[SessionEvents, CallPeer | None] | None] = contextvars.ContextVar(
    "vmcp_current_call", default=None
)


class SessionEvents:
    """The callbacks of one backend session, routing what the backend sends (see the module doc).

    ``on_list_changed(kind)``, ``on_resource_updated(backend, uri)`` and
    ``on_log(backend, params)`` must not block: they run on the I/O loop.
    """

    def __init__(
        self,
        backend: str,
        *,
        on_list_changed: Callable[[ListKind], object],
        on_resource_updated: Callable[[str, str], object],
        on_log: Callable[[str, types.LoggingMessageNotificationParams], object],
        redactor: SecretRedactor | None = None,
    ) -> None:
        self.backend = backend
        self._redactor = redactor or SecretRedactor()
        self._on_list_changed = on_list_changed
        self._on_resource_updated = on_resource_updated
        self._on_log = on_log
        self._in_flight: dict[int, CallPeer | None] = {}
        self._ids = itertools.count()

    def callbacks(self) -> ClientCallbacks:
        """The SDK callbacks to open the session with."""
        return ClientCallbacks(
            sampling=self._sampling,
            elicitation=self._elicitation,
            list_roots=self._list_roots,
            logging=self._logging,
            message=self._message,
        )

    @property
    def in_flight(self) -> int:
        """Requests sent through :meth:`calling` and not answered yet."""
        return len(self._in_flight)

    @contextlib.contextmanager
    def calling(self, peer: CallPeer | None) -> Iterator[None]:
        """Mark a request in flight for ``peer`` (``None``: a caller that relays nothing)."""
        key = next(self._ids)
        self._in_flight[key] = peer
        token = _CURRENT.set((self, peer))
        try:
            yield
        finally:
            _CURRENT.reset(token)
            del self._in_flight[key]

    def _peer(self) -> tuple[CallPeer | None, str]:
        """The caller the current callback belongs to, or why it cannot be told."""
        current = _CURRENT.get()
        if current is not None and current[0] is self:
            peer = current[1]
            return peer, "" if peer is not None else "its caller relays no requests (no client to ask)"
        if len(self._in_flight) == 1:
            peer = next(iter(self._in_flight.values()))
            return peer, "" if peer is not None else "its caller relays no requests (no client to ask)"
        if not self._in_flight:
            return None, "no request of a client is in flight on this backend"
        return None, (
            f"{len(self._in_flight)} requests are in flight on this backend and its transport does not say "
            "which one this belongs to"
        )

    async def _relay(self, request: types.ServerRequest) -> dict[str, Any] | types.ErrorData:
        request = scrub_model(request, self._redactor)  # what the backend asks a client may quote our secrets
        peer, why = self._peer()
        if peer is None:
            log.info("backend %r sent %s, which cannot be relayed: %s", self.backend, request.method, why)
            return types.ErrorData(code=types.INVALID_REQUEST, message=f"vmcp cannot relay {request.method}: {why}")
        try:
            return await peer.request(request)
        except MCPError as error:
            return error.error
        except NoBackChannelError:
            return types.ErrorData(
                code=types.INVALID_REQUEST,
                message=f"vmcp cannot relay {request.method}: the client's connection cannot take requests",
            )

    async def _sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        raw = await self._relay(types.CreateMessageRequest(params=params))
        if isinstance(raw, types.ErrorData):
            return raw
        if isinstance(raw.get("content"), list):
            return types.CreateMessageResultWithTools.model_validate(raw)
        return types.CreateMessageResult.model_validate(raw)

    async def _elicitation(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        raw = await self._relay(types.ElicitRequest(params=params))
        return raw if isinstance(raw, types.ErrorData) else types.ElicitResult.model_validate(raw)

    async def _list_roots(self, context: ClientRequestContext) -> types.ListRootsResult | types.ErrorData:
        raw = await self._relay(types.ListRootsRequest())
        return raw if isinstance(raw, types.ErrorData) else types.ListRootsResult.model_validate(raw)

    async def _logging(self, params: types.LoggingMessageNotificationParams) -> None:
        params = scrub_model(params, self._redactor)
        peer, _ = self._peer()
        if peer is not None:
            await peer.log(params)
        else:
            self._on_log(self.backend, params)

    async def _message(self, message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._on_list_changed(ListKind.TOOLS)
        elif isinstance(message, types.ResourceListChangedNotification):
            self._on_list_changed(ListKind.RESOURCES)
        elif isinstance(message, types.PromptListChangedNotification):
            self._on_list_changed(ListKind.PROMPTS)
        elif isinstance(message, types.ResourceUpdatedNotification):
            self._on_resource_updated(self.backend, str(message.params.uri))
