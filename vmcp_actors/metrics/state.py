"""State metrics, read at scrape time from the runtime's immutable snapshots.

Routability, health, failure counts, the phase and the reporter's backlog are *state*:
the runtime already publishes each of them as an immutable value (the latest
:class:`~vmcp_actors.model.status.Status`, each backend's
:class:`~vmcp_actors.backend.snapshot.BackendSnapshot`, the reporter's
:class:`~vmcp_actors.reporting.coalescing.ReporterStats`).  Reading those when
Prometheus scrapes costs the actors nothing, needs no lock, and can never disagree
with what ``Runtime.status()`` says.

One-hot gauges (``vmcp_phase``, ``vmcp_backend_health``) export every value, 0 or 1, so
an alert on ``== 1`` and an alert on ``== 0`` both have a series to look at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final

import attrs
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vmcp_actors.backend.snapshot import BackendSnapshot
from vmcp_actors.model.status import BackendHealth, Phase, Status
from vmcp_actors.reporting.coalescing import ReporterStats

__all__ = ["HEALTH_WORDS", "STATE_METRICS", "RuntimeView", "StateCollector", "health_of", "state_families"]

#: The health vocabulary of ``vmcp_backend_health{health}`` (toolhive's health monitor words).
HEALTH_WORDS: Final = tuple(health.value for health in BackendHealth)
_FROM_CRD: Final = {health.crd_status: health for health in BackendHealth}

#: The metrics read from snapshots: name -> (type, help text, labels).
STATE_METRICS: Final[dict[str, tuple[str, str, tuple[str, ...]]]] = {
    "vmcp_phase": (
        "gauge",
        "1 for the vMCP's current phase (Pending, Ready, Degraded, Failed), 0 for the others.",
        ("phase",),
    ),
    "vmcp_backend_routable": (
        "gauge",
        "1 if requests may be routed to the backend (it is healthy), else 0.",
        ("backend",),
    ),
    "vmcp_backend_health": (
        "gauge",
        "1 for the backend's current health (healthy, degraded, unhealthy, unknown, unauthenticated), 0 for the "
        "others; unknown until the health monitor has data.",
        ("backend", "health"),
    ),
    "vmcp_backend_consecutive_failures": (
        "gauge",
        "Consecutive failed health probes, as status.discoveredBackends[].consecutiveFailures reports them.",
        ("backend",),
    ),
    "vmcp_backend_connect_failures": (
        "gauge",
        "Consecutive failed connection attempts of the backend's lifecycle (0 once connected).",
        ("backend",),
    ),
    "vmcp_status_pending": (
        "gauge",
        "1 while a status with news waits to be written to the sink (or is being retried); a refresh of "
        "timestamps only, held for the status interval on purpose, does not count.",
        (),
    ),
    "vmcp_status_updates_total": ("counter", "Statuses the runtime reported to its reporter.", ()),
}


@attrs.frozen
class RuntimeView:
    """What the state metrics are computed from: the runtime's latest immutable values."""

    status: Status | None = None
    snapshots: Mapping[str, BackendSnapshot] = attrs.field(factory=dict)
    reporter: ReporterStats = attrs.field(factory=ReporterStats)


def health_of(status: Status | None, name: str) -> BackendHealth:
    """The backend's health in the status, or ``unknown`` while it has no data there."""
    backend = None if status is None else status.backend(name)
    if backend is None:
        return BackendHealth.UNKNOWN
    return _FROM_CRD.get(backend.status, BackendHealth.UNKNOWN)


def _gauge(name: str) -> GaugeMetricFamily:
    _, documentation, labels = STATE_METRICS[name]
    return GaugeMetricFamily(name, documentation, labels=labels)


def state_families(view: RuntimeView) -> list[Metric]:
    """Every state metric for one view, in a stable order (pure; what a scrape returns)."""
    status = view.status
    phase = _gauge("vmcp_phase")
    current = Phase.PENDING if status is None else status.phase
    for value in Phase:
        phase.add_metric([value.value], 1.0 if value is current else 0.0)
    routable = _gauge("vmcp_backend_routable")
    health = _gauge("vmcp_backend_health")
    probe_failures = _gauge("vmcp_backend_consecutive_failures")
    connect_failures = _gauge("vmcp_backend_connect_failures")
    names = set(view.snapshots)
    if status is not None:
        names.update(backend.name for backend in status.discovered_backends)
    for name in sorted(names):
        now = health_of(status, name)
        routable.add_metric([name], 1.0 if now.routable else 0.0)
        for word in BackendHealth:
            health.add_metric([name, word.value], 1.0 if word is now else 0.0)
        backend = None if status is None else status.backend(name)
        probe_failures.add_metric([name], float(backend.consecutive_failures if backend is not None else 0))
        snapshot = view.snapshots.get(name)
        connect_failures.add_metric([name], float(snapshot.consecutive_failures if snapshot is not None else 0))
    pending = _gauge("vmcp_status_pending")
    pending.add_metric([], 1.0 if view.reporter.pending and not view.reporter.held else 0.0)
    updates = CounterMetricFamily(
        "vmcp_status_updates", STATE_METRICS["vmcp_status_updates_total"][1], value=view.reporter.received
    )
    return [phase, routable, health, probe_failures, connect_failures, pending, updates]


class StateCollector(Collector):
    """A prometheus_client collector that computes :func:`state_families` on each scrape.

    Unbound (before the runtime hands it its snapshots), it reports an empty runtime:
    phase Pending, no backends, nothing pending.
    """

    def __init__(self) -> None:
        self._source: Callable[[], RuntimeView] = RuntimeView

    def bind(self, source: Callable[[], RuntimeView]) -> None:
        """Read the runtime's values through ``source`` from now on (one reference swap)."""
        self._source = source

    def collect(self) -> Iterable[Metric]:
        """The state metrics as of now."""
        return state_families(self._source())

    def describe(self) -> Iterable[Metric]:
        """The families without samples, so the registry can detect a clash at registration."""
        return state_families(RuntimeView())
