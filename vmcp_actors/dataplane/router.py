"""Routing a request to the backend that owns it, straight to its session on the I/O loop.

The router reads the current :class:`~vmcp_actors.dataplane.plane.DataplaneView` (one
attribute read, no lock, no actor), picks the owning backend's live route, and sends the
request on that backend's own SDK session.  Nothing serialises requests: any number may be
in flight per backend at once, as the SDK session multiplexes them.

What can go wrong, and what the caller gets:

* the name is unknown: :class:`~vmcp_actors.errors.ToolNotFoundError` (or the resource and
  prompt twins), saying which backend has it and why it is hidden, when one does;
* the owning backend is not routable now (unhealthy, unknown, unauthenticated, no session):
  :class:`~vmcp_actors.errors.BackendUnavailableError`, at once -- no timeout is waited for;
* the transport fails mid-request (the process died, the connection dropped):
  ``BackendUnavailableError`` too, and the failure is reported to the backend's actor;
* no answer in time: :class:`~vmcp_actors.errors.ToolCallTimeoutError` (the backend is sent
  a cancellation; the timeout is reported to the backend's actor);
* the backend answers with a JSON-RPC error: :class:`~vmcp_actors.errors.BackendRequestError`
  with its code, message and data.  A tool's ``isError`` result is returned, not raised.

Reported failures are passive health: the health monitor counts them at once (see
:mod:`vmcp_actors.health.actor`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import mcp_types as types
import pydantic
from mcp.client.session import ClientSession
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp.shared.uri_template import InvalidUriTemplate, UriTemplate

from vmcp_actors.backend.capabilities import CallPeer
from vmcp_actors.backend.failures import BackendError, FailureKind
from vmcp_actors.backend.io_reports import scrubbed
from vmcp_actors.backend.routes import BackendRoute
from vmcp_actors.backend.scrub_models import scrub_model, scrub_text
from vmcp_actors.dataplane.aggregation import AggregatedView
from vmcp_actors.dataplane.plane import DataplaneView, ViewCell
from vmcp_actors.errors import (
    BackendRequestError,
    BackendUnavailableError,
    CapabilityNotFoundError,
    PromptNotFoundError,
    ResourceNotFoundError,
    ToolCallTimeoutError,
    ToolNotFoundError,
    VmcpError,
)

__all__ = ["Router"]

_T = TypeVar("_T", bound=pydantic.BaseModel)


@functools.lru_cache(maxsize=1024)
def _template(text: str) -> UriTemplate | None:
    try:
        return UriTemplate.parse(text)
    except InvalidUriTemplate:
        return None


def _template_owner(view: AggregatedView, uri: str) -> str | None:
    for template in view.resource_templates:
        parsed = _template(template.uri_template)
        if parsed is not None and parsed.match(uri) is not None:
            return template.backend
    return None


def _resource_owner(view: AggregatedView, uri: str) -> str | None:
    resource = view.resources_by_uri.get(uri)
    return resource.backend if resource is not None else _template_owner(view, uri)


ToolCallRecorder = Callable[[str, str, float], object]
"""``(backend, outcome, seconds)`` after every routed tool call (the metrics); must return at once."""


def call_outcome(result: types.CallToolResult | None, error: BaseException | None) -> str:
    """The metrics' word for how a tool call ended (``vmcp_tool_calls_total{outcome}``)."""
    match error:
        case None:
            return "error" if result is not None and result.is_error else "success"
        case ToolCallTimeoutError():
            return "timeout"
        case BackendUnavailableError():
            return "unavailable"
        case BackendRequestError():
            return "rejected"
        case asyncio.CancelledError():
            return "cancelled"
        case _:
            return "other"


def _scrubbed_progress(peer: CallPeer, route: BackendRoute) -> ProgressFnT:
    """The caller's progress callback, given the backend's progress messages with secrets masked."""

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        await peer.progress(progress, total, scrub_text(message, route.redactor))

    return progress


class Router:
    """Sends requests to the owning backend's session; every method runs on the I/O loop."""

    def __init__(self, cell: ViewCell, on_tool_call: ToolCallRecorder | None = None) -> None:
        self._cell = cell
        self._on_tool_call = on_tool_call

    # ------------------------------------------------------------------ requests

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        peer: CallPeer | None = None,
        meta: types.RequestParamsMeta | None = None,
    ) -> types.CallToolResult:
        """``tools/call`` on the owning backend; its result exactly as the backend sent it."""
        view = self._cell.value
        tool = view.visible.tools_by_name.get(name)
        if tool is None:
            known = view.full.tools_by_name.get(name)
            missing = self._missing(view, ToolNotFoundError, name, known)
            if known is not None and self._on_tool_call is not None:
                self._on_tool_call(known.backend, call_outcome(None, missing), 0.0)
            raise missing
        route = view.routes[tool.backend]
        deadline = timeout or route.call_timeout
        request = types.CallToolRequest(
            params=types.CallToolRequestParams(name=tool.original_name, arguments=arguments, _meta=meta)
        )
        progress = _scrubbed_progress(peer, route) if peer is not None else None

        def send(session: ClientSession) -> Awaitable[types.CallToolResult]:
            return session.send_request(
                request, types.CallToolResult, request_read_timeout_seconds=deadline, progress_callback=progress
            )

        if self._on_tool_call is None:
            return await self._invoke(route, "tools/call", name, deadline, peer, send)
        started = time.monotonic()
        result: types.CallToolResult | None = None
        error: BaseException | None = None
        try:
            result = await self._invoke(route, "tools/call", name, deadline, peer, send)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._on_tool_call(route.backend, call_outcome(result, error), time.monotonic() - started)
        return result

    async def read_resource(
        self, uri: str, *, timeout: float | None = None, peer: CallPeer | None = None
    ) -> types.ReadResourceResult:
        """``resources/read`` on the backend that lists ``uri`` or a template matching it."""
        route = self._resource_route(uri)
        deadline = timeout or route.call_timeout
        request = types.ReadResourceRequest(params=types.ReadResourceRequestParams(uri=uri))
        return await self._invoke(
            route,
            "resources/read",
            uri,
            deadline,
            peer,
            lambda session: session.send_request(
                request, types.ReadResourceResult, request_read_timeout_seconds=deadline
            ),
        )

    async def get_prompt(
        self,
        name: str,
        arguments: dict[str, str] | None = None,
        *,
        timeout: float | None = None,
        peer: CallPeer | None = None,
    ) -> types.GetPromptResult:
        """``prompts/get`` on the owning backend, by its own prompt name."""
        view = self._cell.value
        prompt = view.visible.prompts_by_name.get(name)
        if prompt is None:
            raise self._missing(view, PromptNotFoundError, name, view.full.prompts_by_name.get(name))
        route = view.routes[prompt.backend]
        deadline = timeout or route.call_timeout
        request = types.GetPromptRequest(
            params=types.GetPromptRequestParams(name=prompt.original_name, arguments=arguments)
        )
        return await self._invoke(
            route,
            "prompts/get",
            name,
            deadline,
            peer,
            lambda session: session.send_request(request, types.GetPromptResult, request_read_timeout_seconds=deadline),
        )

    async def complete(
        self,
        ref: types.PromptReference | types.ResourceTemplateReference,
        argument: types.CompletionArgument,
        context: types.CompletionContext | None = None,
        *,
        timeout: float | None = None,
    ) -> types.CompleteResult:
        """``completion/complete`` on the backend that owns the prompt or resource template."""
        view = self._cell.value
        if isinstance(ref, types.PromptReference):
            prompt = view.visible.prompts_by_name.get(ref.name)
            if prompt is None:
                raise self._missing(view, PromptNotFoundError, ref.name, view.full.prompts_by_name.get(ref.name))
            backend, ref = prompt.backend, ref.model_copy(update={"name": prompt.original_name})
            capability = ref.name
        else:
            owners = [t.backend for t in view.visible.resource_templates if t.uri_template == ref.uri]
            if not owners:
                raise self._missing_resource(view, ref.uri)
            backend, capability = owners[0], ref.uri
        route = view.routes[backend]
        deadline = timeout or route.call_timeout
        request = types.CompleteRequest(params=types.CompleteRequestParams(ref=ref, argument=argument, context=context))
        return await self._invoke(
            route,
            "completion/complete",
            capability,
            deadline,
            None,
            lambda session: session.send_request(request, types.CompleteResult, request_read_timeout_seconds=deadline),
        )

    async def subscribe_resource(self, uri: str, *, subscribe: bool = True, timeout: float | None = None) -> str:
        """``resources/subscribe`` (or unsubscribe) on the owning backend; returns its name."""
        route = self._resource_route(uri)
        deadline = timeout or route.call_timeout
        request: types.SubscribeRequest | types.UnsubscribeRequest
        if subscribe:
            request = types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri))
        else:
            request = types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=uri))
        op = request.method
        await self._invoke(
            route,
            op,
            uri,
            deadline,
            None,
            lambda session: session.send_request(request, types.EmptyResult, request_read_timeout_seconds=deadline),
        )
        return route.backend

    # ------------------------------------------------------------------ plumbing

    async def _invoke(
        self,
        route: BackendRoute,
        op: str,
        capability: str,
        timeout: float,
        peer: CallPeer | None,
        send: Callable[[ClientSession], Awaitable[_T]],
    ) -> _T:
        with route.events.calling(peer):
            try:
                result = await route.connection.request(op, timeout, send)
            except BackendError as error:
                raise self._failed(route, op, capability, timeout, error) from error
        return scrub_model(result, route.redactor)  # the backend may echo the secrets it was given

    def _failed(self, route: BackendRoute, op: str, capability: str, timeout: float, error: BackendError) -> VmcpError:
        failure = scrubbed(error.failure, route.redactor)
        cause = error.__cause__
        if failure.http_status is None and isinstance(cause, MCPError):
            if cause.code not in (types.CONNECTION_CLOSED, types.REQUEST_TIMEOUT):
                backend_error = scrub_model(cause.error, route.redactor)
                return BackendRequestError(route.backend, cause.code, backend_error.message, backend_error.data)
        elif failure.kind is FailureKind.PROTOCOL and failure.http_status is None:
            return BackendRequestError(route.backend, types.INTERNAL_ERROR, failure.message)
        if failure.kind is not FailureKind.SESSION_LOST:
            route.report_failure(failure)  # the connection reports a lost session itself
        if failure.kind is FailureKind.TIMEOUT:
            return ToolCallTimeoutError(route.backend, capability, timeout, op)
        health = self._cell.value.health.get(route.backend)
        return BackendUnavailableError(
            route.backend, failure.message, health=health.value if health else None, capability=capability
        )

    def _resource_route(self, uri: str) -> BackendRoute:
        view = self._cell.value
        backend = _resource_owner(view.visible, uri)
        if backend is None:
            raise self._missing_resource(view, uri)
        return view.routes[backend]

    def _missing_resource(self, view: DataplaneView, uri: str) -> VmcpError:
        backend = _resource_owner(view.full, uri)
        if backend is not None:
            return self._unavailable(view, backend, uri)
        return self._not_found(view, ResourceNotFoundError, "resource", uri)

    def _missing(self, view: DataplaneView, error: type[CapabilityNotFoundError], name: str, known: Any) -> VmcpError:
        if known is not None:
            return self._unavailable(view, known.backend, name)
        return self._not_found(view, error, error.kind, name)

    def _unavailable(self, view: DataplaneView, backend: str, capability: str) -> BackendUnavailableError:
        health = view.health.get(backend)
        return BackendUnavailableError(
            backend, view.why_not_routable(backend), health=health.value if health else None, capability=capability
        )

    def _not_found(
        self, view: DataplaneView, error: type[CapabilityNotFoundError], kind: str, name: str
    ) -> CapabilityNotFoundError:
        hidden = view.full.hidden_named(kind, name)
        if hidden:
            item = hidden[0]
            health = view.health.get(item.backend)
            return error(
                name,
                f"backend {item.backend!r} has it, but it is not exposed ({item.reason})",
                backend=item.backend,
                health=health.value if health else None,
            )
        dark = [b for b in view.backends if not view.routable(b) and b not in view.catalogued]
        reason = ""
        if dark:
            reason = "backends not routable now, whose capabilities are not known: " + ", ".join(
                f"{b} ({view.why_not_routable(b)})" for b in dark
            )
        if len(dark) == 1:
            health = view.health.get(dark[0])
            return error(name, reason, backend=dark[0], health=health.value if health else None)
        return error(name, reason)
