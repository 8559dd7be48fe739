"""Fixtures for the MCP I/O integration tests, plus a leak check around every test.

The server fixtures live in :mod:`tests.servers.fixtures` and are re-exported here.
``no_leaks`` is autouse: after each test (and after every other fixture has been torn
down, the LoopThread stopped and the servers killed) there must be no child process of
ours left (running or zombie) and no thread beyond those that existed before the test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.servers.fixtures import (
    ServerFactory,
    child_pids,
    echo_http_server,
    echo_sse_server,
    echo_stdio_command,
    garbage_stdio_command,
    loop_thread,
    mcp_servers,
)

__all__ = [
    "ServerFactory",
    "child_pids",
    "echo_http_server",
    "echo_sse_server",
    "echo_stdio_command",
    "garbage_stdio_command",
    "loop_thread",
    "mcp_servers",
    "no_leaks",
]

_THREAD_EXIT_GRACE = 5.0
"""asyncio's child watcher thread ends right after reaping; joining it is bounded by this."""


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except FileNotFoundError:
        return f"{pid} (gone)"
    state = stat.rsplit(")", 1)[1].split()[0]
    return f"{pid} state={state} cmd={cmdline or '?'}"


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves child processes (incl. zombies) or threads behind."""
    children_before = child_pids()
    threads_before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + _THREAD_EXIT_GRACE
    extra_threads = [thread for thread in threading.enumerate() if thread not in threads_before]
    for thread in extra_threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [thread.name for thread in extra_threads if thread.is_alive()]
    leaked_children = child_pids() - children_before
    assert not leaked_children, "leaked child processes: " + "; ".join(_describe(p) for p in sorted(leaked_children))
    assert not alive, f"leaked threads: {alive}"
