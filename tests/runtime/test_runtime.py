"""The running vMCP end to end: real MCP servers, real actors, status through a real file sink."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testkit.processes import child_pids
from testkit.waits import bound
from tests.servers.fixtures import RunningServer, ServerFactory
from tests.sinks import FAST_HEALTH, FAST_RECONNECT, ControllableSink, FileSink
from vmcp_actors.backend.lifecycle_state import State
from vmcp_actors.backend.snapshot import BackendSnapshot
from vmcp_actors.cli import reconnect_policy
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.model.status import Phase
from vmcp_actors.runtime.runtime import Runtime, RuntimeStoppedError
from vmcp_actors.runtime.supervision import RestartPolicy
from vmcp_actors.testing import crash_backend, crash_health

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]


def wait_snapshot(
    runtime: Runtime, name: str, predicate: Callable[[BackendSnapshot], bool], timeout: float | None = None
) -> BackendSnapshot:
    """Wait until backend ``name``'s published snapshot satisfies ``predicate``.

    Snapshots are published without a notification (a status write need not follow:
    the reporter skips and coalesces), so this polls the value within a deadline.
    """
    deadline = time.monotonic() + (bound() if timeout is None else bound(timeout))
    while True:
        snapshot = runtime.snapshots()[name]
        if predicate(snapshot):
            return snapshot
        if time.monotonic() > deadline:
            raise AssertionError(f"backend {name} never reached the expected state: {snapshot}")
        time.sleep(0.02)  # polling a published value; there is nothing to wait on


def runtime_threads() -> list[str]:
    prefixes = ("BackendActor", "HealthActor", "Supervisor", "_ReporterActor", "vmcp-")
    return [t.name for t in threading.enumerate() if t.name.startswith(prefixes)]


@pytest.fixture
def sink(tmp_path: Path) -> FileSink:
    return FileSink(tmp_path / "status.json")


@pytest.fixture
def run(sink: FileSink) -> Iterator[Callable[..., Runtime]]:
    started: list[Runtime] = []

    def start(*backends: BackendSpec, failure: FailureHandling = FAST_HEALTH) -> Runtime:
        runtime = Runtime.start(
            RuntimeConfig(backends=backends, failure_handling=failure), sink, lifecycle_policy=FAST_RECONNECT
        )
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        runtime.stop(bound(15.0))


def stdio(command: tuple[str, tuple[str, ...]], name: str) -> BackendSpec:
    return BackendSpec(name=name, type="stdio", command=command[0], args=command[1])


def http(server: RunningServer, name: str = "remote") -> BackendSpec:
    return BackendSpec(name=name, type="streamable-http", url=server.url("/mcp"), timeout=5)


def test_phase_moves_from_pending_to_ready_and_the_file_shows_it(
    run: Callable[..., Runtime],
    sink: FileSink,
    echo_stdio_command: tuple[str, tuple[str, ...]],
    mcp_servers: ServerFactory,
) -> None:
    runtime = run(stdio(echo_stdio_command, "files"), http(mcp_servers.echo("streamable-http")))
    ready = sink.wait_phase(Phase.READY)
    phases = [w.phase for w in sink.writes]
    assert phases[0] is Phase.PENDING
    assert ready.backend_count == 2
    assert ready.message == "All 2 backends healthy"
    assert [b.name for b in ready.discovered_backends] == ["files", "remote"]
    assert all(b.status == "ready" for b in ready.discovered_backends)
    ready_condition = ready.condition("Ready")
    assert ready_condition is not None
    assert ready_condition.reason == "AllBackendsRoutable"
    assert sink.on_disk().same_content(ready)
    assert runtime.snapshots()["files"].state is State.RUNNING


def test_a_killed_backend_degrades_the_phase_and_recovery_restores_it(
    run: Callable[..., Runtime],
    sink: FileSink,
    echo_stdio_command: tuple[str, tuple[str, ...]],
    mcp_servers: ServerFactory,
) -> None:
    server = mcp_servers.echo("streamable-http")
    run(stdio(echo_stdio_command, "files"), http(server))
    sink.wait_phase(Phase.READY)
    server.kill()

    def remote_unavailable(s: ControllableSink) -> bool:
        remote = s.writes[-1].backend("remote")
        return remote is not None and remote.status == "unavailable"

    sink.wait_for(remote_unavailable)  # the lost session counts at once, not after the threshold
    degraded = sink.writes[-1]
    assert degraded.phase is Phase.DEGRADED
    assert degraded.backend_count == 1
    assert degraded.message == "1/2 backends routable (0 degraded, 1 unhealthy, 0 unknown)"
    mcp_servers.restart(server)  # the same port: the backend's own retries find it again
    recovered = sink.wait_phase(Phase.READY)
    assert recovered.backend_count == 2


def test_backends_added_and_removed_at_runtime_show_up_at_once(
    run: Callable[..., Runtime], sink: FileSink, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    runtime = run(stdio(echo_stdio_command, "one"))
    sink.wait_phase(Phase.READY)
    runtime.add_backend(stdio(echo_stdio_command, "two"))
    sink.wait_for(lambda s: s.writes[-1].phase is Phase.READY and s.writes[-1].backend_count == 2)
    runtime.remove_backend("one")
    sink.wait_for(lambda s: [b.name for b in s.writes[-1].discovered_backends] == ["two"])
    with pytest.raises(ValueError, match="no backend named 'one'"):
        runtime.remove_backend("one")
    with pytest.raises(ValueError, match="already exists"):
        runtime.add_backend(stdio(echo_stdio_command, "two"))


def test_update_restarts_only_on_a_real_change(
    run: Callable[..., Runtime], sink: FileSink, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    spec = stdio(echo_stdio_command, "one")
    runtime = run(spec)
    sink.wait_phase(Phase.READY)
    runtime.update_backend(BackendSpec(name="one", command=spec.command, args=spec.args, description="docs"))
    assert runtime.snapshots()["one"].attempt == 1
    runtime.update_backend(BackendSpec(name="one", command=spec.command, args=spec.args, env={"A": "1"}))
    wait_snapshot(runtime, "one", lambda snap: snap.attempt == 2 and snap.running)


def test_a_crashed_backend_actor_is_restarted_and_status_keeps_flowing(
    run: Callable[..., Runtime], sink: FileSink, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    runtime = run(stdio(echo_stdio_command, "one"), stdio(echo_stdio_command, "two"))
    sink.wait_phase(Phase.READY)
    before = runtime.snapshots()["one"].attempt
    crash_backend(runtime, "one", RuntimeError("injected bug"))
    wait_snapshot(runtime, "one", lambda snap: snap.attempt > before and snap.running)
    sink.wait_phase(Phase.READY)
    crash_health(runtime, RuntimeError("injected bug in the health actor"))
    runtime.remove_backend("two")  # the restarted health actor sees and reports this
    sink.wait_for(lambda s: [b.name for b in s.writes[-1].discovered_backends] == ["one"])


def test_stop_reports_the_final_status_and_leaves_nothing_running(
    sink: FileSink, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    threads_before = set(runtime_threads())
    children_before = child_pids()
    runtime = Runtime.start(
        RuntimeConfig(backends=[stdio(echo_stdio_command, "one")], failure_handling=FAST_HEALTH),
        sink,
        lifecycle_policy=FAST_RECONNECT,
    )
    sink.wait_phase(Phase.READY)
    runtime.stop(10.0)
    runtime.stop(10.0)  # idempotent
    final = runtime.status()
    assert final is not None
    assert sink.on_disk().same_content(final)  # what the sink holds is what stop reported
    # Stopped on purpose: Pending and Ready=False reason Stopped, not Failed (which would page someone).
    assert final.phase is Phase.PENDING
    ready = final.condition("Ready")
    assert ready is not None
    assert (ready.status.value, ready.reason) == ("False", "Stopped")
    assert final.message.startswith("vMCP stopped at ")
    assert set(runtime_threads()) <= threads_before
    assert child_pids() == children_before
    with pytest.raises(RuntimeStoppedError):
        runtime.add_backend(stdio(echo_stdio_command, "late"))


def test_stop_is_bounded_even_when_a_backend_hangs(sink: FileSink, mcp_servers: ServerFactory) -> None:
    hang = mcp_servers.fault("hang")
    runtime = Runtime.start(
        RuntimeConfig(
            backends=[BackendSpec(name="stuck", type="streamable-http", url=hang.url("/mcp"), timeout=600)],
            failure_handling=FAST_HEALTH,
        ),
        sink,
    )
    wait_snapshot(runtime, "stuck", lambda snap: snap.state is State.STARTING)
    started = time.monotonic()
    runtime.stop(3.0)
    assert time.monotonic() - started < 3.0 + 2.0
    assert not [t for t in runtime_threads() if t.startswith(("BackendActor", "vmcp-aio"))]


def test_no_backends_is_ready(run: Callable[..., Runtime], sink: FileSink) -> None:
    runtime = run()
    sink.wait_for(lambda s: bool(s.writes))
    runtime.stop(5.0)
    assert sink.writes[0].phase is Phase.READY
    assert sink.writes[0].message == "Ready, no backends configured"


def test_a_backend_that_keeps_crashing_is_escalated_as_failed(
    sink: FileSink, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    runtime = Runtime.start(
        RuntimeConfig(
            backends=[stdio(echo_stdio_command, "one"), stdio(echo_stdio_command, "two")],
            failure_handling=FAST_HEALTH,
        ),
        sink,
        lifecycle_policy=FAST_RECONNECT,
        restart_policy=RestartPolicy(max_restarts=1, window=600.0),
    )
    try:
        sink.wait_phase(Phase.READY)
        crash_backend(runtime, "one", RuntimeError("bug #1"))
        wait_snapshot(runtime, "one", lambda snap: snap.attempt == 2 and snap.running)
        crash_backend(runtime, "one", RuntimeError("bug #2"))  # over budget: escalate

        def one_failed(s: ControllableSink) -> bool:
            backend = s.writes[-1].backend("one")
            return backend is not None and backend.status == "unavailable"

        sink.wait_for(one_failed)
        status = sink.writes[-1]
        assert status.phase is Phase.DEGRADED
        one = status.backend("one")
        assert (one is not None and "crashed" in one.message.lower()) or "unavailable" in (one.message if one else "")
    finally:
        runtime.stop(bound(15.0))


SILENT_PING_SERVER = Path(__file__).resolve().parents[1] / "servers" / "silent_ping_server.py"


def test_failure_handling_sets_the_probe_timeout_even_when_a_lifecycle_policy_is_passed(sink: FileSink) -> None:
    """Bug: any LifecyclePolicy (the CLI always passes one) replaced healthCheckTimeout with its own 10 s."""
    failure = FailureHandling(
        health_check_interval=30.0, health_check_timeout=0.5, unhealthy_threshold=1, status_reporting_interval=30.0
    )
    backend = BackendSpec(name="silent", type="stdio", command=sys.executable, args=(str(SILENT_PING_SERVER),))
    runtime = Runtime.start(
        RuntimeConfig(backends=[backend], failure_handling=failure),
        sink,
        lifecycle_policy=reconnect_policy(example=False),
    )
    try:
        wait_snapshot(runtime, "silent", lambda snap: snap.running)
        connected = time.monotonic()

        def probe_timed_out(s: ControllableSink) -> bool:
            silent = s.writes[-1].backend("silent") if s.writes else None
            return silent is not None and silent.message.startswith("Health check timed out: ")

        # The first probe starts on connect; with the configured 0.5 s it fails well inside
        # this bound, with the policy's 10 s it cannot.
        sink.wait_for(probe_timed_out, timeout=7.0)
        assert time.monotonic() - connected < 7.0
    finally:
        runtime.stop(bound(15.0))


def test_stopping_one_runtime_neither_waits_for_nor_touches_another_ones_threads(
    sink: FileSink, tmp_path: Path, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    """Bug: stop joined every actor thread in the process, so it waited out its timeout beside a second runtime."""

    def started_threads(before: set[threading.Thread]) -> set[threading.Thread]:
        prefixes = ("BackendActor", "HealthActor", "Supervisor", "_ReporterActor", "vmcp-")
        return {t for t in set(threading.enumerate()) - before if t.name.startswith(prefixes)}

    other_sink = FileSink(tmp_path / "other.json")
    config = RuntimeConfig(backends=[stdio(echo_stdio_command, "one")], failure_handling=FAST_HEALTH)
    before = set(threading.enumerate())
    first = Runtime.start(config, sink, lifecycle_policy=FAST_RECONNECT)
    sink.wait_phase(Phase.READY)
    first_threads = started_threads(before)
    second = Runtime.start(config, other_sink, lifecycle_policy=FAST_RECONNECT)
    try:
        other_sink.wait_phase(Phase.READY)
        second_threads = started_threads(before | first_threads)
        assert {t.name.split("-")[0] for t in first_threads} >= {"BackendActor", "HealthActor", "Supervisor"}
        assert {t.name.split("-")[0] for t in second_threads} >= {"BackendActor", "HealthActor", "Supervisor"}
        started = time.monotonic()
        first.stop(10.0)
        elapsed = time.monotonic() - started
        assert not [t.name for t in first_threads if t.is_alive()]  # its own threads are all joined
        assert all(t.is_alive() for t in second_threads)  # the other runtime's are untouched
        assert elapsed < 5.0, f"stop waited {elapsed:.2f} s of its 10 s budget"
        assert second.snapshots()["one"].running
    finally:
        first.stop(10.0)
        second.stop(10.0)
