"""A backend's own requests (sampling) reach the caller whose call caused them, or are refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.dataplane.harness import Watcher, http_backend, start_runtime, stdio_backend
from tests.servers.fixtures import ServerFactory
from vmcp_actors.errors import BackendRequestError
from vmcp_actors.runtime.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

__all__ = ["start_runtime"]

Start = Callable[..., tuple[Runtime, Watcher]]


class Answering:
    """A caller that answers sampling with its own name, after a pause (so calls overlap)."""

    def __init__(self, name: str, delay: float = 0.3) -> None:
        self.name = name
        self.delay = delay
        self.asked: list[str] = []

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        return None

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        return None

    async def request(self, request: types.ServerRequest) -> dict[str, Any]:
        assert isinstance(request, types.CreateMessageRequest)
        content = request.params.messages[0].content
        assert isinstance(content, types.TextContent)
        self.asked.append(content.text)
        await asyncio.sleep(self.delay)
        result = types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=self.name), model="test"
        )
        return result.model_dump(by_alias=True, exclude_none=True)


class Refusing(Answering):
    async def request(self, request: types.ServerRequest) -> dict[str, Any]:
        raise MCPError(types.INVALID_REQUEST, f"{self.name} says no")


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def test_concurrent_sampling_over_streamable_http_goes_to_each_caller(
    start_runtime: Start, mcp_servers: ServerFactory
) -> None:
    server = mcp_servers.dataplane("streamable-http", "web")
    runtime, watch = start_runtime(http_backend("web", server))
    watch.has_tools("web_ask")
    callers = [Answering(f"caller{i}") for i in range(5)]

    async def host() -> list[str]:
        calls = [runtime.acall_tool("web_ask", {"prompt": f"q{i}"}, relay=c) for i, c in enumerate(callers)]
        return [_text(result) for result in await asyncio.gather(*calls)]

    assert asyncio.run(host()) == [f"web:answer:caller{i}" for i in range(5)]
    assert [c.asked for c in callers] == [[f"q{i}"] for i in range(5)]
    # The backend's tool lets the refusal through as its own JSON-RPC error.
    with pytest.raises(BackendRequestError, match="nobody says no"):
        runtime.call_tool("web_ask", {"prompt": "q"}, relay=Refusing("nobody"))


def test_over_stdio_one_call_in_flight_is_enough_and_several_are_refused_with_a_reason(start_runtime: Start) -> None:
    runtime, watch = start_runtime(stdio_backend("local"))
    watch.has_tools("local_ask")
    alone = Answering("alone", delay=0.0)
    assert _text(runtime.call_tool("local_ask", {"prompt": "hi"}, relay=alone)) == "local:answer:alone"
    assert alone.asked == ["hi"]

    async def host() -> list[Any]:
        slow = asyncio.ensure_future(runtime.acall_tool("local_slow", {"seconds": 2}))
        await asyncio.sleep(0.5)
        ask = runtime.acall_tool("local_ask", {"prompt": "x"}, relay=Answering("b"))
        return list(await asyncio.gather(ask, slow, return_exceptions=True))

    asked, slow = asyncio.run(host())
    assert isinstance(asked, BackendRequestError), "two calls in flight over stdio: the request cannot be attributed"
    assert "requests are in flight" in str(asked)
    assert _text(slow) == "local:slow:"
    with pytest.raises(BackendRequestError, match="relays no requests"):
        runtime.call_tool("local_ask", {"prompt": "x"})
