"""Every metric the runtime exports, defined once, in the registry the runtime is given.

The names are the contract operators alert on (units in the name, ``_total`` on
counters, as Prometheus conventions ask).  Labels are bounded by construction: backend
names (from the config), outcomes, phases, health words, sinks, Kubernetes verbs and
HTTP codes -- never URLs, tool arguments or error text, which would make every distinct
failure a new time series.

Two kinds of metric live here:

* **Event metrics** (counters, histograms, the leader gauge) are prometheus_client
  objects updated only by the :class:`~vmcp_actors.metrics.observer.MetricsObserver`
  thread, from immutable events the actors hand it.
* **State metrics** (routable, health, failures, phase, pending, updates) are read at
  scrape time from the runtime's immutable snapshots by
  :class:`~vmcp_actors.metrics.state.StateCollector`: they cost nothing between scrapes
  and can never disagree with ``Runtime.status()``.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

from vmcp_actors.errors import ValidationError
from vmcp_actors.metrics.state import STATE_METRICS, StateCollector

__all__ = [
    "EVENT_METRICS",
    "METRIC_NAMES",
    "PROBE_OUTCOMES",
    "TOOL_CALL_OUTCOMES",
    "WRITE_OUTCOMES",
    "VmcpMetrics",
    "exposed_names",
]

#: Probe latencies: a healthy local ping takes milliseconds, a timeout takes the
#: configured healthCheckTimeout (10 s by default).
PROBE_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Status writes: a file rename takes microseconds, a Kubernetes PUT tens of milliseconds.
WRITE_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Tool calls run from milliseconds to minutes.
TOOL_CALL_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

#: ``vmcp_status_writes_total{outcome}``: what became of each status the reporter took.
WRITE_OUTCOMES: Final = ("written", "skipped_unchanged", "coalesced", "failed")
#: ``vmcp_backend_probes_total{outcome}``: ``success``, the health rules' failure kinds, or
#: ``skipped`` (no session to probe).
PROBE_OUTCOMES: Final = ("success", "timeout", "connection", "auth", "other", "skipped")
#: ``vmcp_tool_calls_total{outcome}``; anything else is counted as ``other``, so a caller
#: can never grow the label set.
TOOL_CALL_OUTCOMES: Final = ("success", "error", "timeout", "cancelled", "unavailable", "rejected", "other")

#: The metrics updated from events: name -> (type, help text, labels).
EVENT_METRICS: Final[dict[str, tuple[str, str, tuple[str, ...]]]] = {
    "vmcp_backend_probe_duration_seconds": (
        "histogram",
        "How long each health probe (MCP ping) took to answer or fail, as the health monitor waited for it.",
        ("backend",),
    ),
    "vmcp_backend_probes_total": (
        "counter",
        "Health probes by outcome: success, timeout, connection, auth, other, skipped.",
        ("backend", "outcome"),
    ),
    "vmcp_backend_restarts_total": (
        "counter",
        "Backend restarts: reconnects after a failure (reason: the failure kind), requested restarts "
        "(reason: requested) and crashed backend actors rebuilt by the supervisor (reason: actor_crash).",
        ("backend", "reason"),
    ),
    "vmcp_status_writes_total": (
        "counter",
        "Statuses the reporter took, by what became of them: written, skipped_unchanged, coalesced, failed.",
        ("sink", "outcome"),
    ),
    "vmcp_status_write_duration_seconds": (
        "histogram",
        "How long each call into the status sink took, successful or not.",
        ("sink",),
    ),
    "vmcp_status_write_throttled_total": (
        "counter",
        "Writes the sink's client-side rate limit deferred (the newest status is written when it allows).",
        ("sink",),
    ),
    "vmcp_kubernetes_requests_total": (
        "counter",
        "Requests to the Kubernetes API by verb (get, update) and HTTP code ('<error>' when none came back).",
        ("verb", "code"),
    ),
    "vmcp_tool_calls_total": (
        "counter",
        "Tool calls routed to each backend, by outcome.",
        ("backend", "outcome"),
    ),
    "vmcp_tool_call_duration_seconds": (
        "histogram",
        "How long each tool call routed to the backend took.",
        ("backend",),
    ),
    "vmcp_leader": (
        "gauge",
        "1 while this process holds the leader lease under this identity, 0 otherwise.",
        ("identity",),
    ),
}

#: Every metric family the runtime exports, as it appears in the exposition (counters with
#: their ``_total``).  Alert rules may use only these (plus ``_bucket``/``_sum``/``_count``).
METRIC_NAMES: Final = tuple(sorted((*EVENT_METRICS, *STATE_METRICS)))

_BUCKETS: Final = {
    "vmcp_backend_probe_duration_seconds": PROBE_BUCKETS,
    "vmcp_status_write_duration_seconds": WRITE_BUCKETS,
    "vmcp_tool_call_duration_seconds": TOOL_CALL_BUCKETS,
}


def exposed_names() -> frozenset[str]:
    """Every sample name the exposition can contain: families plus their suffixes."""
    names: set[str] = set()
    for name in METRIC_NAMES:
        kind = EVENT_METRICS[name][0] if name in EVENT_METRICS else STATE_METRICS[name][0]
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count", "_created"))
        elif kind == "counter":
            names.add(name.removesuffix("_total") + "_created")
    return frozenset(names)


def _event_metric(name: str) -> Counter | Gauge | Histogram:
    kind, documentation, labels = EVENT_METRICS[name]
    if kind == "counter":
        # prometheus_client appends ``_total`` itself.
        return Counter(name.removesuffix("_total"), documentation, labels, registry=None)
    if kind == "histogram":
        return Histogram(name, documentation, labels, registry=None, buckets=_BUCKETS[name])
    return Gauge(name, documentation, labels, registry=None)


def _counter(name: str) -> Counter:
    metric = _event_metric(name)
    assert isinstance(metric, Counter)
    return metric


def _histogram(name: str) -> Histogram:
    metric = _event_metric(name)
    assert isinstance(metric, Histogram)
    return metric


def _gauge(name: str) -> Gauge:
    metric = _event_metric(name)
    assert isinstance(metric, Gauge)
    return metric


class VmcpMetrics:
    """The runtime's metric objects, registered in ``registry`` (a private one by default).

    A private registry per runtime is what lets two runtimes live in one process: each
    exports the same names from its own registry.  Giving two runtimes the *same*
    registry is refused with a :class:`~vmcp_actors.errors.ValidationError` naming the
    clashing metrics, and nothing is left half-registered.

    Only the :class:`~vmcp_actors.metrics.observer.MetricsObserver` thread updates the
    event metrics; ``state`` reads the runtime's snapshots when scraped.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.backend_probe_duration = _histogram("vmcp_backend_probe_duration_seconds")
        self.backend_probes = _counter("vmcp_backend_probes_total")
        self.backend_restarts = _counter("vmcp_backend_restarts_total")
        self.status_writes = _counter("vmcp_status_writes_total")
        self.status_write_duration = _histogram("vmcp_status_write_duration_seconds")
        self.status_write_throttled = _counter("vmcp_status_write_throttled_total")
        self.kubernetes_requests = _counter("vmcp_kubernetes_requests_total")
        self.tool_calls = _counter("vmcp_tool_calls_total")
        self.tool_call_duration = _histogram("vmcp_tool_call_duration_seconds")
        self.leader = _gauge("vmcp_leader")
        self.state = StateCollector()
        self._collectors: tuple[Collector, ...] = (
            self.backend_probe_duration,
            self.backend_probes,
            self.backend_restarts,
            self.status_writes,
            self.status_write_duration,
            self.status_write_throttled,
            self.kubernetes_requests,
            self.tool_calls,
            self.tool_call_duration,
            self.leader,
            self.state,
        )
        registered: list[Collector] = []
        try:
            for collector in self._collectors:
                self.registry.register(collector)
                registered.append(collector)
        except ValueError as error:
            for done in registered:
                self.registry.unregister(done)
            raise ValidationError(
                "metrics",
                f"the registry already holds vmcp metrics ({error}); give each runtime its own registry",
                None,
            ) from error

    def unregister(self) -> None:
        """Take every metric out of the registry, so another runtime may use it."""
        for collector in self._collectors:
            self.registry.unregister(collector)
