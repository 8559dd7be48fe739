"""An HTTP "MCP server" that echoes the credentials it was sent, for the redaction tests.

Usage::

    python tests/servers/secret_echo_server.py --mode challenge|rpc-error [--port N]

* ``challenge``: answers every request with ``401`` and a ``WWW-Authenticate: Bearer``
  challenge whose ``error_description`` quotes the bearer token it received, and a JSON
  body that quotes it again -- what a careless server (or a debugging proxy) does.
* ``rpc-error``: answers ``initialize`` with a JSON-RPC error whose message quotes the
  bearer token and the ``X-Api-Key`` header; other POSTs get ``202``, GETs ``405``.

Both print ``READY <port>`` on stderr once they listen on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the repo root

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.servers._serve import bind_listener, serve_app

_ALL_METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]


def _token(request: Request) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip()


def _challenge_app() -> Starlette:
    async def challenge(request: Request) -> Response:
        token = _token(request)
        description = f"the token {token} is not valid"
        challenge = f'Bearer realm="echo", error="invalid_token", error_description="{description}"'
        return JSONResponse(
            {"error": "invalid_token", "error_description": description},
            status_code=401,
            headers={"WWW-Authenticate": challenge},
        )

    return Starlette(routes=[Route("/{path:path}", challenge, methods=_ALL_METHODS)])


def _rpc_error_app() -> Starlette:
    async def endpoint(request: Request) -> Response:
        if request.method != "POST":
            return Response(status_code=405)
        try:
            message = json.loads(await request.body())
        except json.JSONDecodeError:
            return Response(status_code=400)
        if not isinstance(message, dict) or "id" not in message:
            return Response(status_code=202)  # a notification or a response: nothing to answer
        text = f"rejected token {_token(request)} and key {request.headers.get('x-api-key', '')}"
        return JSONResponse({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32602, "message": text}})

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=_ALL_METHODS)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("challenge", "rpc-error"), required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    app = _challenge_app() if args.mode == "challenge" else _rpc_error_app()
    serve_app(app, bind_listener(args.port))


if __name__ == "__main__":
    main()
