"""HTTP servers that misbehave on purpose, for the failure-classification tests.

Usage::

    python tests/servers/fault_server.py --mode hang [--port N]
    python tests/servers/fault_server.py --mode status --status 503 [--port N]
    python tests/servers/fault_server.py --mode auth [--port N]
    python tests/servers/fault_server.py --mode sse-post-status --status 503 [--port N]

* ``hang``: accepts TCP connections, reads whatever arrives and never answers (a
  black-holed backend; the client must give up within its timeout).  Plain asyncio,
  because no HTTP framework can be convinced to never respond.
* ``status``: answers every request with the given HTTP status (500, 503, ...) and a
  plain-text body, like a proxy in front of a dead backend.
* ``auth``: answers every MCP request with ``401`` and a ``WWW-Authenticate: Bearer``
  challenge naming its protected-resource metadata URL (RFC 9728), which it also serves.
* ``sse-post-status``: a legacy SSE endpoint whose event stream works (it announces the
  message endpoint and stays open) but whose message endpoint answers every POST with
  the given status.  The SDK's SSE client only logs such a failure, so without help a
  connect would wait for its whole timeout.

Every mode prints ``READY <port>`` on stderr once it listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _serve import bind_listener, serve_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

_ALL_METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]


async def _hang(port: int) -> None:
    """Accept connections and hold them open without ever replying."""
    held: set[asyncio.StreamWriter] = set()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.add(writer)
        try:
            while await reader.read(65536):
                continue
        finally:
            held.discard(writer)
            writer.close()

    sock = bind_listener(port)
    server = await asyncio.start_server(swallow, sock=sock)
    print(f"READY {sock.getsockname()[1]}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


def _status_app(status: int) -> Starlette:
    async def answer(request: Request) -> Response:
        return PlainTextResponse(f"injected failure {status}", status_code=status)

    return Starlette(routes=[Route("/{path:path}", answer, methods=_ALL_METHODS)])


def _auth_app(port: int) -> Starlette:
    base = f"http://127.0.0.1:{port}"
    metadata_url = f"{base}/.well-known/oauth-protected-resource"

    async def metadata(request: Request) -> Response:
        return JSONResponse(
            {"resource": f"{base}/mcp", "authorization_servers": [f"{base}/auth"], "scopes_supported": ["mcp"]}
        )

    async def challenge(request: Request) -> Response:
        return JSONResponse(
            {"error": "invalid_token", "error_description": "Authentication required"},
            status_code=401,
            headers={
                "WWW-Authenticate": f'Bearer realm="test", resource_metadata="{metadata_url}", scope="mcp"',
            },
        )

    return Starlette(
        routes=[
            Route("/.well-known/oauth-protected-resource", metadata, methods=["GET"]),
            Route("/{path:path}", challenge, methods=_ALL_METHODS),
        ]
    )


def _sse_post_status_app(status: int) -> Starlette:
    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            yield b"event: endpoint\ndata: /messages/?session_id=0123456789abcdef\n\n"
            await asyncio.Event().wait()  # keep the stream open until the client leaves
            yield b""

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def reject(request: Request) -> Response:
        return PlainTextResponse(f"injected failure {status}", status_code=status)

    return Starlette(
        routes=[
            Route("/sse", events, methods=["GET"]),
            Route("/messages/", reject, methods=["POST"]),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("hang", "status", "auth", "sse-post-status"), required=True)
    parser.add_argument("--status", type=int, default=500)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    if args.mode == "hang":
        asyncio.run(_hang(args.port))
    elif args.mode == "status":
        serve_app(_status_app(args.status), bind_listener(args.port))
    elif args.mode == "sse-post-status":
        serve_app(_sse_post_status_app(args.status), bind_listener(args.port))
    else:
        # The challenge names the server's own port, so bind before building the app.
        sock = bind_listener(args.port)
        serve_app(_auth_app(sock.getsockname()[1]), sock)


if __name__ == "__main__":
    main()
