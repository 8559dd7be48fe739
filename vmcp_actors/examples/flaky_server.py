"""Example MCP server that fails on a timer: weather helpers, down on purpose now and then.

It exists so the bundled example shows a vMCP status leaving Ready and coming back
without anyone touching anything.  Run it over stdio::

    python -m vmcp_actors.examples.flaky_server [--up 20] [--down 10]
                                                 [--cycle-id ID] [--state-dir DIR]

The cycle, deterministic (no randomness anywhere):

1. **Up.**  A start outside a down window serves MCP normally.  ``--up`` seconds after
   it starts serving (the SDK imported, right before it reads the client's
   ``initialize``) it writes a crash record to the state file, says so on stderr and
   exits with status 3 (:data:`EXIT_CRASHED`) at once, in the middle of the session:
   to its client the session is simply lost.
2. **Down.**  For ``--down`` seconds after that crash, every start prints why on stderr
   and exits with status 1 (:data:`EXIT_DOWN`) immediately, before importing the SDK or
   reading stdin, so the handshake fails fast.  A supervisor restarting it keeps seeing
   a dead backend.
3. **Back.**  The first start once the window is over serves again (step 1): the backend
   recovers on its own, ``--down`` seconds after the crash plus however long the
   supervisor takes to try again.

A client that closes stdin ends a serving process normally (status 0, no crash
record).  ``--up`` must be more than 0; ``--down 0`` crashes without a down window.
Bad arguments or an unusable state directory exit with status 2 (:data:`EXIT_USAGE`).

Restarts share the cycle through ``DIR/state.json``, which only a crash writes::

    {"crashed_at": 1714570200.5, "down_until": 1714570210.5, "pid": 4242,
     "crashed_at_utc": "2024-05-01T13:30:00.500000+00:00"}

Times are wall-clock seconds (``time.time()``), since they are shared between
processes.  A start is in the down window when ``crashed_at <= now < down_until``: a
clock stepped backwards ends the window rather than stretching it.  A missing or
unreadable state file means "not down" (and an unreadable one is reported on stderr).

``--state-dir`` defaults to ``<tempdir>/vmcp-actors-examples-<uid>/flaky-<cycle-id>``,
and ``--cycle-id`` to ``ppid-<parent pid>``: every restart by one supervisor process
shares the cycle, and a fresh ``vmcp-actors run`` starts with a fresh one instead of
inheriting the down window of the previous run.

Only MCP goes to stdout; this module and the SDK write everything else to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import math
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from typing_extensions import TypedDict

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

__all__ = [
    "DEFAULT_DOWN",
    "DEFAULT_UP",
    "EXIT_CRASHED",
    "EXIT_DOWN",
    "EXIT_USAGE",
    "STATE_FILE_NAME",
    "CrashRecord",
    "Schedule",
    "build_server",
    "convert_temperature",
    "default_state_dir",
    "dew_point",
    "main",
    "parse_args",
    "read_crash_record",
    "write_crash_record",
]

DEFAULT_UP = 20.0
DEFAULT_DOWN = 10.0

EXIT_DOWN = 1
"""Exit status of a start refused because it falls in the down window."""
EXIT_USAGE = 2
"""Exit status for bad arguments or an unusable ``--state-dir`` (argparse's convention)."""
EXIT_CRASHED = 3
"""Exit status of the deliberate crash after ``--up`` seconds of service."""

STATE_FILE_NAME = "state.json"

_CYCLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PREFIX = "flaky_server:"


def _say(message: str) -> None:
    """One line on stderr (never stdout: that is the MCP channel)."""
    print(f"{_PREFIX} {message}", file=sys.stderr, flush=True)


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


# ----------------------------------------------------------------------- the cycle


@dataclass(frozen=True)
class CrashRecord:
    """What the state file says about the last crash."""

    crashed_at: float
    down_until: float
    pid: int

    def down_remaining(self, now: float) -> float | None:
        """Seconds left in the down window at ``now``, or ``None`` outside it."""
        if self.crashed_at <= now < self.down_until:
            return self.down_until - now
        return None


def default_state_dir(cycle_id: str) -> Path:
    """``<tempdir>/vmcp-actors-examples-<uid>/flaky-<cycle_id>``."""
    owner = os.getuid() if hasattr(os, "getuid") else getpass.getuser()
    return Path(tempfile.gettempdir()) / f"vmcp-actors-examples-{owner}" / f"flaky-{cycle_id}"


def read_crash_record(path: Path) -> CrashRecord | None:
    """The crash record at ``path``; ``None`` if there is none or it cannot be used."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        record = CrashRecord(float(raw["crashed_at"]), float(raw["down_until"]), int(raw["pid"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        _say(f"ignoring unreadable state file {path} ({type(exc).__name__}: {exc}); starting normally")
        return None
    if not (math.isfinite(record.crashed_at) and math.isfinite(record.down_until)):
        _say(f"ignoring state file {path} with non-finite times; starting normally")
        return None
    return record


def write_crash_record(path: Path, crashed_at: float, down: float) -> CrashRecord:
    """Record a crash at ``crashed_at`` (atomically: readers see the old record or the new)."""
    record = CrashRecord(crashed_at=crashed_at, down_until=crashed_at + down, pid=os.getpid())
    payload = {
        "crashed_at": record.crashed_at,
        "down_until": record.down_until,
        "pid": record.pid,
        "crashed_at_utc": _utc(record.crashed_at),
    }
    fd, tmp_name = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return record


def _crash(state_file: Path, up: float, down: float) -> NoReturn:
    """The deliberate crash: record it, say so, exit at once (no cleanup, like a real crash)."""
    now = time.time()
    try:
        record = write_crash_record(state_file, now, down)
    except OSError as exc:
        _say(f"could not record the crash in {state_file} ({exc}); the next start will serve at once")
    else:
        _say(
            f"crashing on purpose after {up:g}s up (pid {record.pid}, exit {EXIT_CRASHED}); "
            f"starts fail until {_utc(record.down_until)} ({down:g}s down window)"
        )
    os._exit(EXIT_CRASHED)


# -------------------------------------------------------------------- weather tools


class OutageSchedule(TypedDict):
    """When this server will next go down, and for how long."""

    serving_since: str
    crash_at: str
    seconds_until_crash: float
    down_seconds: float


_KELVIN_OFFSET = 273.15
_UNITS = {"c": "c", "celsius": "c", "f": "f", "fahrenheit": "f", "k": "k", "kelvin": "k"}


def convert_temperature(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` converted between Celsius, Fahrenheit and Kelvin (``C``/``F``/``K`` or names)."""
    try:
        source, target = _UNITS[from_unit.strip().lower()], _UNITS[to_unit.strip().lower()]
    except KeyError as exc:
        raise ValueError(f"unknown unit {exc.args[0]!r}: use C, F or K") from None
    celsius = {"c": value, "f": (value - 32) * 5 / 9, "k": value - _KELVIN_OFFSET}[source]
    if celsius < -_KELVIN_OFFSET - 1e-9:
        raise ValueError(f"{value:g} {from_unit} is below absolute zero")
    converted = {"c": celsius, "f": celsius * 9 / 5 + 32, "k": celsius + _KELVIN_OFFSET}[target]
    return round(converted, 2)


def dew_point(temperature_c: float, relative_humidity: float) -> float:
    """Dew point in Celsius (Magnus formula, good to ~0.4 C between -45 C and 60 C)."""
    if not 0 < relative_humidity <= 100:
        raise ValueError("relative_humidity must be a percentage in (0, 100]")
    a, b = 17.62, 243.12
    gamma = math.log(relative_humidity / 100) + a * temperature_c / (b + temperature_c)
    return round(b * gamma / (a - gamma), 2)


@dataclass
class Schedule:
    """The planned crash: ``up`` seconds after ``serving_since`` (set when serving starts)."""

    up: float
    down: float
    serving_since: float = math.nan


def build_server(schedule: Schedule) -> MCPServer:
    """The weather server; ``outage_schedule`` reports ``schedule``."""
    from mcp.server.mcpserver import MCPServer

    from vmcp_actors.examples._common import bad_arguments_reported

    server = MCPServer(
        "vmcp-example-flaky",
        version="1.0.0",
        instructions=(
            "Weather helpers (temperature conversion, dew point).  This server crashes on purpose "
            "every now and then; outage_schedule says when."
        ),
        log_level="WARNING",
    )

    @server.tool(name="convert_temperature")
    def convert_temperature_tool(value: float, from_unit: str, to_unit: str) -> float:
        """Convert a temperature between Celsius, Fahrenheit and Kelvin (units: C, F, K)."""
        with bad_arguments_reported():
            return convert_temperature(value, from_unit, to_unit)

    @server.tool(name="dew_point")
    def dew_point_tool(temperature_c: float, relative_humidity: float) -> float:
        """Dew point in Celsius for an air temperature (Celsius) and relative humidity (percent)."""
        with bad_arguments_reported():
            return dew_point(temperature_c, relative_humidity)

    @server.tool()
    def outage_schedule() -> OutageSchedule:
        """When this server will crash on purpose, and how long it then stays down."""
        crash_at = schedule.serving_since + schedule.up
        return OutageSchedule(
            serving_since=_utc(schedule.serving_since),
            crash_at=_utc(crash_at),
            seconds_until_crash=round(max(0.0, crash_at - time.time()), 3),
            down_seconds=schedule.down,
        )

    return server


# ---------------------------------------------------------------------------- main


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite, non-negative number of seconds: {text!r}")
    return value


def _cycle_id(text: str) -> str:
    if not _CYCLE_ID.match(text):
        raise argparse.ArgumentTypeError(f"use 1-64 letters, digits, '.', '_' or '-' (got {text!r})")
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``--up``, ``--down`` (seconds), ``--cycle-id`` and ``--state-dir``; exits 2 when invalid."""
    parser = argparse.ArgumentParser(
        prog="python -m vmcp_actors.examples.flaky_server",
        description=(
            "Example MCP server (stdio): weather helpers that crash on purpose after --up seconds "
            "and refuse to start for --down seconds after each crash."
        ),
    )
    parser.add_argument("--up", type=_duration, default=DEFAULT_UP, help="seconds of service before the crash")
    parser.add_argument("--down", type=_duration, default=DEFAULT_DOWN, help="seconds a crash keeps starts failing")
    parser.add_argument(
        "--cycle-id",
        type=_cycle_id,
        default=f"ppid-{os.getppid()}",
        help="names the default state directory (default: ppid-<parent pid>)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where restarts share the state file (default: <tempdir>/vmcp-actors-examples-<uid>/flaky-<cycle-id>)",
    )
    args = parser.parse_args(argv)
    if args.up <= 0:
        parser.error("--up must be more than 0 seconds")
    return args


def main(argv: list[str] | None = None) -> None:
    """Fail fast inside a down window; otherwise serve over stdio and crash after ``--up`` s."""
    args = parse_args(argv)
    state_dir: Path = args.state_dir if args.state_dir is not None else default_state_dir(args.cycle_id)
    state_file = state_dir / STATE_FILE_NAME
    record = read_crash_record(state_file)
    remaining = record.down_remaining(time.time()) if record is not None else None
    if record is not None and remaining is not None:
        _say(
            f"down on purpose: crashed at {_utc(record.crashed_at)}, refusing to start for another "
            f"{remaining:.1f}s (until {_utc(record.down_until)}); exit {EXIT_DOWN}"
        )
        raise SystemExit(EXIT_DOWN)
    try:
        if args.state_dir is None:  # the per-user parent is private too, not just the leaf
            state_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        _say(f"cannot create the state directory {state_dir}: {exc}")
        raise SystemExit(EXIT_USAGE) from None

    schedule = Schedule(up=args.up, down=args.down)
    server = build_server(schedule)  # imports the SDK: the clock starts after that
    schedule.serving_since = time.time()
    timer = threading.Timer(args.up, _crash, (state_file, args.up, args.down))
    timer.daemon = True
    timer.start()
    _say(f"serving; crashing on purpose in {args.up:g}s, then down for {args.down:g}s (state: {state_file})")
    server.run("stdio")


if __name__ == "__main__":
    main()
