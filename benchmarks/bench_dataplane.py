"""The data plane's cost: tools/call through the runtime and through ``serve``, against direct calls.

One streamable-HTTP echo backend (the SDK's server, ``tests/servers/echo_server.py``).  In
one run, ``--calls`` (2,000) ``tools/call`` of ``echo`` at 1 and 16 concurrent callers for:

1. in process: ``await runtime.acall_tool`` from an asyncio host loop (one thread hop per
   call), the same from the runtime's own loop (no hop), against a plain SDK
   ``ClientSession`` to the backend (the baseline);
2. over the network: the SDK ``Client`` through ``vmcp-actors serve`` against the same
   client straight to the backend, on the 2026-07-28 protocol and on the 2025-11-25 one.

Reported: p50 and p99 latency, calls/s, and ratios to the baseline of the same run
(medians over ``--repeat`` runs).  Targets: in process <= 1.10x p50 and >= 0.90x calls/s;
through serve >= 0.80x calls/s at 16 callers and <= 1.3x p50.

Run: ``python -m benchmarks.bench_dataplane [--calls N] [--repeat N] [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import yaml
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from benchmarks.common import percentile, print_table, write_json
from vmcp_actors.backend.http_reuse import DrainingTransport
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.reporting.sinks import NoOpReporter
from vmcp_actors.runtime.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
ECHO_SERVER = ROOT / "tests" / "servers" / "echo_server.py"
CONCURRENCY = (1, 16)
Call = Callable[[int], Awaitable[Any]]


def start_process(command: list[str], ready: re.Pattern[str], env: dict[str, str] | None = None) -> tuple[Any, str]:
    """Start a process and read stderr until ``ready`` matches; keep draining it afterwards."""
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        match = ready.search(line)
        if match:
            threading.Thread(target=lambda: process.stderr and process.stderr.read(), daemon=True).start()
            return process, match.group(1)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"{command[2:4]} did not become ready")


async def drive(call: Call, calls: int, concurrency: int) -> dict[str, float]:
    """``calls`` calls by ``concurrency`` workers; latency percentiles and throughput."""
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < calls:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            await call(index)
            latencies.append(time.perf_counter() - started)

    for index in range(min(20, calls)):  # warm-up: connections, caches
        await call(index)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "calls_per_s": calls / elapsed,
    }


def _check(result: types.CallToolResult, index: int) -> None:
    block = result.content[0]
    if not isinstance(block, types.TextContent) or block.text != f"m{index}":
        raise AssertionError(f"wrong answer for call {index}: {result}")


async def baseline_session(url: str, calls: int, concurrency: int, keepalive: bool = False) -> dict[str, float]:
    """A plain SDK ClientSession (the classic handshake, as the runtime's own sessions use).

    ``keepalive``: with the runtime's HTTP transport (connections reused), which isolates the
    cost of routing from the gain of reusing connections.
    """
    async with AsyncExitStack() as stack:
        client = None
        if keepalive:
            client = await stack.enter_async_context(httpx2.AsyncClient(transport=DrainingTransport()))
        read, write = await stack.enter_async_context(streamable_http_client(url, http_client=client))
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        await session.list_tools()

        async def call(index: int) -> None:
            _check(await session.call_tool("echo", {"text": f"m{index}"}), index)

        return await drive(call, calls, concurrency)


def runtime_numbers(url: str, calls: int, concurrency: int) -> dict[str, dict[str, float]]:
    """``acall_tool`` from a host loop in this thread, and from the runtime's own loop."""
    config = RuntimeConfig(backends=(BackendSpec(name="echo", type="streamable-http", url=url, timeout=30),))
    runtime = Runtime.start(config, NoOpReporter())
    try:
        ready = threading.Event()
        unsubscribe = runtime.subscribe(lambda _: ready.set() if runtime.tools() else None)
        while not runtime.tools():
            ready.wait(1.0)
            ready.clear()
        unsubscribe()

        async def call(index: int) -> None:
            _check(await runtime.acall_tool("echo_echo", {"text": f"m{index}"}), index)

        host = asyncio.run(drive(call, calls, concurrency))
        own = runtime.io_thread.submit(drive(call, calls, concurrency)).result(timeout=600)
        return {"host loop": host, "runtime loop": own}
    finally:
        runtime.stop(15.0)


async def client_numbers(url: str, mode: str, calls: int, concurrency: int) -> dict[str, float]:
    """The SDK's high-level Client, as an MCP host would use it."""
    async with Client(url, mode=mode) as client:
        await client.list_tools()

        async def call(index: int) -> None:
            _check(await client.call_tool("echo", {"text": f"m{index}"}), index)

        return await drive(call, calls, concurrency)


async def serve_client_numbers(url: str, mode: str, calls: int, concurrency: int) -> dict[str, float]:
    async with Client(url, mode=mode) as client:
        await client.list_tools()

        async def call(index: int) -> None:
            _check(await client.call_tool("echo_echo", {"text": f"m{index}"}), index)

        return await drive(call, calls, concurrency)


def start_serve(backend_url: str, workdir: Path) -> tuple[Any, str]:
    config = workdir / "serve.yaml"
    config.write_text(yaml.safe_dump({"backends": [{"name": "echo", "type": "streamable-http", "url": backend_url}]}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "vmcp_actors", "serve", "--config", str(config), "--port", "0"]
    process, url = start_process(command, re.compile(r"serving MCP at (http://\S+)"), env)
    deadline = time.monotonic() + 60
    while httpx2.get(url.removesuffix("/mcp") + "/readyz", timeout=5).status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("serve did not become ready")
        time.sleep(0.05)
    return process, url


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_cpu(
    run: Callable[[], Coroutine[Any, Any, dict[str, float]]], calls: int, roles: dict[str, int]
) -> dict[str, float]:
    """``asyncio.run(run())``'s numbers plus each role's CPU milliseconds per call (``roles``: name -> pid).

    On a machine with two cores the CPU per call of all the processes together bounds the
    throughput at 16 callers: this says where a path spends it.
    """
    before = {role: cpu_seconds(pid) for role, pid in roles.items()}
    numbers = asyncio.run(run())
    for role, pid in roles.items():
        numbers[f"cpu_ms_{role}"] = (cpu_seconds(pid) - before[role]) * 1000 / calls
    return numbers


def median_numbers(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-serve", action="store_true", help="only the in-process comparison")
    args, _ = parser.parse_known_args(argv)
    calls, repeat = (200, 1) if args.quick else (args.calls, args.repeat)
    backend, port = start_process(
        [sys.executable, str(ECHO_SERVER), "--transport", "streamable-http"], re.compile(r"READY (\d+)")
    )
    backend_url = f"http://127.0.0.1:{port}/mcp"
    results: dict[str, Any] = {"calls": calls, "repeat": repeat, "in_process": {}, "serve": {}}
    serve_process = None
    try:
        for concurrency in CONCURRENCY:
            samples: dict[str, list[dict[str, float]]] = {
                "SDK ClientSession": [],
                "SDK ClientSession, keep-alive": [],
                "host loop": [],
                "runtime loop": [],
            }
            for _ in range(repeat):
                samples["SDK ClientSession"].append(asyncio.run(baseline_session(backend_url, calls, concurrency)))
                samples["SDK ClientSession, keep-alive"].append(
                    asyncio.run(baseline_session(backend_url, calls, concurrency, keepalive=True))
                )
                for name, numbers in runtime_numbers(backend_url, calls, concurrency).items():
                    samples[name].append(numbers)
            results["in_process"][concurrency] = {name: median_numbers(runs) for name, runs in samples.items()}
        report_in_process(results)
        if args.no_serve:
            return
        with tempfile.TemporaryDirectory() as work:
            serve_process, serve_url = start_serve(backend_url, Path(work))
            for mode in ("auto", "legacy"):
                for concurrency in CONCURRENCY:
                    direct, through = [], []
                    roles = {"client": os.getpid(), "backend": backend.pid}
                    straight = functools.partial(client_numbers, backend_url, mode, calls, concurrency)
                    served = functools.partial(serve_client_numbers, serve_url, mode, calls, concurrency)
                    for _ in range(repeat):
                        direct.append(with_cpu(straight, calls, roles))
                        through.append(with_cpu(served, calls, {**roles, "serve": serve_process.pid}))
                    key = f"{'2026-07-28' if mode == 'auto' else '2025-11-25'} x{concurrency}"
                    results["serve"][key] = {"direct": median_numbers(direct), "serve": median_numbers(through)}
    finally:
        if serve_process is not None:
            serve_process.send_signal(signal.SIGTERM)
            serve_process.wait(timeout=60)
        backend.kill()
        backend.wait()
    report(results)


def report_in_process(results: dict[str, Any]) -> None:
    rows = []
    for concurrency, paths in results["in_process"].items():
        base = paths["SDK ClientSession"]
        for name, numbers in paths.items():
            rows.append(
                (
                    f"x{concurrency}",
                    name,
                    numbers["p50_ms"],
                    numbers["p99_ms"],
                    numbers["calls_per_s"],
                    numbers["p50_ms"] / base["p50_ms"],
                    numbers["calls_per_s"] / base["calls_per_s"],
                )
            )
    header = ("callers", "path", "p50 ms", "p99 ms", "calls/s", "x p50", "x calls/s")
    print_table(f"runtime.acall_tool vs a plain SDK ClientSession ({results['calls']} calls)", header, rows)
    sys.stdout.flush()
    write_json("bench_dataplane", results)


def report(results: dict[str, Any]) -> None:
    rows = []
    for key, pair in results["serve"].items():
        for name in ("direct", "serve"):
            numbers = pair[name]
            rows.append(
                (
                    key,
                    name,
                    numbers["p50_ms"],
                    numbers["p99_ms"],
                    numbers["calls_per_s"],
                    numbers["p50_ms"] / pair["direct"]["p50_ms"],
                    numbers["calls_per_s"] / pair["direct"]["calls_per_s"],
                    numbers.get("cpu_ms_client", 0.0),
                    numbers.get("cpu_ms_serve", 0.0),
                    numbers.get("cpu_ms_backend", 0.0),
                )
            )
    header = (
        "protocol, callers",
        "path",
        "p50 ms",
        "p99 ms",
        "calls/s",
        "x p50",
        "x calls/s",
        "CPU ms/call: client",
        "serve",
        "backend",
    )
    print_table(f"SDK Client through serve vs straight to the backend ({results['calls']} calls)", header, rows)
    write_json("bench_dataplane", results)


if __name__ == "__main__":
    main()
