"""The simple sinks: no-op, logging, file, and a tee that feeds several.

They are synchronous and hold no buffer; :class:`~vmcp_actors.reporting.actor_reporter.ActorReporter`
wraps any of them to make reporting non-blocking, coalesced and retried.  The Kubernetes
sink lives in :mod:`vmcp_actors.reporting.kubernetes`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path

from vmcp_actors.model.codec import encode_status
from vmcp_actors.model.status import Status
from vmcp_actors.reporting.protocol import OnceShutdown, Reporter, Shutdown, no_shutdown, ready_in

__all__ = ["FileReporter", "LoggingReporter", "NoOpReporter", "TeeReporter"]

log = logging.getLogger(__name__)


class NoOpReporter:
    """Discards every status; for tests and for embedders that report elsewhere."""

    def report_status(self, status: Status | None) -> None:
        """Discard ``status``."""
        return

    def start(self) -> Shutdown:
        """Nothing to prepare; the shutdown has nothing to flush."""
        return no_shutdown()


class LoggingReporter:
    """Logs each status at DEBUG (toolhive's CLI-mode reporter); never raises.

    The log line carries the same fields as toolhive's ``slog.Debug`` call: phase,
    message, backend count and timestamp.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("vmcp_actors.model.status")

    def report_status(self, status: Status | None) -> None:
        """Log ``status``; a broken log handler is swallowed, never the caller's problem."""
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
        """Say (at DEBUG) that statuses are only logged; the shutdown has nothing to flush."""
        self._log.debug("status reporter started (CLI mode, logging only)")
        return no_shutdown()


class TeeReporter:
    """Sends each status to several sinks (say, Kubernetes and a file).

    Every sink gets every status even if another fails; the first failure is raised
    afterwards so the wrapping ``ActorReporter`` retries (sinks are idempotent, so the
    ones that succeeded just write the same status again).
    """

    def __init__(self, *sinks: Reporter) -> None:
        self.sinks = sinks

    def report_status(self, status: Status | None) -> None:
        """Write ``status`` to every sink, then raise the first failure, if any."""
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
        return max((ready_in(sink) for sink in self.sinks), default=0.0)

    def start(self) -> Shutdown:
        """Start every sink; the shutdown stops each in turn."""
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
        """Replace the file with ``status`` in one rename; raises ``OSError`` when it cannot."""
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
        """Nothing to prepare (the directory is made on the first write)."""
        return no_shutdown()


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
