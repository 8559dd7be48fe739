"""The observer thread, the restart rule, the reporter's and the Kubernetes reporter's hooks."""

from __future__ import annotations

import logging
import math
import random
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client

from tests.metrics.scrape import Samples, scrape_registry
from tests.sinks import ControllableSink
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.actorkit.timers import ManualScheduler
from vmcp_actors.backend.failures import Failure, FailureKind
from vmcp_actors.backend.lifecycle import transition
from vmcp_actors.backend.lifecycle_messages import (
    Closed,
    Connect,
    ConnectFailed,
    ConnectSucceeded,
    CredentialsChanged,
    Input,
    LifecycleEvent,
    Now,
    ProbeFailed,
    ProbeRequested,
    Publish,
    Reconfigure,
    Restart,
    RestartDue,
    RetryDue,
    SessionLost,
    Start,
    Stop,
)
from vmcp_actors.backend.lifecycle_state import Health, Lifecycle, State
from vmcp_actors.backend.messages import BackendEvent, ProbeOutcome
from vmcp_actors.backend.snapshot import snapshot_of
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.errors import KubernetesTransientError
from vmcp_actors.health.messages import ProbeObserved
from vmcp_actors.metrics.events import BackendRestarted
from vmcp_actors.metrics.observer import REQUESTED, MetricsObserver, probe_outcome, restart_reason
from vmcp_actors.metrics.sinks import attach_request_observer, sink_label
from vmcp_actors.metrics.state import RuntimeView, state_families
from vmcp_actors.model.status import DiscoveredBackend, Phase, Status
from vmcp_actors.reporting.actor_reporter import ActorReporter
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.reporting.sink_actor import ReporterEvent
from vmcp_actors.reporting.sinks import FileReporter, LoggingReporter, NoOpReporter, TeeReporter

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = BackendSpec(name="b", type="streamable-http", url="http://127.0.0.1:1/mcp")
FAST = Backoff(initial=0.005, maximum=0.02, factor=2.0, jitter=0.1)


@pytest.fixture
def observer() -> Iterator[MetricsObserver]:
    started = MetricsObserver.start()
    yield started
    started.stop()
    assert not started.alive


def read(observer: MetricsObserver) -> Samples:
    assert observer.flush(10.0)
    return scrape_registry(observer.registry)


def event(old: State, new: State, *, attempt: int = 2, kind: FailureKind | None = None) -> BackendEvent:
    error = None if kind is None else Failure(kind, "boom")
    lc = Lifecycle(name="b", remote=True, state=new, attempt=attempt, last_error=error)
    change = LifecycleEvent("b", old, new, Health.UNKNOWN, Health.UNKNOWN, "", T0)
    return BackendEvent("b", 1, change, snapshot_of(SPEC, lc))


# --------------------------------------------------------------------------- the restart rule


def test_restart_reasons() -> None:
    assert restart_reason(event(State.FAILED, State.STARTING, kind=FailureKind.SESSION_LOST)) == "session_lost"
    assert restart_reason(event(State.UNREACHABLE, State.STARTING, kind=FailureKind.TIMEOUT)) == "timeout"
    assert restart_reason(event(State.FAILED, State.STARTING)) == "unknown"
    assert restart_reason(event(State.STOPPED, State.STARTING)) == REQUESTED
    assert restart_reason(event(State.AUTH_REQUIRED, State.STARTING, kind=FailureKind.AUTH_REQUIRED)) == "auth_required"
    assert restart_reason(event(State.DISCONNECTED, State.STARTING)) == REQUESTED
    assert restart_reason(event(State.UNKNOWN, State.STARTING, attempt=1)) is None  # the first start
    assert restart_reason(event(State.UNKNOWN, State.STARTING, attempt=5)) is None  # a rebuilt actor: actor_crash
    assert restart_reason(event(State.STARTING, State.FAILED, kind=FailureKind.TRANSIENT)) is None


_KINDS = [FailureKind.TRANSIENT, FailureKind.TIMEOUT, FailureKind.SESSION_LOST, FailureKind.PROTOCOL]
_KINDS.append(FailureKind.AUTH_REQUIRED)
_STEPS = st.lists(st.tuples(st.integers(0, 12), st.sampled_from(_KINDS)), max_size=60)


def _input(choice: int, kind: FailureKind, lc: Lifecycle) -> Input:
    failure = Failure(kind, "boom")
    inputs: list[Input] = [
        Start(),
        Stop(),
        Restart(),
        ConnectSucceeded(lc.attempt),
        ConnectFailed(lc.attempt, failure),
        Closed(lc.attempt),
        SessionLost(lc.attempt, failure),
        RetryDue(lc.timer_token),
        RestartDue(lc.timer_token),
        ProbeFailed(lc.attempt, failure) if lc.probe_in_flight else ProbeRequested(),
        Reconfigure(changed=True, remote=True),
        Reconfigure(changed=kind is FailureKind.TIMEOUT, remote=True, auto_start_enabled=True),
        CredentialsChanged(),
    ]
    return inputs[choice]


@settings(max_examples=300)
@given(_STEPS)
def test_every_connect_after_the_first_counts_as_one_restart(steps: list[tuple[int, FailureKind]]) -> None:
    """Over random lifecycles: restarts counted from the published events == connects - 1."""
    lc = Lifecycle(name="b", remote=True)
    connects = restarts = 0
    for index, (choice, kind) in enumerate(steps):
        now = Now(float(index), T0 + timedelta(seconds=index), 0.5)
        lc, effects = transition(lc, _input(choice, kind, lc), now)
        snapshot = snapshot_of(SPEC, lc)  # what the actor's cell holds when it publishes
        for effect in effects:
            if isinstance(effect, Connect):
                connects += 1
            elif isinstance(effect, Publish):
                reason = restart_reason(BackendEvent("b", index, effect.event, snapshot))
                if reason is not None:
                    restarts += 1
                    assert effect.event.new_state is State.STARTING
    assert restarts == max(connects - 1, 0)


# --------------------------------------------------------------------------- the observer


def test_tool_calls_and_leadership_are_recorded_with_bounded_labels(observer: MetricsObserver) -> None:
    observer.record_tool_call("files", "success", 0.02)
    observer.record_tool_call("files", "error", 1.5)
    observer.record_tool_call("files", "Traceback: something /etc/passwd", 0.1)  # not a label value
    observer.record_tool_call("files", "timeout", math.nan)  # counted, not observed
    observer.set_leader("pod-a", True)
    samples = read(observer)
    assert samples.value("vmcp_tool_calls_total", backend="files", outcome="success") == 1.0
    assert samples.value("vmcp_tool_calls_total", backend="files", outcome="other") == 1.0
    assert samples.value("vmcp_tool_calls_total", backend="files", outcome="timeout") == 1.0
    assert samples.label_values("vmcp_tool_calls_total", "outcome") == {"success", "error", "other", "timeout"}
    assert samples.value("vmcp_tool_call_duration_seconds_count", backend="files") == 3.0
    assert samples.value("vmcp_tool_call_duration_seconds_bucket", backend="files", le="0.025") == 1.0
    assert samples.value("vmcp_leader", identity="pod-a") == 1.0
    observer.set_leader("pod-a", False)
    assert read(observer).value("vmcp_leader", identity="pod-a") == 0.0


def test_probes_restarts_and_unknown_events(observer: MetricsObserver) -> None:
    observer.tell(ProbeObserved(ProbeOutcome("b", 1, ok=True, latency=0.003), 0.004))
    timeout = ProbeOutcome("b", 2, ok=False, failure=Failure(FailureKind.TIMEOUT, "no answer in 0.5 s"))
    observer.tell(ProbeObserved(timeout, 0.51))
    observer.tell(ProbeObserved(ProbeOutcome("b", 3, ok=False, skipped="backend is failed"), None))
    observer.tell(BackendRestarted("b"))
    observer.tell(event(State.FAILED, State.STARTING, kind=FailureKind.SESSION_LOST))
    observer.tell("a message the metrics do not use")
    samples = read(observer)
    assert samples.value("vmcp_backend_probes_total", backend="b", outcome="success") == 1.0
    assert samples.value("vmcp_backend_probes_total", backend="b", outcome="timeout") == 1.0
    assert samples.value("vmcp_backend_probes_total", backend="b", outcome="skipped") == 1.0
    assert samples.value("vmcp_backend_probe_duration_seconds_count", backend="b") == 2.0  # the skipped one did not run
    assert samples.value("vmcp_backend_probe_duration_seconds_bucket", backend="b", le="0.5") == 1.0
    assert samples.value("vmcp_backend_restarts_total", backend="b", reason="actor_crash") == 1.0
    assert samples.value("vmcp_backend_restarts_total", backend="b", reason="session_lost") == 1.0


def test_probe_outcome_labels() -> None:
    auth = ProbeOutcome("b", 1, ok=False, failure=Failure(FailureKind.TRANSIENT, "forbidden", http_status=403))
    lost = ProbeOutcome("b", 1, ok=False, failure=Failure(FailureKind.SESSION_LOST, "gone"))
    assert probe_outcome(ProbeObserved(auth, 0.1)) == "auth"
    assert probe_outcome(ProbeObserved(lost, 0.1)) == "connection"


def test_a_bad_event_costs_one_event_not_the_thread(
    observer: MetricsObserver, caplog: pytest.LogCaptureFixture
) -> None:
    sink = observer.reporter_observer("file")
    with caplog.at_level(logging.ERROR, logger="vmcp_actors.metrics.observer"):
        sink(ReporterEvent("written", count=-1))  # a counter cannot go down: prometheus_client raises
        sink(ReporterEvent("written", seconds=0.001))
        samples = read(observer)
    assert "metrics observer failed on _SinkEvent" in caplog.text
    assert samples.value("vmcp_status_writes_total", sink="file", outcome="written") == 1.0


def test_stop_applies_what_is_queued_then_drops_later_events() -> None:
    observer = MetricsObserver.start()
    for _ in range(1000):
        observer.record_tool_call("x", "success", 0.001)
    observer.stop()
    observer.stop()  # idempotent
    assert not observer.alive
    assert not observer.flush(0.1)
    observer.record_tool_call("x", "success", 0.001)
    assert scrape_registry(observer.registry).value("vmcp_tool_calls_total", backend="x", outcome="success") == 1000


def test_observers_never_share_a_registry() -> None:
    first, second = MetricsObserver.start(), MetricsObserver.start()
    try:
        first.set_leader("a", True)
        assert first.flush()
        assert second.flush()
        assert scrape_registry(first.registry).value("vmcp_leader", identity="a") == 1.0
        assert not scrape_registry(second.registry).matching("vmcp_leader")
    finally:
        first.stop()
        second.stop()


# --------------------------------------------------------------------------- the reporter's hook


def status(n: int) -> Status:
    return Status(phase=Phase.READY, message=f"status {n}", timestamp=T0 + timedelta(seconds=n))


class ThrottledSink(ControllableSink):
    """Asks the reporter to wait ``wait`` seconds before writing, as a rate limiter would."""

    def __init__(self) -> None:
        super().__init__()
        self.wait = 0.0

    def ready_in(self) -> float:
        return self.wait


@pytest.fixture
def reporter_world(observer: MetricsObserver) -> Iterator[tuple[ActorReporter, ThrottledSink, ManualScheduler]]:
    sink = ThrottledSink()
    scheduler = ManualScheduler()
    reporter = ActorReporter(sink, scheduler=scheduler, backoff=FAST, rng=random.Random(3))
    observer.watch_reporter(reporter)
    shutdown = reporter.start()
    yield reporter, sink, scheduler
    sink.failing = False
    sink.unblock()
    shutdown(5.0)


def test_reporter_outcomes_match_its_stats_at_rest(
    observer: MetricsObserver, reporter_world: tuple[ActorReporter, ThrottledSink, ManualScheduler]
) -> None:
    reporter, sink, scheduler = reporter_world
    sink.failing = True
    sink.wait = 0.5
    reporter.report_status(status(0))
    reporter.wait_idle()  # the write is deferred: the sink asked to wait
    sink.wait = 0.0
    scheduler.advance(0.5)  # the throttle's wait is over: the first (failing) write
    sink.wait_attempts(1)
    reporter.wait_idle()
    samples = read(observer)
    assert samples.value("vmcp_status_write_throttled_total", sink="throttledsink") == 1.0
    assert samples.value("vmcp_status_writes_total", sink="throttledsink", outcome="failed") == 1.0
    sink.block()
    sink.failing = False
    scheduler.advance(1.0)  # the retry: blocks in the sink
    assert sink.entered.wait(5)
    for n in range(1, 101):  # coalesced at the sender and in the actor while it is blocked
        reporter.report_status(status(n))
    reporter.report_status(status(100))  # equal content: skipped once written
    sink.unblock()
    sink.wait_for(lambda s: bool(s.writes) and s.writes[-1].message == "status 100")
    reporter.wait_idle()
    reporter.wait_idle()
    stats = reporter.stats()
    assert not stats.pending
    samples = read(observer)

    def writes(outcome: str) -> float:
        return samples.value("vmcp_status_writes_total", sink="throttledsink", outcome=outcome)

    assert writes("written") == stats.written == 2
    assert writes("failed") == stats.failed_attempts == 1
    assert writes("coalesced") == stats.coalesced
    assert writes("skipped_unchanged") == stats.skipped_unchanged
    assert stats.received == writes("written") + writes("coalesced") + writes("skipped_unchanged")
    assert (
        samples.value("vmcp_status_write_duration_seconds_count", sink="throttledsink") == 3.0
    )  # 1 failed + 2 written


# --------------------------------------------------------------------------- sinks and Kubernetes requests


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_sink_labels_are_words_never_paths(tmp_path: Path) -> None:
    api = client.ApiClient(client.Configuration(host=f"https://127.0.0.1:{closed_port()}"))
    kube = K8sReporter("vmcp", "ns", api)
    file = FileReporter(tmp_path / "secret-dir" / "status.json")
    assert sink_label(kube) == "kubernetes"
    assert sink_label(file) == "file"
    assert sink_label(ActorReporter(TeeReporter(kube, file, LoggingReporter()))) == "kubernetes+file+log"
    assert sink_label(NoOpReporter()) == "noop"
    assert sink_label(ControllableSink()) == "controllablesink"
    assert sink_label(TeeReporter()) == "tee"
    assert attach_request_observer(ActorReporter(TeeReporter(file, kube)), lambda verb, code: None) == 1
    assert kube.request_observer is not None
    api.close()  # type: ignore[no-untyped-call]


def test_k8s_requests_without_a_response_count_as_error(observer: MetricsObserver) -> None:
    api = client.ApiClient(client.Configuration(host=f"https://127.0.0.1:{closed_port()}"))
    kube = K8sReporter("vmcp", "ns", api, qps=0, request_timeout=2.0)
    attach_request_observer(kube, observer.kubernetes_observer())
    with pytest.raises(KubernetesTransientError):
        kube.report_status(status(1))
    samples = read(observer)
    assert samples.value("vmcp_kubernetes_requests_total", verb="get", code="<error>") == 1.0
    api.close()  # type: ignore[no-untyped-call]


def test_a_failing_request_observer_never_breaks_the_write(caplog: pytest.LogCaptureFixture) -> None:
    api = client.ApiClient(client.Configuration(host=f"https://127.0.0.1:{closed_port()}"))

    def broken(verb: str, code: int | None) -> None:
        raise RuntimeError("observer bug")

    kube = K8sReporter("vmcp", "ns", api, qps=0, request_timeout=2.0, request_observer=broken)
    with caplog.at_level(logging.ERROR), pytest.raises(KubernetesTransientError):
        kube.report_status(status(1))
    assert "request observer of ns/vmcp failed" in caplog.text
    api.close()  # type: ignore[no-untyped-call]


def test_the_observer_thread_is_named_for_leak_checks(observer: MetricsObserver) -> None:
    assert "vmcp-metrics" in {thread.name for thread in threading.enumerate()}


def test_a_held_timestamp_refresh_is_not_pending(observer: MetricsObserver) -> None:
    """A status whose only news is a health-check time waits out the interval on purpose: not behind."""
    sink = ControllableSink()
    reporter = ActorReporter(sink, scheduler=ManualScheduler(), timestamp_only_after=30.0)
    observer.watch_reporter(reporter)
    shutdown = reporter.start()

    def checked(at: datetime, message: str = "ok") -> Status:
        backend = DiscoveredBackend("b", status="ready", last_health_check=at)
        return Status(phase=Phase.READY, message=message, discovered_backends=(backend,))

    try:
        reporter.report_status(checked(T0))
        sink.wait_for(lambda s: len(s.writes) == 1)
        reporter.report_status(checked(T0 + timedelta(seconds=5)))  # only the check time moved: held
        reporter.wait_idle()
        stats = reporter.stats()
        assert stats.pending
        assert stats.held
        pending = next(m for m in state_families(RuntimeView(None, {}, stats)) if m.name == "vmcp_status_pending")
        assert pending.samples[0].value == 0.0
        reporter.report_status(checked(T0 + timedelta(seconds=6), "news"))  # real news goes out at once
        sink.wait_for(lambda s: len(s.writes) == 2)
        reporter.wait_idle()
        assert not reporter.stats().pending
    finally:
        shutdown(5.0)
