"""The data plane half of the runtime's embedding API: list, call, read, get, subscribe.

:class:`DataplaneAPI` is mixed into :class:`~vmcp_actors.runtime.runtime.Runtime`.  Listings
(``tools()``, ``resources()``, ...) read the current view: no I/O, no waiting on any actor.
Requests come in two flavours with the same arguments:

* ``call_tool(...)`` for threads: the request runs on the runtime's I/O loop and the
  calling thread waits for it (it must not be that loop's own thread);
* ``await acall_tool(...)`` for asyncio hosts: on the runtime's own loop the request runs
  in the caller's task; on any other loop the caller awaits it without blocking its loop.

Every request is bounded by ``timeout`` (default: the backend's ``timeout``, else 60 s).
``on_progress(progress, total, message)`` and ``on_log(params)`` receive what the backend
sends during the call; they run on the runtime's I/O thread and must return quickly.  A
``relay`` (:class:`~vmcp_actors.backend.capabilities.CallPeer`) receives those and the
backend's own requests (sampling, elicitation, roots) too; ``vmcp-actors serve`` passes one
per client request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import mcp_types as types
from mcp.shared.exceptions import MCPError

from vmcp_actors.actorkit.loop import LoopThread, LoopThreadStoppedError
from vmcp_actors.backend.capabilities import CallPeer
from vmcp_actors.dataplane.aggregation import (
    Hidden,
    RoutedPrompt,
    RoutedResource,
    RoutedResourceTemplate,
    RoutedTool,
)
from vmcp_actors.dataplane.notify import Subscriber
from vmcp_actors.dataplane.plane import Dataplane, DataplaneView
from vmcp_actors.dataplane.router import Router
from vmcp_actors.errors import RuntimeStoppedError

__all__ = ["CallbackPeer", "DataplaneAPI", "ProgressCallback"]

_T = TypeVar("_T")

ProgressCallback = Callable[[float, float | None, str | None], object]
LogCallback = Callable[[types.LoggingMessageNotificationParams], object]


class CallbackPeer:
    """A :class:`CallPeer` made of plain callbacks; the backend's own requests are refused."""

    def __init__(self, on_progress: ProgressCallback | None, on_log: LogCallback | None) -> None:
        self._on_progress = on_progress
        self._on_log = on_log

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        """Pass progress to ``on_progress``."""
        if self._on_progress is not None:
            self._on_progress(progress, total, message)

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """Pass a log message to ``on_log``."""
        if self._on_log is not None:
            self._on_log(params)

    async def request(self, request: types.ServerRequest) -> dict[str, Any]:
        """Refuse: an embedding caller with callbacks has no client to ask."""
        raise MCPError(types.INVALID_REQUEST, f"vmcp cannot relay {request.method}: the caller has no client to ask")


def _peer(relay: CallPeer | None, on_progress: ProgressCallback | None, on_log: LogCallback | None) -> CallPeer | None:
    if relay is not None:
        return relay
    if on_progress is None and on_log is None:
        return None
    return CallbackPeer(on_progress, on_log)


class DataplaneAPI:
    """Mixin for the runtime (see the module doc); needs ``_dataplane``, ``_router`` and ``_io``."""

    _dataplane: Dataplane
    _router: Router
    _io: LoopThread

    @property
    def io_thread(self) -> LoopThread:
        """The I/O loop thread that owns every backend session (an asyncio server can share it)."""
        return self._io

    # ------------------------------------------------------------------ listings (no I/O)

    def view(self) -> DataplaneView:
        """The data plane's current view (routes, health, full and visible aggregation)."""
        return self._dataplane.cell.value

    def tools(self) -> tuple[RoutedTool, ...]:
        """Every tool clients may see now, after aggregation, from routable backends only."""
        return self._dataplane.cell.value.visible.tools

    def resources(self) -> tuple[RoutedResource, ...]:
        """Every resource of the routable backends."""
        return self._dataplane.cell.value.visible.resources

    def resource_templates(self) -> tuple[RoutedResourceTemplate, ...]:
        """Every resource template of the routable backends."""
        return self._dataplane.cell.value.visible.resource_templates

    def prompts(self) -> tuple[RoutedPrompt, ...]:
        """Every prompt clients may see now."""
        return self._dataplane.cell.value.visible.prompts

    def hidden(self) -> tuple[Hidden, ...]:
        """Backend capabilities the aggregation hides (filtered, or a name clash), with the reason."""
        return self._dataplane.cell.value.full.hidden

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every new status and data plane event; returns ``unsubscribe``.

        Called from the runtime's notification thread, in order, never from an actor; a
        callback that raises is logged and stays subscribed.
        """
        return self._dataplane.notifier.subscribe(callback)

    # ------------------------------------------------------------------ requests

    def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        on_log: LogCallback | None = None,
        relay: CallPeer | None = None,
    ) -> types.CallToolResult:
        """Call a tool by its exposed name; the backend's result (``isError`` included) as sent."""
        peer = _peer(relay, on_progress, on_log)
        return self._wait(self._router.call_tool(name, arguments, timeout=timeout, peer=peer))

    async def acall_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        on_log: LogCallback | None = None,
        relay: CallPeer | None = None,
        meta: types.RequestParamsMeta | None = None,
    ) -> types.CallToolResult:
        """The awaitable :meth:`call_tool`."""
        peer = _peer(relay, on_progress, on_log)
        return await self._await(self._router.call_tool(name, arguments, timeout=timeout, peer=peer, meta=meta))

    def read_resource(self, uri: str, *, timeout: float | None = None) -> types.ReadResourceResult:
        """Read a resource from the backend that lists it (or a template matching it)."""
        return self._wait(self._router.read_resource(uri, timeout=timeout))

    async def aread_resource(
        self, uri: str, *, timeout: float | None = None, relay: CallPeer | None = None
    ) -> types.ReadResourceResult:
        """The awaitable :meth:`read_resource`."""
        return await self._await(self._router.read_resource(uri, timeout=timeout, peer=relay))

    def get_prompt(
        self, name: str, arguments: dict[str, str] | None = None, *, timeout: float | None = None
    ) -> types.GetPromptResult:
        """Get a prompt by its exposed name."""
        return self._wait(self._router.get_prompt(name, arguments, timeout=timeout))

    async def aget_prompt(
        self,
        name: str,
        arguments: dict[str, str] | None = None,
        *,
        timeout: float | None = None,
        relay: CallPeer | None = None,
    ) -> types.GetPromptResult:
        """The awaitable :meth:`get_prompt`."""
        return await self._await(self._router.get_prompt(name, arguments, timeout=timeout, peer=relay))

    async def acomplete(
        self,
        ref: types.PromptReference | types.ResourceTemplateReference,
        argument: types.CompletionArgument,
        context: types.CompletionContext | None = None,
    ) -> types.CompleteResult:
        """``completion/complete`` for an exposed prompt or resource template."""
        return await self._await(self._router.complete(ref, argument, context))

    async def asubscribe_resource(self, uri: str, *, subscribe: bool = True) -> str:
        """Subscribe to (or unsubscribe from) a resource at its backend; returns the backend's name.

        Updates then arrive as :class:`~vmcp_actors.dataplane.notify.ResourceUpdated` events.
        """
        return await self._await(self._router.subscribe_resource(uri, subscribe=subscribe))

    # ------------------------------------------------------------------ running on the loop

    def _wait(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self._io.in_loop_thread():
            coro.close()
            raise RuntimeError("the blocking API cannot run on the runtime's own loop; await its a* twin instead")
        future = self._submit(coro)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise self._stopped_error() from None

    async def _await(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if asyncio.get_running_loop() is self._io.loop:
            return await coro
        future = self._submit(coro)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the caller was cancelled (and so was the request, with it)
            raise self._stopped_error() from None

    def _submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        try:
            return self._io.submit(coro)
        except LoopThreadStoppedError:
            raise self._stopped_error() from None

    @staticmethod
    def _stopped_error() -> Exception:
        return RuntimeStoppedError("the runtime has been stopped; its backends take no more requests")
