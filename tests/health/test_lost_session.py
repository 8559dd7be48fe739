"""A backend whose session died stays visibly down while it reconnects, with its failures counted.

Found driving the runtime with a real ``kubectl``: a SIGKILLed stdio backend showed in
``discoveredBackends`` as ``unknown`` with no ``consecutiveFailures``, although the runtime
knew its process had died.  The cause: the backend actor publishes ``FAILED`` and, in the same
step, ``STARTING`` for the reconnect; the health rules turned ``STARTING`` into "unknown" and
a lost session never counted as a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.health.test_actor import World
from vmcp_actors.backend.lifecycle_state import State
from vmcp_actors.config.health_settings import HealthConfig
from vmcp_actors.health.probes import ProbeResult
from vmcp_actors.health.rules import apply_lifecycle, apply_probe
from vmcp_actors.health.state import LifecycleSignal
from vmcp_actors.health.status_builder import BackendView, discovered_backend
from vmcp_actors.model.status import BackendHealth

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_died_session_stays_unhealthy_through_the_reconnect_and_counts_as_a_failure() -> None:
    healthy = apply_probe(None, ProbeResult.success(0.01), T0, 0.0, HealthConfig(), False)
    lost = apply_lifecycle(healthy, LifecycleSignal.SESSION_LOST, T0 + timedelta(seconds=1), "killed", failed=True)
    reconnecting = apply_lifecycle(lost, LifecycleSignal.STARTING, T0 + timedelta(seconds=1))
    assert reconnecting == lost
    entry = discovered_backend(BackendView("files"), reconnecting)
    assert (entry.status, entry.consecutive_failures) == ("unavailable", 1)
    again = apply_lifecycle(
        reconnecting, LifecycleSignal.SESSION_LOST, T0 + timedelta(seconds=2), "killed", failed=True
    )
    assert again.consecutive_failures == 2
    back = apply_lifecycle(again, LifecycleSignal.CONNECTED, T0 + timedelta(seconds=3))
    assert (back.status, back.recovering_from, back.consecutive_failures) == (BackendHealth.DEGRADED, 2, 0)


def test_a_requested_stop_is_not_a_failure() -> None:
    healthy = apply_probe(None, ProbeResult.success(0.01), T0, 0.0, HealthConfig(), False)
    stopped = apply_lifecycle(healthy, LifecycleSignal.SESSION_LOST, T0 + timedelta(seconds=1))
    assert (stopped.status, stopped.consecutive_failures) == (BackendHealth.UNHEALTHY, 0)
    restarted = apply_lifecycle(stopped, LifecycleSignal.CONNECTED, T0 + timedelta(seconds=2))
    assert restarted.status is BackendHealth.HEALTHY


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.ref.stop(timeout=5)


def test_a_killed_stdio_backend_reads_unavailable_with_its_failure_while_it_restarts(world: World) -> None:
    world.add("files")
    world.settle()
    world.event("files", State.UNKNOWN, State.STARTING)
    world.event("files", State.STARTING, State.RUNNING)
    world.settle()
    # What the backend actor publishes when its process is SIGKILLed: the loss, then at once the restart.
    world.event("files", State.RUNNING, State.FAILED, "MCP session lost: process exited with signal 9")
    world.event("files", State.FAILED, State.STARTING)
    world.settle()
    backend = world.sink.writes[-1].backend("files")
    assert backend is not None
    assert (backend.status, backend.consecutive_failures) == ("unavailable", 1)
    assert backend.message.startswith("Backend unavailable: ")  # with the cause (issue 9, item 21)
    assert "process exited with signal 9" in backend.message
