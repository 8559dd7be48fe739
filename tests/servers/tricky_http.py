"""The echo MCP server over streamable HTTP, with one way of behaving like servers in the wild.

Usage::

    python tests/servers/tricky_http.py --mode ts-sessions [--unknown-status 404] [--no-listen-stream] [--port N]
    python tests/servers/tricky_http.py --mode error-code --method ping --code -32000 [--port N]
    python tests/servers/tricky_http.py --mode huge-body --bytes 67108864 [--announce] [--gzip] [--port N]

* ``ts-sessions``: answers a request carrying an ``Mcp-Session-Id`` it does not know the
  way servers built on the TypeScript SDK do (its examples and server-everything): HTTP
  400, for POST with the JSON-RPC error ``-32000 "Bad Request: No valid session ID
  provided"``, for GET and DELETE with the text ``Invalid or missing session ID``.
  ``--unknown-status 404`` answers 404 and ``-32001 "Session not found"`` instead (the
  TypeScript SDK's own transport; the Python SDK's says 404 too).  Restarted on the same
  port, it knows no session; ``POST /forget-sessions`` makes it forget them without a
  restart (the client's connections, e.g. its event stream, stay up).
  ``--no-listen-stream`` answers the standalone GET event stream with 405 (servers
  may not offer one), so a restart is found only by the next request.
* ``error-code``: answers the JSON-RPC request ``--method`` with an error response
  carrying ``--code`` (e.g. -32000 or -32001, the codes the MCP SDKs also use for their
  own "connection closed" and "request timed out"), everything else normally.
* ``huge-body``: answers ``initialize`` with a JSON body of ``--bytes`` bytes, streamed
  in 64 KiB chunks without a length (``--announce`` sends ``Content-Length``,
  ``--gzip`` compresses it: a small body that expands to ``--bytes``).

Prints ``READY <port>`` on stderr once it listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _serve import bind_listener, serve_app
from echo_server import build_server

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_CHUNK = 64 * 1024


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body"):
            return body


def _replay(body: bytes, receive: Receive) -> Receive:
    """The already read request body once, then the real channel (for the disconnect)."""
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replaying


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Tricky:
    """ASGI middleware in front of the SDK's streamable-HTTP app."""

    def __init__(self, app: App, args: argparse.Namespace) -> None:
        self._app = app
        self._args = args
        self._known_sessions: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
        body = await _read_body(receive) if scope["method"] == "POST" else b""
        if scope["path"] == "/forget-sessions":
            self._known_sessions.clear()
            await _respond(send, 200, b"forgotten", "text/plain")
            return
        if self._args.no_listen_stream and scope["method"] == "GET":
            await _respond(send, 405, b"no event stream here", "text/plain")
            return
        request = json.loads(body) if body else {}
        mode = self._args.mode
        if mode == "ts-sessions" and await self._unknown_session(scope, headers, send):
            return
        if mode == "error-code" and request.get("method") == self._args.method:
            error = {"code": self._args.code, "message": "server-side failure"}
            answer = {"jsonrpc": "2.0", "id": request.get("id"), "error": error}
            await _respond(send, 200, json.dumps(answer).encode(), "application/json")
            return
        if mode == "huge-body" and request.get("method") == "initialize":
            await self._huge(send, request.get("id"))
            return
        await self._app(scope, _replay(body, receive), self._remembering(send))

    async def _unknown_session(self, scope: Scope, headers: dict[str, str], send: Send) -> bool:
        session = headers.get("mcp-session-id")
        if session is None or session in self._known_sessions:
            return False
        if self._args.unknown_status == 404:
            answer = {"jsonrpc": "2.0", "error": {"code": -32001, "message": "Session not found"}, "id": None}
            await _respond(send, 404, json.dumps(answer).encode(), "application/json")
        elif scope["method"] == "POST":
            error = {"code": -32000, "message": "Bad Request: No valid session ID provided"}
            answer = {"jsonrpc": "2.0", "error": error, "id": None}
            await _respond(send, 400, json.dumps(answer).encode(), "application/json")
        else:
            await _respond(send, 400, b"Invalid or missing session ID", "text/plain")
        return True

    def _remembering(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                for key, value in message.get("headers", []):
                    if key.decode().lower() == "mcp-session-id":
                        self._known_sessions.add(value.decode())
            await send(message)

        return wrapped

    async def _huge(self, send: Send, request_id: Any) -> None:
        size = self._args.bytes
        headers = [(b"content-type", b"application/json")]
        compress = zlib.compressobj(wbits=16 + zlib.MAX_WBITS) if self._args.gzip else None
        if compress is not None:
            headers.append((b"content-encoding", b"gzip"))
        elif self._args.announce:
            headers.append((b"content-length", str(size).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        head = json.dumps({"jsonrpc": "2.0", "id": request_id}).encode()[:-1] + b', "result": {"pad": "'
        sent = 0
        chunk = head
        while sent < size:
            chunk = chunk or b"x" * min(_CHUNK, size - sent)
            sent += len(chunk)
            data = compress.compress(chunk) if compress is not None else chunk
            await send({"type": "http.response.body", "body": data, "more_body": True})
            chunk = b""
        tail = compress.flush() if compress is not None else b""
        await send({"type": "http.response.body", "body": tail, "more_body": False})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("ts-sessions", "error-code", "huge-body"), required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--unknown-status", type=int, choices=(400, 404), default=400)
    parser.add_argument("--no-listen-stream", action="store_true")
    parser.add_argument("--method", default="ping")
    parser.add_argument("--code", type=int, default=-32000)
    parser.add_argument("--bytes", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--announce", action="store_true")
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args(argv)
    app = build_server(0).streamable_http_app(host="127.0.0.1")
    serve_app(Tricky(app, args), bind_listener(args.port))


if __name__ == "__main__":
    main()
