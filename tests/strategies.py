"""Hypothesis strategies for the status model, shared by every property test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from vmcp_actors.model.status import (
    BackendHealth,
    CircuitState,
    Condition,
    ConditionStatus,
    DiscoveredBackend,
    Phase,
    Status,
)

_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)

times = st.integers(min_value=0, max_value=20 * 365 * 24 * 3600).map(lambda s: _EPOCH + timedelta(seconds=s))

reasons = st.from_regex(r"\A[A-Za-z]([A-Za-z0-9_,:]{0,20}[A-Za-z0-9_])?\Z")
condition_types = st.sampled_from(
    ["Ready", "Degraded", "BackendsDiscovered", "GroupRefValidated", "example.com/Custom", "AuthConfigured"]
)
texts = st.text(max_size=40)
names = st.from_regex(r"\A[a-z][a-z0-9-]{0,15}\Z")


@st.composite
def conditions(draw: st.DrawFn, condition_type: str | None = None) -> Condition:
    return Condition(
        type=condition_type or draw(condition_types),
        status=draw(st.sampled_from(list(ConditionStatus))),
        reason=draw(reasons),
        message=draw(texts),
        last_transition_time=draw(times),
        observed_generation=draw(st.integers(min_value=0, max_value=2**63 - 1)),
    )


@st.composite
def discovered_backends(draw: st.DrawFn, name: str | None = None) -> DiscoveredBackend:
    return DiscoveredBackend(
        name=name or draw(names),
        url=draw(st.sampled_from(["", "http://127.0.0.1:8080/mcp", "stdio://files"])),
        status=draw(st.sampled_from(["", *(h.crd_status for h in BackendHealth)])),
        auth_config_ref=draw(st.sampled_from(["", "auth-ref"])),
        auth_type=draw(st.sampled_from(["", "token_exchange", "unauthenticated"])),
        last_health_check=draw(st.none() | times),
        message=draw(texts),
        circuit_breaker_state=draw(st.none() | st.sampled_from(list(CircuitState))),
        circuit_last_changed=draw(st.none() | times),
        consecutive_failures=draw(st.integers(min_value=0, max_value=10_000)),
        mcp_revision=draw(st.sampled_from(["", "2025-11-25", "2026-07-28"])),
    )


@st.composite
def statuses(draw: st.DrawFn) -> Status:
    types = draw(st.lists(condition_types, unique=True, max_size=4))
    backend_names = draw(st.lists(names, unique=True, max_size=5))
    return Status(
        phase=draw(st.sampled_from(list(Phase))),
        message=draw(texts),
        conditions=tuple(draw(conditions(t)) for t in types),
        discovered_backends=tuple(draw(discovered_backends(n)) for n in backend_names),
        backend_count=draw(st.integers(min_value=0, max_value=2**31 - 1)),
        observed_generation=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        timestamp=draw(st.none() | times),
    )
