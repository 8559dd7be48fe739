"""Backends dying and coming back, seen through the runtime's data plane."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
from collections.abc import Callable

import mcp_types as types
import pytest

from testkit.processes import child_pids
from tests.dataplane.harness import Watcher, http_backend, start_runtime, stdio_backend
from tests.servers.fixtures import ServerFactory
from vmcp_actors.errors import BackendUnavailableError
from vmcp_actors.runtime.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

__all__ = ["start_runtime"]

Start = Callable[..., tuple[Runtime, Watcher]]


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def _web_tools(runtime: Runtime) -> set[str]:
    return {t.name for t in runtime.tools() if t.backend == "web"}


def test_a_killed_backend_vanishes_fails_fast_and_comes_back(start_runtime: Start, mcp_servers: ServerFactory) -> None:
    server = mcp_servers.dataplane("streamable-http", "web")
    runtime, watch = start_runtime(http_backend("web", server), stdio_backend("local"))
    watch.has_tools("web_echo", "local_echo")
    server.kill()
    watch.until(lambda: not _web_tools(runtime), "the killed backend's tools to vanish")
    assert "local_echo" in {t.name for t in runtime.tools()}
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as caught:
        runtime.call_tool("web_echo", {"text": "x"})
    assert time.monotonic() - started < 1.0, "a call to an unroutable backend fails at once"
    assert caught.value.backend == "web"
    assert caught.value.capability == "web_echo"
    # The route goes the moment the session is gone; the health monitor's verdict may still be
    # one message behind (then the error says why without it).
    assert caught.value.health in ("unhealthy", "unknown", None) or "no open session" in str(caught.value)
    assert _text(runtime.call_tool("local_echo", {"text": "still"})) == "local:still"
    mcp_servers.restart(server)
    watch.has_tools("web_echo")
    assert _text(runtime.call_tool("web_echo", {"text": "back"})) == "web:back"


def test_calls_in_flight_when_the_backend_dies_end_with_a_clear_error(
    start_runtime: Start, mcp_servers: ServerFactory
) -> None:
    server = mcp_servers.dataplane("streamable-http", "web")
    runtime, watch = start_runtime(http_backend("web", server), stdio_backend("local"))
    watch.has_tools("web_slow", "local_slow")
    (stdio_pid,) = child_pids() - {server.pid}
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        web = [pool.submit(runtime.call_tool, "web_slow", {"seconds": 60}) for _ in range(4)]
        local = [pool.submit(runtime.call_tool, "local_slow", {"seconds": 60}) for _ in range(4)]
        watch.until(lambda: runtime.view().routes["web"].events.in_flight == 4, "the web calls to be in flight")
        watch.until(lambda: runtime.view().routes["local"].events.in_flight == 4, "the local calls to be in flight")
        server.kill()
        os.kill(stdio_pid, signal.SIGKILL)
        started = time.monotonic()
        for future in web + local:
            with pytest.raises(BackendUnavailableError):
                future.result(timeout=30)
        assert time.monotonic() - started < 15, "in-flight calls end when their backend dies, not at their timeout"
    watch.has_tools("local_echo")  # the stdio backend is restarted by its actor
    assert _text(runtime.call_tool("local_echo", {"text": "again"})) == "local:again"
