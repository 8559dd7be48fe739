"""How a backend actor hands its live session to the data plane: routes, catalogue refresh, call failures.

The data plane sends requests straight to a backend's session on the I/O loop, many at
once, never through the actor's mailbox.  So the actor *publishes* what that needs as one
immutable :class:`BackendRoute` (the open connection, its session callbacks, the catalogue)
through :class:`BackendHooks`, and withdraws it (``None``) as soon as the session is gone.

:class:`RoutePublisher` is the actor's helper for this; it runs on the actor's thread:

* once connected, the full catalogue is fetched on the loop and the route published;
* a ``notifications/*/list_changed`` from the backend refetches that listing and
  publishes again (results of overlapping refreshes apply in order of request, so an
  older listing never replaces a newer one);
* the data plane reports a failed call (transport failure, timeout) as :class:`CallFailed`;
  the actor forwards it to its subscribers (the health monitor counts it at once).
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any, Final

import attrs
import mcp_types as types

from vmcp_actors.actorkit.loop import LoopThread, LoopThreadStoppedError
from vmcp_actors.backend.capabilities import SessionEvents, fetch_catalogue
from vmcp_actors.backend.catalogue import BackendCatalogue, ListKind
from vmcp_actors.backend.failures import Failure
from vmcp_actors.backend.scrub_models import scrub_catalogue
from vmcp_actors.backend.session import McpConnection
from vmcp_actors.config.secret_values import SecretRedactor

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "BackendHooks",
    "BackendRoute",
    "CallFailed",
    "CatalogueFetched",
    "ListChanged",
    "RoutePublisher",
]

log = logging.getLogger(__name__)

DEFAULT_CALL_TIMEOUT: Final = 60.0
"""A request's deadline when the caller gives none and the backend's spec sets no ``timeout``."""


@attrs.frozen
class BackendRoute:
    """A live way to one backend: its open connection, session callbacks and catalogue.

    ``report_failure`` tells the backend's actor that a request failed in transport or
    timed out (passive health).  ``call_timeout`` is the default deadline of a request.
    """

    backend: str
    attempt: int
    connection: McpConnection = attrs.field(eq=False)
    events: SessionEvents = attrs.field(eq=False)
    catalogue: BackendCatalogue
    call_timeout: float
    report_failure: Callable[[Failure], object] = attrs.field(eq=False)
    #: The secrets the runtime gives this backend, masked in whatever it sends back (scrub_models).
    redactor: SecretRedactor = attrs.field(factory=SecretRedactor, eq=False)


@attrs.frozen
class BackendHooks:
    """Where a backend actor publishes for the data plane; every hook must return at once.

    ``on_route(backend, route_or_none)`` runs on the actor's thread; the other two on the
    I/O loop (a backend's ``resources/updated`` and its log messages no call claims).
    """

    on_route: Callable[[str, BackendRoute | None], object] = attrs.field(eq=False)
    on_resource_updated: Callable[[str, str], object] = attrs.field(eq=False)
    on_log: Callable[[str, types.LoggingMessageNotificationParams], object] = attrs.field(eq=False)


def _ignore_route(backend: str, route: BackendRoute | None) -> None:
    """No data plane: nothing to publish to."""


def _ignore(*_: object) -> None:
    """No data plane: nothing to tell."""


NO_HOOKS: Final = BackendHooks(on_route=_ignore_route, on_resource_updated=_ignore, on_log=_ignore)


@attrs.frozen
class CatalogueFetched:
    """A catalogue fetch for ``attempt`` finished (``seq`` orders overlapping fetches)."""

    attempt: int
    seq: int
    kinds: frozenset[ListKind]
    future: concurrent.futures.Future[BackendCatalogue] = attrs.field(eq=False)


@attrs.frozen
class ListChanged:
    """The backend said a listing changed (``notifications/<kind>/list_changed``)."""

    attempt: int
    kind: ListKind


@attrs.frozen
class CallFailed:
    """A request routed to the backend failed in transport or timed out (not a tool's ``isError``)."""

    backend: str
    attempt: int
    failure: Failure


class RoutePublisher:
    """The actor's side of the data plane (see the module doc); used from the actor's thread only."""

    def __init__(
        self,
        backend: str,
        hooks: BackendHooks | None,
        io: LoopThread,
        tell: Callable[[object], bool],
        call_timeout: Callable[[], float],
        redactor: SecretRedactor | None = None,
    ) -> None:
        self._backend = backend
        self._redactor = redactor or SecretRedactor()
        self._hooks = hooks or NO_HOOKS
        self._io = io
        self._tell = tell
        self._call_timeout = call_timeout
        self._events: dict[int, SessionEvents] = {}
        self._connections: dict[int, McpConnection] = {}
        self._catalogue: BackendCatalogue | None = None
        self._published: int | None = None
        self._seq = 0
        self._wanted: dict[ListKind, int] = {}

    def events(self, attempt: int) -> SessionEvents:
        """The session callbacks for the connection of ``attempt``."""
        tell = self._tell
        hooks = self._hooks
        events = SessionEvents(
            self._backend,
            on_list_changed=lambda kind: tell(ListChanged(attempt, kind)),
            on_resource_updated=hooks.on_resource_updated,
            on_log=hooks.on_log,
            redactor=self._redactor,
        )
        # Only the live attempt's callbacks are still needed; a backend that keeps failing to
        # connect must not pile up one set per attempt.
        self._events = {a: e for a, e in self._events.items() if a == self._published}
        self._events[attempt] = events
        return events

    def opened(self, attempt: int, connection: McpConnection) -> None:
        """The connection of ``attempt`` is the backend's session now: fetch everything.

        Without a data plane (no hooks) nothing is fetched: nobody would read the catalogue,
        and the listing would only add requests to the backend's session.
        """
        if self._hooks is NO_HOOKS:
            return
        self._connections = {attempt: connection}
        self._events = {a: e for a, e in self._events.items() if a >= attempt}
        self._catalogue = None
        self._fetch(attempt, frozenset(ListKind))

    def handle(self, message: object, current: int | None) -> None:
        """A :class:`ListChanged` or :class:`CatalogueFetched`; ``current`` is the live attempt."""
        if isinstance(message, ListChanged):
            if message.attempt == current and current in self._connections:
                self._fetch(current, frozenset({message.kind}))
        elif isinstance(message, CatalogueFetched):
            self._fetched(message, current)

    def is_live(self, attempt: int) -> bool:
        """Whether ``attempt``'s route is the one published."""
        return self._published == attempt

    def withdraw(self) -> None:
        """The session is gone (or going): no more route.  Cheap when nothing is published."""
        self._connections.clear()
        if self._published is not None:
            self._published = None
            self._hooks.on_route(self._backend, None)

    def _fetch(self, attempt: int, kinds: frozenset[ListKind]) -> None:
        connection = self._connections[attempt]
        self._seq += 1
        seq = self._seq
        for kind in kinds:
            self._wanted[kind] = seq
        try:
            future = self._io.submit(fetch_catalogue(connection, self._call_timeout(), self._catalogue, kinds))
        except LoopThreadStoppedError:
            return
        tell = self._tell
        future.add_done_callback(lambda done: tell(CatalogueFetched(attempt, seq, kinds, done)))

    def _fetched(self, message: CatalogueFetched, current: int | None) -> None:
        connection = self._connections.get(message.attempt)
        if message.attempt != current or connection is None:
            return
        try:
            fetched = scrub_catalogue(message.future.result(), self._redactor)
        except Exception as error:  # noqa: BLE001 - a failed listing is logged; the last catalogue stays
            log.warning("backend %r: listing its capabilities failed: %s", self._backend, error)
            fetched = self._catalogue or BackendCatalogue(backend=self._backend)
        kinds = {kind for kind in message.kinds if self._wanted.get(kind) == message.seq}
        if not kinds and self._published == current:
            return  # a newer fetch of every listing here is on its way
        previous = self._catalogue or BackendCatalogue(backend=self._backend)
        self._catalogue = _merge(previous, fetched, kinds)
        self._published = current
        self._hooks.on_route(
            self._backend,
            BackendRoute(
                backend=self._backend,
                attempt=current,
                connection=connection,
                events=self._events[current],
                catalogue=self._catalogue,
                call_timeout=self._call_timeout(),
                report_failure=lambda failure: self._tell(CallFailed(self._backend, current, failure)),
                redactor=self._redactor,
            ),
        )


def _merge(previous: BackendCatalogue, fetched: BackendCatalogue, kinds: set[ListKind]) -> BackendCatalogue:
    """``previous`` with the listings of ``kinds`` taken from ``fetched`` (and its capability flags)."""
    update: dict[str, Any] = {
        "supports_subscribe": fetched.supports_subscribe,
        "supports_logging": fetched.supports_logging,
        "supports_completions": fetched.supports_completions,
    }
    if ListKind.TOOLS in kinds:
        update["tools"] = fetched.tools
    if ListKind.RESOURCES in kinds:
        update["resources"] = fetched.resources
        update["resource_templates"] = fetched.resource_templates
    if ListKind.PROMPTS in kinds:
        update["prompts"] = fetched.prompts
    return attrs.evolve(previous, **update)
