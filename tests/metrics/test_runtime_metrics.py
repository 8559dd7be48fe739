"""Metrics of a running vMCP, scraped over HTTP, following real MCP servers and a real sink.

Each runtime's registry is served on an ephemeral 127.0.0.1 port and scraped the way
Prometheus does; the values are checked after what they describe has happened (waited
on through the sink or the runtime's snapshots), with the observer flushed.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from testkit.waits import bound
from tests.metrics.scrape import Samples, eventually, scrape_url
from tests.metrics.support import http, runtime_threads, stdio
from tests.servers.fixtures import ServerFactory
from tests.sinks import FAST_HEALTH, FAST_RECONNECT, FileSink
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.errors import ValidationError
from vmcp_actors.metrics.http import MetricsServer, serve_metrics
from vmcp_actors.metrics.observer import MetricsObserver
from vmcp_actors.model.status import Phase
from vmcp_actors.runtime.runtime import Runtime
from vmcp_actors.runtime.supervision import RestartPolicy
from vmcp_actors.testing import crash_backend

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

#: Probes time out after 0.4 s; a frozen server is unhealthy after two of them.
PROBE_TIMEOUT = FAST_HEALTH.health_check_timeout


class Scraper:
    """A started runtime, its ``/metrics`` server, and scraping that waits for the observer."""

    def __init__(self, runtime: Runtime, server: MetricsServer) -> None:
        self.runtime = runtime
        self.server = server

    @property
    def observer(self) -> MetricsObserver:
        assert self.runtime.metrics is not None
        return self.runtime.metrics

    def scrape(self) -> Samples:
        self.observer.flush(bound(10.0))
        return scrape_url(self.server.url)

    def until(self, predicate: Callable[[Samples], bool], what: str, timeout: float = 30.0) -> Samples:
        return eventually(self.scrape, predicate, what, timeout)


@pytest.fixture
def run(sink: FileSink) -> Iterator[Callable[..., Scraper]]:
    started: list[Scraper] = []

    def start(
        *backends: BackendSpec, failure: FailureHandling = FAST_HEALTH, sink_: object | None = None, **kwargs: object
    ) -> Scraper:
        runtime = Runtime.start(
            RuntimeConfig(backends=backends, failure_handling=failure),
            sink_ or sink,  # type: ignore[arg-type]
            lifecycle_policy=FAST_RECONNECT,
            **kwargs,  # type: ignore[arg-type]
        )
        assert runtime.metrics is not None
        scraper = Scraper(runtime, serve_metrics(runtime.metrics.registry, 0))
        started.append(scraper)
        return scraper

    yield start
    for scraper in started:
        scraper.runtime.stop(bound(15.0))
        scraper.server.close()


@pytest.fixture
def sink(tmp_path: Path) -> FileSink:
    return FileSink(tmp_path / "status.json")


def test_a_killed_and_restarted_backend(
    run: Callable[..., Scraper],
    sink: FileSink,
    echo_stdio_command: tuple[str, tuple[str, ...]],
    mcp_servers: ServerFactory,
) -> None:
    server = mcp_servers.echo("streamable-http")
    scraper = run(stdio(echo_stdio_command, "files"), http(server))
    sink.wait_phase(Phase.READY)
    ready = scraper.scrape()
    assert ready.get("vmcp_phase", phase="Ready") == 1.0
    assert ready.get("vmcp_backend_routable", backend="remote") == 1.0
    assert ready.get("vmcp_backend_health", backend="remote", health="healthy") == 1.0
    assert ready.total("vmcp_backend_restarts_total", backend="remote") == 0.0
    assert ready.value("vmcp_backend_probes_total", backend="remote", outcome="success") >= 1.0
    assert ready.value("vmcp_backend_probe_duration_seconds_count", backend="remote") >= 1.0

    server.kill()
    runtime = scraper.runtime
    sink.wait_for(lambda _: runtime.snapshots()["remote"].consecutive_failures >= 2)
    down = scraper.until(
        lambda s: s.value("vmcp_backend_restarts_total", backend="remote", reason="transient") >= 1,
        "a reconnect after a refused connection",
    )
    assert down.get("vmcp_phase", phase="Degraded") == 1.0
    assert down.get("vmcp_backend_routable", backend="remote") == 0.0
    assert down.get("vmcp_backend_routable", backend="files") == 1.0
    assert down.get("vmcp_backend_health", backend="remote", health="unhealthy") == 1.0
    assert down.value("vmcp_backend_connect_failures", backend="remote") >= 1.0
    # One restart for the lost session, one per retry of the refused connection; the reason
    # is the kind of failure that caused each (a dropped HTTP session reads as transient).
    assert down.total("vmcp_backend_restarts_total", backend="remote") >= 2.0
    assert down.label_values("vmcp_backend_restarts_total", "reason") <= {"session_lost", "transient", "timeout"}
    assert down.total("vmcp_backend_restarts_total", backend="files") == 0.0

    mcp_servers.restart(server)  # the same port: the backend's own retries find it again
    sink.wait_phase(Phase.READY)
    back = scraper.until(lambda s: s.get("vmcp_phase", phase="Ready") == 1.0, "Ready again")
    assert back.get("vmcp_backend_routable", backend="remote") == 1.0
    assert back.get("vmcp_backend_connect_failures", backend="remote") == 0.0
    assert back.total("vmcp_backend_restarts_total", backend="remote") >= down.total(
        "vmcp_backend_restarts_total", backend="remote"
    )
    assert back.total("vmcp_backend_restarts_total", backend="files") == 0.0
    # Every connect after the first was a restart, and each was counted once.
    assert back.total("vmcp_backend_restarts_total", backend="remote") == runtime.snapshots()["remote"].attempt - 1
    assert back.label_values("vmcp_backend_restarts_total", "reason") <= {"session_lost", "transient", "timeout"}


def test_a_probe_timeout(run: Callable[..., Scraper], sink: FileSink, mcp_servers: ServerFactory) -> None:
    server = mcp_servers.echo("streamable-http")
    scraper = run(http(server))
    sink.wait_phase(Phase.READY)
    before = scraper.scrape()
    assert before.value("vmcp_backend_probes_total", backend="remote", outcome="timeout") == 0.0
    os.kill(server.pid, signal.SIGSTOP)  # the session stays open; nothing answers a ping
    try:
        frozen = scraper.until(
            lambda s: (
                s.value("vmcp_backend_probes_total", backend="remote", outcome="timeout") >= 2
                and s.get("vmcp_backend_routable", backend="remote") == 0.0
            ),
            "two timed-out probes making the backend unroutable",
        )
    finally:
        os.kill(server.pid, signal.SIGCONT)
    count = frozen.value("vmcp_backend_probe_duration_seconds_count", backend="remote")
    fast = frozen.value("vmcp_backend_probe_duration_seconds_bucket", backend="remote", le="0.25")
    assert count - fast >= 2  # the timed-out probes took longer than 0.25 s ...
    timed_out_sum = frozen.value("vmcp_backend_probe_duration_seconds_sum", backend="remote")
    assert timed_out_sum >= 2 * PROBE_TIMEOUT  # ... at least the timeout each
    assert frozen.get("vmcp_backend_consecutive_failures", backend="remote") is not None
    assert frozen.get("vmcp_backend_health", backend="remote", health="healthy") == 0.0
    sink.wait_phase(Phase.READY)
    thawed = scraper.until(
        lambda s: (
            s.get("vmcp_backend_routable", backend="remote") == 1.0
            and s.get("vmcp_backend_consecutive_failures", backend="remote") == 0.0
        ),
        "the backend routable again",
    )
    assert thawed.value("vmcp_backend_probes_total", backend="remote", outcome="success") > before.value(
        "vmcp_backend_probes_total", backend="remote", outcome="success"
    )


def test_a_sink_that_fails_then_recovers(
    run: Callable[..., Scraper], sink: FileSink, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    sink.failing = True
    scraper = run(stdio(echo_stdio_command, "one"))
    sink.wait_attempts(2)
    failing = scraper.until(
        lambda s: s.value("vmcp_status_writes_total", sink="filesink", outcome="failed") >= 2,
        "two failed writes",
    )
    assert failing.get("vmcp_status_pending") == 1.0
    assert failing.value("vmcp_status_writes_total", sink="filesink", outcome="written") == 0.0
    assert failing.value("vmcp_status_write_duration_seconds_count", sink="filesink") >= 2
    sink.failing = False
    sink.wait_phase(Phase.READY)
    recovered = scraper.until(
        lambda s: (
            s.get("vmcp_status_pending") == 0.0
            and s.value("vmcp_status_writes_total", sink="filesink", outcome="written") >= 1
        ),
        "the status written and nothing pending",
    )
    assert recovered.value("vmcp_status_updates_total") >= 1
    assert sink.on_disk().phase is Phase.READY

    scraper.runtime.stop(bound(15.0))  # the final status is written and counted before the observer stops
    final = scrape_url(scraper.server.url)

    def writes(outcome: str) -> float:
        return final.value("vmcp_status_writes_total", sink="filesink", outcome=outcome)

    assert final.get("vmcp_status_pending") == 0.0
    assert final.get("vmcp_phase", phase="Pending") == 1.0  # a graceful stop leaves Pending (reason Stopped)
    assert final.value("vmcp_status_updates_total") == writes("written") + writes("coalesced") + writes(
        "skipped_unchanged"
    )
    assert writes("written") == len(sink.writes)


def test_a_crashed_backend_actor_counts_as_an_actor_crash_restart(
    run: Callable[..., Scraper], sink: FileSink, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    scraper = run(stdio(echo_stdio_command, "one"), restart_policy=RestartPolicy(max_restarts=3, window=600.0))
    sink.wait_phase(Phase.READY)
    runtime = scraper.runtime
    before = runtime.snapshots()["one"].attempt
    crash_backend(runtime, "one", RuntimeError("injected bug"))
    sink.wait_for(lambda _: runtime.snapshots()["one"].attempt > before and runtime.snapshots()["one"].running)
    samples = scraper.until(
        lambda s: s.value("vmcp_backend_restarts_total", backend="one", reason="actor_crash") == 1.0,
        "one actor_crash restart",
    )
    assert (
        samples.total("vmcp_backend_restarts_total", backend="one") == 1.0
    )  # the rebuilt actor's start is not another


def test_two_runtimes_in_one_process_keep_separate_registries(
    run: Callable[..., Scraper], tmp_path: Path, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    first_sink, second_sink = FileSink(tmp_path / "a.json"), FileSink(tmp_path / "b.json")
    first = run(stdio(echo_stdio_command, "alpha"), sink_=first_sink)
    second = run(stdio(echo_stdio_command, "beta"), stdio(echo_stdio_command, "gamma"), sink_=second_sink)
    first_sink.wait_phase(Phase.READY)
    second_sink.wait_phase(Phase.READY)
    assert first.runtime.metrics is not None
    assert second.runtime.metrics is not None
    assert first.runtime.metrics.registry is not second.runtime.metrics.registry
    a = first.until(lambda s: s.get("vmcp_phase", phase="Ready") == 1.0, "first Ready")
    b = second.until(lambda s: s.get("vmcp_phase", phase="Ready") == 1.0, "second Ready")
    assert a.label_values("vmcp_backend_routable", "backend") == {"alpha"}
    assert b.label_values("vmcp_backend_routable", "backend") == {"beta", "gamma"}
    assert a.label_values("vmcp_backend_probes_total", "backend") <= {"alpha"}
    assert b.label_values("vmcp_backend_probes_total", "backend") <= {"beta", "gamma"}
    first.runtime.metrics.record_tool_call("alpha", "success", 0.01)
    assert first.scrape().value("vmcp_tool_calls_total", backend="alpha", outcome="success") == 1.0
    assert not second.scrape().matching("vmcp_tool_calls_total")

    # Stopping one leaves the other's metrics alone (its observer thread too).
    first.runtime.stop(bound(15.0))
    assert not first.runtime.metrics.alive
    assert second.runtime.metrics.alive
    stopped = scrape_url(first.server.url)
    assert stopped.get("vmcp_phase", phase="Pending") == 1.0
    assert stopped.value("vmcp_tool_calls_total", backend="alpha", outcome="success") == 1.0
    still = second.scrape()
    assert still.get("vmcp_phase", phase="Ready") == 1.0
    assert still.label_values("vmcp_backend_routable", "backend") == {"beta", "gamma"}


def test_a_shared_registry_is_refused_before_anything_starts(
    sink: FileSink, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    registry = CollectorRegistry()
    config = RuntimeConfig(backends=[stdio(echo_stdio_command, "one")], failure_handling=FAST_HEALTH)
    first = Runtime.start(config, sink, lifecycle_policy=FAST_RECONNECT, metrics=registry)
    threads = set(runtime_threads())
    try:
        with pytest.raises(ValidationError, match="give each runtime its own registry") as caught:
            Runtime.start(config, FileSink(sink.file.path.with_name("other.json")), metrics=registry)
        assert caught.value.field == "metrics"
        assert set(runtime_threads()) == threads  # the refused runtime left nothing running
    finally:
        first.stop(bound(15.0))


def test_metrics_can_be_turned_off(sink: FileSink, echo_stdio_command: tuple[str, tuple[str, ...]]) -> None:
    runtime = Runtime.start(
        RuntimeConfig(backends=[stdio(echo_stdio_command, "one")], failure_handling=FAST_HEALTH),
        sink,
        lifecycle_policy=FAST_RECONNECT,
        metrics=False,
    )
    try:
        sink.wait_phase(Phase.READY)
        assert runtime.metrics is None
        assert "vmcp-metrics" not in runtime_threads()
    finally:
        runtime.stop(bound(15.0))
