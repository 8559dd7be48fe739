"""``vmcp-actors serve`` as a subprocess, used by the official SDK client (both protocol eras)."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext

from tests.serve.harness import Observer, ServeProcess, http_entry, start_serve, stdio_entry
from tests.servers.fixtures import ServerFactory

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("no_leaks"),
    pytest.mark.timeout(300),
    # logging/setLevel and resources/subscribe are deprecated for 2026-07-28, current for 2025.
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

__all__ = ["start_serve"]


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def _web(names: set[str]) -> set[str]:
    return {name for name in names if name.startswith("web_")}


def test_both_protocol_eras_list_and_call_through_serve(start_serve: Any, mcp_servers: ServerFactory) -> None:
    web = mcp_servers.dataplane("streamable-http", "web")
    old = mcp_servers.dataplane("sse", "old")
    serve: ServeProcess = start_serve([stdio_entry("local"), http_entry("web", web), http_entry("old", old, "sse")])

    async def legacy() -> None:
        observer = Observer()
        async with Client(serve.url, mode="legacy", message_handler=observer) as client:
            assert client.session.protocol_version == "2025-11-25"
            await observer.tools(client, lambda names: {"local_echo", "web_echo", "old_echo"} <= names)
            assert _text(await client.call_tool("local_echo", {"text": "a"})) == "local:a"
            assert _text(await client.call_tool("old_echo", {"text": "s"})) == "old:s"
            added = await client.call_tool("web_add", {"a": 2, "b": 3})
            assert added.structured_content == {"sum": 5}
            failed = await client.call_tool("web_fail", {"text": "x"})
            assert failed.is_error
            read = await client.read_resource("mem://web/item/7")
            assert isinstance(read.contents[0], types.TextResourceContents)
            assert read.contents[0].text == "web item 7"
            prompt = await client.get_prompt("local_greet", {"who": "bo"})
            assert isinstance(prompt.messages[0].content, types.TextContent)
            assert prompt.messages[0].content.text == "local greets bo"

    async def modern() -> None:
        async with Client(serve.url) as client:
            assert client.session.protocol_version == "2026-07-28"
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"local_echo", "web_echo"} <= names
            assert _text(await client.call_tool("web_echo", {"text": "b"})) == "web:b"

    asyncio.run(legacy())
    asyncio.run(modern())
    assert serve.get("/health").status_code == 200


def test_endpoints_and_readyz_follow_the_phase(start_serve: Any, mcp_servers: ServerFactory) -> None:
    web = mcp_servers.dataplane("streamable-http", "web")
    serve: ServeProcess = start_serve([http_entry("web", web)])

    async def tools(predicate: Any) -> None:
        observer = Observer()
        async with Client(serve.url, mode="legacy", message_handler=observer) as client:
            await observer.tools(client, predicate)

    asyncio.run(tools(lambda names: "web_echo" in names))
    ready = serve.get("/readyz")
    assert (ready.status_code, ready.json()["phase"]) == (200, "Ready")
    status = serve.get("/status").json()
    assert status["phase"] == "Ready"
    assert status["discoveredBackends"][0]["name"] == "web"
    assert status["discoveredBackends"][0]["status"] == "ready"
    health = serve.get("/api/backends/health").json()
    assert health["backends"]["web"]["status"] == "ready"
    assert health["backends"]["web"]["tools"] == 12
    assert health["backends"]["web"]["probeLatencyMs"] > 0
    assert health["backends"]["web"]["lastError"] is None
    web.kill()

    asyncio.run(tools(lambda names: not _web(names)))
    not_ready = serve.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["phase"] == "Failed"
    gone = serve.get("/api/backends/health").json()["backends"]["web"]
    assert gone["status"] == "unavailable"
    assert gone["lastError"], "an unavailable backend says why"


def test_clients_are_told_when_a_backend_vanishes_and_returns(start_serve: Any, mcp_servers: ServerFactory) -> None:
    web = mcp_servers.dataplane("streamable-http", "web")
    serve: ServeProcess = start_serve([stdio_entry("local"), http_entry("web", web)])

    async def scenario() -> None:
        observer = Observer()
        async with Client(serve.url, mode="legacy", message_handler=observer) as client:
            await observer.tools(client, lambda names: {"web_echo", "local_echo"} <= names)
            before = observer.count(types.ToolListChangedNotification)
            web.kill()
            await observer.wait(
                lambda: observer.count(types.ToolListChangedNotification) > before, "list_changed after the kill"
            )
            names = await observer.tools(client, lambda names: not _web(names))
            assert "local_echo" in names
            started = time.monotonic()
            unavailable = await client.call_tool("web_echo", {"text": "x"})
            assert time.monotonic() - started < 2
            assert unavailable.is_error
            assert "unavailable" in _text(unavailable)
            mcp_servers.restart(web)
            await observer.tools(client, lambda names: "web_echo" in names)
            assert _text(await client.call_tool("web_echo", {"text": "back"})) == "web:back"

    asyncio.run(scenario())


def test_a_2026_client_hears_of_changes_through_subscriptions_listen(start_serve: Any) -> None:
    serve: ServeProcess = start_serve([stdio_entry("local")])

    async def scenario() -> None:
        async with Client(serve.url, cache=None) as client:
            async with client.listen(tools_list_changed=True) as subscription:
                names = {tool.name for tool in (await client.list_tools()).tools}
                if "local_grow" not in names:
                    async with asyncio.timeout(60):
                        await anext(aiter(subscription))
                    names = {tool.name for tool in (await client.list_tools()).tools}
                assert "local_grow" in names
                await client.call_tool("local_grow", {"tool": "shoot"})
                async with asyncio.timeout(60):
                    event = await anext(aiter(subscription))
                assert type(event).__name__ == "ToolsListChanged"
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert "local_shoot" in names

    asyncio.run(scenario())


def test_a_backend_list_changed_reaches_clients(start_serve: Any) -> None:
    serve: ServeProcess = start_serve([stdio_entry("local")])

    async def scenario() -> None:
        observer = Observer()
        async with Client(serve.url, mode="legacy", message_handler=observer) as client:
            await observer.tools(client, lambda names: "local_grow" in names)
            assert _text(await client.call_tool("local_grow", {"tool": "sprout"})) == "local:grew:sprout"
            await observer.tools(client, lambda names: "local_sprout" in names)
            assert _text(await client.call_tool("local_sprout")) == "local:sprout"

    asyncio.run(scenario())


def test_progress_logs_and_sampling_reach_the_calling_client(start_serve: Any, mcp_servers: ServerFactory) -> None:
    web = mcp_servers.dataplane("streamable-http", "web")
    serve: ServeProcess = start_serve([stdio_entry("local"), http_entry("web", web)])

    async def client_named(name: str, stdio: bool = False) -> tuple[list[str], list[str]]:
        logs: list[str] = []
        progress_seen: list[float] = []

        async def on_log(params: types.LoggingMessageNotificationParams) -> None:
            logs.append(str(params.data))

        async def on_sample(
            context: ClientRequestContext, params: types.CreateMessageRequestParams
        ) -> types.CreateMessageResult:
            await asyncio.sleep(0.2)
            return types.CreateMessageResult(
                role="assistant", content=types.TextContent(type="text", text=name), model="m"
            )

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            progress_seen.append(progress)

        observer = Observer()
        async with Client(
            serve.url, mode="legacy", message_handler=observer, logging_callback=on_log, sampling_callback=on_sample
        ) as client:
            await observer.tools(client, lambda names: {"web_ask", "local_ask"} <= names)
            answers = await asyncio.gather(
                client.call_tool("web_ask", {"prompt": "q"}), client.call_tool("web_ask", {"prompt": "r"})
            )
            assert [_text(a) for a in answers] == [f"web:answer:{name}"] * 2
            if stdio:  # over stdio only a lone call in flight can be told apart
                assert _text(await client.call_tool("local_ask", {"prompt": "q"})) == f"local:answer:{name}"
            result = await client.call_tool("web_progress", {"steps": 3}, progress_callback=on_progress)
            assert _text(result) == "web:progressed:3"
            await client.session.set_logging_level("info")
            await client.call_tool("web_chatty", {"count": 2})
            await client.session.set_logging_level("error")
            await client.call_tool("web_chatty", {"count": 2})
        return logs, [str(p) for p in progress_seen]

    async def two_clients() -> list[tuple[list[str], list[str]]]:
        return list(await asyncio.gather(client_named("ann"), client_named("bob")))

    for logs, progress in [*asyncio.run(two_clients()), asyncio.run(client_named("cy", stdio=True))]:
        assert logs == ["web says 0", "web says 1"], "logs go to the caller only, at the level it set"
        assert progress == ["1.0", "2.0", "3.0"]


def test_resource_subscriptions_are_made_once_and_fanned_out(start_serve: Any, mcp_servers: ServerFactory) -> None:
    web = mcp_servers.dataplane("streamable-http", "web")
    serve: ServeProcess = start_serve([http_entry("web", web)])
    uri = "mem://web/greeting"

    async def scenario() -> None:
        first, second = Observer(), Observer()
        async with (
            Client(serve.url, mode="legacy", message_handler=first) as a,
            Client(serve.url, mode="legacy", message_handler=second) as b,
        ):
            await first.tools(a, lambda names: "web_touch" in names)
            await a.session.subscribe_resource(uri)
            await b.session.subscribe_resource(uri)
            assert _text(await a.call_tool("web_touch", {"uri": uri})) == "web:touched:1", "one backend subscription"
            for observer in (first, second):
                await observer.wait(functools.partial(_updated_once, observer), "updated")
            await a.session.unsubscribe_resource(uri)
            assert _text(await b.call_tool("web_touch", {"uri": uri})) == "web:touched:1"
            await second.wait(lambda: second.count(types.ResourceUpdatedNotification) == 2, "second update")
            await b.session.unsubscribe_resource(uri)
            assert _text(await b.call_tool("web_touch", {"uri": uri})) == "web:touched:0"
            assert first.count(types.ResourceUpdatedNotification) == 1

    asyncio.run(scenario())


def test_dns_rebinding_protection(start_serve: Any) -> None:
    serve: ServeProcess = start_serve([stdio_entry("local")])
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    evil_host = httpx2.post(serve.url, json=body, headers={**headers, "Host": "evil.example:80"}, timeout=10)
    assert evil_host.status_code in (403, 421)
    evil_origin = httpx2.post(serve.url, json=body, headers={**headers, "Origin": "http://evil.example"}, timeout=10)
    assert evil_origin.status_code == 403
    fine = httpx2.post(serve.url, json=body, headers=headers, timeout=10)
    assert fine.status_code == 200


def test_status_endpoints_refuse_a_foreign_host_but_probes_answer_it(start_serve: Any) -> None:
    """DNS rebinding: what says how backends fail is guarded like /mcp; the kubelet's probes are not."""
    serve: ServeProcess = start_serve([stdio_entry("local")])
    serve.get("/api/backends/health")  # answered at all (the runtime is up)
    foreign = {"Host": "evil.example:80"}
    for path in ("/status", "/api/backends/health", "/metrics"):
        assert serve.get(path, headers=foreign).status_code in (403, 421), path
        assert serve.get(path, headers={"Origin": "http://evil.example"}).status_code == 403, path
    assert serve.get("/health", headers={"Host": "10.1.2.3:4483"}).status_code == 200
    assert serve.get("/readyz", headers={"Host": "10.1.2.3:4483"}).status_code in (200, 503)
    assert serve.get("/api/backends/health").json()["leading"] is None  # no leader election here


def test_every_routed_tool_call_is_counted_in_metrics_by_outcome(start_serve: Any, mcp_servers: ServerFactory) -> None:
    web = mcp_servers.dataplane("streamable-http", "web")
    serve: ServeProcess = start_serve([http_entry("web", web)])

    async def calls() -> None:
        observer = Observer()
        async with Client(serve.url, mode="legacy", message_handler=observer) as client:
            await observer.tools(client, lambda names: "web_echo" in names)
            assert _text(await client.call_tool("web_echo", {"text": "a"})) == "web:a"
            assert _text(await client.call_tool("web_echo", {"text": "b"})) == "web:b"
            assert (await client.call_tool("web_fail", {"text": "x"})).is_error

    asyncio.run(calls())
    scraped = serve.get("/metrics").text
    assert 'vmcp_tool_calls_total{backend="web",outcome="success"} 2.0' in scraped
    assert 'vmcp_tool_calls_total{backend="web",outcome="error"} 1.0' in scraped
    assert 'vmcp_tool_call_duration_seconds_count{backend="web"} 3.0' in scraped


def test_many_concurrent_calls_through_serve(start_serve: Any, mcp_servers: ServerFactory) -> None:
    web = mcp_servers.dataplane("streamable-http", "web")
    serve: ServeProcess = start_serve([stdio_entry("local"), http_entry("web", web)])

    async def scenario() -> list[str]:
        observer = Observer()
        async with Client(serve.url, mode="legacy", message_handler=observer) as client:
            await observer.tools(client, lambda names: {"web_slow", "local_slow"} <= names)
            calls = [
                client.call_tool(f"{('web', 'local')[i % 2]}_slow", {"seconds": 0.1, "text": str(i)})
                for i in range(100)
            ]
            return [_text(result) for result in await asyncio.gather(*calls)]

    assert asyncio.run(scenario()) == [f"{('web', 'local')[i % 2]}:slow:{i}" for i in range(100)]


def test_sigterm_lets_a_call_in_flight_finish_then_exits_0_with_the_final_status(start_serve: Any) -> None:
    serve: ServeProcess = start_serve([stdio_entry("local")])

    async def scenario() -> str:
        observer = Observer()
        async with Client(serve.url, mode="legacy", message_handler=observer) as client:
            await observer.tools(client, lambda names: "local_slow" in names)
            call = asyncio.ensure_future(client.call_tool("local_slow", {"seconds": 2, "text": "last"}))
            await asyncio.sleep(0.5)
            serve.process.send_signal(15)
            return _text(await call)

    assert asyncio.run(scenario()) == "local:slow:last"
    assert serve.process.wait(timeout=60) == 0, serve.stderr_tail
    final = serve.final_status()  # a graceful stop: Pending, Ready=False reason Stopped (not Failed)
    assert final["phase"] == "Pending"
    ready = {c["type"]: c for c in final["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "Stopped")
    assert "final status" in serve.stderr_tail


def test_sigterm_does_not_wait_for_idle_event_streams(start_serve: Any) -> None:
    """A legacy client's GET stream and a 2026 client's listen stream end at shutdown, not after the drain bound."""
    serve: ServeProcess = start_serve([stdio_entry("local")])
    exited: list[float] = []

    async def scenario() -> None:
        observer = Observer()
        async with Client(serve.url, mode="legacy", message_handler=observer) as legacy:
            await observer.tools(legacy, lambda names: "local_echo" in names)
            async with Client(serve.url, cache=None) as modern, modern.listen(tools_list_changed=True) as events:
                started = time.monotonic()
                serve.process.send_signal(15)
                async for _ in events:  # the server closes the listen stream gracefully
                    pass
                code = await asyncio.to_thread(serve.process.wait, 60)
                exited.append(time.monotonic() - started)
                assert code == 0, serve.stderr_tail

    asyncio.run(scenario())
    assert exited[0] < 8.0, f"took {exited[0]:.1f}s: shutdown waited for idle streams"


def _updated_once(observer: Observer) -> bool:
    return observer.count(types.ResourceUpdatedNotification) == 1
