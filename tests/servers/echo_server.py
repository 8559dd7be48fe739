"""A real MCP server built with the official SDK, for integration tests.

Usage::

    python tests/servers/echo_server.py --transport stdio|streamable-http|sse [--port N] [--tools N]

Tools: ``echo(text)``, ``add(a, b)`` and ``--tools N`` generated tools ``tool_0`` ...
``tool_{N-1}`` (to exercise larger tool lists).  In stdio mode nothing but protocol is
written to stdout (the SDK's logging goes to stderr).  In the HTTP modes the server binds
127.0.0.1 (``--port 0``, the default, picks a free port) and prints ``READY <port>`` on
stderr once it accepts connections, so fixtures can wait for readiness without sleeping.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mcp.server.mcpserver import MCPServer


def _generated_tool(index: int) -> Callable[[str], str]:
    """Build the body of generated tool number ``index``."""

    def tool(value: str) -> str:
        return f"tool_{index}:{value}"

    tool.__name__ = f"tool_{index}"
    tool.__doc__ = f"Generated tool number {index}; returns its argument prefixed by its name."
    return tool


def build_server(extra_tools: int) -> MCPServer:
    """Create the echo server with its fixed tools plus ``extra_tools`` generated ones."""
    server = MCPServer("echo-server", version="1.0.0", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    for index in range(extra_tools):
        server.add_tool(_generated_tool(index), name=f"tool_{index}")
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transport", choices=("stdio", "streamable-http", "sse"), default="stdio")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tools", type=int, default=0)
    args = parser.parse_args(argv)

    server = build_server(args.tools)
    if args.transport == "stdio":
        server.run("stdio")
        return

    from _serve import bind_listener, serve_app

    if args.transport == "streamable-http":
        app = server.streamable_http_app(host="127.0.0.1")
    else:
        app = server.sse_app(host="127.0.0.1")
    serve_app(app, bind_listener(args.port))


if __name__ == "__main__":
    main()
