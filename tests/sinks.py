"""A controllable in-memory sink for testing reporters: it can fail, block and recover.

A fake is fine here: it stands in for *any* sink in pure tests of the reporter's own
logic; real sinks (files, the Kubernetes API) are tested against the real thing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from testkit.waits import bound
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.model.codec import decode_status
from vmcp_actors.model.status import Phase, Status
from vmcp_actors.reporting.protocol import OnceShutdown, Shutdown
from vmcp_actors.reporting.sinks import FileReporter


class SinkError(ConnectionError):
    """What the controllable sink raises when told to fail."""


class ControllableSink:
    """Records every successful write; failure and blocking are switched by the test."""

    def __init__(self) -> None:
        self.writes: list[Status] = []
        self.attempts = 0
        self.failing = False
        self._open = threading.Event()
        self._open.set()
        self.entered = threading.Event()  # set whenever a write is in progress
        self._changed = threading.Condition()
        self.shutdown_calls = 0
        self.write_threads: set[int] = set()
        self.delay = 0.0  # seconds each write takes: a slow sink

    # -- Reporter protocol
    def report_status(self, status: Status | None) -> None:
        if status is None:
            return
        self.write_threads.add(threading.get_ident())
        self.entered.set()
        self._open.wait()
        if self.delay:
            time.sleep(self.delay)  # simulated I/O latency, not synchronisation
        with self._changed:
            self.attempts += 1
            self._changed.notify_all()
            if self.failing:
                raise SinkError("sink unavailable")
            self.writes.append(status)
            self._changed.notify_all()

    def start(self) -> Shutdown:
        def shutdown(timeout: float | None) -> None:
            self.shutdown_calls += 1

        return OnceShutdown(shutdown)

    # -- controls
    def block(self) -> None:
        """Make the next write wait until :meth:`unblock`."""
        self.entered.clear()
        self._open.clear()

    def unblock(self) -> None:
        self._open.set()

    def wait_for(self, predicate: Callable[[ControllableSink], bool], timeout: float | None = None) -> None:
        """Wait until ``predicate`` holds; ``timeout`` (default :func:`testkit.waits.bound`) is scaled by the knob."""
        limit = bound() if timeout is None else bound(timeout)
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self), limit):
                last = self.writes[-1] if self.writes else None
                raise AssertionError(
                    f"sink never reached the expected state within {limit:g} s: writes={len(self.writes)}, "
                    f"last={None if last is None else (last.phase.value, last.message)}"
                )

    def wait_attempts(self, count: int, timeout: float | None = None) -> None:
        self.wait_for(lambda sink: sink.attempts >= count, timeout)


#: Reconnects and probes fast enough for end-to-end tests with real servers.
FAST_RECONNECT = LifecyclePolicy(backoff=Backoff(initial=0.2, maximum=1.0, jitter=0.1))
FAST_HEALTH = FailureHandling(
    health_check_interval=0.5, health_check_timeout=0.4, unhealthy_threshold=2, status_reporting_interval=30.0
)


class FileSink(ControllableSink):
    """Writes through a real FileReporter (unless told to fail) and records each write for waiting on."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.file = FileReporter(path)

    def report_status(self, status: Status | None) -> None:
        if status is not None and not self.failing:
            self.file.report_status(status)
        super().report_status(status)

    def on_disk(self) -> Status:
        return decode_status(json.loads(self.file.path.read_text()))

    def wait_phase(self, phase: Phase, timeout: float | None = None) -> Status:
        self.wait_for(lambda sink: bool(sink.writes) and sink.writes[-1].phase is phase, timeout)
        return self.writes[-1]
