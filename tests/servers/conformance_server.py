"""An MCP server that implements the fixtures of the MCP conformance suite's *server* scenarios.

Why it exists: the npm package ``@modelcontextprotocol/conformance`` checks a server by calling
tools, resources and prompts with fixed names (``test_simple_text``, ``test://static-text``,
``test_prompt_with_arguments`` ...) and comparing what comes back with what its scenarios expect.
To run the suite against a vMCP ``serve`` front end, something behind it has to answer those
calls; this is that backend, written with the official Python SDK (2.x, ``MCPServer``), so that a
scenario failing through ``serve`` but passing here points at ``serve`` and not at the backend.
``scripts/conformance.py`` provisions and runs the suite.

Usage::

    python tests/servers/conformance_server.py --transport stdio|streamable-http [--port N]

In ``streamable-http`` mode the server binds 127.0.0.1 (``--port 0``, the default, picks a free
port), serves ``/mcp`` and prints ``READY <port>`` on stderr once it accepts connections (see
``_serve.py``). DNS-rebinding protection is on (the SDK enables it for a localhost host), an
in-memory event store makes SSE streams resumable, and ``retry`` is advertised, which the
``server-sse-polling`` scenario needs. In ``stdio`` mode nothing but protocol goes to stdout.

Several fixtures use features the SDK marks deprecated for the 2026-07-28 protocol (logging,
sampling, ``resources/subscribe``); the suite speaks 2025-06-18/2025-11-25, where they are
current, so they are implemented and the deprecation warnings are silenced in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import itertools
import json
import os
import struct
import sys
import warnings
import wave
import zlib
from collections import deque
from typing import Any, Final

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import (
    AudioContent,
    CallToolResult,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    JSONRPCMessage,
    LoggingLevel,
    PromptReference,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
    UnsubscribeRequestParams,
)
from starlette.applications import Starlette

SERVER_NAME: Final = "vmcp-conformance-fixture"


def _png_1x1_red() -> bytes:
    """Build a valid 1x1 red RGB PNG, so image fixtures carry real image data, not a placeholder."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # width, height, bit depth 8, RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte 0, then one red pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _wav_silence() -> bytes:
    """Build a valid 10 ms mono 8 kHz WAV of silence for the audio fixture."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\x00\x00" * 80)
    return buffer.getvalue()


PNG_BYTES: Final = _png_1x1_red()
PNG_BASE64: Final = base64.b64encode(PNG_BYTES).decode("ascii")
WAV_BASE64: Final = base64.b64encode(_wav_silence()).decode("ascii")

JSON_SCHEMA_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"
JSON_SCHEMA_2020_12_TOOL: Final = "json_schema_2020_12_tool"
"""The tool whose ``inputSchema`` must reach the client with ``$schema``, ``$defs`` and
``additionalProperties`` intact (SEP-1613); a proxy that rebuilds schemas would strip them."""

RETRY_INTERVAL_MS: Final = 100
"""The ``retry`` advertised on SSE streams: short, so the polling scenario reconnects quickly."""

EVENT_STORE_CAPACITY: Final = 10_000
"""Events kept for resumption. Bounded so a long-lived fixture cannot grow without limit."""

COMPLETION_CANDIDATES: Final[dict[str, tuple[str, ...]]] = {
    "arg1": ("test", "testing", "tested", "paris", "park"),
    "arg2": ("value", "variable", "world"),
}
"""Per-argument candidates for ``completion/complete``; the prefix typed so far filters them."""

_LOG_LEVEL_ORDER: Final[tuple[LoggingLevel, ...]] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)


class InMemoryEventStore(EventStore):
    """Keeps SSE events per stream so a client that reconnects with ``Last-Event-ID`` gets the rest.

    The ``server-sse-polling`` scenario calls ``test_reconnection``, which closes its POST stream
    mid-call; the result can only reach the client if the transport stored it and replays it on the
    GET that resumes the stream. Event ids are a global counter, so their order is their age.
    """

    def __init__(self, capacity: int = EVENT_STORE_CAPACITY) -> None:
        self._events: deque[tuple[int, StreamId, JSONRPCMessage | None]] = deque(maxlen=capacity)
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        """Record ``message`` (``None`` for a priming event) and return its new id."""
        event_id = next(self._ids)
        self._events.append((event_id, stream_id, message))
        return str(event_id)

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        """Send every later event of the stream ``last_event_id`` belongs to; ``None`` if unknown."""
        try:
            last = int(last_event_id)
        except ValueError:
            return None
        stream = next((stream for event_id, stream, _ in self._events if event_id == last), None)
        if stream is None:
            return None
        for event_id, event_stream, message in list(self._events):
            if event_stream == stream and event_id > last and message is not None:
                await send_callback(EventMessage(message, str(event_id)))
        return stream


class SessionState:
    """What the fixture remembers per client session: its log level and resource subscriptions.

    Keyed by the ``mcp-session-id`` header (``None`` over stdio, where there is one client), so
    ``logging/setLevel`` from one session does not silence another's logs.
    """

    def __init__(self) -> None:
        self._levels: dict[str | None, LoggingLevel] = {}
        self._subscriptions: dict[str | None, set[str]] = {}

    @staticmethod
    def key(ctx: ServerRequestContext[Any, Any]) -> str | None:
        """The session key of the request behind ``ctx``."""
        headers = getattr(ctx.request, "headers", None)
        if headers is None:
            return None
        value = headers.get("mcp-session-id")
        return value if isinstance(value, str) else None

    def set_level(self, ctx: ServerRequestContext[Any, Any], level: LoggingLevel) -> None:
        """Remember the minimum level the client asked for."""
        self._levels[self.key(ctx)] = level

    def wants(self, ctx: ServerRequestContext[Any, Any], level: LoggingLevel) -> bool:
        """Tell whether a log entry at ``level`` passes the session's ``logging/setLevel`` filter."""
        minimum = self._levels.get(self.key(ctx), "debug")
        return _LOG_LEVEL_ORDER.index(level) >= _LOG_LEVEL_ORDER.index(minimum)

    def subscribe(self, ctx: ServerRequestContext[Any, Any], uri: str) -> None:
        """Record a ``resources/subscribe``."""
        self._subscriptions.setdefault(self.key(ctx), set()).add(uri)

    def unsubscribe(self, ctx: ServerRequestContext[Any, Any], uri: str) -> None:
        """Forget a subscription; unsubscribing from something never subscribed is not an error."""
        self._subscriptions.get(self.key(ctx), set()).discard(uri)


async def _log(ctx: Context, state: SessionState, level: LoggingLevel, message: str) -> None:
    """Send ``notifications/message`` on the calling request's stream, if the session's level allows."""
    request = ctx.request_context
    if state.wants(request, level):
        await request.session.send_log_message(
            level=level, data=message, logger=SERVER_NAME, related_request_id=request.request_id
        )


def _text(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)])


def _json_schema_tool() -> Tool:
    """Build ``json_schema_2020_12_tool`` with a hand-written 2020-12 ``inputSchema``.

    The SDK derives schemas from signatures and never emits ``$schema`` or
    ``additionalProperties: false`` for them, so the derived schema is replaced by the one the
    ``json-schema-2020-12`` scenario checks for.
    """

    def json_schema_2020_12_tool(name: str | None = None, address: dict[str, str] | None = None) -> CallToolResult:
        """Tool with JSON Schema 2020-12 features ($schema, $defs, additionalProperties)."""
        return _text(json.dumps({"name": name, "address": address}, sort_keys=True))

    tool = Tool.from_function(json_schema_2020_12_tool, name=JSON_SCHEMA_2020_12_TOOL)
    schema = {
        "$schema": JSON_SCHEMA_2020_12,
        "type": "object",
        "$defs": {
            "address": {
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
            }
        },
        "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
        "additionalProperties": False,
    }
    return tool.model_copy(update={"parameters": schema})


def _register_tools(server: MCPServer, state: SessionState) -> None:
    """The ``tools/*`` fixtures, one per tool scenario of the suite."""

    @server.tool()
    def test_simple_text() -> CallToolResult:
        """Return one text block (scenario tools-call-simple-text)."""
        return _text("This is a simple text response for testing.")

    @server.tool()
    def test_image_content() -> CallToolResult:
        """Return a 1x1 PNG image block (scenario tools-call-image)."""
        return CallToolResult(content=[ImageContent(type="image", data=PNG_BASE64, mime_type="image/png")])

    @server.tool()
    def test_audio_content() -> CallToolResult:
        """Return a short WAV audio block (scenario tools-call-audio)."""
        return CallToolResult(content=[AudioContent(type="audio", data=WAV_BASE64, mime_type="audio/wav")])

    @server.tool()
    def test_embedded_resource() -> CallToolResult:
        """Return an embedded text resource (scenario tools-call-embedded-resource)."""
        resource = TextResourceContents(
            uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
        )
        return CallToolResult(content=[EmbeddedResource(type="resource", resource=resource)])

    @server.tool()
    def test_multiple_content_types() -> CallToolResult:
        """Return text, image and embedded resource blocks together (scenario tools-call-mixed-content)."""
        resource = TextResourceContents(
            uri="test://mixed-content-resource",
            mime_type="application/json",
            text=json.dumps({"test": "data", "value": 123}),
        )
        return CallToolResult(
            content=[
                TextContent(type="text", text="Multiple content types test:"),
                ImageContent(type="image", data=PNG_BASE64, mime_type="image/png"),
                EmbeddedResource(type="resource", resource=resource),
            ]
        )

    @server.tool()
    async def test_tool_with_logging(ctx: Context) -> CallToolResult:
        """Send three info log notifications ~50 ms apart while running (scenario tools-call-with-logging)."""
        await _log(ctx, state, "info", "Tool execution started")
        await asyncio.sleep(0.05)
        await _log(ctx, state, "info", "Tool processing data")
        await asyncio.sleep(0.05)
        await _log(ctx, state, "info", "Tool execution completed")
        return _text("Tool with logging executed successfully")

    @server.tool()
    async def test_tool_with_progress(ctx: Context) -> CallToolResult:
        """Report progress 0, 50 and 100 of 100 ~50 ms apart (scenario tools-call-with-progress).

        Without a ``progressToken`` in the request the SDK sends nothing; the delays still happen.
        """
        for step, progress in enumerate((0, 50, 100)):
            if step:
                await asyncio.sleep(0.05)
            await ctx.report_progress(progress, 100, f"Completed step {progress} of 100")
        return _text("Tool with progress executed successfully")

    @server.tool()
    def test_error_handling() -> CallToolResult:
        """Always fail; the SDK turns the error into ``isError: true`` (scenario tools-call-error)."""
        raise ToolError("This tool intentionally returns an error for testing")

    @server.tool()
    async def test_sampling(prompt: str, ctx: Context) -> CallToolResult:
        """Ask the client's LLM (``sampling/createMessage``) and return its answer (scenario tools-call-sampling)."""
        request = ctx.request_context
        result = await request.session.create_message(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
            max_tokens=100,
            related_request_id=request.request_id,
        )
        answer = result.content.text if isinstance(result.content, TextContent) else f"<{result.content.type}>"
        return _text(f"LLM response: {answer}")

    @server.tool()
    async def test_elicitation(message: str, ctx: Context) -> CallToolResult:
        """Ask the user for a username and email (``elicitation/create``) (scenario tools-call-elicitation)."""
        schema = {
            "type": "object",
            "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"},
            },
            "required": ["username", "email"],
        }
        result = await _elicit(ctx, message, schema)
        return _text(f"User response: action={result[0]}, content={result[1]}")

    @server.tool()
    async def test_elicitation_sep1034_defaults(ctx: Context) -> CallToolResult:
        """Elicit with a default for every primitive type (scenario elicitation-sep1034-defaults)."""
        schema = {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active",
                },
                "verified": {"type": "boolean", "description": "Verification status", "default": True},
            },
        }
        action, content = await _elicit(ctx, "Please provide user information", schema)
        return _text(f"Elicitation completed: action={action}, content={content}")

    @server.tool()
    async def test_elicitation_sep1330_enums(ctx: Context) -> CallToolResult:
        """Elicit with all five enum shapes of SEP-1330 (scenario elicitation-sep1330-enums)."""
        schema = {
            "type": "object",
            "properties": {
                "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                "titledSingle": {
                    "type": "string",
                    "oneOf": [
                        {"const": "value1", "title": "First Option"},
                        {"const": "value2", "title": "Second Option"},
                        {"const": "value3", "title": "Third Option"},
                    ],
                },
                "legacyEnum": {
                    "type": "string",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"],
                },
                "untitledMulti": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
                },
                "titledMulti": {
                    "type": "array",
                    "items": {
                        "anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"},
                        ]
                    },
                },
            },
        }
        action, content = await _elicit(ctx, "Please select values using different enum schema types", schema)
        return _text(f"Elicitation completed: action={action}, content={content}")

    @server.tool()
    async def test_reconnection(ctx: Context) -> CallToolResult:
        """Close this call's SSE stream mid-call, then answer (scenario server-sse-polling, SEP-1699).

        The client must reconnect with ``Last-Event-ID``; the result then arrives from the event
        store. The pause gives the closed stream time to be noticed before the result is stored.
        Over stdio closing is a no-op and the call simply succeeds.
        """
        await _log(ctx, state, "info", "Before disconnect")
        await ctx.close_sse_stream()
        await asyncio.sleep(0.2)
        await _log(ctx, state, "info", "After reconnect")
        return _text("Reconnection test completed")


async def _elicit(ctx: Context, message: str, schema: dict[str, Any]) -> tuple[str, str]:
    """Send a form ``elicitation/create`` on the calling request's stream; return (action, content JSON).

    The schema goes to the wire verbatim (not through a pydantic model) because the scenarios check
    exact shapes - ``enumNames``, ``oneOf`` titles, array items - that a model would not reproduce.
    """
    request = ctx.request_context
    result = await request.session.elicit_form(message, schema, related_request_id=request.request_id)
    return result.action, json.dumps(result.content or {}, sort_keys=True)


def _register_resources(server: MCPServer) -> None:
    """The ``resources/*`` fixtures."""

    @server.resource(
        "test://static-text", name="static-text", description="A static text resource", mime_type="text/plain"
    )
    def static_text() -> str:
        return "This is the content of the static text resource."

    @server.resource(
        "test://static-binary", name="static-binary", description="A static binary resource", mime_type="image/png"
    )
    def static_binary() -> bytes:
        return PNG_BYTES

    @server.resource(
        "test://template/{id}/data",
        name="template-data",
        description="A resource template whose {id} is substituted into the content",
        mime_type="application/json",
    )
    def template_data(id: str) -> str:
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})

    @server.resource(
        "test://watched-resource",
        name="watched-resource",
        description="A resource clients can subscribe to",
        mime_type="text/plain",
    )
    def watched_resource() -> str:
        return "Watched resource content"


def _register_prompts(server: MCPServer) -> None:
    """The ``prompts/*`` fixtures."""

    @server.prompt()
    def test_simple_prompt() -> list[UserMessage]:
        """A simple prompt without arguments."""
        return [UserMessage("This is a simple prompt for testing.")]

    @server.prompt()
    def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
        """A prompt with two required arguments, substituted into its text."""
        return [UserMessage(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]

    @server.prompt()
    def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:
        """A prompt embedding the resource named by its argument."""
        resource = TextResourceContents(
            uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
        )
        return [
            UserMessage(EmbeddedResource(type="resource", resource=resource)),
            UserMessage("Please process the embedded resource above."),
        ]

    @server.prompt()
    def test_prompt_with_image() -> list[UserMessage]:
        """A prompt carrying an image."""
        return [
            UserMessage(ImageContent(type="image", data=PNG_BASE64, mime_type="image/png")),
            UserMessage("Please analyze the image above."),
        ]


def _register_protocol_handlers(server: MCPServer, state: SessionState) -> None:
    """``logging/setLevel``, ``resources/(un)subscribe`` and ``completion/complete``.

    ``MCPServer`` has no decorator for the first three (they are deprecated for 2026-07-28), and
    its ``completion()`` decorator is untyped; all four are registered on the low-level server it
    wraps, which is also what advertises the matching capabilities. The attribute is private, as
    the SDK's own in-memory client acknowledges when it reaches for it.
    """
    lowlevel = server._lowlevel_server

    async def set_level(ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
        state.set_level(ctx, params.level)
        return EmptyResult()

    async def subscribe(ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        state.subscribe(ctx, str(params.uri))
        return EmptyResult()

    async def unsubscribe(ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        state.unsubscribe(ctx, str(params.uri))
        return EmptyResult()

    async def complete(ctx: ServerRequestContext[Any, Any], params: CompleteRequestParams) -> CompleteResult:
        candidates: tuple[str, ...] = ()
        if isinstance(params.ref, PromptReference) and params.ref.name == "test_prompt_with_arguments":
            candidates = COMPLETION_CANDIDATES.get(params.argument.name, ())
        values = [value for value in candidates if value.startswith(params.argument.value)]
        return CompleteResult(completion=Completion(values=values, total=len(values), has_more=False))

    lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
    lowlevel.add_request_handler("completion/complete", CompleteRequestParams, complete)


def build_server() -> MCPServer:
    """Create the fixture server with every tool, resource, prompt and handler the suite calls."""
    server = MCPServer(SERVER_NAME, version="1.0.0", log_level="WARNING", tools=[_json_schema_tool()])
    state = SessionState()
    _register_tools(server, state)
    _register_resources(server)
    _register_prompts(server)
    _register_protocol_handlers(server, state)
    return server


def http_app(server: MCPServer) -> Starlette:
    """The streamable HTTP app on ``/mcp``: resumable streams, short ``retry``, localhost-only hosts."""
    return server.streamable_http_app(
        host="127.0.0.1", event_store=InMemoryEventStore(), retry_interval=RETRY_INTERVAL_MS
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--transport", choices=("stdio", "streamable-http"), default="stdio")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore", MCPDeprecationWarning)
    server = build_server()
    if args.transport == "stdio":
        server.run("stdio")
        return

    from _serve import bind_listener, serve_app

    serve_app(http_app(server), bind_listener(args.port))


if __name__ == "__main__":
    main()
