"""Fixtures for the MCP I/O integration tests, plus a leak check around every test.

The server fixtures live in :mod:`tests.servers.fixtures` and are re-exported here.
``no_leaks`` is autouse: after each test (and after every other fixture has been torn
down, the LoopThread stopped and the servers killed) there must be no child process of
ours left (running or zombie) and no thread beyond those that existed before the test.
"""

from __future__ import annotations

from tests.servers.fixtures import (
    ServerFactory,
    child_pids,
    echo_http_server,
    echo_sse_server,
    echo_stdio_command,
    garbage_stdio_command,
    loop_thread,
    mcp_servers,
    no_leaks,
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
