"""The bundled example: its config, and its three MCP servers run as real stdio subprocesses.

The servers are started exactly as the bundled config says (interpreter, ``-m`` module,
``PYTHONPATH``), over the SDK's stdio client or the runtime's own
:func:`~vmcp_actors.backend.session.connect`.  The flaky server's cycle is checked on a
process the test owns (anyio), so exit statuses and stderr are visible: it serves,
crashes by itself after ``--up``, refuses a start inside the down window, and serves
again after it.

Nothing here synchronises by sleeping: processes are awaited (bounded by :data:`WAIT`,
which is only reached when something is broken), and the one deliberate wait is for the
end of the down window, whose deadline the server itself wrote to its state file.  An
autouse fixture checks that no child process outlives a test.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import mcp_types as types
import pytest
import yaml
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from testkit.processes import child_pids
from vmcp_actors.actorkit.loop import LoopThread
from vmcp_actors.backend.connect_params import ConnectParams
from vmcp_actors.backend.failures import BackendError, Failure, FailureKind
from vmcp_actors.backend.session import McpConnection, connect
from vmcp_actors.examples import example_config_path, example_config_text
from vmcp_actors.examples.clock_server import next_weekday_after, time_between
from vmcp_actors.examples.flaky_server import (
    EXIT_CRASHED,
    EXIT_DOWN,
    EXIT_USAGE,
    STATE_FILE_NAME,
    CrashRecord,
    convert_temperature,
    default_state_dir,
    dew_point,
    read_crash_record,
    write_crash_record,
)

pytestmark = pytest.mark.integration

WAIT = 60.0
"""Upper bound for any one wait: generous for a loaded 2-core machine, never reached when green."""

# A restart has to reach its check while the down window is still open, and how long that
# takes is all start-up time (interpreter, package import): ~0.15 s on an idle machine,
# but seen at 2-3.7 s on an overloaded 2-core one.  So the windows are not fixed: the
# flaky_windows fixture measures a refused start (t) and scales both windows from it,
# max(MIN, MARGIN * t) capped at MAX.  Idle, that is --up 1 --down 2; under load the
# tests slow down instead of racing.

MIN_UP = 1.0
"""The flaky server's smallest ``--up`` here: time enough to list tools and call two."""
MIN_DOWN = 2.0
UP_MARGIN = 3.0
DOWN_MARGIN = 6.0
MAX_UP = 15.0
MAX_DOWN = 30.0
"""The caps keep the cycle test well inside pytest's 180 s timeout on the worst machine."""

EXPECTED_TOOLS = {
    "notes": {"add_note", "list_notes", "search_notes"},
    "clock": {"utc_now", "time_between", "next_weekday"},
    "flaky": {"convert_temperature", "dew_point", "outage_schedule"},
}


# ------------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Every server a test starts is gone (reaped, not even a zombie) when it ends."""
    before = child_pids()
    yield
    leaked = child_pids() - before
    assert not leaked, f"leaked child processes: {sorted(leaked)}"


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    """A running :class:`LoopThread`, as the runtime uses, stopped after the test."""
    thread = LoopThread(name="vmcp-aio-examples-test")
    thread.start()
    try:
        yield thread
    finally:
        thread.stop(WAIT)


# ------------------------------------------------------------------------- helpers


def bundled_backends() -> dict[str, dict[str, Any]]:
    """The backends of the bundled config, by name, placeholders filled in."""
    config = yaml.safe_load(example_config_text())
    return {backend["name"]: backend for backend in config["backends"]}


def flaky_args(state_dir: Path, up: float, down: float) -> list[str]:
    """The bundled flaky backend's args with test timings and a private state dir."""
    args = list(bundled_backends()["flaky"]["args"])
    for flag, value in (("--up", up), ("--down", down)):
        args[args.index(flag) + 1] = f"{value:g}"
    return [*args, "--state-dir", str(state_dir)]


def connect_params(name: str, args: list[str] | None = None) -> ConnectParams:
    backend = bundled_backends()[name]
    return ConnectParams(
        name=name,
        transport="stdio",
        command=backend["command"],
        args=args if args is not None else backend["args"],
        env=backend.get("env") or {},
        connect_timeout=WAIT,
    )


def structured(result: types.CallToolResult) -> Any:
    """A successful tool result's structured content (primitives come wrapped in ``result``)."""
    assert not result.is_error, result.content
    content = result.structured_content
    return content["result"] if isinstance(content, dict) and set(content) == {"result"} else content


def error_text(result: types.CallToolResult) -> str:
    assert result.is_error
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


@asynccontextmanager
async def sdk_session(name: str, stderr: Path) -> AsyncIterator[ClientSession]:
    """An initialized SDK session with a bundled backend, over the SDK's stdio client."""
    backend = bundled_backends()[name]
    server = StdioServerParameters(command=backend["command"], args=backend["args"], env=backend.get("env"))
    with stderr.open("w") as errlog:
        async with stdio_client(server, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            with anyio.fail_after(WAIT):
                await session.initialize()
            yield session


# The SDK's stdio client owns its process and hides it, but the flaky server's cycle is
# about exit statuses: so for it the test owns the process and bridges its pipes to a
# ClientSession itself, newline-delimited JSON-RPC as the stdio transport specifies.


async def _pump_stdout(process: anyio.abc.Process, sink: Any) -> None:
    assert process.stdout is not None
    async with sink:
        buffer = b""
        async for chunk in process.stdout:
            *lines, buffer = (buffer + chunk).split(b"\n")
            for line in lines:
                message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                await sink.send(SessionMessage(message))


async def _pump_stdin(process: anyio.abc.Process, source: Any) -> None:
    assert process.stdin is not None
    async with source:
        async for session_message in source:
            data = session_message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
            try:
                await process.stdin.send(data.encode())
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return


@asynccontextmanager
async def owned_session(process: anyio.abc.Process) -> AsyncIterator[ClientSession]:
    """An initialized SDK session over ``process``'s pipes; the caller keeps the process."""
    read_send, read_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_receive = anyio.create_memory_object_stream[SessionMessage](0)
    async with anyio.create_task_group() as pumps:
        pumps.start_soon(_pump_stdout, process, read_send)
        pumps.start_soon(_pump_stdin, process, write_receive)
        try:
            async with ClientSession(read_receive, write_send) as session:
                with anyio.fail_after(WAIT):
                    await session.initialize()
                yield session
        finally:
            pumps.cancel_scope.cancel()


@asynccontextmanager
async def flaky_process(args: list[str], stderr: Path) -> AsyncIterator[anyio.abc.Process]:
    """The bundled flaky backend as a child we own; killed and reaped on the way out."""
    backend = bundled_backends()["flaky"]
    env = get_default_environment() | (backend.get("env") or {})
    with stderr.open("w") as errlog:
        process = await anyio.open_process([backend["command"], *args], env=env, stderr=errlog)
    try:
        yield process
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.aclose()


async def read_to_end(stream: anyio.abc.ByteReceiveStream | None) -> bytes:
    assert stream is not None
    data = b""
    with anyio.fail_after(WAIT):
        async for chunk in stream:
            data += chunk
    return data


async def wait_exit(process: anyio.abc.Process) -> int:
    with anyio.fail_after(WAIT):
        return await process.wait()


# -------------------------------------------------------------------------- config


def test_example_config_is_bundled_with_placeholders() -> None:
    raw = example_config_path().read_text(encoding="utf-8")
    assert example_config_path().name == "example.yaml"
    assert raw.count('command: "{python}"') == 3
    assert '"{pythonpath}"' in raw


def test_example_config_text_is_ready_to_load() -> None:
    text = example_config_text()
    assert "{python}" not in text
    assert "{pythonpath}" not in text
    config = yaml.safe_load(text)
    assert set(config) == {"backends", "failureHandling"}
    assert [backend["name"] for backend in config["backends"]] == ["notes", "clock", "flaky"]
    for backend in config["backends"]:
        assert backend["type"] == "stdio"
        assert backend["command"] == sys.executable
        assert backend["args"][:2] == ["-m", f"vmcp_actors.examples.{backend['name']}_server"]
        assert Path(backend["env"]["PYTHONPATH"], "vmcp_actors", "examples", "__init__.py").is_file()
        assert backend["description"]
    flaky = config["backends"][2]["args"]
    assert flaky[flaky.index("--up") + 1] == "20"
    assert flaky[flaky.index("--down") + 1] == "10"
    assert config["failureHandling"] == {
        "healthCheckInterval": "5s",
        "healthCheckTimeout": "2s",
        "unhealthyThreshold": 2,
        "statusReportingInterval": "10s",
        "circuitBreaker": {"enabled": False, "failureThreshold": 5, "timeout": "60s"},
    }


def test_example_config_text_escapes_any_interpreter_path() -> None:
    python = 'C:\\Program Files\\Py "3.11"\\python.exe'
    config = yaml.safe_load(example_config_text(python))
    assert {backend["command"] for backend in config["backends"]} == {python}


# ------------------------------------------------------------- servers, via the SDK


def test_notes_server_tools(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with sdk_session("notes", tmp_path / "stderr.log") as session:
            tools = await session.list_tools()
            assert {tool.name for tool in tools.tools} == EXPECTED_TOOLS["notes"]
            assert all(tool.description for tool in tools.tools)

            first = structured(
                await session.call_tool(
                    "add_note", {"title": "Buy milk", "text": "2 litres", "tags": ["Home", " home"]}
                )
            )
            assert (first["id"], first["tags"]) == (1, ["home"])
            await session.call_tool("add_note", {"title": "Call Bob", "text": "about the milk invoice"})
            third = structured(await session.call_tool("add_note", {"title": "Dentist", "text": "Tuesday 9:00"}))
            assert third["id"] == 3

            listed = structured(await session.call_tool("list_notes", {}))
            assert [note["title"] for note in listed] == ["Buy milk", "Call Bob", "Dentist"]
            assert [note["id"] for note in structured(await session.call_tool("list_notes", {"tag": "HOME"}))] == [1]
            assert [note["id"] for note in structured(await session.call_tool("list_notes", {"limit": 1}))] == [3]
            found = structured(await session.call_tool("search_notes", {"query": "MILK"}))
            assert [note["id"] for note in found] == [1, 2]
            assert [
                note["id"] for note in structured(await session.call_tool("search_notes", {"query": "milk bob"}))
            ] == [2]
            blank = await session.call_tool("add_note", {"title": "  ", "text": "x"})
            assert "title must not be blank" in error_text(blank)

    anyio.run(scenario)
    assert "Traceback" not in (tmp_path / "stderr.log").read_text()


def test_clock_server_tools(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with sdk_session("clock", tmp_path / "stderr.log") as session:
            tools = await session.list_tools()
            assert {tool.name for tool in tools.tools} == EXPECTED_TOOLS["clock"]
            assert all(tool.description for tool in tools.tools)

            before = time.time()
            now = structured(await session.call_tool("utc_now", {}))
            stamp = datetime.fromisoformat(now)
            assert stamp.utcoffset() is not None
            assert stamp.utcoffset().total_seconds() == 0
            assert before - 1 <= stamp.timestamp() <= time.time() + 1

            between = structured(
                await session.call_tool(
                    "time_between", {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T03:00:30+02:00"}
                )
            )
            assert between == {"seconds": 90030.0, "human": "1d 1h 30s"}
            friday = structured(await session.call_tool("next_weekday", {"weekday": "Fri", "after": "2024-05-03"}))
            assert friday == "2024-05-10"
            bad = await session.call_tool("time_between", {"start": "yesterday", "end": "2024-05-01"})
            assert "not an ISO 8601 timestamp" in error_text(bad)

    anyio.run(scenario)


def test_clock_helpers() -> None:
    assert time_between("2024-05-01T10:00:00", "2024-05-01T09:59:58.5") == {"seconds": -1.5, "human": "-1.5s"}
    assert time_between("2024-05-01T10:00:00Z", "2024-05-01T10:00:00+00:00")["human"] == "0s"
    assert next_weekday_after("monday", date(2024, 5, 5)) == date(2024, 5, 6)  # a Sunday
    assert next_weekday_after("sun", date(2024, 5, 5)) == date(2024, 5, 12)
    with pytest.raises(ValueError, match="unknown weekday"):
        next_weekday_after("mo", date(2024, 5, 5))


def test_weather_helpers() -> None:
    assert convert_temperature(100, "C", "F") == 212.0
    assert convert_temperature(-40, "fahrenheit", "celsius") == -40.0
    assert convert_temperature(0, "K", "C") == -273.15
    assert dew_point(20, 50) == pytest.approx(9.26, abs=0.01)
    assert dew_point(25, 100) == pytest.approx(25.0, abs=0.01)
    with pytest.raises(ValueError, match="absolute zero"):
        convert_temperature(-1, "K", "C")
    with pytest.raises(ValueError, match="unknown unit"):
        convert_temperature(1, "X", "C")
    with pytest.raises(ValueError, match="relative_humidity"):
        dew_point(20, 0)


# ----------------------------------------------------- servers, via the runtime client


def test_bundled_backends_answer_the_runtime_client(loop: LoopThread, tmp_path: Path) -> None:
    """All three backends, started from the bundled config by :func:`connect`, as the runtime does."""

    async def scenario() -> dict[str, tuple[str, ...]]:
        params = [connect_params(name) for name in ("notes", "clock")]
        params.append(connect_params("flaky", flaky_args(tmp_path, up=WAIT * 4, down=MIN_DOWN)))
        connections: list[McpConnection] = []
        try:
            for result in await asyncio.gather(*(connect(p) for p in params), return_exceptions=True):
                if isinstance(result, BaseException):
                    raise result
                connections.append(result)
            for connection in connections:
                await connection.ping(WAIT)
            return {connection.name: connection.tool_names for connection in connections}
        finally:
            for connection in connections:
                await connection.close()

    tool_names = loop.submit(scenario()).result(WAIT * 2)
    assert {name: set(names) for name, names in tool_names.items()} == EXPECTED_TOOLS


# ------------------------------------------------------------------ the flaky cycle


@dataclass(frozen=True)
class Windows:
    """``--up`` and ``--down`` for a flaky test, scaled from a measured refused start."""

    up: float
    down: float
    refusal: float


async def refused_start(state_dir: Path, stderr: Path) -> tuple[int, bytes, float]:
    """Start the flaky server on ``state_dir``; its exit status, its stdout and the time taken."""
    started = time.monotonic()
    async with flaky_process(flaky_args(state_dir, MIN_UP, MIN_DOWN), stderr) as process:
        returncode = await wait_exit(process)
        stdout = await read_to_end(process.stdout)
    return returncode, stdout, time.monotonic() - started


def record_crash_now(state_dir: Path, down: float) -> CrashRecord:
    state_dir.mkdir(parents=True, exist_ok=True)
    return write_crash_record(state_dir / STATE_FILE_NAME, time.time(), down)


@pytest.fixture
def flaky_windows(tmp_path: Path) -> Windows:
    """Windows long enough for a restart to land inside the down window on this machine, now."""
    state_dir = tmp_path / "calibration"
    record_crash_now(state_dir, down=3600.0)
    returncode, _, refusal = anyio.run(refused_start, state_dir, tmp_path / "calibration.log")
    assert returncode == EXIT_DOWN, (tmp_path / "calibration.log").read_text()
    windows = Windows(
        up=round(min(MAX_UP, max(MIN_UP, UP_MARGIN * refusal)), 1),
        down=round(min(MAX_DOWN, max(MIN_DOWN, DOWN_MARGIN * refusal)), 1),
        refusal=refusal,
    )
    print(f"flaky windows: --up {windows.up:g} --down {windows.down:g} (a refused start took {refusal:.3f}s)")
    return windows


def test_flaky_server_refuses_to_start_inside_a_recorded_window(tmp_path: Path) -> None:
    """The down window, without the race: a crash recorded just now, then a start."""
    record = record_crash_now(tmp_path, down=3600.0)
    returncode, stdout, _ = anyio.run(refused_start, tmp_path, tmp_path / "stderr.log")
    stderr = (tmp_path / "stderr.log").read_text()
    assert returncode == EXIT_DOWN, stderr
    assert stdout == b""  # stdout is the MCP channel: nothing else, ever
    assert "down on purpose" in stderr
    assert "refusing to start for another 3" in stderr
    assert "Traceback" not in stderr
    assert read_crash_record(tmp_path / STATE_FILE_NAME) == record  # a refused start changes nothing


def test_flaky_crash_is_a_lost_session_then_connects_fail(
    loop: LoopThread, tmp_path: Path, flaky_windows: Windows
) -> None:
    """What the runtime sees: the session dies by itself, then connects fail while it is down."""
    lost = threading.Event()
    failures: list[Failure] = []

    def on_lost(failure: Failure) -> None:
        failures.append(failure)
        lost.set()

    params = connect_params("flaky", flaky_args(tmp_path, flaky_windows.up, flaky_windows.down))
    connection = loop.submit(connect(params, on_lost=on_lost)).result(WAIT)
    try:
        assert lost.wait(WAIT), "the flaky server did not crash on its own"
        assert failures[0].kind is FailureKind.SESSION_LOST
        with pytest.raises(BackendError) as refused:
            loop.submit(connect(params)).result(WAIT)
        # The process exits before the handshake: a transient failure, retried with backoff.
        assert refused.value.failure.kind is FailureKind.TRANSIENT
        assert "exited" in refused.value.failure.message
    finally:
        loop.submit(connection.close()).result(WAIT)


def test_flaky_server_cycle(tmp_path: Path, flaky_windows: Windows) -> None:
    """Serves, crashes by itself (exit 3), refuses a start in the window (exit 1), serves again."""
    up, down = flaky_windows.up, flaky_windows.down
    args = flaky_args(tmp_path, up, down)
    state_file = tmp_path / STATE_FILE_NAME

    async def serve_until_crash(stderr: Path) -> tuple[int, dict[str, Any]]:
        async with flaky_process(args, stderr) as process, AsyncExitStack() as stack:
            session = await stack.enter_async_context(owned_session(process))
            tools = await session.list_tools()
            assert {tool.name for tool in tools.tools} == EXPECTED_TOOLS["flaky"]
            converted = await session.call_tool("convert_temperature", {"value": 20, "from_unit": "C", "to_unit": "F"})
            assert structured(converted) == 68.0
            schedule = structured(await session.call_tool("outage_schedule", {}))
            returncode = await wait_exit(process)  # nobody closes it: it exits on its own
            with pytest.raises(MCPError), anyio.fail_after(WAIT):
                await session.send_ping()  # the session went down with the process
            return returncode, schedule

    async def scenario() -> float:
        # 1. Up: serves, then crashes on its own after --up seconds, mid-session.
        returncode, schedule = await serve_until_crash(tmp_path / "start1.log")
        assert returncode == EXIT_CRASHED, (tmp_path / "start1.log").read_text()
        assert schedule["down_seconds"] == down
        first = read_crash_record(state_file)
        assert first is not None
        assert first.down_until == pytest.approx(first.crashed_at + down)
        assert "crashing on purpose" in (tmp_path / "start1.log").read_text()

        # 2. Down: a restart right away lands in the window and exits 1 at once.
        returncode, stdout, refusal = await refused_start(tmp_path, tmp_path / "start2.log")
        assert returncode == EXIT_DOWN, (tmp_path / "start2.log").read_text()
        assert "down on purpose" in (tmp_path / "start2.log").read_text()
        assert stdout == b""
        assert read_crash_record(state_file) == first

        # 3. Back: once the window the server wrote down is over, a start serves again;
        #    and the cycle goes on: it crashes again after --up seconds.
        await anyio.sleep(max(0.0, first.down_until - time.time()) + 0.05)
        returncode, _ = await serve_until_crash(tmp_path / "start3.log")
        assert returncode == EXIT_CRASHED, (tmp_path / "start3.log").read_text()
        second = read_crash_record(state_file)
        assert second is not None
        assert second.crashed_at >= first.down_until
        return refusal

    refusal = anyio.run(scenario)
    print(f"flaky cycle: --up {up:g} --down {down:g}; the restart in the window was refused in {refusal:.3f}s")


def test_flaky_state_file_edge_cases(tmp_path: Path) -> None:
    state_file = tmp_path / STATE_FILE_NAME
    assert read_crash_record(state_file) is None
    state_file.write_text("{not json")
    assert read_crash_record(state_file) is None
    state_file.write_text(json.dumps({"crashed_at": "nan", "down_until": 5, "pid": 1}))
    assert read_crash_record(state_file) is None
    record = CrashRecord(crashed_at=100.0, down_until=110.0, pid=1)
    assert record.down_remaining(104.0) == 6.0
    assert record.down_remaining(110.0) is None
    assert record.down_remaining(99.0) is None  # clock stepped back: the window ends
    assert default_state_dir("ppid-1").name == "flaky-ppid-1"


def test_flaky_server_rejects_bad_arguments(tmp_path: Path) -> None:
    async def start(*extra: str) -> tuple[int, str]:
        stderr = tmp_path / "stderr.log"
        async with flaky_process([*flaky_args(tmp_path, MIN_UP, MIN_DOWN), *extra], stderr) as process:
            return await wait_exit(process), stderr.read_text()

    returncode, stderr = anyio.run(start, "--up", "0")
    assert returncode == EXIT_USAGE
    assert "--up must be more than 0" in stderr
    returncode, stderr = anyio.run(start, "--cycle-id", "../escape")
    assert returncode == EXIT_USAGE
    assert "--cycle-id" in stderr
