"""200 backend actors against one real streamable-HTTP MCP server.

Measures, in one run: time until all 200 are connected, memory per backend actor (RSS
delta / 200), threads created, one probe round over all 200, and the stop-all time; then
checks that no backend thread and no child process is left.  The same-run baseline is
the same 200 connects made directly on the loop thread, without actors: the ratio shows
what the actor layer costs on top of the MCP handshakes themselves.

Run: ``python -m benchmarks.bench_backends [--backends N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import print_table, write_json
from testkit.inbox import Inbox
from testkit.processes import child_pids
from vmcp_actors.actorkit.loop import LoopThread
from vmcp_actors.actorkit.timers import ThreadScheduler
from vmcp_actors.backend.actor import BackendActor
from vmcp_actors.backend.connect_params import ConnectParams
from vmcp_actors.backend.lifecycle_state import Lifecycle, State
from vmcp_actors.backend.messages import ProbeBackend, ProbeOutcome, StartBackend, StopBackend
from vmcp_actors.backend.session import connect
from vmcp_actors.backend.snapshot import SnapshotCell, snapshot_of
from vmcp_actors.config.backend_spec import BackendSpec

ECHO_SERVER = Path(__file__).resolve().parent.parent / "tests" / "servers" / "echo_server.py"


def rss_kib() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def start_server() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, str(ECHO_SERVER), "--transport", "streamable-http"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if line.startswith("READY "):
            threading.Thread(target=lambda: process.stderr and process.stderr.read(), daemon=True).start()
            return process, int(line.split()[1])
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError("the echo server did not become ready")


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        event.wait(0.005)  # polling a lock-free snapshot; this is a benchmark, not a test


def direct_connects(io: LoopThread, url: str, count: int) -> float:
    """Baseline: the same handshakes without actors, all in flight at once on the loop."""

    async def run() -> float:
        params = [
            ConnectParams(name=f"direct-{i}", transport="streamable-http", url=url, connect_timeout=60)
            for i in range(count)
        ]
        started = time.perf_counter()
        connections = await asyncio.gather(*(connect(p) for p in params))
        elapsed = time.perf_counter() - started
        await asyncio.gather(*(c.close() for c in connections))
        return elapsed

    return io.submit(run()).result(timeout=300)


def backend_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if "BackendActor" in t.name]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="50 backends, for a smoke run")
    parser.add_argument("--pin", action="store_true", help="accepted for symmetry; not used here")
    args, _unknown = parser.parse_known_args(argv)  # `python -m benchmarks` passes every flag to every benchmark
    count = 50 if args.quick else args.backends

    server, port = start_server()
    url = f"http://127.0.0.1:{port}/mcp"
    io = LoopThread(name="vmcp-aio-bench")
    io.start()
    scheduler = ThreadScheduler(name="vmcp-bench-timers")
    children_before = child_pids() - {server.pid}
    try:
        baseline_s = direct_connects(io, url, count)

        gc.collect()
        threads_before = threading.active_count()
        rss_before = rss_kib()
        inbox = Inbox()
        cells: list[SnapshotCell] = []
        refs = []
        started = time.perf_counter()
        for i in range(count):
            spec = BackendSpec(name=f"backend-{i:03d}", type="streamable-http", url=url, timeout=120)
            cell = SnapshotCell(snapshot_of(spec, Lifecycle(name=spec.name, remote=True)))
            cells.append(cell)
            refs.append(BackendActor.start(spec, io=io, scheduler=scheduler, cell=cell))
        for ref in refs:
            ref.tell(StartBackend())
        wait_until(lambda: all(c.value.state is State.CONNECTED for c in cells), 300, "all connected")
        connect_s = time.perf_counter() - started
        gc.collect()
        rss_delta_kib = rss_kib() - rss_before
        threads_created = threading.active_count() - threads_before

        started = time.perf_counter()
        for ref in refs:
            ref.tell(ProbeBackend(inbox, token=1))
        inbox.wait_for(lambda msgs: sum(isinstance(m, ProbeOutcome) for m in msgs) >= count, 300, "probe round")
        probe_s = time.perf_counter() - started
        ok_probes = sum(1 for m in inbox.of_type(ProbeOutcome) if m.ok)

        started = time.perf_counter()
        for ref in refs:
            ref.tell(StopBackend())
        wait_until(lambda: all(c.value.state is State.DISCONNECTED for c in cells), 300, "all disconnected")
        for ref in refs:
            ref.stop(timeout=10)
        stop_s = time.perf_counter() - started
        leftover_threads = backend_threads()
    finally:
        scheduler.stop()
        io.stop(30)
        server.kill()
        server.wait(10)
    leftover_children = child_pids() - children_before

    rows = [
        ["all connected (actors)", connect_s * 1000, connect_s / baseline_s],
        ["all connected (direct connects on the loop, baseline)", baseline_s * 1000, 1.0],
        ["one probe round (MCP ping to every backend)", probe_s * 1000, probe_s / baseline_s],
        ["stop all (close sessions, stop actors)", stop_s * 1000, stop_s / baseline_s],
    ]
    print_table(f"{count} streamable-http backends on one server", ["case", "ms", "x baseline"], rows)
    per_actor_kib = rss_delta_kib / count
    print(
        f"memory: {per_actor_kib:.0f} KiB RSS per backend (actor + MCP session + HTTP client); "
        f"threads created: {threads_created} ({threads_created / count:.2f} per backend); "
        f"probes ok: {ok_probes}/{count}"
    )
    print(
        f"after stop-all: {len(leftover_threads)} backend threads, {len(leftover_children)} child processes "
        f"({'PASS' if not leftover_threads and not leftover_children else 'FAIL'})"
    )
    result = {
        "backends": count,
        "connect_all_ms": connect_s * 1000,
        "baseline_direct_connect_all_ms": baseline_s * 1000,
        "connect_ratio_to_baseline": connect_s / baseline_s,
        "probe_round_ms": probe_s * 1000,
        "probes_ok": ok_probes,
        "stop_all_ms": stop_s * 1000,
        "rss_per_backend_kib": per_actor_kib,
        "threads_created": threads_created,
        "leftover_backend_threads": len(leftover_threads),
        "leftover_child_processes": len(leftover_children),
    }
    write_json("backends", result)
    return result


if __name__ == "__main__":
    main()
