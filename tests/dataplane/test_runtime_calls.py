"""The runtime as a vMCP data plane, against real MCP backends over stdio, streamable HTTP and SSE."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import mcp_types as types
import pytest

from tests.dataplane.harness import Watcher, http_backend, start_runtime, stdio_backend
from tests.servers.fixtures import ServerFactory
from vmcp_actors.config.aggregation import AggregationConfig, ConflictResolution, ToolOverride, WorkloadTools
from vmcp_actors.dataplane.notify import CatalogueChanged
from vmcp_actors.errors import (
    BackendRequestError,
    PromptNotFoundError,
    ResourceNotFoundError,
    ToolCallTimeoutError,
    ToolNotFoundError,
)
from vmcp_actors.model.status import Status
from vmcp_actors.runtime.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

__all__ = ["start_runtime"]

Start = Callable[..., tuple[Runtime, Watcher]]
DP_TOOLS = (
    *("echo", "add", "whoami", "slow", "fail", "progress", "chatty"),
    *("reveal", "reveal_error", "grow", "ask", "touch"),
)


def _text(result: types.CallToolResult) -> str:
    (block,) = result.content
    assert isinstance(block, types.TextContent)
    return block.text


def test_tools_from_every_transport_are_aggregated_with_the_default_prefix(
    start_runtime: Start, mcp_servers: ServerFactory
) -> None:
    http = mcp_servers.dataplane("streamable-http", "web")
    sse = mcp_servers.dataplane("sse", "old")
    runtime, watch = start_runtime(stdio_backend("local"), http_backend("web", http), http_backend("old", sse, "sse"))
    watch.tools(*(f"{backend}_{tool}" for backend in ("local", "web", "old") for tool in DP_TOOLS))
    for backend in ("local", "web", "old"):
        assert _text(runtime.call_tool(f"{backend}_echo", {"text": "hi"})) == f"{backend}:hi"
    tool = next(t for t in runtime.tools() if t.name == "web_add")
    assert (tool.backend, tool.original_name) == ("web", "add")
    assert tool.input_schema["properties"].keys() == {"a", "b"}
    assert tool.output_schema is not None
    result = runtime.call_tool("web_add", {"a": 2, "b": 3})
    assert result.structured_content == {"sum": 5}
    assert not result.is_error


def test_a_backends_tool_prefix_names_its_tools_and_a_new_one_renames_them(
    start_runtime: Start, mcp_servers: ServerFactory
) -> None:
    http = mcp_servers.dataplane("streamable-http", "web")
    spec = attrs.evolve(http_backend("web", http), tool_prefix="w.")
    runtime, watch = start_runtime(spec)
    watch.has_tools("w.echo")
    assert _text(runtime.call_tool("w.echo", {"text": "hi"})) == "web:hi"
    session = runtime.view().routes["web"].connection
    runtime.update_backend(attrs.evolve(spec, tool_prefix="x."))
    watch.has_tools("x.echo")
    assert runtime.view().routes["web"].connection is session, "renamed on the same session, no restart"
    assert "w.echo" not in {tool.name for tool in runtime.tools()}
    assert _text(runtime.call_tool("x.echo", {"text": "again"})) == "web:again"


def test_conflict_strategies_filters_and_overrides_apply_to_live_backends(
    start_runtime: Start, mcp_servers: ServerFactory
) -> None:
    http = mcp_servers.dataplane("streamable-http", "web")
    aggregation = AggregationConfig(
        conflict_resolution=ConflictResolution.PRIORITY,
        priority_order=("web",),
        tools=(
            WorkloadTools("local", filter=("echo", "whoami", "add"), overrides={"add": ToolOverride(name="plus")}),
            WorkloadTools("web", filter=("echo", "whoami"), overrides={"echo": ToolOverride(description="web echo")}),
        ),
    )
    runtime, watch = start_runtime(stdio_backend("local"), http_backend("web", http), aggregation=aggregation)
    watch.tools("echo", "whoami", "plus")
    assert _text(runtime.call_tool("whoami")) == "web"  # priorityOrder: web keeps the clashing names
    assert _text(runtime.call_tool("plus", {"a": 1, "b": 2})) == '{\n  "sum": 3\n}'
    echo = next(t for t in runtime.tools() if t.name == "echo")
    assert echo.description == "web echo"
    hidden = {(h.backend, h.name) for h in runtime.hidden()}
    assert ("local", "echo") in hidden
    assert ("web", "slow") in hidden
    with pytest.raises(ToolNotFoundError, match="filtered out") as caught:
        runtime.call_tool("slow", {"seconds": 0})
    assert caught.value.backend in ("local", "web")


def test_manual_strategy_hides_an_unresolved_clash(start_runtime: Start, mcp_servers: ServerFactory) -> None:
    http = mcp_servers.dataplane("streamable-http", "web")
    aggregation = AggregationConfig(
        conflict_resolution=ConflictResolution.MANUAL,
        tools=(
            WorkloadTools("local", filter=("whoami", "echo"), overrides={"whoami": ToolOverride(name="local_who")}),
            WorkloadTools("web", filter=("whoami", "echo")),
        ),
    )
    runtime, watch = start_runtime(stdio_backend("local"), http_backend("web", http), aggregation=aggregation)
    watch.tools("local_who", "whoami")
    assert _text(runtime.call_tool("local_who")) == "local"
    assert _text(runtime.call_tool("whoami")) == "web"
    assert {h.backend for h in runtime.hidden() if h.name == "echo"} == {"local", "web"}
    with pytest.raises(ToolNotFoundError, match="unresolved conflict"):
        runtime.call_tool("echo", {"text": "x"})


def test_results_come_back_exactly_as_the_backend_sent_them(start_runtime: Start) -> None:
    runtime, watch = start_runtime(stdio_backend("conf", script="conformance"))
    watch.has_tools("conf_test_image_content", "conf_test_multiple_content_types")
    image = runtime.call_tool("conf_test_image_content")
    (block,) = image.content
    assert isinstance(block, types.ImageContent)
    assert block.mime_type == "image/png"
    audio = runtime.call_tool("conf_test_audio_content").content[0]
    assert isinstance(audio, types.AudioContent)
    assert audio.mime_type == "audio/wav"
    embedded = runtime.call_tool("conf_test_embedded_resource").content[0]
    assert isinstance(embedded, types.EmbeddedResource)
    assert embedded.resource.uri == "test://embedded-resource"
    mixed = runtime.call_tool("conf_test_multiple_content_types").content
    assert [b.type for b in mixed] == ["text", "image", "resource"]
    error = runtime.call_tool("conf_test_error_handling")
    assert error.is_error
    assert "intentionally" in _text(error)
    schema_tool = next(t for t in runtime.tools() if t.original_name == "json_schema_2020_12_tool")
    assert schema_tool.input_schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema_tool.input_schema["additionalProperties"] is False


def test_resources_templates_and_prompts(start_runtime: Start, mcp_servers: ServerFactory) -> None:
    http = mcp_servers.dataplane("streamable-http", "web")
    runtime, watch = start_runtime(stdio_backend("local"), http_backend("web", http))
    watch.until(lambda: len(runtime.resources()) == 2 and len(runtime.prompts()) == 2, "resources and prompts")
    assert {(r.uri, r.backend) for r in runtime.resources()} == {
        ("mem://local/greeting", "local"),
        ("mem://web/greeting", "web"),
    }
    assert {t.uri_template for t in runtime.resource_templates()} == {"mem://local/item/{id}", "mem://web/item/{id}"}
    read = runtime.read_resource("mem://web/greeting")
    (contents,) = read.contents
    assert isinstance(contents, types.TextResourceContents)
    assert contents.text == "hello from web"
    item = runtime.read_resource("mem://local/item/42").contents[0]
    assert isinstance(item, types.TextResourceContents)
    assert item.text == "local item 42"
    assert {p.name for p in runtime.prompts()} == {"local_greet", "web_greet"}
    prompt = runtime.get_prompt("web_greet", {"who": "ann"})
    assert isinstance(prompt.messages[0].content, types.TextContent)
    assert prompt.messages[0].content.text == "web greets ann"
    with pytest.raises(ResourceNotFoundError):
        runtime.read_resource("mem://nobody/greeting")
    with pytest.raises(PromptNotFoundError):
        runtime.get_prompt("greet", {"who": "x"})


def test_errors_say_what_to_do(start_runtime: Start) -> None:
    runtime, watch = start_runtime(stdio_backend("local"))
    watch.has_tools("local_echo")
    with pytest.raises(ToolNotFoundError, match="'nope' not found"):
        runtime.call_tool("nope")
    assert runtime.call_tool("local_add", {"a": "not a number"}).is_error  # the tool's own error: a result
    watch.until(lambda: len(runtime.prompts()) == 1, "the prompt")
    with pytest.raises(BackendRequestError, match="Missing required arguments") as caught:
        runtime.get_prompt("local_greet", {})  # the backend answers with a JSON-RPC error
    assert caught.value.backend == "local"
    started = time.monotonic()
    with pytest.raises(ToolCallTimeoutError) as timeout:
        runtime.call_tool("local_slow", {"seconds": 30}, timeout=0.5)
    assert time.monotonic() - started < 10
    assert timeout.value.backend == "local"
    # Passive health: the timeout counts as a failed check at once, without waiting for a probe.
    watch.until(lambda: any(_failures(status, "local") for status in watch.of_type(Status)), "the timeout counted")


def _failures(status: Status, backend: str) -> int:
    entry = status.backend(backend)
    return entry.consecutive_failures if entry else 0


def _appender(into: list[Any]) -> Callable[..., None]:
    return lambda *args: into.append(args)


def test_progress_and_log_messages_reach_the_caller(start_runtime: Start, mcp_servers: ServerFactory) -> None:
    http = mcp_servers.dataplane("streamable-http", "web")
    runtime, watch = start_runtime(http_backend("web", http), stdio_backend("local"))
    watch.has_tools("web_progress", "local_chatty")
    for backend in ("web", "local"):
        progress: list[tuple[float, float | None, str | None]] = []
        logs: list[types.LoggingMessageNotificationParams] = []
        result = runtime.call_tool(f"{backend}_progress", {"steps": 3}, on_progress=_appender(progress))
        assert _text(result) == f"{backend}:progressed:3"
        assert progress == [(1.0, 3.0, "step 1"), (2.0, 3.0, "step 2"), (3.0, 3.0, "step 3")]
        runtime.call_tool(f"{backend}_chatty", {"count": 3}, on_log=logs.append)
        assert [entry.data for entry in logs] == [f"{backend} says {i}" for i in range(3)]


def test_a_backend_list_changed_refreshes_its_catalogue(start_runtime: Start, mcp_servers: ServerFactory) -> None:
    http = mcp_servers.dataplane("streamable-http", "web")
    runtime, watch = start_runtime(http_backend("web", http), stdio_backend("local"))
    watch.has_tools("web_grow", "local_grow")
    for backend in ("web", "local"):
        assert _text(runtime.call_tool(f"{backend}_grow", {"tool": "fresh"})) == f"{backend}:grew:fresh"
        watch.has_tools(f"{backend}_fresh")
        assert _text(runtime.call_tool(f"{backend}_fresh")) == f"{backend}:fresh"
    changes = watch.of_type(CatalogueChanged)
    assert any("web_fresh" in {t.name for t in c.view.tools} for c in changes)


def test_subscribers_get_statuses_and_catalogue_changes_and_a_raising_one_is_kept(start_runtime: Start) -> None:
    runtime, watch = start_runtime()
    calls: list[Any] = []

    def bad(event: Any) -> None:
        calls.append(event)
        raise RuntimeError("subscriber bug")

    unsubscribe = runtime.subscribe(bad)
    runtime.add_backend(stdio_backend("late"))
    watch.has_tools("late_echo")
    watch.until(lambda: len(calls) >= 2, "the raising subscriber to be called again")
    assert any(isinstance(e, Status) for e in watch.events)
    assert any(isinstance(e, CatalogueChanged) for e in watch.events)
    assert threading.current_thread().name not in {"vmcp-notify"}
    unsubscribe()
    runtime.remove_backend("late")
    watch.tools()
    count = len(calls)
    runtime.add_backend(stdio_backend("later"))
    watch.has_tools("later_echo")
    assert len(calls) == count


def test_many_concurrent_calls_across_backends_from_an_asyncio_host(
    start_runtime: Start, mcp_servers: ServerFactory
) -> None:
    http = mcp_servers.dataplane("streamable-http", "web")
    sse = mcp_servers.dataplane("sse", "old")
    runtime, watch = start_runtime(stdio_backend("local"), http_backend("web", http), http_backend("old", sse, "sse"))
    watch.has_tools("local_echo", "web_echo", "old_echo")

    async def host() -> tuple[list[str], int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        ticking = asyncio.create_task(ticker())
        backends = ("local", "web", "old")
        calls = [runtime.acall_tool(f"{backends[i % 3]}_slow", {"seconds": 0.2, "text": str(i)}) for i in range(100)]
        results = await asyncio.gather(*calls)
        stop.set()
        await ticking
        return [_text(r) for r in results], ticks

    started = time.monotonic()
    texts, ticks = asyncio.run(host())
    elapsed = time.monotonic() - started
    backends = ("local", "web", "old")
    assert texts == [f"{backends[i % 3]}:slow:{i}" for i in range(100)]
    assert elapsed < 20, "calls run concurrently, not one after another (100 x 0.2 s = 20 s)"
    assert ticks > 10, "the host's event loop kept running while it awaited the calls"
