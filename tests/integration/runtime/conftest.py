"""Fixtures for the end-to-end runtime tests: real MCP servers and a leak check."""

from __future__ import annotations

from tests.servers.fixtures import ServerFactory, child_pids, echo_stdio_command, mcp_servers, no_leaks

__all__ = ["ServerFactory", "child_pids", "echo_stdio_command", "mcp_servers", "no_leaks"]
