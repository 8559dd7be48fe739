"""A real MCP backend for the data plane tests, built with the official SDK (``MCPServer``).

Usage::

    python tests/servers/dataplane_server.py --transport stdio|streamable-http|sse [--port N] [--name NAME]

Tools (each answer names the server, so a test can tell which backend answered):

* ``echo(text)``, ``add(a, b)``: plain results; ``add`` returns structured content too;
* ``whoami()``: the server's ``--name``;
* ``slow(seconds, text)``: answers after ``seconds`` (calls in flight, timeouts);
* ``fail(text)``: a tool error, i.e. a result with ``isError: true``;
* ``progress(steps)``: reports ``steps`` progress notifications, then answers;
* ``chatty(count)``: sends ``count`` info log messages on the request's stream, then answers;
* ``grow(name)``: adds a tool called ``name`` and sends ``notifications/tools/list_changed``;
* ``ask(prompt)``: asks the client to sample (``sampling/createMessage``) and returns its text;
* ``reveal(variable)``, ``reveal_error(variable)``: a careless backend echoing an environment
  variable (a secret its spec gave it) in a log, a progress message, the result or a tool
  error; ``reveal``'s description quotes ``$DATAPLANE_SECRET``.

Resources ``mem://<name>/greeting`` and the template ``mem://<name>/item/{id}``, a prompt
``greet(who)``, and ``resources/subscribe``: after ``touch(uri)`` the server sends
``notifications/resources/updated`` to the session that subscribed.  HTTP modes bind
127.0.0.1 and print ``READY <port>`` on stderr once they accept connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import warnings
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import EmptyResult, SamplingMessage, SubscribeRequestParams, TextContent, UnsubscribeRequestParams


def build_server(name: str) -> MCPServer:
    """The server with every tool, resource and prompt listed in the module doc."""
    server = MCPServer(f"dataplane-{name}", version="1.0.0", log_level="WARNING")
    subscribers: dict[str, list[Any]] = {}

    @server.tool()
    def echo(text: str) -> str:
        """Return the text, prefixed by the server name."""
        return f"{name}:{text}"

    @server.tool()
    def add(a: int, b: int) -> dict[str, int]:
        """Add two integers (structured output)."""
        return {"sum": a + b}

    @server.tool()
    def whoami() -> str:
        """The server's name."""
        return name

    @server.tool()
    async def slow(seconds: float, text: str = "") -> str:
        """Answer after ``seconds``."""
        await asyncio.sleep(seconds)
        return f"{name}:slow:{text}"

    @server.tool()
    def fail(text: str) -> str:
        """Always fail as a tool (isError)."""
        raise ToolError(f"{name} failed: {text}")

    @server.tool()
    async def progress(steps: int, ctx: Context) -> str:
        """Report ``steps`` progress notifications."""
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step}")
        return f"{name}:progressed:{steps}"

    @server.tool()
    async def chatty(count: int, ctx: Context) -> str:
        """Send ``count`` log messages on this request's stream."""
        request = ctx.request_context
        for index in range(count):
            await request.session.send_log_message(
                level="info", data=f"{name} says {index}", logger=name, related_request_id=request.request_id
            )
        return f"{name}:chatted:{count}"

    secret = os.environ.get("DATAPLANE_SECRET", "")

    @server.tool(description=f"Reveal an environment variable (a careless backend; its key is {secret})")
    async def reveal(variable: str, ctx: Context) -> dict[str, str]:
        """Echo an environment variable's value everywhere it can: a log, a progress message, the result."""
        value = os.environ.get(variable, "")
        request = ctx.request_context
        await request.session.send_log_message(
            level="info", data=f"revealing {value}", logger=name, related_request_id=request.request_id
        )
        await ctx.report_progress(1, 1, f"revealed {value}")
        return {"value": value}

    @server.tool()
    def reveal_error(variable: str) -> str:
        """Fail as a tool, quoting an environment variable's value."""
        raise ToolError(f"cannot use {os.environ.get(variable, '')}")

    @server.tool()
    async def grow(tool: str, ctx: Context) -> str:
        """Add a tool and tell the client its tool list changed."""

        def grown() -> str:
            return f"{name}:{tool}"

        server.add_tool(grown, name=tool, description=f"grown by {name}")
        await ctx.request_context.session.send_tool_list_changed()
        return f"{name}:grew:{tool}"

    @server.tool()
    async def ask(prompt: str, ctx: Context) -> str:
        """Ask the client to sample and return what it answered."""
        request = ctx.request_context
        result = await request.session.create_message(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
            max_tokens=10,
            related_request_id=request.request_id,
        )
        text = result.content.text if isinstance(result.content, TextContent) else "?"
        return f"{name}:answer:{text}"

    @server.tool()
    async def touch(uri: str) -> str:
        """Tell every session subscribed to ``uri`` that it changed."""
        for session in subscribers.get(uri, []):
            await session.send_resource_updated(uri)
        return f"{name}:touched:{len(subscribers.get(uri, []))}"

    @server.resource(f"mem://{name}/greeting", name="greeting", mime_type="text/plain")
    def greeting() -> str:
        return f"hello from {name}"

    @server.resource(f"mem://{name}/item/{{id}}", name="item", mime_type="text/plain")
    def item(id: str) -> str:
        return f"{name} item {id}"

    @server.prompt()
    def greet(who: str) -> list[UserMessage]:
        """Greet someone."""
        return [UserMessage(f"{name} greets {who}")]

    async def subscribe(ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        subscribers.setdefault(str(params.uri), []).append(ctx.session)
        return EmptyResult()

    async def unsubscribe(ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        subscribers.pop(str(params.uri), None)
        return EmptyResult()

    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transport", choices=("stdio", "streamable-http", "sse"), default="stdio")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="dp")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", MCPDeprecationWarning)
    server = build_server(args.name)
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
