"""What the example servers share: turning bad arguments into errors the model can read.

A tool that raises an arbitrary exception is a crash to the SDK: the client sees only
"Error executing tool <name>" and the server logs a traceback.  A bad argument is not a
crash, and its message ("unknown unit 'X': use C, F or K") is exactly what the model
needs to retry; the SDK passes a :class:`ToolError`'s message along, so the tools raise
``ValueError`` in plain Python and :func:`bad_arguments_reported` converts it.

Imported by the servers only once they build their MCP server: it imports the SDK.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mcp.server.mcpserver.exceptions import ToolError

__all__ = ["bad_arguments_reported"]


@contextlib.contextmanager
def bad_arguments_reported() -> Iterator[None]:
    """Re-raise ``ValueError`` as :class:`ToolError`, so the client sees the reason."""
    try:
        yield
    except ValueError as exc:
        raise ToolError(str(exc)) from exc
