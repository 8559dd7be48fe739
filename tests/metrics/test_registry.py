"""The metric set is the contract: names, types, labels, and one registry per runtime."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter

from tests.metrics.scrape import scrape_registry
from vmcp_actors.errors import ValidationError
from vmcp_actors.metrics.registry import EVENT_METRICS, METRIC_NAMES, VmcpMetrics, exposed_names
from vmcp_actors.metrics.state import STATE_METRICS

#: The names issue 12 asks for, verbatim: operators' alerts depend on them.
ISSUE_NAMES = {
    "vmcp_backend_routable": ("gauge", {"backend"}),
    "vmcp_backend_health": ("gauge", {"backend", "health"}),
    "vmcp_backend_consecutive_failures": ("gauge", {"backend"}),
    "vmcp_backend_probe_duration_seconds": ("histogram", {"backend"}),
    "vmcp_backend_restarts_total": ("counter", {"backend", "reason"}),
    "vmcp_phase": ("gauge", {"phase"}),
    "vmcp_status_updates_total": ("counter", set()),
    "vmcp_status_writes_total": ("counter", {"sink", "outcome"}),
    "vmcp_status_write_duration_seconds": ("histogram", {"sink"}),
    "vmcp_status_pending": ("gauge", set()),
    "vmcp_kubernetes_requests_total": ("counter", {"verb", "code"}),
    "vmcp_leader": ("gauge", {"identity"}),
    "vmcp_tool_calls_total": ("counter", {"backend", "outcome"}),
    "vmcp_tool_call_duration_seconds": ("histogram", {"backend"}),
}

#: Labels that would make cardinality unbounded; none may appear on any metric.
UNBOUNDED_LABELS = {"url", "error", "message", "tool", "arguments", "args", "path", "name", "namespace", "uid"}


def test_every_name_the_issue_asks_for_is_defined_with_its_type_and_labels() -> None:
    defined = {**EVENT_METRICS, **STATE_METRICS}
    for name, (kind, labels) in ISSUE_NAMES.items():
        assert name in METRIC_NAMES
        assert defined[name][0] == kind, name
        assert set(defined[name][2]) == labels, name


def test_units_are_in_the_names_and_labels_are_bounded() -> None:
    for name, (kind, _, labels) in {**EVENT_METRICS, **STATE_METRICS}.items():
        assert name.startswith("vmcp_")
        if kind == "counter":
            assert name.endswith("_total"), name
        if kind == "histogram":
            assert name.endswith("_seconds"), name
        assert not set(labels) & UNBOUNDED_LABELS, name


def test_the_exposition_has_every_family_with_its_type() -> None:
    samples = scrape_registry(VmcpMetrics().registry)
    for name in METRIC_NAMES:
        kind = {**EVENT_METRICS, **STATE_METRICS}[name][0]
        family = name.removesuffix("_total") if kind == "counter" else name
        assert samples.families.get(family) == kind, name
    assert {key[0] for key in samples.values} <= exposed_names()


def test_an_empty_runtime_reads_pending_with_nothing_pending() -> None:
    samples = scrape_registry(VmcpMetrics().registry)
    assert samples.get("vmcp_phase", phase="Pending") == 1.0
    assert samples.total("vmcp_phase") == 1.0
    assert samples.get("vmcp_status_pending") == 0.0
    assert samples.get("vmcp_status_updates_total") == 0.0
    assert not samples.matching("vmcp_backend_routable")


def test_each_metrics_object_gets_its_own_private_registry() -> None:
    first, second = VmcpMetrics(), VmcpMetrics()
    assert first.registry is not second.registry
    first.tool_calls.labels("a", "success").inc()
    assert scrape_registry(first.registry).value("vmcp_tool_calls_total", backend="a", outcome="success") == 1.0
    assert not scrape_registry(second.registry).matching("vmcp_tool_calls_total")


def test_a_given_registry_is_used_and_sharing_it_is_refused_cleanly() -> None:
    registry = CollectorRegistry()
    other = Counter("unrelated", "something else in the same registry", registry=registry)
    metrics = VmcpMetrics(registry)
    assert metrics.registry is registry
    before = scrape_registry(registry).text
    with pytest.raises(ValidationError, match="give each runtime its own registry") as caught:
        VmcpMetrics(registry)
    assert caught.value.field == "metrics"
    assert scrape_registry(registry).text == before  # nothing of the refused one was left behind
    other.inc()
    metrics.unregister()
    samples = scrape_registry(registry)
    assert samples.value("unrelated_total") == 1.0
    assert not [name for name in samples.families if name.startswith("vmcp_")]
    VmcpMetrics(registry)  # free again
