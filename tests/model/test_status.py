"""The status model: toolhive's vocabulary, the Go JSON shape, and construction checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from vmcp_actors.errors import ValidationError
from vmcp_actors.model.codec import decode_status, encode_status
from vmcp_actors.model.status import BackendHealth, Condition, DiscoveredBackend, Phase, Status

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_backend_health_maps_to_the_crd_vocabulary() -> None:
    assert {h.value: h.crd_status for h in BackendHealth} == {
        "healthy": "ready",
        "degraded": "degraded",
        "unhealthy": "unavailable",
        "unknown": "unknown",
        "unauthenticated": "unauthenticated",
    }


def test_only_healthy_is_routable() -> None:
    """An unauthenticated backend serves nothing: not routable (toolhive's #4920 stop-gap is not copied)."""
    assert {h for h in BackendHealth if h.routable} == {BackendHealth.HEALTHY}


def test_unknown_phase_becomes_pending_only_through_the_crd_conversion() -> None:
    assert Phase.from_crd("Running") is Phase.PENDING
    assert Phase.from_crd("Degraded") is Phase.DEGRADED
    with pytest.raises(ValidationError) as info:
        Status(phase="Running")
    assert info.value.field == "phase"


def test_encoding_matches_the_go_marshalling_byte_for_byte() -> None:
    status = Status(
        phase=Phase.DEGRADED,
        message="1/2 backends routable (0 degraded, 1 unhealthy, 0 unknown)",
        conditions=(
            Condition("Ready", "False", "SomeBackendsUnhealthy", "1/2 backends routable", last_transition_time=T0),
            Condition("BackendsDiscovered", "True", "BackendsDiscovered", "", last_transition_time=T0),
        ),
        discovered_backends=(
            DiscoveredBackend("files", status="ready", circuit_breaker_state="closed", last_health_check=T0),
            DiscoveredBackend("github", url="http://127.0.0.1:8080/mcp", status="unavailable", consecutive_failures=3),
        ),
        backend_count=1,
        timestamp=T0 + timedelta(microseconds=999_999),
    )
    assert encode_status(status) == {
        "phase": "Degraded",
        "message": "1/2 backends routable (0 degraded, 1 unhealthy, 0 unknown)",
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "lastTransitionTime": "2026-03-04T05:06:07Z",
                "reason": "SomeBackendsUnhealthy",
                "message": "1/2 backends routable",
            },
            {
                "type": "BackendsDiscovered",
                "status": "True",
                "lastTransitionTime": "2026-03-04T05:06:07Z",
                "reason": "BackendsDiscovered",
                "message": "",
            },
        ],
        "discoveredBackends": [
            {
                "name": "files",
                "status": "ready",
                "lastHealthCheck": "2026-03-04T05:06:07Z",
                "circuitBreakerState": "closed",
            },
            {"name": "github", "url": "http://127.0.0.1:8080/mcp", "status": "unavailable", "consecutiveFailures": 3},
        ],
        "backendCount": 1,
        "timestamp": "2026-03-04T05:06:07Z",
    }
    assert "timestamp" not in encode_status(status, include_timestamp=False)


def test_times_are_normalised_to_utc_seconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    condition = Condition(
        "Ready", "True", "Ok", last_transition_time=datetime(2026, 1, 1, 2, 0, 0, 123456, tzinfo=plus_two)
    )
    assert condition.last_transition_time == datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert decode_status({"phase": "Ready", "timestamp": "2026-01-01T02:00:00+02:00"}).timestamp == datetime(
        2026, 1, 1, tzinfo=UTC
    )


def test_naive_datetimes_are_rejected_naming_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        Status(phase="Ready", timestamp=datetime(2026, 1, 1))
    assert info.value.field == "timestamp"


def test_zero_times_arriving_as_null_decode_as_absent() -> None:
    status = decode_status(
        {"phase": "Ready", "discoveredBackends": [{"name": "a", "lastHealthCheck": None, "circuitLastChanged": None}]}
    )
    assert status.discovered_backends[0].last_health_check is None


def test_missing_phase_decodes_as_the_crd_default_pending() -> None:
    assert decode_status({}).phase is Phase.PENDING


def test_same_content_ignores_only_the_timestamp() -> None:
    a = Status(phase="Ready", message="x", timestamp=T0)
    assert a.same_content(Status(phase="Ready", message="x", timestamp=T0 + timedelta(hours=1)))
    assert not a.same_content(Status(phase="Ready", message="y", timestamp=T0))
    assert not a.same_content(None)


def test_lookups_by_type_and_name() -> None:
    status = Status(
        phase="Ready",
        conditions=[Condition("Ready", "True", "AllBackendsRoutable", last_transition_time=T0)],
        discovered_backends=[DiscoveredBackend("files")],
    )
    ready = status.condition("Ready")
    assert ready is not None
    assert ready.reason == "AllBackendsRoutable"
    assert status.condition("Degraded") is None
    assert status.backend("files") == DiscoveredBackend("files")
    assert status.backend("nope") is None


def test_statuses_are_immutable_values() -> None:
    status = Status(phase="Ready", conditions=[])
    assert status.conditions == ()
    with pytest.raises(AttributeError):
        status.phase = Phase.FAILED  # type: ignore[misc]
