"""BackendActor against real MCP servers over real stdio, streamable HTTP and SSE."""

from __future__ import annotations

import itertools
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest

from testkit.inbox import Inbox
from tests.servers.fixtures import RunningServer, ServerFactory, child_pids
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.actorkit.loop import LoopThread
from vmcp_actors.actorkit.timers import ManualScheduler, Scheduler, ThreadScheduler
from vmcp_actors.backend.actor import (
    BackendActor,
    BackendEvent,
    ProbeBackend,
    ProbeOutcome,
    RestartBackend,
    SnapshotCell,
    StartBackend,
    StopBackend,
    UpdateBackend,
)
from vmcp_actors.backend.failures import Failure, FailureKind
from vmcp_actors.backend.lifecycle import LifecyclePolicy, RetryDue, State
from vmcp_actors.backend.routes import BackendHooks, BackendRoute
from vmcp_actors.config.spec import BackendSpec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

FAST = LifecyclePolicy(backoff=Backoff(initial=1.0, maximum=60.0, jitter=0.1))


class Harness:
    """One backend actor with an inbox subscribed to its events."""

    def __init__(self, spec: BackendSpec, io: LoopThread, scheduler: Scheduler, **kwargs: Any) -> None:
        self.inbox = Inbox()
        self.cell: SnapshotCell | None = None
        self.ref = BackendActor.start(spec, io=io, scheduler=scheduler, subscribers=[self.inbox], policy=FAST, **kwargs)
        self.cell = self.ref.proxy().cell.get(timeout=5)

    @property
    def state(self) -> State:
        assert self.cell is not None
        return self.cell.value.state

    def tell(self, message: object) -> None:
        self.ref.tell(message)

    def events(self) -> list[BackendEvent]:
        return self.inbox.of_type(BackendEvent)

    def states(self) -> list[State]:
        return [e.change.new_state for e in self.events()]

    def wait_state(self, state: State, count: int = 1, timeout: float = 20.0) -> None:
        self.inbox.wait_for(
            lambda msgs: sum(isinstance(m, BackendEvent) and m.change.new_state is state for m in msgs) >= count,
            timeout,
            f"{count}x {state.value}",
        )

    def stop(self) -> None:
        if not self.ref.is_alive():
            return
        self.tell(StopBackend())
        self.inbox.wait_for(lambda _: self.state in (State.STOPPED, State.DISCONNECTED), 20.0, "the backend to stop")
        self.ref.stop(timeout=5)


@pytest.fixture
def backends(loop_thread: LoopThread) -> Iterator[Callable[..., Harness]]:
    """Backends on a real timer thread by default; tests of retry timing pass a manual one."""
    made: list[Harness] = []
    timers = ThreadScheduler(name="vmcp-test-timers")

    def make(spec: BackendSpec, scheduler: Scheduler | None = None, **kwargs: Any) -> Harness:
        harness = Harness(spec, loop_thread, scheduler or timers, **kwargs)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.stop()
    timers.stop()


def stdio_spec(command: tuple[str, tuple[str, ...]], name: str = "echo") -> BackendSpec:
    return BackendSpec(name=name, type="stdio", command=command[0], args=command[1])


def remote_spec(server: RunningServer, transport: str = "streamable-http", timeout: float = 10) -> BackendSpec:
    path = "/sse" if transport == "sse" else "/mcp"
    return BackendSpec(name="remote", type=transport, url=server.url(path), timeout=timeout)


def test_stdio_backend_starts_lists_tools_probes_and_stops(
    backends: Callable[..., Harness], echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    children = child_pids()
    backend = backends(stdio_spec(echo_stdio_command))
    backend.tell(StartBackend())
    backend.wait_state(State.RUNNING)
    snapshot = backend.cell.value  # type: ignore[union-attr]
    assert snapshot.client_ready and snapshot.running
    assert snapshot.tool_count == 4 and {"echo", "add"} <= set(snapshot.tool_names)
    assert len(child_pids() - children) == 1
    backend.tell(ProbeBackend(backend.inbox, token=7))
    backend.inbox.wait_for(lambda msgs: any(isinstance(m, ProbeOutcome) for m in msgs))
    (outcome,) = backend.inbox.of_type(ProbeOutcome)
    assert outcome.ok and outcome.token == 7 and outcome.latency is not None and outcome.latency > 0
    backend.tell(StopBackend())
    backend.wait_state(State.STOPPED)
    assert backend.states() == [State.STARTING, State.RUNNING, State.STOPPING, State.STOPPED]
    assert child_pids() == children  # the server process was ended and reaped


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
def test_remote_backends_connect(backends: Callable[..., Harness], mcp_servers: ServerFactory, transport: str) -> None:
    server = mcp_servers.echo(transport, "--tools", "1")
    backend = backends(remote_spec(server, transport))
    backend.tell(StartBackend())
    backend.wait_state(State.CONNECTED)
    assert backend.cell.value.tool_count == 3  # type: ignore[union-attr]


def test_restart_opens_a_new_session(
    backends: Callable[..., Harness], echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    backend = backends(stdio_spec(echo_stdio_command))
    backend.tell(StartBackend())
    backend.wait_state(State.RUNNING)
    first = child_pids()
    backend.tell(RestartBackend())
    backend.wait_state(State.RUNNING, count=2)
    assert backend.cell.value.attempt == 2  # type: ignore[union-attr]
    assert child_pids() != first


def test_a_killed_stdio_server_is_noticed_and_reconnected(
    backends: Callable[..., Harness], echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    before = child_pids()
    backend = backends(stdio_spec(echo_stdio_command))
    backend.tell(StartBackend())
    backend.wait_state(State.RUNNING)
    (server_pid,) = child_pids() - before
    os.kill(server_pid, signal.SIGKILL)
    backend.wait_state(State.RUNNING, count=2)
    failed = [e for e in backend.events() if e.change.new_state is State.FAILED]
    assert failed and failed[0].change.error
    assert backend.states()[2:] == [State.FAILED, State.STARTING, State.RUNNING]
    assert server_pid not in child_pids()


def test_a_server_that_never_answers_times_out_and_retries_on_schedule(
    backends: Callable[..., Harness], mcp_servers: ServerFactory
) -> None:
    server = mcp_servers.fault("hang")
    scheduler = ManualScheduler()
    backend = backends(remote_spec(server, timeout=1), scheduler)
    backend.tell(StartBackend())
    backend.wait_state(State.FAILED)
    snapshot = backend.cell.value  # type: ignore[union-attr]
    assert snapshot.last_error_kind == FailureKind.TIMEOUT.value
    assert snapshot.next_retry_after is not None
    delay = scheduler.next_due()
    assert delay is not None and 1.0 <= delay <= 1.1  # the actor scheduled its own retry
    scheduler.advance(delay)
    backend.wait_state(State.STARTING, count=2)


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_failures_go_unreachable_after_three(
    backends: Callable[..., Harness], mcp_servers: ServerFactory, status: int
) -> None:
    server = mcp_servers.fault("status", "--status", str(status))
    scheduler = ManualScheduler()
    backend = backends(remote_spec(server), scheduler)
    backend.tell(StartBackend())
    for failures in (1, 2):
        backend.wait_state(State.FAILED, count=failures)
        scheduler.advance(scheduler.next_due() or 0.0)
    backend.wait_state(State.UNREACHABLE)
    snapshot = backend.cell.value  # type: ignore[union-attr]
    assert snapshot.unreachable and snapshot.consecutive_failures == 3
    assert snapshot.http_status == status
    assert snapshot.last_error_kind == FailureKind.TRANSIENT.value


def test_401_calls_the_auth_hook_before_publishing_auth_required(
    backends: Callable[..., Harness], mcp_servers: ServerFactory
) -> None:
    server = mcp_servers.fault("auth")
    order: list[str] = []
    lock = threading.Lock()
    seen: list[tuple[BackendSpec, Failure]] = []

    def hook(spec: BackendSpec, failure: Failure) -> None:
        with lock:
            order.append("hook")
        seen.append((spec, failure))

    scheduler = ManualScheduler()
    backend = backends(remote_spec(server), scheduler, on_auth_required=hook)
    original_tell = backend.inbox.tell

    def recording_tell(message: object) -> None:
        if isinstance(message, BackendEvent) and message.change.new_state is State.AUTH_REQUIRED:
            with lock:
                order.append("published")
        original_tell(message)

    backend.inbox.tell = recording_tell  # type: ignore[method-assign]
    backend.tell(StartBackend())
    backend.wait_state(State.AUTH_REQUIRED)
    assert order == ["hook", "published"]
    ((spec, failure),) = seen
    assert spec.name == "remote"
    assert failure.http_status == 401 and failure.auth is not None
    assert failure.auth.resource_metadata_url
    assert scheduler.pending() == 0  # auth_required is never retried by itself
    assert backend.cell.value.consecutive_failures == 0  # type: ignore[union-attr]


def test_a_forgotten_session_is_found_by_a_probe_and_reconnected(
    backends: Callable[..., Harness], mcp_servers: ServerFactory
) -> None:
    server = mcp_servers.echo("streamable-http")
    routes = Inbox()
    hooks = BackendHooks(on_route=lambda _, route: routes.tell(route), on_resource_updated=print, on_log=print)
    backend = backends(remote_spec(server), hooks=hooks)
    backend.tell(StartBackend())
    backend.wait_state(State.CONNECTED)
    # The catalogue is listed right after connecting; restart once that is done, so the
    # probe (not the listing) is what meets the forgotten session.
    routes.wait_for(lambda msgs: any(isinstance(m, BackendRoute) for m in msgs), 20.0, "the route")
    mcp_servers.restart(server)  # same port; the new process knows no sessions (muster #999)
    backend.tell(ProbeBackend(backend.inbox, token=1))
    backend.wait_state(State.CONNECTED, count=2)
    (outcome,) = backend.inbox.of_type(ProbeOutcome)
    assert not outcome.ok
    assert outcome.failure is not None and outcome.failure.kind in (FailureKind.SESSION_LOST, FailureKind.TRANSIENT)
    assert State.FAILED in backend.states()


def test_a_missing_stdio_command_fails_with_a_clear_error_and_is_retried(
    backends: Callable[..., Harness],
) -> None:
    scheduler = ManualScheduler()
    backend = backends(BackendSpec(name="ghost", type="stdio", command="/nonexistent/mcp-server"), scheduler)
    backend.tell(StartBackend())
    backend.wait_state(State.FAILED)
    snapshot = backend.cell.value  # type: ignore[union-attr]
    assert snapshot.last_error_kind == FailureKind.CONFIGURATION.value
    assert "/nonexistent/mcp-server" in snapshot.last_error
    assert scheduler.pending() == 1  # muster never retries stdio; we do, with backoff


def test_garbage_on_stdout_is_a_protocol_failure(
    backends: Callable[..., Harness], garbage_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    backend = backends(stdio_spec(garbage_stdio_command, "garbage"))
    backend.tell(StartBackend())
    backend.wait_state(State.FAILED)
    assert backend.cell.value.last_error_kind == FailureKind.PROTOCOL.value  # type: ignore[union-attr]


def test_stop_during_a_hanging_connect_is_handled_at_once(
    backends: Callable[..., Harness], mcp_servers: ServerFactory
) -> None:
    server = mcp_servers.fault("hang")
    backend = backends(remote_spec(server, timeout=120))
    backend.tell(StartBackend())
    backend.inbox.wait_for(lambda _: backend.state is State.STARTING)
    assert backend.ref.proxy().cell.get(timeout=1).value.state is State.STARTING  # the actor is not blocked
    backend.tell(StopBackend())
    backend.wait_state(State.DISCONNECTED, timeout=10.0)  # far less than the 120 s connect timeout
    assert backend.states() == [State.STARTING, State.STOPPING, State.DISCONNECTED]


def test_two_starts_open_one_connection(
    backends: Callable[..., Harness], echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    before = child_pids()
    backend = backends(stdio_spec(echo_stdio_command))
    backend.tell(StartBackend())
    backend.tell(StartBackend())
    backend.wait_state(State.RUNNING)
    backend.tell(StartBackend())
    assert backend.ref.proxy().cell.get(timeout=5).value.attempt == 1
    assert len(child_pids() - before) == 1
    assert backend.states() == [State.STARTING, State.RUNNING]


def test_concurrent_probe_requests_share_one_ping(
    backends: Callable[..., Harness], echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    backend = backends(stdio_spec(echo_stdio_command))
    backend.tell(StartBackend())
    backend.wait_state(State.RUNNING)
    for token in (1, 2, 3):
        backend.tell(ProbeBackend(backend.inbox, token))
    backend.inbox.wait_for(lambda msgs: sum(isinstance(m, ProbeOutcome) for m in msgs) == 3)
    outcomes = backend.inbox.of_type(ProbeOutcome)
    assert sorted(o.token for o in outcomes) == [1, 2, 3]
    assert all(o.ok for o in outcomes)
    assert len({o.latency for o in outcomes}) <= 2  # at most two pings for three requests


def test_config_updates_restart_only_when_needed_and_bad_ones_change_nothing(
    backends: Callable[..., Harness], echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    spec = stdio_spec(echo_stdio_command)
    backend = backends(spec)
    backend.tell(StartBackend())
    backend.wait_state(State.RUNNING)
    backend.tell(UpdateBackend(BackendSpec(name=spec.name, command=spec.command, args=spec.args, description="new")))
    backend.tell(UpdateBackend(BackendSpec(name=spec.name, type="stdio", command="")))  # invalid: rejected
    assert backend.ref.proxy().cell.get(timeout=5).value.attempt == 1
    assert backend.ref.proxy().spec.get(timeout=5).description == "new"
    backend.tell(UpdateBackend(BackendSpec(name=spec.name, command=spec.command, args=spec.args, env={"X": "1"})))
    backend.wait_state(State.RUNNING, count=2)
    assert backend.cell.value.attempt == 2  # type: ignore[union-attr]


def test_events_arrive_in_order_without_gaps(
    backends: Callable[..., Harness], echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    backend = backends(stdio_spec(echo_stdio_command))
    for _ in range(3):
        backend.tell(StartBackend())
        backend.tell(StopBackend())
    backend.tell(StartBackend())
    backend.wait_state(State.RUNNING)
    events = backend.events()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for before, after in itertools.pairwise(events):
        assert after.change.old_state is before.change.new_state


def test_retry_timer_messages_after_stop_are_harmless(
    backends: Callable[..., Harness],
) -> None:
    scheduler = ManualScheduler()
    backend = backends(BackendSpec(name="ghost", type="stdio", command="/nonexistent/x"), scheduler)
    backend.tell(StartBackend())
    backend.wait_state(State.FAILED)
    backend.tell(StopBackend())
    backend.wait_state(State.STOPPED)
    scheduler.advance(3600)
    backend.tell(RetryDue(1))
    assert backend.ref.proxy().cell.get(timeout=5).value.state is State.STOPPED
    with pytest.raises(pykka.ActorDeadError):
        backend.ref.stop(timeout=5)
        backend.ref.tell(StartBackend())
