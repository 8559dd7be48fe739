"""stdio servers that misbehave the way real ones do (issue 9): banners, helpers, stubbornness.

Each runs a real server process (``tests/servers``) through the LoopThread as the actors
do.  ``no_leaks`` checks our own children; the helper tests also check the server's
whole process group, whose members are not our children.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from testkit.inbox import Inbox
from testkit.processes import child_pids
from testkit.waits import bound
from tests.servers.fixtures import ECHO_SERVER, STUBBORN_STDIO
from vmcp_actors.actorkit.loop import LoopThread
from vmcp_actors.actorkit.timers import ThreadScheduler
from vmcp_actors.backend.actor import BackendActor
from vmcp_actors.backend.connect_params import ConnectParams
from vmcp_actors.backend.failures import BackendError, Failure, FailureKind
from vmcp_actors.backend.lifecycle_state import State
from vmcp_actors.backend.messages import BackendEvent, StartBackend, StopBackend
from vmcp_actors.backend.process_group import group_alive
from vmcp_actors.backend.session import connect
from vmcp_actors.backend.stdio_transport import EOF_GRACE, KILL_WAIT, TERM_GRACE
from vmcp_actors.config.backend_spec import BackendSpec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

_T = TypeVar("_T")

WAIT = bound(30.0)
"""Upper bound for any single blocking wait (never reached when green); scaled by the test-wait knob."""

SLACK = 2.0
"""Scheduling noise allowed on top of a stop budget on a loaded 2-core machine."""


def run(loop_thread: LoopThread, coro: Coroutine[Any, Any, _T], timeout: float = WAIT) -> _T:
    return loop_thread.submit(coro).result(timeout)


def stdio(name: str, script: Path, *args: str, **kwargs: Any) -> ConnectParams:
    return ConnectParams(
        name=name, transport="stdio", command=sys.executable, args=(str(script), *args), connect_timeout=WAIT, **kwargs
    )


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is dead: it runs nothing, holds no pipe)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def helper_pid(path: Path) -> int:
    """The helper's pid: the server writes it (atomically) before it serves, so after a
    completed handshake the file is there."""
    return int(path.read_text())


@pytest.fixture
def helper_pids() -> Iterator[list[int]]:
    """Helper processes a test saw; SIGKILLed at the end whatever happened (not our children)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------------ item 17: banners


def test_a_banner_before_the_protocol_is_skipped_counted_and_logged_once(
    loop_thread: LoopThread, caplog: pytest.LogCaptureFixture
) -> None:
    """``sh -c "echo starting...; exec server"`` used to fail the handshake, forever."""
    server = shlex.join((sys.executable, str(ECHO_SERVER), "--transport", "stdio"))
    params = ConnectParams(
        name="bannered",
        transport="stdio",
        command="sh",
        args=("-c", f"echo 'starting secret-banner v1'; echo '{{\"not\": \"json-rpc\"}}'; exec {server}"),
        connect_timeout=WAIT,
    )
    warnings: list[str] = []
    with caplog.at_level(logging.WARNING, logger="vmcp_actors"):
        connection = run(loop_thread, connect(params, on_warning=warnings.append))
        assert run(loop_thread, connection.ping(5.0)) > 0
        run(loop_thread, connection.close())
    assert connection.noise_lines == 2
    assert connection.tool_names == ("echo", "add")
    noise_logs = [r for r in caplog.records if "not JSON-RPC" in r.getMessage()]
    assert len(noise_logs) == 1  # once per backend, however many lines
    assert "secret-banner" not in caplog.text  # the content is never logged
    assert len(warnings) == 1
    assert "secret-banner" not in warnings[0]


def test_a_message_over_the_size_limit_fails_naming_the_limit(loop_thread: LoopThread) -> None:
    script = "import sys; sys.stdout.write('x' * (3 << 20) + '\\n'); sys.stdout.flush(); sys.stdin.read()"
    params = ConnectParams(
        name="flood",
        transport="stdio",
        command=sys.executable,
        args=("-c", script),
        connect_timeout=WAIT,
        max_response_bytes=1 << 20,
    )
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        run(loop_thread, connect(params))
    failure = caught.value.failure
    assert failure.kind is FailureKind.PROTOCOL
    assert "1 MiB limit" in failure.message
    assert "maxResponseBytes=1048576" in failure.message
    assert time.monotonic() - started < WAIT / 2  # failed on the limit, not on the timeout


# ------------------------------------------------------------------ item 4: helpers


def test_stop_ends_a_helper_that_keeps_stdout_open(
    loop_thread: LoopThread, tmp_path: Path, helper_pids: list[int]
) -> None:
    """The server exits on stdin EOF; its helper must not survive it (it used to, forever)."""
    pid_file = tmp_path / "helper.pid"
    before = child_pids()
    connection = run(loop_thread, connect(stdio("helped", STUBBORN_STDIO, "--helper-pid-file", str(pid_file))))
    (server_pid,) = child_pids() - before
    helper = helper_pid(pid_file)
    helper_pids.append(helper)
    assert running(helper)

    run(loop_thread, connection.close())

    assert not running(helper), "the helper outlived stop()"
    assert not group_alive(server_pid), "a process of the server's group is still running"


def test_the_server_exiting_is_noticed_while_a_helper_keeps_stdout_open(
    loop_thread: LoopThread, tmp_path: Path, helper_pids: list[int]
) -> None:
    """stdout never reaches EOF while the helper lives; the server's exit must still count."""
    pid_file = tmp_path / "helper.pid"
    before = child_pids()
    lost: list[Failure] = []
    connection = run(
        loop_thread,
        connect(stdio("helped", STUBBORN_STDIO, "--helper-pid-file", str(pid_file)), on_lost=lost.append),
    )
    (server_pid,) = child_pids() - before
    helper_pids.append(helper_pid(pid_file))

    os.kill(server_pid, signal.SIGKILL)
    failure = run(loop_thread, connection.wait_closed())

    assert failure is not None
    assert "killed by signal SIGKILL" in failure.message
    run(loop_thread, connection.close())
    assert not group_alive(server_pid)


# ------------------------------------------------------------------ item 5: stubborn servers


def test_close_within_a_short_budget_ends_a_server_ignoring_sigterm_and_eof(loop_thread: LoopThread) -> None:
    before = child_pids()
    connection = run(loop_thread, connect(stdio("stubborn", STUBBORN_STDIO, "--ignore-sigterm", "--linger")))
    (server_pid,) = child_pids() - before

    started = time.monotonic()
    run(loop_thread, connection.close(timeout=1.0))
    elapsed = time.monotonic() - started

    assert not running(server_pid), "close() returned with the server still running"
    assert child_pids() - before <= {server_pid}  # at most a zombie the watcher reaps now
    assert elapsed < 1.0 + SLACK


def test_stopping_the_loop_ends_a_stubborn_server_at_once(loop_thread: LoopThread) -> None:
    """The runtime's last resort: a loop shutting down cancels; that must SIGKILL, not leak."""
    before = child_pids()
    connection = run(loop_thread, connect(stdio("stubborn", STUBBORN_STDIO, "--ignore-sigterm", "--linger")))
    (server_pid,) = child_pids() - before

    started = time.monotonic()
    loop_thread.stop(0.5)
    elapsed = time.monotonic() - started

    assert not loop_thread.thread.is_alive()
    assert not running(server_pid), "the loop stopped with the server still running"
    assert elapsed < 0.5 + SLACK
    assert not connection.is_open


def test_a_polite_stop_cut_short_by_the_loop_shutting_down_still_ends_the_server(loop_thread: LoopThread) -> None:
    """What ``Runtime.stop(1.0)`` does: a backend's stop is under way when its budget runs out."""
    before = child_pids()
    connection = run(loop_thread, connect(stdio("stubborn", STUBBORN_STDIO, "--ignore-sigterm", "--linger")))
    (server_pid,) = child_pids() - before
    closing = loop_thread.submit(connection.close())  # EOF, 1 s, SIGTERM, 1 s...: about 2 s

    loop_thread.stop(0.5)

    assert closing.done()
    assert not running(server_pid), "the loop stopped with the server still running"


class _Backend:
    """A BackendActor whose events go to an inbox."""

    def __init__(self, spec: BackendSpec, loop_thread: LoopThread, timers: ThreadScheduler) -> None:
        self.inbox = Inbox()
        self.ref = BackendActor.start(spec, io=loop_thread, scheduler=timers, subscribers=[self.inbox])

    def wait_state(self, state: State) -> None:
        self.inbox.wait_for(
            lambda msgs: any(isinstance(m, BackendEvent) and m.change.new_state is state for m in msgs),
            WAIT,
            state.value,
        )


@pytest.fixture
def backend(loop_thread: LoopThread) -> Iterator[Callable[[BackendSpec], _Backend]]:
    made: list[_Backend] = []
    timers = ThreadScheduler(name="vmcp-test-timers")

    def make(spec: BackendSpec) -> _Backend:
        made.append(_Backend(spec, loop_thread, timers))
        return made[-1]

    yield make
    for actor in made:
        actor.ref.stop(timeout=WAIT)
    timers.stop()


@pytest.mark.parametrize("budget", [None, 1.0])
def test_a_backend_stop_ends_a_stubborn_server_within_its_budget(
    backend: Callable[[BackendSpec], _Backend], budget: float | None
) -> None:
    """Without a deadline the stop takes ~2 s at most: inside ``Runtime.stop(5.0)``'s 3 s for backends."""
    spec = BackendSpec(
        name="stubborn",
        type="stdio",
        command=sys.executable,
        args=(str(STUBBORN_STDIO), "--ignore-sigterm", "--linger"),
    )
    before = child_pids()
    actor = backend(spec)
    actor.ref.tell(StartBackend())
    actor.wait_state(State.RUNNING)
    (server_pid,) = child_pids() - before

    started = time.monotonic()
    done: concurrent.futures.Future[None] = concurrent.futures.Future()
    actor.ref.tell(StopBackend(done, None if budget is None else started + budget))
    done.result(WAIT)
    elapsed = time.monotonic() - started

    assert not running(server_pid), "StopBackend completed with the server still running"
    expected = EOF_GRACE + TERM_GRACE + KILL_WAIT if budget is None else budget
    assert elapsed < expected + SLACK
