"""The ``Reporter`` protocol and the simple sinks: no-op, logging and file.

The protocol follows toolhive's ``status.Reporter``: ``report_status`` publishes a whole
status, ``start`` returns a ``shutdown`` function that is idempotent, callable from any
thread, and returns only once pending updates are flushed.  The sinks here are
synchronous and hold no buffer; :class:`~vmcp_actors.reporting.actor_reporter.ActorReporter`
wraps any of them to make reporting non-blocking, coalesced and retried.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from vmcp_actors.errors import ShutdownTimeoutError
from vmcp_actors.model.codec import encode_status
from vmcp_actors.model.status import Status

__all__ = [
    "FileReporter",
    "LoggingReporter",
    "NoOpReporter",
    "OnceShutdown",
    "Reporter",
    "Shutdown",
    "TeeReporter",
]

log = logging.getLogger(__name__)


class Shutdown(Protocol):
    """Stops a reporter after flushing what it holds; idempotent and thread-safe."""

    def __call__(self, timeout: float | None = None) -> None: ...


@runtime_checkable
class Reporter(Protocol):
    """Publishes the vMCP's status somewhere an operator looks."""

    def report_status(self, status: Status | None) -> None:
        """Publish ``status`` (the complete status, not a delta); ``None`` is a no-op."""
        ...

    def start(self) -> Shutdown:
        """Prepare the reporter and return the function that shuts it down."""
        ...


class OnceShutdown:
    """Runs a shutdown action exactly once, whichever thread calls and however often.

    Later callers wait for the first call to finish, so every caller returns only once
    the flush is complete, and they see the same outcome: if the first call raised, the
    same exception is raised again rather than silently reporting success.
    """

    def __init__(self, action: Callable[[float | None], None]) -> None:
        self._action = action
        self._lock = threading.Lock()
        self._started = False
        self._done = threading.Event()
        self._error: BaseException | None = None

    @property
    def called(self) -> bool:
        return self._started

    def __call__(self, timeout: float | None = None) -> None:
        with self._lock:
            first = not self._started
            self._started = True
        if first:
            try:
                self._action(timeout)
            except BaseException as exc:
                self._error = exc
                raise
            finally:
                self._done.set()
            return
        if not self._done.wait(timeout):
            raise ShutdownTimeoutError(f"shutdown still in progress in another thread after {timeout} s")
        if self._error is not None:
            raise self._error


class NoOpReporter:
    """Discards every status; for tests and for embedders that report elsewhere."""

    def report_status(self, status: Status | None) -> None:
        return None

    def start(self) -> Shutdown:
        return OnceShutdown(lambda timeout: None)


class LoggingReporter:
    """Logs each status at DEBUG (toolhive's CLI-mode reporter); never raises.

    The log line carries the same fields as toolhive's ``slog.Debug`` call: phase,
    message, backend count and timestamp.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("vmcp_actors.model.status")

    def report_status(self, status: Status | None) -> None:
        if status is None:
            return
        try:
            self._log.debug(
                "status update (not persisted in CLI mode): phase=%s message=%r backend_count=%d timestamp=%s",
                status.phase.value,
                status.message,
                len(status.discovered_backends),
                status.timestamp.isoformat() if status.timestamp else "-",
            )
        except Exception:  # noqa: BLE001 - a broken handler must not fail the caller's status update
            return

    def start(self) -> Shutdown:
        self._log.debug("status reporter started (CLI mode, logging only)")
        return OnceShutdown(lambda timeout: None)


class TeeReporter:
    """Sends each status to several sinks (say, Kubernetes and a file).

    Every sink gets every status even if another fails; the first failure is raised
    afterwards so the wrapping ``ActorReporter`` retries (sinks are idempotent, so the
    ones that succeeded just write the same status again).
    """

    def __init__(self, *sinks: Reporter) -> None:
        self.sinks = sinks

    def report_status(self, status: Status | None) -> None:
        if status is None:
            return
        errors: list[Exception] = []
        for sink in self.sinks:
            try:
                sink.report_status(status)
            except Exception as exc:  # noqa: BLE001 - collected and re-raised below
                errors.append(exc)
        if errors:
            raise errors[0]

    def ready_in(self) -> float:
        """The longest wait any throttled sink asks for (see ``ActorReporter``)."""
        waits = [ready() for ready in (getattr(sink, "ready_in", None) for sink in self.sinks) if callable(ready)]
        return max(waits, default=0.0)

    def start(self) -> Shutdown:
        shutdowns = [sink.start() for sink in self.sinks]

        def shutdown(timeout: float | None) -> None:
            for each in shutdowns:
                each(timeout)

        return OnceShutdown(shutdown)


class FileReporter:
    """Writes the status JSON (the CRD's camelCase shape) to a file, atomically.

    Each write goes to a temporary file in the same directory, is fsynced, and is then
    renamed over the target: a reader sees the previous complete status or the new
    complete one, never a torn file, even if the process dies mid-write.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = fsync

    def report_status(self, status: Status | None) -> None:
        if status is None:
            return
        payload = json.dumps(encode_status(status), indent=2, sort_keys=True) + "\n"
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
                handle.flush()
                if self._fsync:
                    os.fsync(handle.fileno())
            os.replace(temp_name, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        if self._fsync:
            _fsync_directory(directory)

    def start(self) -> Shutdown:
        return OnceShutdown(lambda timeout: None)


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself; best effort where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        log.debug("could not fsync directory %s", directory)
    finally:
        os.close(fd)
