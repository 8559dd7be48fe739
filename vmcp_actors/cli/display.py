"""Where ``vmcp-actors run`` writes: the live table on a terminal, one line per change elsewhere, and the logs.

On a terminal the table is redrawn in place (a rich ``Live`` region), and nothing else
may write to the terminal meanwhile: a WARNING line between two redraws used to flash
and vanish, and a stdio server's own stderr scrambled the table.  So while the table is
drawn, the process's stderr -- file descriptor 2, which Python's logging, the SDK and
every stdio server (they inherit it) write to -- is pointed at a log file, and the
latest WARNING/ERROR lines are shown, one line each, *under* the table.  When the table
is gone, stderr is the terminal again and the final status is printed there.

Without a terminal (a pipe, a pod log) there is no table: one summary line per change
goes to stdout and the logs to stderr, where the third-party loggers (the SDK, its HTTP
client, uvicorn) say nothing below CRITICAL unless ``--debug``: their failures reach the
backend's row and the status message with the reason already, and their tracebacks
("Error parsing SSE message") used to leak through.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol, Self, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

    from vmcp_actors.backend.snapshot import BackendSnapshot
    from vmcp_actors.model.status import Status
    from vmcp_actors.runtime.runtime import Runtime

__all__ = ["LineView", "LiveView", "RecentLines", "ThirdPartyFilter", "View", "configure_logging", "summary_line"]

LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Loggers that are not ours: quiet on a console unless --debug.
THIRD_PARTY: Final = ("mcp", "httpx", "httpx2", "httpcore", "httpcore2", "uvicorn", "anyio", "kubernetes", "urllib3")
#: How many recent log lines the live view shows under the table.
RECENT_LINES: Final = 4


class ThirdPartyFilter(logging.Filter):
    """Keeps third-party records off a console below CRITICAL (their errors reach the table and status anyway)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record unless a third-party logger wrote it below CRITICAL."""
        third_party = record.name.split(".")[0] in THIRD_PARTY
        return not third_party or record.levelno >= logging.CRITICAL


class RecentLines(logging.Handler):
    """The last few WARNING+ records, one line each (no traceback), for the live view to show under the table."""

    def __init__(self, keep: int = RECENT_LINES) -> None:
        super().__init__(logging.WARNING)
        self._lines: collections.deque[str] = collections.deque(maxlen=keep)
        self.addFilter(ThirdPartyFilter())

    def emit(self, record: logging.LogRecord) -> None:
        """Remember the record's first line."""
        try:
            message = record.getMessage()
            first = message.splitlines()[0] if message else ""
            when = time.strftime("%H:%M:%S", time.localtime(record.created))
            self._lines.append(f"{when} {record.levelname} {first}")
        except Exception:  # noqa: BLE001 - a record that cannot be rendered is skipped, never raised into logging
            self.handleError(record)

    @property
    def lines(self) -> tuple[str, ...]:
        """The remembered lines, oldest first."""
        return tuple(self._lines)


def configure_logging(debug: bool, log_file: Path | None) -> RecentLines | None:
    """Route the process's log records; returns the handler feeding the live view, if any.

    * ``debug``: everything at DEBUG to stderr, nothing filtered (there is no table);
    * ``log_file`` (the live table is drawn): everything at INFO to the file, and the
      recent WARNING+ lines of our own loggers to the view;
    * otherwise: WARNING+ to stderr, third-party records only from CRITICAL.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    formatter = logging.Formatter(LOG_FORMAT)
    for name in THIRD_PARTY:  # the HTTP client logs every request at INFO: only with --debug
        logging.getLogger(name).setLevel(logging.NOTSET if debug else logging.WARNING)
    if debug:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(formatter)
        root.addHandler(console)
        root.setLevel(logging.DEBUG)
        return None
    if log_file is not None:
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(formatter)
        recent = RecentLines()
        root.addHandler(file_handler)
        root.addHandler(recent)
        root.setLevel(logging.INFO)
        return recent
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(ThirdPartyFilter())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    return None


def summary_line(status: Status | None, snapshots: Mapping[str, BackendSnapshot]) -> str:
    """One line per change when there is no terminal: the phase and each backend's state."""
    backends = " ".join(f"{s.name}={s.state.value}" for s in snapshots.values())
    phase = status.phase.value if status else "-"
    return f"phase={phase} {backends}".rstrip()


class View(Protocol):
    """What ``run`` shows the runtime on, for as long as the ``with`` block lasts."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None: ...

    def show(self, runtime: Runtime, stopping: bool = False) -> None:
        """Show the runtime's latest status and snapshots."""
        ...


class LineView:
    """No terminal: one summary line on stdout whenever it changes."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._last = ""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        return None

    def show(self, runtime: Runtime, stopping: bool = False) -> None:
        """Print the summary line if it changed."""
        line = summary_line(runtime.status(), runtime.snapshots())
        if line != self._last:
            self._last = line
            self._out.write(line + "\n")
            self._out.flush()


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Point file descriptor 2 at ``path`` (appending) for the duration, then back at what it was."""
    sys.stderr.flush()
    saved = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.dup2(target, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)


class LiveView:
    """A terminal: the table redrawn in place, fitted to the window, with the latest log lines under it.

    Use as a context manager: entering starts the live region (and, unless
    ``redirect_stderr`` is false, points stderr at ``log_file``), leaving draws the last
    frame and gives the terminal back.
    """

    def __init__(
        self,
        console: Console,
        log_file: Path,
        recent: RecentLines | None,
        *,
        redirect_stderr: bool = True,
        subtitle: str = "",
    ) -> None:
        self._console = console
        self._subtitle = subtitle
        self._log_file = log_file
        self._recent = recent
        self._redirect = redirect_stderr
        self._live: Live | None = None
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        from rich.live import Live

        if self._redirect:
            self._stack.enter_context(stderr_to(self._log_file))
        self._live = Live(
            console=self._console,
            auto_refresh=False,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
            vertical_overflow="visible",
        )
        self._live.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            if self._live is not None:
                self._live.stop()
        finally:
            self._stack.close()

    def show(self, runtime: Runtime, stopping: bool = False) -> None:
        """Redraw the table from the runtime's latest status and snapshots."""
        self.draw(runtime.status(), runtime.snapshots(), datetime.now().astimezone(), stopping, runtime.leading)

    def draw(
        self,
        status: Status | None,
        snapshots: Mapping[str, BackendSnapshot],
        now: datetime,
        stopping: bool = False,
        leading: bool | None = None,
    ) -> None:
        """Redraw from these values (what :meth:`show` reads from a runtime)."""
        from rich.console import Group
        from rich.text import Text

        from vmcp_actors.cli.table import table_renderable

        width = self._console.width
        title = (
            "vmcp-actors  (stopping: backends stop, the final status is flushed...)"
            if stopping
            else ("vmcp-actors  (Ctrl-C to stop)")
        )
        subtitle = f"  {self._subtitle}" if self._subtitle else ""
        header = Text(f"{title}{subtitle}  logs: {self._log_file}", no_wrap=True, overflow="ellipsis")
        notes = list(self._recent.lines) if self._recent is not None else []
        if leading is not None:  # leader election is on: say whether this replica writes the status
            notes.insert(
                0, "LEADER: this replica writes the status" if leading else "LEADER: another replica (following)"
            )
        body = table_renderable(status, snapshots, now, width, notes)
        with self._lock:
            if self._live is not None:
                self._live.update(Group(header, Text(""), body), refresh=True)
