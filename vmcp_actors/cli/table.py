"""The live table of ``vmcp-actors run``: one row per backend, then the phase, fitted to the terminal.

Built with `rich <https://rich.readthedocs.io>`_ rather than escape codes by hand: rich
measures the terminal, shrinks columns to fit it and cuts what does not fit with an
ellipsis, so no line is ever wider than the terminal (a 60-column window used to get
every row wrapped).  The free-text columns (the last error, the status message) give
way first; on a narrow terminal the columns that matter least are left out.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from vmcp_actors.backend.snapshot import BackendSnapshot
    from vmcp_actors.model.status import Status

__all__ = ["render_table", "table_renderable"]

_LEADING: Final = "LEADER: this replica writes the status"
_FOLLOWING: Final = "LEADER: another replica (following)"

#: Below this many columns, TRANSPORT and FAILURES are left out; below the second, NEXT RETRY and TOOLS too.
_NARROW: Final = 100
_NARROWER: Final = 80
#: The narrowest the LAST ERROR column gets, and the most a backend name keeps when space is short.
_MIN_ERROR: Final = 5
_MAX_NAME: Final = 16
#: Spaces between two columns.
_GAP: Final = 2
#: States whose row shows when the next retry is due.
_RETRYING: Final = frozenset({"failed", "unreachable", "auth_required"})


def _in(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    return "now" if seconds <= 0 else f"in {seconds:.0f}s"


def _health(status: Status | None, snap: BackendSnapshot) -> str:
    """The health the status reports for the backend (the CRD's word), else the actor's."""
    if status is not None:
        backend = status.backend(snap.name)
        if backend is not None and backend.status:
            return backend.status
    return snap.health.value


def _columns(width: int) -> Sequence[str]:
    columns = ["BACKEND", "TRANSPORT", "STATE", "HEALTH", "TOOLS", "FAILURES", "NEXT RETRY", "LAST ERROR"]
    if width < _NARROW:
        columns = [c for c in columns if c not in ("TRANSPORT", "FAILURES")]
    if width < _NARROWER:
        columns = [c for c in columns if c not in ("NEXT RETRY", "TOOLS")]
    return columns


def _cells(status: Status | None, snap: BackendSnapshot, now: datetime) -> dict[str, str]:
    return {
        "BACKEND": snap.name,
        "TRANSPORT": snap.transport,
        "STATE": snap.state.value,
        "HEALTH": _health(status, snap),
        "TOOLS": str(snap.tool_count),
        "FAILURES": str(snap.consecutive_failures),
        "NEXT RETRY": _in(snap.next_retry_after, now) if snap.state.value in _RETRYING else "-",
        "LAST ERROR": " ".join(snap.last_error.split()) or "-",
    }


def table_renderable(
    status: Status | None,
    snapshots: Mapping[str, BackendSnapshot],
    now: datetime,
    width: int,
    notes: Iterable[str] = (),
    leading: bool | None = None,
) -> RenderableType:
    """The table, the phase line, leadership and ``notes`` (recent log lines), for a terminal ``width`` wide.

    ``leading`` is None without leader election; otherwise it says whether this replica writes the status.
    """
    columns = _columns(width)
    rows = [_cells(status, snap, now) for snap in snapshots.values()]
    widths = {column: max((len(column), *(len(row[column]) for row in rows))) for column in columns}
    widths["BACKEND"] = min(widths["BACKEND"], _MAX_NAME)  # a very long name gives way too
    fixed = sum(w for column, w in widths.items() if column != "LAST ERROR") + _GAP * (len(columns) - 1)
    if "LAST ERROR" in widths:  # free text: what is left of the line, cut with an ellipsis
        widths["LAST ERROR"] = min(widths["LAST ERROR"], max(width - fixed, _MIN_ERROR))
    table = Table(box=None, show_edge=False, pad_edge=False, expand=False, header_style="bold", padding=(0, _GAP // 2))
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ellipsis", width=widths[column])
    for row in rows:
        # As Text, not str: a backend's name or error is data, never rich markup ("[/]" must not raise).
        table.add_row(*(Text(row[column]) for column in columns))
    if status is None:
        phase = Text("PHASE: (no status yet)")
    else:
        phase = Text(f"PHASE: {status.phase.value}  backends routable: {status.backend_count}  -- {status.message}")
    lines: list[RenderableType] = [table, Text(""), _line(phase)]
    if leading is not None:
        lines.append(_line(Text(_LEADING if leading else _FOLLOWING)))
    lines.extend(_line(Text(note, style="dim")) for note in notes)
    return Group(*lines)


def _line(text: Text) -> Text:
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def render_table(
    status: Status | None,
    snapshots: Mapping[str, BackendSnapshot],
    now: datetime,
    width: int = 120,
    notes: Iterable[str] = (),
    leading: bool | None = None,
) -> str:
    """The table as plain text ``width`` columns wide at most (no colours): for tests and non-terminal output."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False, highlight=False)
    console.print(table_renderable(status, snapshots, now, width, notes, leading))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())
