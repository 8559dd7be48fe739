"""The simple sinks: NoOp, Logging and File, and the shared idempotent shutdown."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vmcp_actors.errors import ShutdownTimeoutError
from vmcp_actors.model.codec import decode_status
from vmcp_actors.model.status import DiscoveredBackend, Phase, Status
from vmcp_actors.reporting.protocol import OnceShutdown, Reporter
from vmcp_actors.reporting.sinks import FileReporter, LoggingReporter, NoOpReporter

T0 = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


def big_status(n: int) -> Status:
    backends = tuple(DiscoveredBackend(f"b{i}", message="m" * 2000, consecutive_failures=n) for i in range(40))
    return Status(phase=Phase.READY, message=f"status {n}", discovered_backends=backends, timestamp=T0)


@pytest.mark.parametrize("reporter", [NoOpReporter(), LoggingReporter(), FileReporter("/nonexistent/never-written")])
def test_every_reporter_satisfies_the_protocol_and_ignores_none(reporter: Reporter) -> None:
    assert isinstance(reporter, Reporter)
    shutdown = reporter.start()
    reporter.report_status(None)
    shutdown()
    shutdown(1.0)


def test_logging_reporter_logs_the_toolhive_fields_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    reporter = LoggingReporter()
    status = Status(
        phase="Degraded", message="1/2 backends routable", discovered_backends=[DiscoveredBackend("a")], timestamp=T0
    )
    with caplog.at_level(logging.DEBUG, logger="vmcp_actors.model.status"):
        reporter.report_status(status)
    (record,) = [r for r in caplog.records if "status update" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    text = record.getMessage()
    assert "phase=Degraded" in text
    assert "'1/2 backends routable'" in text
    assert "backend_count=1" in text
    assert "2026-05-06T07:08:09+00:00" in text


def test_logging_reporter_never_raises_even_with_a_broken_handler() -> None:
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise OSError("disk full")

        def handleError(self, record: logging.LogRecord) -> None:
            raise OSError("disk full")

    logger = logging.getLogger("test.broken")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Broken())
    LoggingReporter(logger).report_status(Status(phase="Ready"))


def test_file_reporter_writes_the_crd_shape(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "status.json"
    reporter = FileReporter(path)
    status = big_status(1)
    reporter.report_status(status)
    data = json.loads(path.read_text())
    assert data["phase"] == "Ready"
    assert data["discoveredBackends"][0]["consecutiveFailures"] == 1
    assert decode_status(data) == status
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]  # no temp files left


def test_file_reporter_readers_never_see_a_torn_file(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    reporter = FileReporter(path, fsync=False)
    reporter.report_status(big_status(0))
    stop = threading.Event()
    seen: list[int] = []
    torn: list[str] = []

    def read_continuously() -> None:
        while not stop.is_set():
            text = path.read_text()
            try:
                seen.append(json.loads(text)["discoveredBackends"][0].get("consecutiveFailures", 0))
            except json.JSONDecodeError:
                torn.append(text[-40:])

    reader = threading.Thread(target=read_continuously)
    reader.start()
    for n in range(1, 300):
        reporter.report_status(big_status(n))
    stop.set()
    reader.join(10)
    assert not torn
    assert seen == sorted(seen)  # readers only ever move forward


def test_file_reporter_leaves_no_temp_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    target.mkdir()  # renaming a file over a directory fails
    with pytest.raises(IsADirectoryError):
        FileReporter(target).report_status(big_status(1))
    assert list(tmp_path.iterdir()) == [target]


def test_once_shutdown_runs_once_and_later_callers_wait_for_it() -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[float | None] = []

    def action(timeout: float | None) -> None:
        calls.append(timeout)
        started.set()
        release.wait(5)

    shutdown = OnceShutdown(action)
    first = threading.Thread(target=shutdown, args=(3.0,))
    first.start()
    assert started.wait(5)
    with pytest.raises(ShutdownTimeoutError):
        shutdown(0.01)  # still running in the other thread
    release.set()
    first.join(5)
    shutdown(1.0)
    assert calls == [3.0]


def test_once_shutdown_repeats_the_first_failure() -> None:
    def action(timeout: float | None) -> None:
        raise ShutdownTimeoutError("not flushed")

    shutdown = OnceShutdown(action)
    for _ in range(2):
        with pytest.raises(ShutdownTimeoutError, match="not flushed"):
            shutdown()
