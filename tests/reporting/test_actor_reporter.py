"""ActorReporter: non-blocking, serialised, idempotent, coalescing, retrying, flushing."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.sinks import ControllableSink
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.actorkit.timers import ManualScheduler
from vmcp_actors.errors import ReporterClosedError, ReporterNotStartedError, ShutdownTimeoutError
from vmcp_actors.model.status import Phase, Status
from vmcp_actors.reporting.actor_reporter import ActorReporter
from vmcp_actors.reporting.coalescing import DEFAULT_RETRY_BACKOFF
from vmcp_actors.reporting.protocol import Shutdown
from vmcp_actors.testing import crash_reporter

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FAST = Backoff(initial=0.005, maximum=0.02, factor=2.0, jitter=0.1)


def status(n: int, phase: Phase = Phase.READY) -> Status:
    """A status whose content differs for each n; the timestamp identifies the report."""
    return Status(phase=phase, message=f"status {n}", backend_count=n % 7, timestamp=T0 + timedelta(seconds=n))


def reporter_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if "_ReporterActor" in t.name or "vmcp-reporter" in t.name}


@pytest.fixture
def sink() -> ControllableSink:
    return ControllableSink()


@pytest.fixture
def scheduler() -> ManualScheduler:
    return ManualScheduler()


@pytest.fixture
def started(sink: ControllableSink, scheduler: ManualScheduler) -> Iterator[tuple[ActorReporter, Shutdown]]:
    reporter = ActorReporter(sink, scheduler=scheduler, rng=random.Random(7))
    shutdown = reporter.start()
    yield reporter, shutdown
    sink.failing = False
    sink.unblock()
    shutdown(5.0)


def test_report_status_never_waits_for_a_blocked_sink(
    started: tuple[ActorReporter, Shutdown], sink: ControllableSink
) -> None:
    reporter, shutdown = started
    sink.block()
    reporter.report_status(status(0))
    assert sink.entered.wait(5)
    for n in range(1, 1001):  # would hang here (and time out) if reporting blocked
        reporter.report_status(status(n))
    sink.unblock()
    shutdown(5.0)
    assert sink.writes == [status(0), status(1000)]
    stats = reporter.stats()
    assert (stats.received, stats.written, stats.coalesced) == (1001, 2, 999)


def test_the_sink_is_called_from_one_thread_that_is_not_the_callers(
    started: tuple[ActorReporter, Shutdown], sink: ControllableSink
) -> None:
    reporter, _ = started
    for n in range(50):
        reporter.report_status(status(n))
        reporter.wait_idle()
    assert len(sink.write_threads) == 1
    assert threading.get_ident() not in sink.write_threads
    assert sink.writes == [status(n) for n in range(50)]


def test_an_unchanged_status_is_not_written_again(
    started: tuple[ActorReporter, Shutdown], sink: ControllableSink
) -> None:
    reporter, _ = started
    base = status(1)
    for seconds in range(100):
        reporter.report_status(
            Status(
                phase=base.phase,
                message=base.message,
                backend_count=base.backend_count,
                timestamp=T0 + timedelta(seconds=seconds),
            )
        )
        reporter.wait_idle()
    assert len(sink.writes) == 1
    assert reporter.stats().skipped_unchanged == 99


def test_a_failed_write_is_retried_after_a_jittered_backoff(
    started: tuple[ActorReporter, Shutdown], sink: ControllableSink, scheduler: ManualScheduler
) -> None:
    reporter, _ = started
    sink.failing = True
    reporter.report_status(status(1))
    reporter.wait_idle()
    assert sink.attempts == 1
    delay = scheduler.next_due()
    assert delay is not None
    assert DEFAULT_RETRY_BACKOFF.initial <= delay <= DEFAULT_RETRY_BACKOFF.initial * (1 + DEFAULT_RETRY_BACKOFF.jitter)
    sink.failing = False
    scheduler.advance(delay)
    sink.wait_for(lambda s: len(s.writes) == 1)
    assert sink.writes == [status(1)]
    assert reporter.stats().failed_attempts == 1


def test_retries_back_off_exponentially_up_to_the_cap_without_busy_looping(
    started: tuple[ActorReporter, Shutdown], sink: ControllableSink, scheduler: ManualScheduler
) -> None:
    reporter, _ = started
    sink.failing = True
    reporter.report_status(status(1))
    delays = []
    for attempt in range(1, 14):
        reporter.wait_idle()
        assert sink.attempts == attempt  # nothing more happens until the timer fires
        assert scheduler.pending() == 1
        delay = scheduler.next_due()
        assert delay is not None
        delays.append(delay)
        scheduler.advance(delay)
    assert delays == sorted(delays)
    assert delays[-1] == DEFAULT_RETRY_BACKOFF.maximum
    assert all(d <= DEFAULT_RETRY_BACKOFF.maximum for d in delays)


def test_a_newer_status_replaces_the_one_being_retried(
    started: tuple[ActorReporter, Shutdown], sink: ControllableSink, scheduler: ManualScheduler
) -> None:
    reporter, _ = started
    sink.failing = True
    reporter.report_status(status(1))
    reporter.wait_idle()
    reporter.report_status(status(2))
    reporter.wait_idle()
    assert sink.attempts == 1  # the newer status waits for the backoff too
    sink.failing = False
    scheduler.advance(1.0)
    sink.wait_for(lambda s: len(s.writes) == 1)
    reporter.wait_idle()
    assert sink.writes == [status(2)]
    assert reporter.stats().coalesced == 1


def test_shutdown_flushes_the_pending_status(started: tuple[ActorReporter, Shutdown], sink: ControllableSink) -> None:
    reporter, shutdown = started
    sink.block()
    reporter.report_status(status(1))
    assert sink.entered.wait(5)
    reporter.report_status(status(2))
    done = threading.Event()

    def shut_down() -> None:
        shutdown(5.0)
        done.set()

    thread = threading.Thread(target=shut_down)
    thread.start()
    assert not done.wait(0.05)  # still flushing: the sink is blocked
    sink.unblock()
    thread.join(5)
    assert done.is_set()
    assert sink.writes == [status(1), status(2)]
    assert sink.shutdown_calls == 1


def test_shutdown_flushes_through_retries() -> None:
    sink = ControllableSink()
    sink.failing = True
    reporter = ActorReporter(sink, backoff=FAST)
    shutdown = reporter.start()
    reporter.report_status(status(3))
    sink.wait_attempts(3)
    sink.failing = False
    shutdown(5.0)
    assert sink.writes == [status(3)]
    assert reporter.stats().failed_attempts >= 3


def test_shutdown_timeout_names_what_was_not_flushed() -> None:
    sink = ControllableSink()
    sink.failing = True
    reporter = ActorReporter(sink, backoff=FAST)
    shutdown = reporter.start()
    reporter.report_status(status(4, Phase.DEGRADED))
    with pytest.raises(ShutdownTimeoutError) as info:
        shutdown(0.2)
    message = str(info.value)
    assert "phase=Degraded" in message
    assert "status 4" in message
    assert "sink unavailable" in message
    assert info.value.pending == status(4, Phase.DEGRADED)
    assert not reporter_threads()
    with pytest.raises(ShutdownTimeoutError):
        shutdown(0.2)  # the second call reports the same outcome


def test_report_after_shutdown_raises_and_shutdown_is_idempotent(started: tuple[ActorReporter, Shutdown]) -> None:
    reporter, shutdown = started
    shutdown(5.0)
    shutdown(5.0)
    with pytest.raises(ReporterClosedError, match="after the reporter was shut down"):
        reporter.report_status(status(1))
    reporter.report_status(None)  # None stays a no-op even after shutdown


def test_shutdown_from_many_threads_at_once_returns_everywhere(
    started: tuple[ActorReporter, Shutdown], sink: ControllableSink
) -> None:
    reporter, shutdown = started
    reporter.report_status(status(1))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            shutdown(5.0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors
    assert not any(t.is_alive() for t in threads)
    assert sink.writes == [status(1)]
    assert sink.shutdown_calls == 1


def test_reporting_before_start_is_a_clear_error(sink: ControllableSink) -> None:
    reporter = ActorReporter(sink)
    reporter.report_status(None)
    with pytest.raises(ReporterNotStartedError, match="before start"):
        reporter.report_status(status(1))


def test_start_twice_returns_the_same_shutdown(sink: ControllableSink) -> None:
    reporter = ActorReporter(sink)
    first = reporter.start()
    assert reporter.start() is first
    first(5.0)


def test_a_crashed_actor_is_replaced_and_keeps_the_pending_status(
    started: tuple[ActorReporter, Shutdown], sink: ControllableSink
) -> None:
    reporter, shutdown = started
    sink.failing = True
    reporter.report_status(status(1))
    reporter.wait_idle()
    sink.failing = False
    crash_reporter(reporter, RuntimeError("injected bug"))
    sink.wait_for(lambda s: len(s.writes) == 1)
    assert reporter.restarts == 1
    assert sink.writes == [status(1)]
    reporter.report_status(status(2))
    shutdown(5.0)
    assert sink.writes == [status(1), status(2)]
    assert reporter.stats().failed_attempts == 1  # counters survive the restart


def test_no_thread_is_left_after_shutdown(sink: ControllableSink) -> None:
    before = reporter_threads()
    reporter = ActorReporter(sink)
    shutdown = reporter.start()
    assert reporter_threads() - before
    reporter.report_status(status(1))
    shutdown(5.0)
    assert reporter_threads() == before


def test_resend_unchanged_after_lets_a_periodic_reassert_through(sink: ControllableSink) -> None:
    scheduler = ManualScheduler()
    reporter = ActorReporter(sink, scheduler=scheduler, resend_unchanged_after=30.0)
    shutdown = reporter.start()
    reporter.report_status(status(1))
    reporter.wait_idle()
    reporter.report_status(status(1))
    reporter.wait_idle()
    assert len(sink.writes) == 1
    scheduler.advance(30.0)
    reporter.report_status(status(1))
    shutdown(5.0)
    assert len(sink.writes) == 2


def test_counters_balance_at_rest(started: tuple[ActorReporter, Shutdown], sink: ControllableSink) -> None:
    reporter, shutdown = started
    sink.block()
    for n in range(200):
        reporter.report_status(status(n % 5))
    sink.unblock()
    shutdown(5.0)
    stats = reporter.stats()
    assert stats.received == 200
    assert stats.received == stats.written + stats.skipped_unchanged + stats.coalesced + int(stats.pending)
    assert not stats.pending


class ThrottledSink(ControllableSink):
    """A sink with a rate limit it announces, as K8sReporter does with ``ready_in``."""

    def __init__(self) -> None:
        super().__init__()
        self.wait = 0.0

    def ready_in(self) -> float:
        return self.wait


def test_a_throttled_sink_is_waited_for_on_a_timer_and_gets_the_latest_status() -> None:
    sink = ThrottledSink()
    scheduler = ManualScheduler()
    reporter = ActorReporter(sink, scheduler=scheduler)
    shutdown = reporter.start()
    sink.wait = 0.5
    reporter.report_status(status(1))
    reporter.wait_idle()
    assert sink.attempts == 0  # not blocked inside the sink holding status 1
    assert scheduler.next_due() == 0.5
    reporter.report_status(status(2))
    reporter.wait_idle()
    sink.wait = 0.0
    scheduler.advance(0.5)
    sink.wait_for(lambda s: len(s.writes) == 1)
    shutdown(5.0)
    assert sink.writes == [status(2)]
    assert reporter.stats().failed_attempts == 0
