"""pytest fixtures that run the test MCP servers as real subprocesses on 127.0.0.1.

Readiness is never guessed with sleeps: every HTTP server prints ``READY <port>`` on
stderr once it accepts connections, and :meth:`ServerFactory.start` reads stderr until
that line arrives or a deadline passes.  Every process started through a factory is
SIGKILLed and reaped when the fixture ends, whether the test passed or not, so no
server outlives its test.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from testkit.processes import child_pids
from testkit.waits import bound
from vmcp_actors.actorkit.loop import LoopThread

SERVERS_DIR = Path(__file__).resolve().parent
ECHO_SERVER = SERVERS_DIR / "echo_server.py"
FAULT_SERVER = SERVERS_DIR / "fault_server.py"
GARBAGE_STDIO = SERVERS_DIR / "garbage_stdio.py"
STUBBORN_STDIO = SERVERS_DIR / "stubborn_stdio.py"
TRICKY_HTTP = SERVERS_DIR / "tricky_http.py"
DATAPLANE_SERVER = SERVERS_DIR / "dataplane_server.py"
CONFORMANCE_SERVER = SERVERS_DIR / "conformance_server.py"

READY_TIMEOUT = bound(60.0)
"""Generous: importing the SDK takes ~1 s, much more on a loaded 2-core CI machine."""

LOOP_STOP_TIMEOUT = bound(15.0)

_STDERR_TAIL = 50


class ServerStartError(RuntimeError):
    """A test server exited or stayed silent instead of announcing ``READY <port>``."""


class RunningServer:
    """One server subprocess; ``port`` is the port it announced."""

    def __init__(self, args: tuple[str, ...], process: subprocess.Popen[str], port: int, drain: _StderrDrain) -> None:
        self.args = args
        self.process = process
        self.port = port
        self._drain = drain

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str = "/mcp") -> str:
        """``http://127.0.0.1:<port><path>``."""
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def stderr_tail(self) -> str:
        """The last lines the server wrote to stderr (for assertion messages)."""
        return self._drain.tail()

    def kill(self) -> None:
        """SIGKILL the process (group) and reap it; idempotent."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=READY_TIMEOUT)
        self._drain.join(READY_TIMEOUT)


class _StderrDrain:
    """Reads a child's stderr on a thread: hands lines to the READY waiter, keeps a tail.

    Draining for the whole life of the process matters: a child blocked on a full
    stderr pipe would look exactly like a hung server.
    """

    def __init__(self, stream: IO[str], name: str) -> None:
        self._stream = stream
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._tail: deque[str] = deque(maxlen=_STDERR_TAIL)
        self._thread = threading.Thread(target=self._run, name=f"stderr-drain:{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for line in self._stream:
                self._tail.append(line.rstrip("\n"))
                self._lines.put(line)
        finally:
            self._lines.put(None)
            self._stream.close()

    def next_line(self, timeout: float) -> str | None:
        """The next stderr line; ``None`` at EOF; raises ``queue.Empty`` on timeout."""
        return self._lines.get(timeout=max(0.0, timeout))

    def tail(self) -> str:
        return "\n".join(self._tail)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class ServerFactory:
    """Starts test servers and guarantees they are all killed at :meth:`close`."""

    def __init__(self) -> None:
        self._servers: list[RunningServer] = []

    def start(self, script: Path, *args: str) -> RunningServer:
        """Run ``python script *args`` and wait for its ``READY <port>`` line."""
        command = (sys.executable, str(script), *args)
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, so kill() gets any helpers too
        )
        assert process.stderr is not None
        drain = _StderrDrain(process.stderr, script.stem)
        server = RunningServer(command[1:], process, 0, drain)
        self._servers.append(server)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                line = drain.next_line(deadline - time.monotonic())
            except queue.Empty:
                server.kill()
                raise ServerStartError(
                    f"{script.name} {' '.join(args)} not ready after {READY_TIMEOUT}s:\n{drain.tail()}"
                ) from None
            if line is None:
                server.kill()
                raise ServerStartError(f"{script.name} {' '.join(args)} exited before READY:\n{drain.tail()}")
            if line.startswith("READY "):
                server.port = int(line.split()[1])
                return server

    def restart(self, server: RunningServer) -> RunningServer:
        """Kill ``server`` and start the same command again on the same port."""
        server.kill()
        args = list(server.args[1:])
        if "--port" in args:
            index = args.index("--port")
            args[index + 1] = str(server.port)
        else:
            args += ["--port", str(server.port)]
        return self.start(Path(server.args[0]), *args)

    def echo(self, transport: str, *extra: str) -> RunningServer:
        """The SDK echo server over ``streamable-http`` or ``sse``."""
        return self.start(ECHO_SERVER, "--transport", transport, *extra)

    def fault(self, mode: str, *extra: str) -> RunningServer:
        """A fault server: ``hang``, ``status`` (with ``--status N``) or ``auth``."""
        return self.start(FAULT_SERVER, "--mode", mode, *extra)

    def dataplane(self, transport: str, name: str, *extra: str) -> RunningServer:
        """The data plane test backend (``dataplane_server.py``) over ``streamable-http`` or ``sse``."""
        return self.start(DATAPLANE_SERVER, "--transport", transport, "--name", name, *extra)

    def tricky(self, mode: str, *extra: str) -> RunningServer:
        """The echo server over streamable HTTP behind a ``tricky_http`` mode (see there)."""
        return self.start(TRICKY_HTTP, "--mode", mode, *extra)

    def close(self) -> None:
        """Kill and reap every server this factory started."""
        errors: list[BaseException] = []
        for server in self._servers:
            try:
                server.kill()
            except Exception as exc:
                errors.append(exc)
        self._servers.clear()
        if errors:
            raise errors[0]


@pytest.fixture
def mcp_servers() -> Iterator[ServerFactory]:
    """A :class:`ServerFactory`; all its servers are killed after the test."""
    factory = ServerFactory()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def echo_http_server(mcp_servers: ServerFactory) -> RunningServer:
    """The echo server over streamable HTTP (two extra generated tools)."""
    return mcp_servers.echo("streamable-http", "--tools", "2")


@pytest.fixture
def echo_sse_server(mcp_servers: ServerFactory) -> RunningServer:
    """The echo server over SSE (two extra generated tools)."""
    return mcp_servers.echo("sse", "--tools", "2")


@pytest.fixture
def echo_stdio_command() -> tuple[str, tuple[str, ...]]:
    """``(command, args)`` that run the echo server over stdio (two extra tools)."""
    return sys.executable, (str(ECHO_SERVER), "--transport", "stdio", "--tools", "2")


@pytest.fixture
def garbage_stdio_command() -> tuple[str, tuple[str, ...]]:
    """``(command, args)`` of a stdio "server" that writes garbage to stdout."""
    return sys.executable, (str(GARBAGE_STDIO),)


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    """A started :class:`LoopThread`, stopped (bounded) after the test."""
    thread = LoopThread(name="vmcp-aio-test")
    thread.start()
    try:
        yield thread
    finally:
        thread.stop(LOOP_STOP_TIMEOUT)


_THREAD_EXIT_GRACE = bound(10.0)
"""asyncio's child watcher thread ends right after reaping; joining it is bounded by this."""


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except FileNotFoundError:
        return f"{pid} (gone)"
    state = stat.rsplit(")", 1)[1].split()[0]
    return f"{pid} state={state} cmd={cmdline or '?'}"


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves child processes (incl. zombies) or threads behind."""
    children_before = child_pids()
    threads_before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + _THREAD_EXIT_GRACE
    extra_threads = [thread for thread in threading.enumerate() if thread not in threads_before]
    for thread in extra_threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [thread.name for thread in extra_threads if thread.is_alive()]
    leaked_children = child_pids() - children_before
    assert not leaked_children, "leaked child processes: " + "; ".join(_describe(p) for p in sorted(leaked_children))
    assert not alive, f"leaked threads: {alive}"
