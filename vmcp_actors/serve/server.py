"""The MCP server of ``vmcp-actors serve``: the SDK's low-level ``Server``, every request routed by the runtime.

The low-level server (not ``MCPServer``) because the tool, resource and prompt lists are
the runtime's, and change at any time, and because results must pass through untouched:
a handler returns the backend's ``CallToolResult`` object as it came.

For each request the handler passes a :class:`ClientPeer` to the runtime, so what the
backend sends while serving it reaches this client: progress (by the client's own progress
token), log messages (at the client's level), and the backend's requests -- sampling,
elicitation, roots -- sent to the client on the same request's stream, with the answer
going back to the backend.

Errors become what the protocol expects: an unknown name is ``-32602`` (resources:
``-32002``), the backend's own JSON-RPC error is passed on as it was, and a backend that is
unavailable or too slow makes a tool result with ``isError`` (an error the model can read)
or, for other requests, ``-32603`` with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Final, TypeVar

import mcp_types as types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import ListenHandler
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from pydantic import BaseModel

from vmcp_actors.errors import (
    BackendRequestError,
    BackendUnavailableError,
    CapabilityNotFoundError,
    ResourceNotFoundError,
    ToolCallTimeoutError,
    VmcpError,
)
from vmcp_actors.runtime.runtime import Runtime
from vmcp_actors.serve.clients import ClientRegistry

__all__ = ["ClientPeer", "VmcpServer", "build_server"]

SERVER_NAME: Final = "vmcp-actors"
SERVER_VERSION: Final = "0.1.0"
RESOURCE_NOT_FOUND: Final = -32002
"""The code the MCP specification gives ``resources/read`` of an unknown URI."""

_T = TypeVar("_T")


class VmcpServer(Server[Any]):
    """The low-level server, announcing ``listChanged`` for tools, resources and prompts."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        """What ``initialize`` answers: the handlers' capabilities, every list change announced."""
        options = notification_options or NotificationOptions(
            prompts_changed=True, resources_changed=True, tools_changed=True
        )
        return super().create_initialization_options(options, experimental_capabilities, extensions)


class ClientPeer:
    """The client of one request, as the runtime's relay (a ``CallPeer``)."""

    def __init__(self, ctx: ServerRequestContext[Any, Any], clients: ClientRegistry) -> None:
        self._ctx = ctx
        self._clients = clients

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        """Progress goes to the client under its own progress token (none: nothing is sent)."""
        await self._ctx.session.report_progress(progress, total, message)

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """A log message on this request's stream, if the client's level lets it through."""
        if self._clients.allows(self._ctx, params.level):
            notification = types.LoggingMessageNotification(params=params)
            await self._ctx.session.send_notification(notification, related_request_id=self._ctx.request_id)

    async def request(self, request: types.ServerRequest) -> dict[str, Any]:
        """Ask the client, on this request's stream, and return its answer (``MCPError`` if it refuses)."""
        result_type: type[BaseModel]
        if isinstance(request, types.CreateMessageRequest):
            with_tools = bool(request.params.tools or request.params.tool_choice)
            result_type = types.CreateMessageResultWithTools if with_tools else types.CreateMessageResult
        elif isinstance(request, types.ElicitRequest):
            result_type = types.ElicitResult
        elif isinstance(request, types.ListRootsRequest):
            result_type = types.ListRootsResult
        else:
            raise MCPError(types.METHOD_NOT_FOUND, f"vmcp does not relay {request.method}")
        metadata = ServerMessageMetadata(related_request_id=self._ctx.request_id)
        result = await self._ctx.session.send_request(request, result_type, metadata=metadata)
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def _as_mcp_error(error: VmcpError) -> MCPError:
    if isinstance(error, BackendRequestError):
        return MCPError(error.code, error.message, error.data)
    if isinstance(error, ResourceNotFoundError):
        return MCPError(RESOURCE_NOT_FOUND, str(error))
    if isinstance(error, CapabilityNotFoundError):
        return MCPError(types.INVALID_PARAMS, str(error))
    return MCPError(types.INTERNAL_ERROR, str(error))


async def _routed(call: Awaitable[_T]) -> _T:
    try:
        return await call
    except VmcpError as error:
        raise _as_mcp_error(error) from None


_Ctx = ServerRequestContext[Any, Any]


class _Handlers:
    """The request handlers: each asks the runtime, with this client as the relay."""

    def __init__(self, runtime: Runtime, clients: ClientRegistry) -> None:
        self.runtime = runtime
        self.clients = clients

    def peer(self, ctx: _Ctx) -> ClientPeer:
        return ClientPeer(ctx, self.clients)

    async def list_tools(self, ctx: _Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool.tool for tool in self.runtime.tools()])

    async def call_tool(self, ctx: _Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            return await self.runtime.acall_tool(params.name, params.arguments, relay=self.peer(ctx))
        except (BackendUnavailableError, ToolCallTimeoutError) as error:
            return types.CallToolResult(content=[types.TextContent(type="text", text=str(error))], is_error=True)
        except VmcpError as error:
            raise _as_mcp_error(error) from None

    async def list_resources(self, ctx: _Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[item.resource for item in self.runtime.resources()])

    async def list_templates(
        self, ctx: _Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        templates = [item.template for item in self.runtime.resource_templates()]
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def read_resource(self, ctx: _Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        return await _routed(self.runtime.aread_resource(str(params.uri), relay=self.peer(ctx)))

    async def subscribe(self, ctx: _Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        await _routed(self.clients.subscribe(ctx, str(params.uri)))
        return types.EmptyResult()

    async def unsubscribe(self, ctx: _Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        await _routed(self.clients.unsubscribe(ctx, str(params.uri)))
        return types.EmptyResult()

    async def list_prompts(self, ctx: _Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[item.prompt for item in self.runtime.prompts()])

    async def get_prompt(self, ctx: _Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        return await _routed(self.runtime.aget_prompt(params.name, params.arguments, relay=self.peer(ctx)))

    async def complete(self, ctx: _Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        return await _routed(self.runtime.acomplete(params.ref, params.argument, params.context))

    async def set_level(self, ctx: _Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        self.clients.set_level(ctx, params.level)
        return types.EmptyResult()

    async def __call__(self, ctx: _Ctx, call_next: CallNext) -> HandlerResult:
        """The middleware: every request and notification keeps the client registry current."""
        self.clients.seen(ctx)
        return await call_next(ctx)


def build_server(
    runtime: Runtime, clients: ClientRegistry, listen: ListenHandler | None = None, instructions: str | None = None
) -> VmcpServer:
    """The vMCP server: every handler asks ``runtime``; ``clients`` tracks who is connected.

    ``listen`` serves ``subscriptions/listen`` (2026-07-28) from ``clients.bus``; pass one to
    be able to close its streams at shutdown.
    """
    handlers = _Handlers(runtime, clients)
    server = VmcpServer(
        SERVER_NAME,
        version=SERVER_VERSION,
        instructions=instructions,
        on_list_tools=handlers.list_tools,
        on_call_tool=handlers.call_tool,
        on_list_resources=handlers.list_resources,
        on_list_resource_templates=handlers.list_templates,
        on_read_resource=handlers.read_resource,
        on_subscribe_resource=handlers.subscribe,
        on_unsubscribe_resource=handlers.unsubscribe,
        on_list_prompts=handlers.list_prompts,
        on_get_prompt=handlers.get_prompt,
        on_completion=handlers.complete,
        on_subscriptions_listen=listen or ListenHandler(clients.bus),
    )
    # Registered here rather than as ``on_set_logging_level``, which warns that logging is
    # deprecated at 2026-07-28: it is, but the 2025 revisions this also serves have it.
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, handlers.set_level)
    # Replaces the SDK's default OpenTelemetry middleware (a no-op without an exporter, but
    # not free per request) with the one that keeps the client registry current.
    server.middleware = [handlers]
    return server
