"""Telling the embedding process what changed: statuses, catalogues, resource updates, stray logs.

``runtime.subscribe(callback)`` registers a callback with the :class:`Notifier`, which calls
every callback from its own thread, in the order events happened.  Publishing is a queue
put, so no actor ever waits for a subscriber; a slow subscriber delays only later
deliveries, and one that raises is logged and kept.

The events: every new :class:`~vmcp_actors.model.status.Status` (through the
:class:`StatusTap` put in front of the reporter), :class:`CatalogueChanged` whenever what
clients may see changes (a backend's catalogue, or its routability), :class:`ResourceUpdated`
when a backend says a resource changed, and :class:`BackendLog` for a backend log message
that no in-flight request claims.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Final

import attrs
import mcp_types as types

from vmcp_actors.backend.catalogue import ListKind
from vmcp_actors.dataplane.aggregation import AggregatedView
from vmcp_actors.model.status import Status
from vmcp_actors.reporting.protocol import Reporter, Shutdown

__all__ = [
    "BackendLog",
    "CatalogueChanged",
    "Notifier",
    "ResourceUpdated",
    "RuntimeEvent",
    "StatusTap",
    "Subscriber",
]

log = logging.getLogger(__name__)

_STOP: Final = object()


@attrs.frozen
class CatalogueChanged:
    """What clients may see changed: ``kinds`` lists which listings; ``view`` is the new one."""

    kinds: frozenset[ListKind]
    view: AggregatedView


@attrs.frozen
class ResourceUpdated:
    """A backend sent ``notifications/resources/updated`` for ``uri``."""

    backend: str
    uri: str


@attrs.frozen
class BackendLog:
    """A backend's log message that belongs to no request in flight."""

    backend: str
    params: types.LoggingMessageNotificationParams


RuntimeEvent = Status | CatalogueChanged | ResourceUpdated | BackendLog
Subscriber = Callable[[RuntimeEvent], object]


class Notifier:
    """Delivers events to subscribers from one thread (``vmcp-notify``), in order."""

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="vmcp-notify", daemon=True)
        self._thread.start()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register ``callback``; returns an idempotent function that unregisters it."""
        with self._lock:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def publish(self, event: RuntimeEvent) -> None:
        """Queue ``event`` for delivery; never blocks, a no-op without subscribers."""
        if self._subscribers:
            self._queue.put(event)

    def stop(self, timeout: float) -> None:
        """Deliver what is queued (within ``timeout``), then end the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("event subscribers did not finish within %.1fs; leaving them behind", timeout)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is _STOP:
                return
            for callback in self._subscribers:
                try:
                    callback(event)  # type: ignore[arg-type]
                except Exception:
                    log.exception("runtime subscriber %r raised on %s; it stays subscribed", callback, type(event))


class StatusTap:
    """A reporter in front of the real one that also publishes each new status to subscribers.

    Called by the health actor only.  A status equal in content to the previous one (the
    periodic re-assertion) is passed to the reporter but not published again.
    """

    def __init__(self, inner: Reporter, notifier: Notifier) -> None:
        self._inner = inner
        self._notifier = notifier
        self._last: Status | None = None

    def report_status(self, status: Status | None) -> None:
        """Report to the real reporter, and publish when the content changed."""
        self._inner.report_status(status)
        if status is not None and not status.same_content(self._last):
            self._last = status
            self._notifier.publish(status)

    def start(self) -> Shutdown:
        """Start the real reporter."""
        return self._inner.start()
