"""``vmcp-actors serve``: the runtime plus an MCP server in front of it -- a real vMCP.

The command itself is ``run``'s (:mod:`vmcp_actors.cli.commands`): the same config, reporter,
leader election, live view and graceful stop.  :class:`McpFront` is what ``serve`` adds.

The HTTP server (uvicorn) runs on the runtime's own I/O loop, next to every backend session,
so a client's request reaches its backend without changing threads.  The socket is bound
before the runtime starts (a port in use is an error at once, not after the backends
connected); ``serving MCP at http://HOST:PORT/mcp`` goes to stderr once the port accepts
connections (``--port 0`` picks a free port, which the line names).  Shutdown, on the first
signal: stop accepting connections, let the requests in flight finish (at most
:data:`DRAIN_TIMEOUT` seconds), end the clients' event streams; then the runtime stops
gracefully (backends closed, final status flushed).
"""

from __future__ import annotations

import concurrent.futures
import logging
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Final

import uvicorn

from vmcp_actors.runtime.runtime import Runtime
from vmcp_actors.serve.app import ServeApp, build_app

__all__ = ["DRAIN_TIMEOUT", "McpFront", "bind", "mcp_url"]

log = logging.getLogger("vmcp_actors.serve")

DRAIN_TIMEOUT: Final = 10.0
"""How long requests in flight get to finish after SIGTERM before the runtime stops anyway."""


class _AnnouncingServer(uvicorn.Server):
    """uvicorn, saying where it serves once the socket accepts connections."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._announce()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``OSError`` if it cannot be had)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it Nagle holds back the small writes of every SSE response for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def mcp_url(host: str, port: int) -> str:
    """Where clients connect, e.g. ``http://127.0.0.1:4483/mcp``."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/mcp"


class McpFront:
    """The MCP server in front of a runtime: bind, start on the runtime's loop, drain, close."""

    def __init__(self, host: str, port: int, *, allowed_hosts: Sequence[str] = (), debug: bool = False) -> None:
        self._host = host
        self._allowed_hosts = tuple(allowed_hosts)
        self._debug = debug
        self._sock = bind(host, port)
        self.url = mcp_url(host, self._sock.getsockname()[1])
        self._server: _AnnouncingServer | None = None
        self._served: ServeApp | None = None
        self._serving: concurrent.futures.Future[None] | None = None
        self._runtime: Runtime | None = None

    def start(self, runtime: Runtime) -> None:
        """Serve ``/mcp`` and the status endpoints for ``runtime``, on its I/O loop."""
        self._runtime = runtime
        self._served = build_app(runtime, self._host, extra_hosts=self._allowed_hosts)
        config = uvicorn.Config(
            self._served.app,
            lifespan="on",
            log_config=None,
            access_log=False,
            log_level="debug" if self._debug else "warning",
            timeout_graceful_shutdown=int(DRAIN_TIMEOUT) + 5,
        )
        url = self.url
        self._server = _AnnouncingServer(config, lambda: print(f"serving MCP at {url}", file=sys.stderr, flush=True))
        self._serving = runtime.io_thread.submit(self._server.serve(sockets=[self._sock]))

    def failure(self) -> str | None:
        """Why the server stopped on its own, or ``None`` while it serves."""
        if self._serving is None or not self._serving.done():
            return None
        error = self._serving.exception()
        return f"the MCP server stopped: {error!r}" if error is not None else "the MCP server stopped"

    def drain(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), end the event streams."""
        if self._server is None or self._served is None or self._runtime is None or self._serving is None:
            return
        self._server.should_exit = True  # uvicorn stops accepting and waits for the open connections
        try:
            self._runtime.io_thread.submit(self._served.endpoint.drain(DRAIN_TIMEOUT)).result(DRAIN_TIMEOUT + 5)
            self._serving.result(timeout=DRAIN_TIMEOUT + 10)
        except Exception as exc:  # noqa: BLE001 - whatever happened, the runtime must still stop
            log.error("the MCP server did not shut down cleanly: %r", exc)

    def close(self) -> None:
        """Close the listening socket (after :meth:`drain`, or when the runtime never started)."""
        self._sock.close()
