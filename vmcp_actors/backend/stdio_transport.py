"""The stdio transport: a server process, its pipes as the session's streams, and its end.

The SDK's ``stdio_client`` is not used, for three reasons that each broke a backend:

* **Noise on stdout.**  A server started as ``sh -c "echo starting...; exec server"``
  (or one printing a banner) writes a line that is not JSON-RPC before the protocol
  starts.  Such lines are skipped here and counted (``noise_lines``; the connection logs
  the first one, without its content, and the snapshot shows a warning), as the
  official clients do; a backend never fails because of them.
* **Leftover processes.**  The SDK signals the process group only when the server
  ignores stdin EOF, so a helper that inherited the server's stdout outlives a server
  that exits politely.  Here the whole group is ended on every stop
  (:mod:`~vmcp_actors.backend.process_group`).
* **Stop budgets.**  The SDK's fixed 2 s + 2 s + 2 s escalation does not fit a caller
  that has less time.  Here the sequence (flush, close stdin, wait, SIGTERM to the group,
  wait, SIGKILL to the group, wait for it to be gone) is fitted into ``stop_deadline``
  when one is set, and a cancelled connection (the loop shutting down, a close that ran
  out of time) SIGKILLs the group at once, before anything else can interrupt it.  A
  stop never returns while a process of the group still runs (bar one that left the
  group on purpose, or one the kernel cannot kill).

Also: one message (line) may not exceed ``max_response_bytes``; a longer one fails the
connection with an error naming the limit instead of growing the buffer without bound.
The leader's exit ends the session even while a helper keeps stdout open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TextIO, cast

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client.stdio import get_default_environment
from mcp.shared.message import SessionMessage

from vmcp_actors.backend.connect_params import ConnectParams
from vmcp_actors.backend.failures import CommandLaunchError, Failure, FailureKind, format_bytes
from vmcp_actors.backend.lifeline import call_safely
from vmcp_actors.backend.process_group import describe_exit, group_alive, signal_group

__all__ = ["EOF_GRACE", "KILL_WAIT", "NOISE_WARNING", "TERM_GRACE", "StdioServer"]

_log = logging.getLogger(__name__)

NOISE_WARNING = "the stdio server writes lines to stdout that are not JSON-RPC (skipped; logs belong on stderr)"
"""The warning a backend's snapshot shows for such a server."""

EOF_GRACE = 1.0
"""How long a server may take to exit after its stdin closed (the polite way to stop it)."""
TERM_GRACE = 1.0
"""How long the group may take to exit after SIGTERM before it is SIGKILLed."""
KILL_WAIT = 1.0
"""Upper bound for a SIGKILLed group to be gone; normally a few milliseconds."""
WRITE_FLUSH = 0.5
"""How long already accepted messages may take to reach the server's stdin on stop."""
EXIT_DRAIN = 0.2
"""After the server exited, how long its stdout may stay open (held by a helper) before
the session is ended anyway; output written before the exit is still delivered."""
_POLL = 0.02
_READ_HIGH_WATER = 1 << 20
"""Stop reading stdout while this much is buffered and the session is not consuming."""

Streams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]


class _Protocol(asyncio.SubprocessProtocol):
    """asyncio's callbacks for the child, forwarded to its :class:`StdioServer`."""

    def __init__(self, server: StdioServer) -> None:
        self._server = server

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self._server.stdout_data(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._server.pipe_lost(fd)

    def process_exited(self) -> None:
        self._server.exited()

    def pause_writing(self) -> None:
        self._server.can_write.clear()

    def resume_writing(self) -> None:
        self._server.can_write.set()


class StdioServer:
    """One stdio MCP server process; :meth:`run` yields the session's read and write streams.

    Skipped non-JSON-RPC lines are counted (``noise_lines``); the first is logged
    (without its content) and reported through ``on_warning`` (:data:`NOISE_WARNING`,
    called soon on the loop).  ``on_fatal`` gets the failure that ends the connection
    from below (a message over the size limit).  ``stop_deadline``
    (``time.monotonic()``) bounds the stop when set.
    """

    def __init__(
        self,
        params: ConnectParams,
        errlog: TextIO,
        *,
        on_warning: Callable[[str], None] | None,
        on_fatal: Callable[[Failure], None],
    ) -> None:
        assert params.command is not None  # validated by ConnectParams
        self._params = params
        self._command = params.command
        self._errlog = errlog
        self._on_warning = on_warning
        self._on_fatal = on_fatal
        self._limit = params.max_response_bytes
        self._transport: asyncio.SubprocessTransport | None = None
        self._buffer = bytearray()
        self._scanned = 0
        self._wakeup = asyncio.Event()
        self._exited = asyncio.Event()
        self._exited_at: float | None = None
        self._stdout_closed = False
        self._stdin_lost = False
        self._reading_paused = False
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.noise_lines = 0
        self.stop_deadline: float | None = None
        self.pid: int | None = None

    @property
    def returncode(self) -> int | None:
        """The server's exit status once it exited (negative: killed by that signal)."""
        return None if self._transport is None else self._transport.get_returncode()

    def end_description(self) -> str:
        """Why the session's read stream ended, for the failure message."""
        if self.returncode is not None:
            return f"the stdio server process {describe_exit(self.returncode)}"
        if self._stdin_lost:
            return "the stdio server closed its stdin"
        return "the stdio server closed its stdout"

    # ------------------------------------------------------------------ asyncio callbacks

    def stdout_data(self, data: bytes) -> None:
        """Protocol callback: more stdout."""
        self._buffer += data
        self._wakeup.set()
        if len(self._buffer) > _READ_HIGH_WATER and not self._reading_paused:
            self._pause_reading(True)

    def pipe_lost(self, fd: int) -> None:
        """Protocol callback: a pipe closed (stdout: EOF; stdin: the server closed it)."""
        if fd == 1:
            self._stdout_closed = True
        elif fd == 0:
            self._stdin_lost = True
            self.can_write.set()  # a blocked writer must see the loss, not wait forever
        self._wakeup.set()

    def exited(self) -> None:
        """Protocol callback: the server process exited and was reaped."""
        self._exited_at = time.monotonic()
        self._exited.set()
        self._wakeup.set()

    # ------------------------------------------------------------------ the transport

    @asynccontextmanager
    async def run(self) -> AsyncIterator[Streams]:
        """Start the server; yield the streams; stop the whole process group on exit."""
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: _Protocol(self),
                self._command,
                *self._params.args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errlog,
                env=get_default_environment() | dict(self._params.env),
                cwd=self._params.cwd,
                start_new_session=True,  # its own process group: stop ends all of it
            )
        except (OSError, ValueError) as exc:
            raise CommandLaunchError(self._command, self._params.cwd, exc) from exc
        self._transport = transport
        self.pid = transport.get_pid()
        # No await until the task group is entered: a cancellation in between would leak it.
        read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._read_pump, read_writer)
            tg.start_soon(self._write_pump, write_reader)
            hard = True
            try:
                yield read_stream, write_stream
                hard = False
            except Exception:
                hard = False
                raise
            finally:
                read_stream.close()
                write_stream.close()
                try:
                    with anyio.CancelScope(shield=True):
                        await self._stop(hard=hard)
                except BaseException:
                    # A native cancel (the loop shutting down, a close out of time) breaks
                    # anyio's shield: kill the group now, and still see it gone before
                    # the cancellation goes on (the kill takes effect asynchronously).
                    self._kill_now()
                    with contextlib.suppress(BaseException), anyio.CancelScope(shield=True):
                        await self._wait_gone(KILL_WAIT)
                    raise
                finally:
                    transport.close()
                    tg.cancel_scope.cancel()

    # ------------------------------------------------------------------ stdout -> session

    async def _read_pump(self, read_writer: MemoryObjectSendStream[SessionMessage | Exception]) -> None:
        try:
            async with read_writer:
                while True:
                    line = self._next_line()
                    if line is not None:
                        message = self._parse(line)
                        if message is not None:
                            await read_writer.send(message)
                        continue
                    if len(self._buffer) > self._limit:
                        self._on_fatal(self._too_large())
                        return
                    if self._stdout_closed or self._stdin_lost:
                        if self._buffer.strip() and (message := self._parse(bytes(self._buffer))) is not None:
                            self._buffer.clear()
                            await read_writer.send(message)
                        # A closed pipe usually means the process ended: wait (briefly) for
                        # its exit status, so the failure can say how it ended.
                        await self._wait_leader(EXIT_DRAIN)
                        return
                    if not await self._wait_for_output():
                        return
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the session is gone; the stop sequence takes it from here

    def _next_line(self) -> bytes | None:
        newline = self._buffer.find(b"\n", self._scanned)
        if newline < 0:
            self._scanned = len(self._buffer)  # never rescan: a 16 MiB line must not cost O(n²)
            if self._reading_paused:
                self._pause_reading(False)
            return None
        line = bytes(self._buffer[:newline])
        del self._buffer[: newline + 1]
        self._scanned = 0
        if self._reading_paused and len(self._buffer) < _READ_HIGH_WATER:
            self._pause_reading(False)
        return line

    async def _wait_for_output(self) -> bool:
        """Wait for more stdout; False once the server exited and its stdout stayed quiet."""
        self._wakeup.clear()
        if self._exited_at is None:
            await self._wakeup.wait()
            return True
        left = self._exited_at + EXIT_DRAIN - time.monotonic()
        if left <= 0:
            return False  # a helper still holds stdout open; the server itself is gone
        with anyio.move_on_after(left):
            await self._wakeup.wait()
        return True

    def _parse(self, line: bytes) -> SessionMessage | None:
        if not line.strip():
            return None
        try:
            return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
        except ValueError:  # not JSON, or JSON that is not a JSON-RPC message
            self.noise_lines += 1
            if self.noise_lines == 1:
                self._first_noise()
            return None

    def _first_noise(self) -> None:
        _log.warning(
            "MCP backend %r: its stdio server wrote a line to stdout that is not JSON-RPC; skipping it "
            "(a stdio MCP server should write only MCP messages to stdout; further such lines are counted, "
            "not logged)",
            self._params.name,
        )
        if self._on_warning is not None:
            asyncio.get_running_loop().call_soon(call_safely, self._params.name, self._on_warning, NOISE_WARNING)

    def _too_large(self) -> Failure:
        return Failure(
            FailureKind.PROTOCOL,
            f"stdio server {self._command!r} sent a message larger than the {format_bytes(self._limit)} limit "
            f"(maxResponseBytes={self._limit})",
        )

    def _pause_reading(self, pause: bool) -> None:
        pipe = self._transport.get_pipe_transport(1) if self._transport is not None else None
        if pipe is None or pipe.is_closing():
            return
        read_pipe = cast(asyncio.ReadTransport, pipe)
        if pause:
            read_pipe.pause_reading()
        else:
            read_pipe.resume_reading()
        self._reading_paused = pause

    # ------------------------------------------------------------------ session -> stdin

    async def _write_pump(self, write_reader: MemoryObjectReceiveStream[SessionMessage]) -> None:
        async with write_reader:
            async for message in write_reader:
                stdin = self._stdin()
                if stdin is None:
                    continue  # the server closed its stdin; the read side reports the end
                json = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                stdin.write(json.encode() + b"\n")
                await self.can_write.wait()

    def _stdin(self) -> asyncio.WriteTransport | None:
        if self._transport is None or self._stdin_lost:
            return None
        pipe = self._transport.get_pipe_transport(0)
        if pipe is None or pipe.is_closing():
            return None
        return cast(asyncio.WriteTransport, pipe)

    # ------------------------------------------------------------------ stopping

    async def _stop(self, *, hard: bool) -> None:
        """End the whole process group: politely within the budget, or at once if ``hard``."""
        if hard:
            self._kill_now()
            await self._wait_gone(KILL_WAIT)
            return
        now = time.monotonic()
        deadline = self.stop_deadline if self.stop_deadline is not None else now + EOF_GRACE + TERM_GRACE + KILL_WAIT
        budget = max(deadline - now, 0.0)
        await self._flush(min(WRITE_FLUSH, 0.1 * budget))
        stdin = self._stdin()
        if stdin is not None:
            stdin.close()  # EOF: the MCP spec's way to ask a stdio server to exit
        if await self._wait_leader(min(EOF_GRACE, 0.4 * budget)) and not self._group_alive():
            return
        self._signal(signal.SIGTERM)
        if await self._wait_gone(min(TERM_GRACE, 0.3 * budget)):
            return
        self._signal(signal.SIGKILL)
        if not await self._wait_gone(max(deadline - time.monotonic(), KILL_WAIT)):
            _log.warning("stdio server %r (pid %s) survived SIGKILL; abandoning it", self._command, self.pid)

    async def _flush(self, timeout: float) -> None:
        stdin = self._stdin()
        if stdin is None or stdin.get_write_buffer_size() == 0 or timeout <= 0:
            return
        with anyio.move_on_after(timeout):
            while stdin.get_write_buffer_size() and not self._stdin_lost:
                await anyio.sleep(_POLL)

    async def _wait_leader(self, timeout: float) -> bool:
        if not self._exited.is_set() and timeout > 0:
            with anyio.move_on_after(timeout):
                await self._exited.wait()
        return self._exited.is_set()

    async def _wait_gone(self, timeout: float) -> bool:
        """Wait until the leader was reaped and no process of its group runs."""
        deadline = time.monotonic() + timeout
        if not await self._wait_leader(timeout):
            return False
        while self._group_alive():
            if time.monotonic() >= deadline:
                return False
            await anyio.sleep(_POLL)
        return True

    def _group_alive(self) -> bool:
        return self.pid is not None and group_alive(self.pid)

    def _signal(self, signum: signal.Signals) -> None:
        if self.pid is not None and (not self._exited.is_set() or self._group_alive()):
            signal_group(self.pid, signum)

    def _kill_now(self) -> None:
        """SIGKILL the group synchronously: nothing can interrupt it."""
        self._signal(signal.SIGKILL)
