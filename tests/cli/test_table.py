"""The live table fits the terminal: no line wider than the window, free text cut with an ellipsis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from vmcp_actors.backend.lifecycle_state import Health, State
from vmcp_actors.backend.snapshot import BackendSnapshot
from vmcp_actors.cli import render_table
from vmcp_actors.model.status import DiscoveredBackend, Phase, Status

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LONG_ERROR = "HTTP 401 Unauthorized for POST http://127.0.0.1:8080/mcp: the bearer token was rejected " * 2


def snapshot(
    name: str, state: State = State.FAILED, error: str = LONG_ERROR, transport: str = "streamable-http"
) -> BackendSnapshot:
    return BackendSnapshot(
        name=name,
        transport=transport,
        url="http://127.0.0.1:1/mcp",
        state=state,
        health=Health.UNHEALTHY,
        consecutive_failures=2,
        last_attempt=NOW,
        next_retry_after=NOW + timedelta(seconds=42),
        tool_names=("echo",),
        last_error=error,
        last_error_kind="transient",
        http_status=None,
        last_probe_latency=None,
        has_outgoing_auth=False,
        attempt=2,
        mcp_revision="",
        service_data={},
    )


STATUS = Status(
    phase=Phase.DEGRADED,
    message="1/2 backends routable (0 degraded, 1 unhealthy, 0 unknown, 1 unauthenticated)",
    discovered_backends=[DiscoveredBackend("github", status="unavailable")],
    backend_count=1,
)
SNAPSHOTS = {"github": snapshot("github"), "files": snapshot("files", State.RUNNING, "", "stdio")}
NOTE = "12:00:01 WARNING backend=github state=failed health=unhealthy error='" + LONG_ERROR + "'"


def test_every_column_and_the_phase_on_a_wide_terminal() -> None:
    text = render_table(STATUS, {"github": snapshot("github", error="connection refused")}, NOW, 120)
    header, row = text.splitlines()[:2]
    for column in ("BACKEND", "TRANSPORT", "STATE", "HEALTH", "TOOLS", "FAILURES", "NEXT RETRY", "LAST ERROR"):
        assert column in header
    assert row.split()[:8] == ["github", "streamable-http", "failed", "unavailable", "1", "2", "in", "42s"]
    assert row.endswith("connection refused")
    assert "PHASE: Degraded" in text


@pytest.mark.parametrize("width", [60, 200])
def test_no_line_is_wider_than_the_terminal(width: int) -> None:
    """Bug: the table was ~128 columns whatever the terminal, so at 60 columns every row wrapped."""
    text = render_table(STATUS, SNAPSHOTS, NOW, width, [NOTE])
    lines = text.splitlines()
    assert max(cell_len(line) for line in lines) <= width
    github = next(line for line in lines if line.startswith("github"))
    assert github.endswith("…")  # the error is cut, not wrapped onto the next line
    assert len([line for line in lines if line.startswith(("github", "files"))]) == 2
    header = lines[0]
    for column in ("BACKEND", "STATE", "HEALTH", "LAST ERROR"):
        assert column in header
    if width >= 200:
        assert all(column in header for column in ("TRANSPORT", "TOOLS", "FAILURES", "NEXT RETRY"))
    assert lines[-1].startswith("12:00:01 WARNING")  # recent log lines go under the table, cut too


@given(
    st.integers(min_value=40, max_value=250),
    st.lists(st.text(min_size=1, max_size=60).filter(str.isprintable), min_size=1, max_size=4, unique=True),
    st.text(max_size=300).filter(str.isprintable),
)
def test_any_width_any_names_any_error_fit(width: int, names: list[str], error: str) -> None:
    snapshots = {name: snapshot(name, error=error) for name in names}
    text = render_table(STATUS, snapshots, NOW, width, [error])
    assert max(cell_len(line) for line in text.splitlines()) <= width  # terminal cells: wide characters count 2
