"""Serve an ASGI app on 127.0.0.1 and announce readiness on stderr.

The fixtures never sleep to wait for a server: they read stderr until a ``READY <port>``
line appears (with a deadline).  So the line must only be printed once the port really
accepts connections *and* the app's lifespan (for streamable HTTP: the session manager's
task group) is running, which is what ``uvicorn.Server.startup`` guarantees when it
returns.  The socket is bound here rather than by uvicorn so that ``--port 0`` yields a
kernel-chosen free port that can be reported exactly, with no probe-then-bind race.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

import uvicorn


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that prints ``READY <port>`` after startup completes."""

    def __init__(self, config: uvicorn.Config, port: int) -> None:
        super().__init__(config)
        self._announce_port = port

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            print(f"READY {self._announce_port}", file=sys.stderr, flush=True)


def bind_listener(port: int) -> socket.socket:
    """Bind a listening TCP socket on 127.0.0.1 (port 0 picks a free one).

    SO_REUSEADDR lets a restarted server take back the port of a killed one even while
    the old connections linger in TIME_WAIT (the "server restarted" test needs that).
    """
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it Nagle holds back small response writes for a delayed ACK (~40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


def serve_app(app: Any, sock: socket.socket) -> None:
    """Run ``app`` under uvicorn on the listening socket ``sock`` until the process is killed."""
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    server = _AnnouncingServer(config, actual_port)
    asyncio.run(server.serve(sockets=[sock]))
