"""HealthActor's own logic, with a manual clock and inboxes standing in for backends.

Real backends are exercised end to end in tests/integration/runtime; here time is stepped
by hand so probe scheduling, thresholds and re-asserts are checked exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pykka
import pytest

from testkit.inbox import Inbox
from testkit.waits import bound
from tests.sinks import ControllableSink
from vmcp_actors.actorkit.timers import ManualScheduler
from vmcp_actors.backend.failures import Failure, FailureKind
from vmcp_actors.backend.lifecycle_messages import LifecycleEvent
from vmcp_actors.backend.lifecycle_state import Health, Lifecycle, State
from vmcp_actors.backend.messages import BackendEvent, ProbeBackend, ProbeOutcome
from vmcp_actors.backend.snapshot import snapshot_of
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.health_settings import HealthConfig
from vmcp_actors.health.actor import HealthActor
from vmcp_actors.health.backend_signals import lifecycle_signal
from vmcp_actors.health.messages import AddBackend, Refresh, RemoveBackend
from vmcp_actors.health.state import LifecycleSignal
from vmcp_actors.health.status_builder import BackendView
from vmcp_actors.model.status import Phase

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = HealthConfig(check_interval=30.0, timeout=10.0, unhealthy_threshold=3)


class World:
    def __init__(self) -> None:
        self.sink = ControllableSink()
        self.scheduler = ManualScheduler()
        self.ref: pykka.ActorRef[HealthActor] = HealthActor.start(
            self.sink, scheduler=self.scheduler, config=CONFIG, status_interval=60.0, initial_wait=5.0
        )
        self.backends: dict[str, Inbox] = {}
        self.seq = 0

    def add(self, name: str) -> Inbox:
        inbox = Inbox()
        self.backends[name] = inbox
        self.ref.tell(AddBackend(BackendView(name=name, url=f"stdio://{name}"), inbox))
        return inbox

    def event(self, name: str, old: State, new: State, error: str = "", revision: str = "") -> None:
        self.seq += 1
        spec = BackendSpec(name=name, command="x")
        change = LifecycleEvent(name, old, new, Health.UNKNOWN, Health.UNKNOWN, error, T0)
        snapshot = snapshot_of(spec, Lifecycle(name, False, mcp_revision=revision))
        self.ref.tell(BackendEvent(name, self.seq, change, snapshot))

    def settle(self) -> None:
        self.ref.ask(Refresh(), timeout=bound())

    def last(self) -> Phase:
        self.settle()
        return self.sink.writes[-1].phase

    def probes(self, name: str) -> list[ProbeBackend]:
        return self.backends[name].of_type(ProbeBackend)

    def answer(self, name: str, ok: bool = True, latency: float = 0.01) -> None:
        probe = self.probes(name)[-1]
        failure = None if ok else Failure(FailureKind.TIMEOUT, "ping timed out")
        self.ref.tell(ProbeOutcome(name, probe.token, ok, latency, failure))
        self.settle()


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.ref.stop(timeout=bound())


def test_lifecycle_states_read_as_health_signals() -> None:
    assert lifecycle_signal(State.STARTING) is LifecycleSignal.STARTING
    assert lifecycle_signal(State.RUNNING) is LifecycleSignal.CONNECTED
    assert lifecycle_signal(State.CONNECTED) is LifecycleSignal.CONNECTED
    assert lifecycle_signal(State.AUTH_REQUIRED) is LifecycleSignal.AUTH_REQUIRED
    for gone in (State.FAILED, State.UNREACHABLE, State.STOPPED, State.DISCONNECTED, State.STOPPING):
        assert lifecycle_signal(gone) is LifecycleSignal.SESSION_LOST
    assert lifecycle_signal(State.UNKNOWN) is None


def test_pending_until_every_initial_backend_has_data(world: World) -> None:
    world.add("a")
    world.add("b")
    world.settle()
    world.event("a", State.UNKNOWN, State.RUNNING)
    assert world.last() is Phase.PENDING  # "All 1 backend healthy" would be a lie: b is still starting
    world.event("b", State.UNKNOWN, State.RUNNING)
    assert world.last() is Phase.READY
    assert world.sink.writes[-1].message == "All 2 backends healthy"


def test_the_revision_a_backend_negotiated_reaches_the_status(world: World) -> None:
    world.add("a")
    world.settle()
    world.event("a", State.UNKNOWN, State.STARTING)
    world.event("a", State.STARTING, State.RUNNING, revision="2025-11-25")
    world.event("a", State.RUNNING, State.FAILED, "process exited")  # a snapshot of a failure still names it
    world.settle()
    (backend,) = world.sink.writes[-1].discovered_backends
    assert backend.mcp_revision == "2025-11-25"


def test_a_backend_that_never_reports_stops_blocking_after_the_initial_wait(world: World) -> None:
    world.add("a")
    world.add("silent")
    world.settle()
    world.event("a", State.UNKNOWN, State.RUNNING)
    assert world.last() is Phase.PENDING
    world.scheduler.advance(5.0)
    assert world.last() is Phase.READY  # toolhive: unprobed backends are left out


def test_a_backend_still_starting_when_the_initial_wait_ends_keeps_the_status_pending(world: World) -> None:
    """Bug: under load the timer fired before the slow backend's connect deadline, and the status read
    Ready "All 1 backend healthy" while the second backend was still starting."""
    world.add("fast")
    world.add("slow")
    world.settle()
    world.event("slow", State.UNKNOWN, State.STARTING)
    world.event("fast", State.UNKNOWN, State.RUNNING)
    assert world.last() is Phase.PENDING
    world.scheduler.advance(5.0)  # the initial wait is over; "slow" has announced it is starting
    assert world.last() is Phase.PENDING
    assert all(w.phase is Phase.PENDING for w in world.sink.writes)
    world.event("slow", State.STARTING, State.RUNNING)
    assert world.last() is Phase.READY
    assert world.sink.writes[-1].message == "All 2 backends healthy"


def test_a_401_probe_answer_never_overwrites_the_auth_required_the_lifecycle_published(world: World) -> None:
    """Bug: the 401 probe result mapped to HEALTHY (outgoing auth) after the backend went auth_required."""
    inbox = Inbox()
    world.backends["a"] = inbox
    world.ref.tell(AddBackend(BackendView(name="a", url="http://a/mcp"), inbox, has_outgoing_auth=True))
    world.settle()
    world.event("a", State.UNKNOWN, State.CONNECTED)
    world.settle()
    world.answer("a")
    assert world.last() is Phase.READY
    world.scheduler.advance(30.0)
    world.settle()
    probe = world.probes("a")[-1]
    # What the backend actor does on a 401 ping: publish auth_required first, then answer the probe.
    world.event("a", State.CONNECTED, State.AUTH_REQUIRED, "HTTP 401 Unauthorized for POST http://a/mcp")
    unauthorized = Failure(FailureKind.AUTH_REQUIRED, "HTTP 401 Unauthorized for POST http://a/mcp", http_status=401)
    world.ref.tell(ProbeOutcome("a", probe.token, False, 0.01, unauthorized))
    world.settle()
    status = world.sink.writes[-1]
    backend = status.backend("a")
    assert backend is not None
    assert (status.phase, status.backend_count, backend.status) == (Phase.FAILED, 0, "unauthenticated")
    assert backend.message == "Authentication failed: HTTP 401 Unauthorized for POST http://a/mcp"
    ready = status.condition("Ready")
    assert ready is not None
    assert ready.status.value == "False"


def test_a_lost_session_is_unhealthy_at_once_without_waiting_for_the_threshold(world: World) -> None:
    world.add("a")
    world.add("b")
    world.settle()
    world.event("a", State.UNKNOWN, State.RUNNING)
    world.event("b", State.UNKNOWN, State.RUNNING)
    assert world.last() is Phase.READY
    world.event("b", State.RUNNING, State.FAILED, "process exited")
    world.settle()
    status = world.sink.writes[-1]
    assert status.phase is Phase.DEGRADED
    backend = status.backend("b")
    assert backend is not None
    assert backend.status == "unavailable"


def test_a_new_session_is_probed_at_once_then_every_interval_from_the_probe_start(world: World) -> None:
    world.add("a")
    world.settle()
    world.event("a", State.UNKNOWN, State.RUNNING)
    world.settle()
    assert len(world.probes("a")) == 1
    world.scheduler.advance(10.0)
    world.answer("a")
    world.scheduler.advance(19.9)
    world.settle()
    assert len(world.probes("a")) == 1
    world.scheduler.advance(0.1)  # 30 s after the first probe *started*
    world.settle()
    assert len(world.probes("a")) == 2


def test_probe_failures_count_up_to_the_threshold_then_recover_through_degraded(world: World) -> None:
    world.add("a")
    world.settle()
    world.event("a", State.UNKNOWN, State.RUNNING)
    world.settle()
    world.answer("a")
    assert world.last() is Phase.READY
    for expected in ("ready", "ready", "unavailable"):  # below the threshold the status is kept
        world.scheduler.advance(30.0)
        world.settle()
        world.answer("a", ok=False)
        backend = world.sink.writes[-1].backend("a")
        assert backend is not None
        assert backend.status == expected
    world.scheduler.advance(30.0)
    world.settle()
    world.answer("a")
    backend = world.sink.writes[-1].backend("a")
    assert backend is not None
    assert backend.status == "degraded"  # recovering, for one interval
    world.scheduler.advance(30.0)
    world.settle()
    world.answer("a")
    assert world.last() is Phase.READY


def test_a_slow_probe_is_degraded(world: World) -> None:
    world.add("a")
    world.settle()
    world.event("a", State.UNKNOWN, State.RUNNING)
    world.settle()
    world.answer("a", latency=6.0)
    backend = world.sink.writes[-1].backend("a")
    assert backend is not None
    assert backend.status == "degraded"


def test_removed_backends_leave_the_status_at_once(world: World) -> None:
    world.add("a")
    world.add("b")
    world.settle()
    world.event("a", State.UNKNOWN, State.RUNNING)
    world.event("b", State.UNKNOWN, State.RUNNING)
    world.settle()
    world.ref.tell(RemoveBackend("b"))
    world.settle()
    assert [b.name for b in world.sink.writes[-1].discovered_backends] == ["a"]


def test_the_status_is_reasserted_every_status_interval(world: World) -> None:
    world.add("a")
    world.settle()
    world.event("a", State.UNKNOWN, State.RUNNING)
    world.settle()
    world.answer("a")
    writes = len(world.sink.writes)
    world.scheduler.advance(60.0)
    world.settle()
    assert len(world.sink.writes) > writes
