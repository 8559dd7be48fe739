"""State metrics are a pure function of the runtime's snapshots (property-tested)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.metrics.scrape import Samples
from tests.strategies import statuses
from vmcp_actors.backend.lifecycle_state import Lifecycle, State
from vmcp_actors.backend.snapshot import BackendSnapshot, snapshot_of
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.metrics.state import HEALTH_WORDS, RuntimeView, StateCollector, health_of, state_families
from vmcp_actors.model.status import BackendHealth, DiscoveredBackend, Phase, Status
from vmcp_actors.reporting.coalescing import ReporterStats


def samples(view: RuntimeView) -> Samples:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    collector = StateCollector()
    collector.bind(lambda: view)
    registry.register(collector)
    return Samples(generate_latest(registry).decode())


def snapshot(name: str, failures: int = 0) -> BackendSnapshot:
    spec = BackendSpec(name=name, type="streamable-http", url="http://127.0.0.1:1/mcp")
    return snapshot_of(spec, Lifecycle(name=name, remote=True, state=State.FAILED, consecutive_failures=failures))


@given(
    statuses(),
    st.lists(st.from_regex(r"\A[a-z][a-z0-9-]{0,8}\Z"), max_size=3, unique=True),
    st.booleans(),
    st.booleans(),
)
def test_one_hot_gauges_and_routability_agree_with_the_status(
    status: Status, configured: list[str], pending: bool, held: bool
) -> None:
    stats = ReporterStats(received=7, pending=pending, held=held and pending)
    view = RuntimeView(status, {name: snapshot(name) for name in configured}, stats)
    read = samples(view)
    assert read.get("vmcp_phase", phase=status.phase.value) == 1.0
    assert read.total("vmcp_phase") == 1.0
    names = {b.name for b in status.discovered_backends} | set(configured)
    assert read.label_values("vmcp_backend_routable", "backend") == names
    for name in names:
        health = read.matching("vmcp_backend_health", backend=name)
        assert len(health) == len(HEALTH_WORDS)
        assert sum(health.values()) == 1.0
        (current,) = [dict(labels)["health"] for labels, value in health.items() if value == 1.0]
        assert current == health_of(status, name).value
        assert read.get("vmcp_backend_routable", backend=name) == (1.0 if BackendHealth(current).routable else 0.0)
        backend = status.backend(name)
        expected_failures = backend.consecutive_failures if backend is not None else 0
        assert read.get("vmcp_backend_consecutive_failures", backend=name) == expected_failures
    assert read.get("vmcp_status_pending") == (1.0 if pending and not held else 0.0)  # a held refresh is not behind
    assert read.get("vmcp_status_updates_total") == 7.0


def test_routable_counts_match_the_status_backend_count_for_built_statuses() -> None:
    status = Status(
        phase=Phase.DEGRADED,
        message="1/3 backends routable",
        discovered_backends=(
            DiscoveredBackend("a", status="ready"),
            DiscoveredBackend("b", status="unauthenticated"),
            DiscoveredBackend("c", status="unavailable", consecutive_failures=4),
        ),
        backend_count=1,
    )
    read = samples(RuntimeView(status, {"c": snapshot("c", failures=3), "d": snapshot("d")}))
    assert read.total("vmcp_backend_routable") == status.backend_count  # unauthenticated is not routable
    assert read.get("vmcp_backend_health", backend="b", health="unauthenticated") == 1.0
    assert read.get("vmcp_backend_health", backend="c", health="unhealthy") == 1.0
    assert read.get("vmcp_backend_health", backend="d", health="unknown") == 1.0  # no health data yet
    assert read.get("vmcp_backend_consecutive_failures", backend="c") == 4.0  # probe failures, as in the CRD
    assert read.get("vmcp_backend_connect_failures", backend="c") == 3.0  # the lifecycle's
    assert read.get("vmcp_backend_connect_failures", backend="a") == 0.0


def test_an_unknown_crd_word_reads_unknown() -> None:
    status = Status(phase=Phase.READY, discovered_backends=(DiscoveredBackend("x", status="someday"),))
    assert health_of(status, "x") is BackendHealth.UNKNOWN
    assert health_of(None, "x") is BackendHealth.UNKNOWN


def test_state_families_never_label_with_urls_or_messages() -> None:
    status = Status(
        phase=Phase.READY,
        discovered_backends=(DiscoveredBackend("a", url="http://secret-host:1/mcp", status="ready", message="boom"),),
    )
    text = samples(RuntimeView(status, {"a": snapshot("a")})).text
    assert "secret-host" not in text
    assert "boom" not in text
    assert len(state_families(RuntimeView())) == 7
