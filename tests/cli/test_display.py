"""While the live table is drawn, logs never interleave with it; without a terminal, the SDK's tracebacks stay out.

The terminal is a rich ``Console`` writing to memory (``force_terminal``, a fixed width),
the logs are real ``logging`` records from several threads, the log file is a real file.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from tests.cli.test_table import SNAPSHOTS, STATUS
from vmcp_actors.cli.display import THIRD_PARTY, LiveView, configure_logging

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging rewires the root logger: put it back as pytest had it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in THIRD_PARTY}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def sdk_traceback() -> None:
    """What the MCP SDK logs when a server sends a malformed SSE event."""
    try:
        raise ValueError("Expecting value: line 1 column 1 (char 0)")
    except ValueError:
        logging.getLogger("mcp.client.streamable_http").exception("Error parsing SSE message")


def test_logs_emitted_while_the_table_is_drawn_go_to_the_file_and_under_the_table_never_between_frames(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Bug: WARNING lines were written between two redraws and flashed; the SDK's tracebacks leaked."""
    log_file = tmp_path / "run.log"
    recent = configure_logging(debug=False, log_file=log_file)
    terminal = io.StringIO()
    console = Console(file=terminal, width=80, force_terminal=True, color_system=None, highlight=False)
    ours = logging.getLogger("vmcp_actors.backend.actor")
    with LiveView(console, log_file, recent, redirect_stderr=False) as view:
        for frame in range(20):
            writers = [
                threading.Thread(target=ours.warning, args=("backend=flaky state=failed frame=%d", frame)),
                threading.Thread(target=sdk_traceback),
            ]
            for writer in writers:
                writer.start()
            view.draw(STATUS, SNAPSHOTS, NOW)
            for writer in writers:
                writer.join()
        view.draw(STATUS, SNAPSHOTS, NOW)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")  # nothing reached the real stdout/stderr while the table was drawn
    screen = ANSI.sub("", terminal.getvalue())
    assert "Error parsing SSE message" not in screen
    assert "Traceback" not in screen
    assert " vmcp_actors.backend.actor: " not in screen  # no raw log line: only the notes inside each frame
    notes = [line for line in screen.splitlines() if " WARNING backend=flaky" in line]
    assert notes, "the recent warnings are shown under the table"
    assert all(cell_len(line) <= 80 for line in screen.splitlines())
    logged = log_file.read_text()
    assert logged.count("backend=flaky state=failed") == 20
    assert logged.count("Error parsing SSE message") == 20
    assert "Traceback" in logged  # the whole story is in the file


def test_without_a_terminal_the_sdk_tracebacks_stay_out_of_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """Bug: the SDK's "Error parsing SSE message" ERROR tracebacks leaked through the CLI's filter."""
    assert configure_logging(debug=False, log_file=None) is None
    logging.getLogger("vmcp_actors.backend.actor").warning("backend=remote state=failed")
    sdk_traceback()
    logging.getLogger("httpx2").info("HTTP Request: POST http://127.0.0.1/mcp 200 OK")
    err = capsys.readouterr().err
    assert "backend=remote state=failed" in err
    assert "Error parsing SSE message" not in err
    assert "Traceback" not in err
    assert "HTTP Request" not in err


def test_debug_shows_everything(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(debug=True, log_file=None)
    sdk_traceback()
    logging.getLogger("httpx2").debug("HTTP Request: POST http://127.0.0.1/mcp 200 OK")
    err = capsys.readouterr().err
    assert "Error parsing SSE message" in err
    assert "Traceback" in err
    assert "HTTP Request" in err
