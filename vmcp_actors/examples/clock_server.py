"""Example MCP server: UTC time and simple date arithmetic.

Run it over stdio (the only transport it speaks)::

    python -m vmcp_actors.examples.clock_server

Tools: ``utc_now``, ``time_between`` and ``next_weekday``.  Models are notoriously bad at
"what time is it" and "how long between these two timestamps"; these answer exactly.
Timestamps are ISO 8601; one without a UTC offset is taken to be UTC (the only zone
this server knows, so that answers never depend on the host's settings).  Only MCP goes
to stdout; the SDK logs to stderr.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta

from mcp.server.mcpserver import MCPServer
from typing_extensions import TypedDict

from vmcp_actors.examples._common import bad_arguments_reported

__all__ = ["Duration", "build_server", "main", "next_weekday_after", "parse_timestamp", "time_between"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Duration(TypedDict):
    """How far apart two instants are; negative when ``end`` is before ``start``."""

    seconds: float
    human: str


def parse_timestamp(value: str) -> datetime:
    """An aware datetime from ISO 8601 (``Z`` accepted); naive values are taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {value!r} (example: 2024-05-01T13:30:00Z)") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _humanize(delta: timedelta) -> str:
    """``1d 2h 3m 4.5s``: the non-zero units, largest first (``0s`` for no time at all)."""
    total = abs(delta.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{int(days)}d"] if days else []
    parts += [f"{int(hours)}h"] if hours else []
    parts += [f"{int(minutes)}m"] if minutes else []
    if seconds or not parts:
        parts.append(f"{seconds:g}s")
    return ("-" if delta.total_seconds() < 0 else "") + " ".join(parts)


def time_between(start: str, end: str) -> Duration:
    """``end - start`` for two ISO 8601 timestamps, in seconds and in words."""
    delta = parse_timestamp(end) - parse_timestamp(start)
    return Duration(seconds=delta.total_seconds(), human=_humanize(delta))


def next_weekday_after(weekday: str, after: date) -> date:
    """The first ``weekday`` (a name such as ``friday`` or ``fri``) strictly after ``after``."""
    wanted = weekday.strip().lower()
    matches = [index for index, name in enumerate(WEEKDAYS) if len(wanted) >= 3 and name.startswith(wanted)]
    if not matches:
        raise ValueError(f"unknown weekday {weekday!r}: use a name such as 'monday' or 'mon'")
    days_ahead = (matches[0] - after.weekday() - 1) % 7 + 1
    return after + timedelta(days=days_ahead)


def build_server() -> MCPServer:
    """The clock server."""
    server = MCPServer(
        "vmcp-example-clock",
        version="1.0.0",
        instructions="Exact current UTC time and date arithmetic on ISO 8601 timestamps.",
        log_level="WARNING",
    )

    @server.tool()
    def utc_now() -> str:
        """The current UTC time as ISO 8601 (e.g. 2024-05-01T13:30:00.123456+00:00)."""
        return datetime.now(UTC).isoformat()

    @server.tool(name="time_between")
    def time_between_tool(start: str, end: str) -> Duration:
        """How long from ``start`` to ``end`` (ISO 8601; no offset means UTC), in seconds and words."""
        with bad_arguments_reported():
            return time_between(start, end)

    @server.tool()
    def next_weekday(weekday: str, after: str | None = None) -> str:
        """The date (YYYY-MM-DD) of the next ``weekday`` strictly after the date ``after``.

        ``after`` is an ISO 8601 date or timestamp (its own calendar date counts, whatever
        its offset); it defaults to today in UTC.
        """
        with bad_arguments_reported():
            start = parse_timestamp(after).date() if after else datetime.now(UTC).date()
            return next_weekday_after(weekday, start).isoformat()

    return server


def main(argv: list[str] | None = None) -> None:
    """Serve the clock over stdio until the client closes stdin."""
    parser = argparse.ArgumentParser(
        prog="python -m vmcp_actors.examples.clock_server",
        description="Example MCP server (stdio): UTC time and date arithmetic.",
    )
    parser.parse_args(argv)
    build_server().run("stdio")


if __name__ == "__main__":
    main()
