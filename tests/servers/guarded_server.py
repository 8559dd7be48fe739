"""A real streamable-HTTP MCP server (the SDK's) behind two guards a test controls.

Usage::

    python tests/servers/guarded_server.py [--token-file PATH] [--hold-initialize] [--port N]

* ``--token-file PATH``: every request must carry ``Authorization: Bearer <token>``,
  where the token is what PATH holds *at the time of the request*, so a test rotates the
  token the server accepts by rewriting the file (a token rotated at the server while
  clients still hold the old one).  Anything else gets ``401`` with a ``Bearer``
  challenge, as real servers answer.
* ``--hold-initialize``: an MCP ``initialize`` request is held, unanswered, until the
  test ``POST``\\ s to ``/release`` -- a backend that is slow to initialize, for exactly
  as long as the test needs, with no sleeps anywhere.

Behind the guards is the echo server of ``echo_server.py``.  Prints ``READY <port>`` on
stderr once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _plain(send: Send, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the app, then defers to the real one."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class Guard:
    """ASGI middleware: the bearer check and the initialize hold."""

    def __init__(self, app: App, token_file: Path | None, hold: bool) -> None:
        self._app = app
        self._token_file = token_file
        self._released = asyncio.Event()
        if not hold:
            self._released.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)  # lifespan: the session manager must start
            return
        if scope["path"] == "/release" and scope["method"] == "POST":
            self._released.set()
            await _plain(send, 200, b"released")
            return
        if self._token_file is not None and not self._authorized(scope):
            challenge = (b"www-authenticate", b'Bearer realm="guarded", error="invalid_token"')
            await _plain(send, 401, b"invalid token", (challenge,))
            return
        if scope["method"] == "POST" and not self._released.is_set():
            body = await _read_body(receive)
            if b'"initialize"' in body:
                await self._released.wait()
            receive = _replay(body, receive)
        await self._app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        assert self._token_file is not None
        expected = self._token_file.read_text(encoding="utf-8").strip()
        headers = dict(scope["headers"])
        return bool(expected) and headers.get(b"authorization", b"").decode() == f"Bearer {expected}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--token-file", type=Path)
    parser.add_argument("--hold-initialize", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    # Sibling scripts, found through the sys.path entry above (this runs as a script, not a package).
    serve, echo = importlib.import_module("_serve"), importlib.import_module("echo_server")
    app = echo.build_server(0).streamable_http_app(host="127.0.0.1")
    serve.serve_app(Guard(app, args.token_file, args.hold_initialize), serve.bind_listener(args.port))


if __name__ == "__main__":
    main()
