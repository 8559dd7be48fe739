"""McpConnection against real MCP servers over real stdio, streamable HTTP and SSE.

Every test talks to a subprocess on 127.0.0.1 (or a stdio child) through the
LoopThread, exactly as the actors do: submit a coroutine, wait on the future.  The
autouse ``no_leaks`` fixture (conftest) checks that nothing (process or thread) survives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from testkit.processes import child_pids
from tests.servers.fixtures import RunningServer, ServerFactory
from vmcp_actors.actorkit.loop import LoopThread
from vmcp_actors.backend.connect_params import ConnectParams
from vmcp_actors.backend.failures import BackendError, Failure, FailureKind
from vmcp_actors.backend.session import McpConnection, connect

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

_T = TypeVar("_T")

WAIT = 30.0
"""Upper bound for any single blocking wait in these tests (never reached when green)."""

EXPECTED_TOOLS = ("echo", "add", "tool_0", "tool_1")


def run(loop_thread: LoopThread, coro: Coroutine[Any, Any, _T], timeout: float = WAIT) -> _T:
    return loop_thread.submit(coro).result(timeout)


class LostRecorder:
    """An ``on_lost`` callback that a test thread can wait on."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []
        self.event = threading.Event()
        self.at: float | None = None

    def __call__(self, failure: Failure) -> None:
        self.failures.append(failure)
        self.at = time.monotonic()
        self.event.set()

    def wait(self, timeout: float = WAIT) -> Failure:
        assert self.event.wait(timeout), "on_lost was not called"
        return self.failures[0]


def connect_failure(loop_thread: LoopThread, params: ConnectParams) -> tuple[Failure, float]:
    """Connect, expecting failure; returns the failure and how long it took."""
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        run(loop_thread, connect(params))
    return caught.value.failure, time.monotonic() - started


def http_params(name: str, transport: str, url: str, timeout: float = 10.0) -> ConnectParams:
    return ConnectParams(
        name=name,
        transport=transport,  # type: ignore[arg-type]
        url=url,
        headers={"Authorization": "Bearer s3cr3t-token"},
        connect_timeout=timeout,
    )


@pytest.fixture(params=["stdio", "streamable-http", "sse"])
def echo_params(
    request: pytest.FixtureRequest,
    mcp_servers: ServerFactory,
    echo_stdio_command: tuple[str, tuple[str, ...]],
) -> ConnectParams:
    transport = request.param
    if transport == "stdio":
        command, args = echo_stdio_command
        return ConnectParams(
            name="echo-stdio",
            transport="stdio",
            command=command,
            args=args,
            env={"ECHO_SECRET": "do-not-log"},
            connect_timeout=20.0,
        )
    server = mcp_servers.echo(transport, "--tools", "2")
    path = "/mcp" if transport == "streamable-http" else "/sse"
    return http_params(f"echo-{transport}", transport, server.url(path), timeout=20.0)


# ----------------------------------------------------------------------- happy path


def test_connect_list_ping_close(loop_thread: LoopThread, echo_params: ConnectParams) -> None:
    lost = LostRecorder()
    connection = run(loop_thread, connect(echo_params, on_lost=lost))

    assert connection.server_info.name == "echo-server"
    assert connection.server_info.version == "1.0.0"
    assert connection.protocol_version
    assert connection.tool_names == EXPECTED_TOOLS
    assert connection.is_open

    latency = run(loop_thread, connection.ping(5.0))
    assert 0.0 < latency < 5.0
    assert run(loop_thread, connection.list_tools(5.0)) == EXPECTED_TOOLS

    run(loop_thread, connection.close())
    run(loop_thread, connection.close())  # idempotent
    assert not connection.is_open
    assert run(loop_thread, connection.wait_closed()) is None
    with pytest.raises(BackendError) as caught:
        run(loop_thread, connection.ping(1.0))
    assert caught.value.failure.kind is FailureKind.SESSION_LOST
    assert not lost.event.is_set(), "on_lost must not fire for a deliberate close"


def test_concurrent_pings_share_one_session(loop_thread: LoopThread, echo_http_server: RunningServer) -> None:
    connection = run(loop_thread, connect(http_params("echo", "streamable-http", echo_http_server.url())))
    futures = [loop_thread.submit(connection.ping(5.0)) for _ in range(10)]
    assert all(0.0 < future.result(WAIT) < 5.0 for future in futures)
    run(loop_thread, connection.close())


# --------------------------------------------------------------- connection lost


def test_sigkill_of_stdio_server_reports_lost_promptly(
    loop_thread: LoopThread, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    command, args = echo_stdio_command
    params = ConnectParams(name="victim", transport="stdio", command=command, args=args, connect_timeout=20.0)
    before = child_pids()
    lost = LostRecorder()
    connection = run(loop_thread, connect(params, on_lost=lost))
    (server_pid,) = child_pids() - before
    run(loop_thread, connection.ping(5.0))

    killed_at = time.monotonic()
    os.kill(server_pid, signal.SIGKILL)
    failure = lost.wait()

    assert lost.at is not None
    assert lost.at - killed_at < 2.0
    assert failure.kind in (FailureKind.SESSION_LOST, FailureKind.TRANSIENT)
    assert "exited" in failure.message
    assert run(loop_thread, connection.wait_closed()) == failure
    with pytest.raises(BackendError) as caught:
        run(loop_thread, connection.ping(1.0))
    assert caught.value.failure.kind is FailureKind.SESSION_LOST
    assert len(lost.failures) == 1
    run(loop_thread, connection.close())


def test_restarted_server_forgets_session_ping_reports_session_lost(
    loop_thread: LoopThread, mcp_servers: ServerFactory
) -> None:
    """muster #999: after a redeploy the old session id is unknown; never report healthy."""
    server = mcp_servers.echo("streamable-http")
    params = http_params("redeployed", "streamable-http", server.url())
    lost = LostRecorder()
    connection = run(loop_thread, connect(params, on_lost=lost))
    run(loop_thread, connection.ping(5.0))

    mcp_servers.restart(server)

    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        run(loop_thread, connection.ping(5.0))
    assert time.monotonic() - started < 5.0
    failure = caught.value.failure
    assert failure.kind is FailureKind.SESSION_LOST
    assert failure.http_status == 404
    assert lost.wait().kind is FailureKind.SESSION_LOST
    assert run(loop_thread, connection.wait_closed()) is not None
    with pytest.raises(BackendError) as again:
        run(loop_thread, connection.ping(5.0))
    assert again.value.failure.kind is FailureKind.SESSION_LOST
    run(loop_thread, connection.close())

    # Recovery is a plain reconnect: a new handshake gets a new session id.
    fresh = run(loop_thread, connect(params))
    assert run(loop_thread, fresh.ping(5.0)) > 0.0
    run(loop_thread, fresh.close())


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
def test_killed_http_server_reports_lost(loop_thread: LoopThread, mcp_servers: ServerFactory, transport: str) -> None:
    server = mcp_servers.echo(transport)
    path = "/mcp" if transport == "streamable-http" else "/sse"
    lost = LostRecorder()
    connection = run(loop_thread, connect(http_params("dies", transport, server.url(path)), on_lost=lost))
    server.kill()

    with pytest.raises(BackendError) as caught:
        run(loop_thread, connection.ping(5.0))
    assert caught.value.failure.kind in (FailureKind.TRANSIENT, FailureKind.SESSION_LOST)
    assert lost.wait().kind in (FailureKind.TRANSIENT, FailureKind.SESSION_LOST)
    run(loop_thread, connection.close())


# -------------------------------------------------------------- connect failures


@pytest.mark.parametrize(("transport", "path"), [("streamable-http", "/mcp"), ("sse", "/sse")])
def test_never_answering_server_times_out_within_connect_timeout(
    loop_thread: LoopThread, mcp_servers: ServerFactory, transport: str, path: str
) -> None:
    server = mcp_servers.fault("hang")
    failure, elapsed = connect_failure(loop_thread, http_params("silent", transport, server.url(path), timeout=1.0))
    assert failure.kind is FailureKind.TIMEOUT
    assert "1s" in failure.message
    assert 1.0 <= elapsed < 2.5


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize(("transport", "path"), [("streamable-http", "/mcp"), ("sse", "/sse")])
def test_http_5xx_is_transient_with_status(
    loop_thread: LoopThread, mcp_servers: ServerFactory, transport: str, path: str, status: int
) -> None:
    server = mcp_servers.fault("status", "--status", str(status))
    failure, elapsed = connect_failure(loop_thread, http_params("broken", transport, server.url(path)))
    assert failure.kind is FailureKind.TRANSIENT
    assert failure.http_status == status
    assert str(status) in failure.message
    assert "s3cr3t" not in failure.message
    assert elapsed < 5.0


@pytest.mark.parametrize(("transport", "path"), [("streamable-http", "/mcp"), ("sse", "/sse")])
def test_401_is_auth_required_with_parsed_challenge(
    loop_thread: LoopThread, mcp_servers: ServerFactory, transport: str, path: str
) -> None:
    server = mcp_servers.fault("auth")
    failure, _ = connect_failure(loop_thread, http_params("locked", transport, server.url(path)))
    assert failure.kind is FailureKind.AUTH_REQUIRED
    assert failure.http_status == 401
    assert failure.auth is not None
    assert failure.auth.scheme == "Bearer"
    assert failure.auth.realm == "test"
    assert failure.auth.scope == "mcp"
    assert failure.auth.resource_metadata_url == server.url("/.well-known/oauth-protected-resource")
    assert "s3cr3t" not in failure.message


def test_sse_post_failure_fails_connect_promptly(loop_thread: LoopThread, mcp_servers: ServerFactory) -> None:
    """The SDK's SSE client only logs a failed POST; the connect must not wait it out."""
    server = mcp_servers.fault("sse-post-status", "--status", "503")
    failure, elapsed = connect_failure(loop_thread, http_params("half-broken", "sse", server.url("/sse"), timeout=10.0))
    assert failure.kind is FailureKind.TRANSIENT
    assert failure.http_status == 503
    assert elapsed < 5.0


def test_connection_refused_is_transient(loop_thread: LoopThread, mcp_servers: ServerFactory) -> None:
    server = mcp_servers.fault("hang")
    url = server.url()
    server.kill()  # the port is now known to be closed
    failure, elapsed = connect_failure(loop_thread, http_params("nobody-home", "streamable-http", url))
    assert failure.kind is FailureKind.TRANSIENT
    assert failure.http_status is None
    assert elapsed < 5.0


def test_missing_stdio_command_is_configuration(loop_thread: LoopThread) -> None:
    params = ConnectParams(name="typo", transport="stdio", command="vmcp-no-such-command-xyz", connect_timeout=5.0)
    failure, elapsed = connect_failure(loop_thread, params)
    assert failure.kind is FailureKind.CONFIGURATION
    assert "vmcp-no-such-command-xyz" in failure.message
    assert elapsed < 2.0


def test_missing_working_directory_is_configuration(loop_thread: LoopThread) -> None:
    params = ConnectParams(
        name="bad-cwd", transport="stdio", command=sys.executable, cwd="/nonexistent/dir", connect_timeout=5.0
    )
    failure, _ = connect_failure(loop_thread, params)
    assert failure.kind is FailureKind.CONFIGURATION
    assert "/nonexistent/dir" in failure.message


def test_garbage_on_stdout_is_a_prompt_protocol_error(
    loop_thread: LoopThread, garbage_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    command, args = garbage_stdio_command
    params = ConnectParams(name="noisy", transport="stdio", command=command, args=args, connect_timeout=10.0)
    failure, elapsed = connect_failure(loop_thread, params)
    assert failure.kind in (FailureKind.PROTOCOL, FailureKind.TIMEOUT)
    assert failure.kind is FailureKind.PROTOCOL, failure
    assert "stdout" in failure.message
    assert elapsed < params.connect_timeout


def test_stdio_server_exiting_before_handshake_fails_fast(loop_thread: LoopThread) -> None:
    params = ConnectParams(
        name="crashes",
        transport="stdio",
        command=sys.executable,
        args=("-c", "raise SystemExit(3)"),
        connect_timeout=10.0,
    )
    failure, elapsed = connect_failure(loop_thread, params)
    assert failure.kind is FailureKind.TRANSIENT
    assert "exited" in failure.message
    assert elapsed < 5.0


def test_silent_stdio_server_times_out_and_is_terminated(loop_thread: LoopThread) -> None:
    """Ignores stdin EOF, so closing needs SIGTERM; the child must still be gone (no zombie)."""
    params = ConnectParams(
        name="mute",
        transport="stdio",
        command=sys.executable,
        args=("-c", "import time; time.sleep(60)"),
        connect_timeout=0.5,
    )
    failure, elapsed = connect_failure(loop_thread, params)
    assert failure.kind is FailureKind.TIMEOUT
    assert elapsed < 0.5 + 5.0  # the SDK's stdin-close grace (2 s) then SIGTERM


def test_cancelled_connect_cleans_up(loop_thread: LoopThread, tmp_path: Path) -> None:
    """Cancelling a connect mid-handshake must still end the child process it started."""
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    script = f"open({str(fifo)!r}, 'w').write('x'); import sys; sys.stdin.read()"
    params = ConnectParams(name="abandoned", transport="stdio", command=sys.executable, args=("-c", script))
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        future = loop_thread.submit(connect(params))
        readable, _, _ = select.select([reader], [], [], WAIT)  # the child announces itself
        assert readable, "stdio child never started"
    finally:
        os.close(reader)
    future.cancel()
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(WAIT)
    # The cancelled connect is still closing the child; wait for that work to finish.
    run(loop_thread, _wait_for_other_tasks())


async def _wait_for_other_tasks() -> None:
    me = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not me]
    if others:
        await asyncio.wait(others, timeout=WAIT)


def test_stopping_the_loop_thread_ends_open_connections(
    loop_thread: LoopThread, echo_stdio_command: tuple[str, tuple[str, ...]], echo_http_server: RunningServer
) -> None:
    """The runtime's last resort: connections still open at shutdown are torn down."""
    command, args = echo_stdio_command
    lost = LostRecorder()
    stdio = ConnectParams(name="left-open", transport="stdio", command=command, args=args, connect_timeout=20.0)
    before = child_pids()
    run(loop_thread, connect(stdio, on_lost=lost))
    run(loop_thread, connect(http_params("left-open-http", "streamable-http", echo_http_server.url()), on_lost=lost))
    assert child_pids() - before

    loop_thread.stop(15.0)  # the fixture stops it again: stop is idempotent

    assert not loop_thread.thread.is_alive()
    assert not (child_pids() - before), "the stdio server outlived the loop"
    assert not lost.event.is_set(), "shutting down is not a loss"


def test_repr_and_errors_never_show_secrets(loop_thread: LoopThread, mcp_servers: ServerFactory) -> None:
    server = mcp_servers.fault("status", "--status", "500")
    params = http_params("secretive", "streamable-http", server.url() + "?token=query-secret")
    assert "s3cr3t" not in repr(params)
    assert "query-secret" not in repr(params)
    failure, _ = connect_failure(loop_thread, params)
    assert "s3cr3t" not in failure.message
    assert "query-secret" not in failure.message
    connection = McpConnection(params)
    assert "s3cr3t" not in repr(connection)
