"""Streamable-HTTP servers that misbehave the way real ones do (issue 9), over real HTTP.

Huge bodies (item 9), a server's own JSON-RPC errors with the SDK's sentinel codes
(item 3), the TypeScript SDK's 400 for an unknown session (item 19), and a server that
dies between probes (item 20).  Servers: ``tests/servers/tricky_http.py`` (the SDK echo
server behind one misbehaviour) and the plain echo server.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx2
import pytest

from testkit.inbox import Inbox
from testkit.processes import child_pids
from testkit.waits import bound
from tests.servers.fixtures import RunningServer, ServerFactory
from vmcp_actors.actorkit.loop import LoopThread
from vmcp_actors.actorkit.timers import ThreadScheduler
from vmcp_actors.backend.actor import BackendActor
from vmcp_actors.backend.connect_params import ConnectParams
from vmcp_actors.backend.failures import BackendError, Failure, FailureKind
from vmcp_actors.backend.lifecycle_state import State
from vmcp_actors.backend.messages import BackendEvent, ProbeBackend, StartBackend, StopBackend
from vmcp_actors.backend.session import connect
from vmcp_actors.config.backend_spec import BackendSpec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

_T = TypeVar("_T")

WAIT = bound(30.0)
"""Upper bound for any single blocking wait (never reached when green); scaled by the test-wait knob."""

MiB = 1 << 20


def run(loop_thread: LoopThread, coro: Coroutine[Any, Any, _T], timeout: float = WAIT) -> _T:
    return loop_thread.submit(coro).result(timeout)


def params(server: RunningServer, **kwargs: Any) -> ConnectParams:
    return ConnectParams(name="tricky", transport="streamable-http", url=server.url(), connect_timeout=WAIT, **kwargs)


def connect_failure(loop_thread: LoopThread, connect_params: ConnectParams) -> tuple[Failure, float]:
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        run(loop_thread, connect(connect_params))
    return caught.value.failure, time.monotonic() - started


class Lost:
    """An ``on_lost`` callback a test thread can wait on."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []
        self._event = threading.Event()

    def __call__(self, failure: Failure) -> None:
        self.failures.append(failure)
        self._event.set()

    def wait(self) -> Failure:
        assert self._event.wait(WAIT), "on_lost was not called"
        return self.failures[0]


# ------------------------------------------------------------------ item 9: huge bodies


def _peak_rss_reset() -> None:
    """Reset this process's peak RSS (VmHWM), so the next reading is the peak from now on."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        match = re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    assert match is not None
    return int(match.group(1))


@pytest.mark.parametrize(
    "how",
    [
        pytest.param((), id="streamed"),
        pytest.param(("--announce",), id="announced"),
        pytest.param(("--gzip",), id="gzip-bomb"),
    ],
)
def test_a_huge_initialize_answer_fails_naming_the_limit_in_bounded_memory(
    loop_thread: LoopThread, mcp_servers: ServerFactory, how: tuple[str, ...]
) -> None:
    """A 2 GB answer drove RSS to 1.86 GB; 64 MiB against the default 16 MiB limit shows the bound."""
    body = 64 * MiB
    server = mcp_servers.tricky("huge-body", "--bytes", str(body), *how)
    _peak_rss_reset()
    before = _rss_kib("VmRSS")

    failure, elapsed = connect_failure(loop_thread, params(server))

    growth = (_rss_kib("VmHWM") - before) * 1024
    assert failure.kind is FailureKind.PROTOCOL, failure
    assert "16 MiB limit" in failure.message
    assert "maxResponseBytes=16777216" in failure.message
    assert elapsed < WAIT / 2  # the limit ended it, not the connect timeout
    assert growth < body / 2, f"RSS grew by {growth / MiB:.1f} MiB for a {body // MiB} MiB body"


def test_the_limit_is_configurable(loop_thread: LoopThread, mcp_servers: ServerFactory) -> None:
    server = mcp_servers.tricky("huge-body", "--bytes", str(2 * MiB))
    failure, _ = connect_failure(loop_thread, params(server, max_response_bytes=MiB))
    assert "1 MiB limit" in failure.message
    roomy = run(loop_thread, connect(params(mcp_servers.echo("streamable-http"), max_response_bytes=64 * 1024)))
    assert roomy.tool_names == ("echo", "add")  # ordinary answers are far below any sane limit
    run(loop_thread, roomy.close())


# ------------------------------------------------------------------ item 3: whose error code


@pytest.mark.parametrize("code", [-32000, -32001])
def test_a_servers_own_error_codes_are_not_mistaken_for_the_sdks(
    loop_thread: LoopThread, mcp_servers: ServerFactory, code: int
) -> None:
    """-32000/-32001 are also the SDK's "connection closed"/"timed out"; from a server they are its errors."""
    server = mcp_servers.tricky("error-code", "--method", "ping", "--code", str(code))
    lost = Lost()
    connection = run(loop_thread, connect(params(server), on_lost=lost))

    for _ in range(2):  # the session is not dropped: the same connection answers again
        with pytest.raises(BackendError) as caught:
            run(loop_thread, connection.ping(5.0))
        failure = caught.value.failure
        assert failure.kind is FailureKind.PROTOCOL, failure
        assert f"server returned JSON-RPC error {code}: server-side failure" in failure.message
    assert connection.is_open
    assert run(loop_thread, connection.list_tools(5.0)) == ("echo", "add")
    run(loop_thread, connection.close())
    assert not lost.failures


@pytest.mark.parametrize("code", [-32000, -32001])
def test_a_servers_error_code_to_initialize_is_a_protocol_failure(
    loop_thread: LoopThread, mcp_servers: ServerFactory, code: int
) -> None:
    server = mcp_servers.tricky("error-code", "--method", "initialize", "--code", str(code))
    failure, _ = connect_failure(loop_thread, params(server))
    assert failure.kind is FailureKind.PROTOCOL, failure
    assert str(code) in failure.message


# ------------------------------------------------------------------ item 19: unknown sessions


def _forget_sessions(server: RunningServer) -> None:
    """Make the server forget its sessions, as a restart would, with every connection kept."""
    assert httpx2.post(server.url("/forget-sessions"), timeout=WAIT).status_code == 200


@pytest.mark.parametrize("status", [400, 404])
def test_an_unknown_session_answer_is_a_lost_session(
    loop_thread: LoopThread, mcp_servers: ServerFactory, status: int
) -> None:
    """The TypeScript SDK's servers say 400 + a "session" body where others say 404: both are lost."""
    server = mcp_servers.tricky("ts-sessions", "--unknown-status", str(status))
    lost = Lost()
    connection = run(loop_thread, connect(params(server), on_lost=lost))
    run(loop_thread, connection.ping(5.0))

    _forget_sessions(server)
    with pytest.raises(BackendError) as caught:
        run(loop_thread, connection.ping(5.0))

    failure = caught.value.failure
    assert failure.kind is FailureKind.SESSION_LOST, failure
    assert failure.http_status == status
    assert lost.wait().kind is FailureKind.SESSION_LOST
    run(loop_thread, connection.close())


def test_a_400_without_a_session_body_is_not_a_lost_session(
    loop_thread: LoopThread, mcp_servers: ServerFactory
) -> None:
    """400 alone means a bad request (a configuration problem), not a forgotten session."""
    server = mcp_servers.fault("status", "--status", "400")
    failure, _ = connect_failure(loop_thread, params(server))
    assert failure.kind is FailureKind.CONFIGURATION
    assert failure.http_status == 400


class _Backend:
    """A BackendActor whose events go to an inbox; the health stage's probes are not running."""

    def __init__(self, spec: BackendSpec, loop_thread: LoopThread, timers: ThreadScheduler) -> None:
        self.inbox = Inbox()
        self.ref = BackendActor.start(spec, io=loop_thread, scheduler=timers, subscribers=[self.inbox])

    def states(self) -> list[State]:
        return [event.change.new_state for event in self.inbox.of_type(BackendEvent)]

    def events(self) -> list[BackendEvent]:
        return self.inbox.of_type(BackendEvent)

    def wait_state(self, state: State, count: int = 1) -> None:
        self.inbox.wait_for(lambda _: self.states().count(state) >= count, WAIT, f"{count}x {state.value}")


@pytest.fixture
def backend(loop_thread: LoopThread) -> Iterator[Callable[[BackendSpec], _Backend]]:
    made: list[_Backend] = []
    timers = ThreadScheduler(name="vmcp-test-timers")

    def make(spec: BackendSpec) -> _Backend:
        made.append(_Backend(spec, loop_thread, timers))
        return made[-1]

    yield make
    for actor in made:
        actor.ref.tell(StopBackend())
        actor.ref.stop(timeout=WAIT)
    timers.stop()


@pytest.mark.parametrize("status", [400, 404])
def test_a_server_restarted_on_the_same_port_is_reconnected_after_one_probe(
    backend: Callable[[BackendSpec], _Backend], mcp_servers: ServerFactory, status: int
) -> None:
    """For the TypeScript SDK's 400 it used to take three failed probes (~90 s at default intervals)."""
    server = mcp_servers.tricky("ts-sessions", "--no-listen-stream", "--unknown-status", str(status))
    actor = backend(BackendSpec(name="ts", type="streamable-http", url=server.url(), timeout=WAIT))
    actor.ref.tell(StartBackend())
    actor.wait_state(State.CONNECTED)

    mcp_servers.restart(server)  # same port; the new process knows no session
    actor.ref.tell(ProbeBackend(token=1))
    actor.wait_state(State.CONNECTED, count=2)

    failed = [event for event in actor.events() if event.change.new_state is State.FAILED]
    assert len(failed) == 1
    assert "no longer knows the MCP session" in failed[0].change.error
    assert f"HTTP {status}" in failed[0].change.reason


# ------------------------------------------------------------------ item 20: dead servers


def test_a_dead_streamable_http_server_is_noticed_without_waiting_for_a_probe(
    backend: Callable[[BackendSpec], _Backend], mcp_servers: ServerFactory
) -> None:
    """No probe runs here (the health stage's interval could be an hour): the event stream tells."""
    server = mcp_servers.echo("streamable-http")
    actor = backend(BackendSpec(name="doomed", type="streamable-http", url=server.url(), timeout=WAIT))
    actor.ref.tell(StartBackend())
    actor.wait_state(State.CONNECTED)
    children = child_pids()

    killed_at = time.monotonic()
    server.kill()
    actor.wait_state(State.FAILED)
    noticed_after = time.monotonic() - killed_at

    failed = next(event for event in actor.events() if event.change.new_state is State.FAILED)
    assert "event stream" in failed.change.error
    assert failed.change.reason
    assert failed.snapshot.reason == failed.change.reason
    assert noticed_after < 5.0  # measured: tens of milliseconds; a probe would take 30 s
    assert child_pids() <= children
