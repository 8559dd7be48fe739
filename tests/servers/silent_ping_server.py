"""A stdio MCP server that completes the handshake and lists its tool, but never answers ``ping``.

Usage::

    python tests/servers/silent_ping_server.py

It speaks JSON-RPC over stdio by hand (one message per line, as the stdio transport
specifies), because the SDK's servers answer ``ping`` themselves and cannot be told not
to.  A client connects to it normally; its health probes then time out, which is what a
test of *which* probe timeout applies needs: the time until the first probe failure is
the probe timeout in force.
"""

from __future__ import annotations

import json
import sys
from typing import Any

_TOOLS = [{"name": "noop", "description": "Does nothing.", "inputSchema": {"type": "object"}}]


def _answer(message: dict[str, Any]) -> dict[str, Any] | None:
    """The reply to one request; ``None`` for notifications and for ``ping`` (never answered)."""
    method = message.get("method")
    if "id" not in message or method == "ping":
        return None
    if method == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "silent-ping", "version": "1.0.0"},
        }
    elif method == "tools/list":
        result = {"tools": _TOOLS}
    else:
        error = {"code": -32601, "message": f"method not found: {method}"}
        return {"jsonrpc": "2.0", "id": message["id"], "error": error}
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = _answer(json.loads(line))
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
