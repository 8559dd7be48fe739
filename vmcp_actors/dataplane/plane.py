"""The data plane's state: which backends are routable, their catalogues, the aggregated view.

One actor, :class:`DataplaneActor`, owns it.  Backend actors publish their routes (live
session + catalogue), the health actor publishes every backend's health, the runtime
tracks and forgets backends; each of these is a message.  After each the actor rebuilds
the :class:`DataplaneView` -- the aggregation over every known catalogue, then restricted
to the backends that are routable now (toolhive's ``ShouldAdvertise``: healthy or degraded,
and a session open) -- and stores it in the :class:`ViewCell` with one assignment, so
``runtime.tools()`` and the router read it from any thread without waiting on anything.
When what clients see changes, :class:`~vmcp_actors.dataplane.notify.CatalogueChanged`
goes to the subscribers (``vmcp-actors serve`` turns it into ``list_changed``).

A backend's last catalogue is kept while it is down, so its tools keep their names and a
call to one of them can say which backend is down instead of "unknown tool".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import attrs
import pykka

from vmcp_actors.actorkit.guard import GuardedActor, tell_quietly
from vmcp_actors.backend.catalogue import BackendCatalogue, ListKind
from vmcp_actors.backend.routes import BackendHooks, BackendRoute
from vmcp_actors.config.aggregation import AggregationConfig
from vmcp_actors.dataplane.aggregation import AggregatedView, aggregate, should_advertise
from vmcp_actors.dataplane.notify import BackendLog, CatalogueChanged, Notifier, ResourceUpdated
from vmcp_actors.model.status import BackendHealth

__all__ = ["Dataplane", "DataplaneActor", "DataplaneView", "ViewCell"]

log = logging.getLogger(__name__)


@attrs.frozen
class DataplaneView:
    """Everything a request needs to be routed, as one immutable value.

    ``full`` is the aggregation over every known catalogue; ``visible`` keeps only the
    routable backends' part of it (what clients see).  ``routes`` holds the live sessions.
    """

    full: AggregatedView = attrs.field(factory=AggregatedView)
    visible: AggregatedView = attrs.field(factory=AggregatedView)
    routes: Mapping[str, BackendRoute] = attrs.field(factory=dict, eq=False)
    health: Mapping[str, BackendHealth] = attrs.field(factory=dict)
    backends: tuple[str, ...] = ()
    catalogued: frozenset[str] = frozenset()

    def routable(self, backend: str) -> bool:
        """Whether requests may go to ``backend`` now."""
        return backend in self.routes and should_advertise(self.health.get(backend))

    def why_not_routable(self, backend: str) -> str:
        """Why ``backend`` takes no requests now, in words."""
        health = self.health.get(backend)
        if backend not in self.backends:
            return "it is not configured"
        if backend not in self.routes:
            return f"it has no open session (health: {health.value if health else 'unknown'})"
        if health is None:
            return "its first health check has not answered yet"
        return f"it is {health.value}"


class ViewCell:
    """The latest :class:`DataplaneView`; written by the actor, read by anyone without waiting."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = DataplaneView()


@attrs.frozen
class _Track:
    backend: str
    tool_prefix: str = ""


@attrs.frozen
class _Forget:
    backend: str


@attrs.frozen
class _Route:
    backend: str
    route: BackendRoute | None = attrs.field(eq=False)


@attrs.frozen
class _Health:
    health: Mapping[str, BackendHealth]


def _changed(old: AggregatedView, new: AggregatedView) -> frozenset[ListKind]:
    kinds: set[ListKind] = set()
    if old.tools != new.tools:
        kinds.add(ListKind.TOOLS)
    if old.resources != new.resources or old.resource_templates != new.resource_templates:
        kinds.add(ListKind.RESOURCES)
    if old.prompts != new.prompts:
        kinds.add(ListKind.PROMPTS)
    return frozenset(kinds)


class DataplaneActor(GuardedActor):
    """Owns the data plane's state (see the module doc)."""

    def __init__(self, config: AggregationConfig, cell: ViewCell, notifier: Notifier) -> None:
        super().__init__("data plane")
        self._config = config
        self._cell = cell
        self._notifier = notifier
        self._backends: list[str] = []
        self._routes: dict[str, BackendRoute] = {}
        self._catalogues: dict[str, BackendCatalogue] = {}
        self._health: Mapping[str, BackendHealth] = {}
        self._full = AggregatedView()

    def handle(self, message: Any) -> Any:
        """Fold one change in and rebuild the view."""
        regroup = False
        if isinstance(message, _Route):
            regroup = self._route(message)
        elif isinstance(message, _Health):
            self._health = message.health
        elif isinstance(message, _Track):
            regroup = self._track(message)
        elif isinstance(message, _Forget):
            regroup = self._forget(message.backend)
        else:
            log.warning("data plane ignored unexpected message %r", message)
            return None
        self._rebuild(regroup)
        return None

    def _route(self, message: _Route) -> bool:
        name = message.backend
        if name not in self._backends:
            return False  # a late word from a backend that was removed
        if message.route is None:
            self._routes.pop(name, None)
            return False
        self._routes[name] = message.route
        previous = self._catalogues.get(name)
        self._catalogues[name] = message.route.catalogue
        return previous != message.route.catalogue

    def _track(self, message: _Track) -> bool:
        """A backend configured (or reconfigured): accept its routes; a new ``toolPrefix`` renames its tools."""
        if message.backend not in self._backends:
            self._backends.append(message.backend)
        config = self._config.with_tool_prefix(message.backend, message.tool_prefix)
        if config == self._config:
            return False
        self._config = config
        return True

    def _forget(self, name: str) -> bool:
        if name in self._backends:
            self._backends.remove(name)
        self._routes.pop(name, None)
        return self._catalogues.pop(name, None) is not None

    def _rebuild(self, regroup: bool) -> None:
        if regroup:
            catalogues = [self._catalogues[name] for name in self._backends if name in self._catalogues]
            self._full = aggregate(catalogues, self._config)
        view = DataplaneView(
            full=self._full,
            routes=dict(self._routes),
            health=dict(self._health),
            backends=tuple(self._backends),
            catalogued=frozenset(self._catalogues),
        )
        routable = {name for name in self._backends if view.routable(name)}
        view = attrs.evolve(view, visible=self._full.restricted_to(routable))
        previous = self._cell.value
        self._cell.value = view
        kinds = _changed(previous.visible, view.visible)
        if kinds:
            log.info(
                "vmcp catalogue: %d tools, %d resources, %d prompts from %d routable backends",
                len(view.visible.tools),
                len(view.visible.resources),
                len(view.visible.prompts),
                len(routable),
            )
            self._notifier.publish(CatalogueChanged(kinds, view.visible))


class Dataplane:
    """The data plane's parts and the hooks that feed it; owned by the runtime."""

    def __init__(self, config: AggregationConfig) -> None:
        self.cell = ViewCell()
        self.notifier = Notifier()
        self._ref: pykka.ActorRef[Any] = DataplaneActor.start(config, self.cell, self.notifier)
        ref, notifier = self._ref, self.notifier
        self.backend_hooks = BackendHooks(
            on_route=lambda backend, route: tell_quietly(ref, _Route(backend, route)),
            on_resource_updated=lambda backend, uri: notifier.publish(ResourceUpdated(backend, uri)),
            on_log=lambda backend, params: notifier.publish(BackendLog(backend, params)),
        )

    def on_health(self, health: Mapping[str, BackendHealth]) -> None:
        """The health actor's hook: every backend's health, whenever it changes."""
        tell_quietly(self._ref, _Health(dict(health)))

    def track(self, backend: str, tool_prefix: str = "") -> None:
        """A backend was configured (or its spec changed): its routes are accepted, its ``toolPrefix`` used."""
        tell_quietly(self._ref, _Track(backend, tool_prefix))

    def forget(self, backend: str) -> None:
        """A backend was removed (and has stopped): drop its route and catalogue."""
        tell_quietly(self._ref, _Forget(backend))

    def stop(self, timeout: float) -> None:
        """Stop the actor, then deliver the queued events (both bounded by ``timeout``)."""
        try:
            self._ref.stop(block=True, timeout=timeout)
        except pykka.Timeout:
            log.error("the data plane actor did not stop in time")
        self.notifier.stop(timeout)
