"""``vmcp-actors serve`` as a real subprocess, for the serve and conformance tests.

:class:`ServeProcess` writes a config, starts ``python -m vmcp_actors.cli serve --port 0``,
and reads stderr until ``serving MCP at <url>`` (no sleeps; a deadline).  Stderr keeps being
drained for the life of the process (a full pipe would look like a hang) and its tail is
kept for assertion messages.  The fixture kills whatever is still running at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
import yaml

from tests.servers.fixtures import CONFORMANCE_SERVER, DATAPLANE_SERVER, RunningServer

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
WAIT = 60.0
_SERVING = re.compile(r"serving MCP at (http://\S+)")


def stdio_entry(name: str, script: str = "dataplane") -> dict[str, Any]:
    if script == "dataplane":
        return {
            "name": name,
            "type": "stdio",
            "command": sys.executable,
            "args": [str(DATAPLANE_SERVER), "--transport", "stdio", "--name", name],
        }
    return {"name": name, "type": "stdio", "command": sys.executable, "args": [str(CONFORMANCE_SERVER)]}


def http_entry(name: str, server: RunningServer, transport: str = "streamable-http") -> dict[str, Any]:
    path = "/sse" if transport == "sse" else "/mcp"
    return {"name": name, "type": transport, "url": server.url(path), "timeout": 10}


FAST_HEALTH = {"healthCheckInterval": "2s", "healthCheckTimeout": "1500ms", "unhealthyThreshold": 3}


class ServeProcess:
    """One ``vmcp-actors serve`` process; ``url`` is its ``/mcp`` endpoint."""

    def __init__(self, config_path: Path, status_file: Path, extra: tuple[str, ...] = ()) -> None:
        env = {**os.environ, "VMCP_INITIAL_BACKOFF": "200ms", "PYTHONPATH": str(REPO)}
        env.pop("VMCP_NAME", None)
        command = [sys.executable, "-m", "vmcp_actors", "serve", "--config", str(config_path), "--port", "0"]
        command += ["--status-file", str(status_file), *extra]
        self.status_file = status_file
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )
        assert self.process.stderr is not None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._tail: deque[str] = deque(maxlen=200)
        self._drain = threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True)
        self._drain.start()
        self.url = self._wait_for_url()
        self.base = self.url.removesuffix("/mcp")

    def _read(self, stream: Any) -> None:
        try:
            for line in stream:
                self._tail.append(line.rstrip("\n"))
                self._lines.put(line)
        finally:
            self._lines.put(None)
            stream.close()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError(f"serve not ready after {READY_TIMEOUT}s:\n{self.stderr_tail}") from None
            if line is None:
                self.kill()
                raise AssertionError(f"serve exited before serving:\n{self.stderr_tail}")
            match = _SERVING.search(line)
            if match:
                return match.group(1)

    @property
    def stderr_tail(self) -> str:
        return "\n".join(self._tail)

    def get(self, path: str, **kwargs: Any) -> httpx2.Response:
        return httpx2.get(self.base + path, timeout=10, **kwargs)

    def terminate(self, timeout: float = 60.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._drain.join(10)
        return code

    def final_status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.status_file.read_text())
        return data

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


class Observer:
    """A client's ``message_handler``: records what ``serve`` sends it, for waiting on."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._changed = asyncio.Condition()

    async def __call__(self, message: Any) -> None:
        async with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def count(self, kind: type[Any]) -> int:
        return sum(isinstance(m, kind) for m in self.messages)

    def changed_since(self, seen: int) -> bool:
        """Whether a ``tools/list_changed`` arrived after ``seen`` of them had."""
        return self.count(types.ToolListChangedNotification) > seen

    async def wait(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)

    async def tools(self, client: Any, predicate: Callable[[set[str]], bool], timeout: float = WAIT) -> set[str]:
        """List tools until ``predicate(names)`` holds, re-listing after each ``tools/list_changed``."""
        async with asyncio.timeout(timeout):
            while True:
                seen = self.count(types.ToolListChangedNotification)
                names = {tool.name for tool in (await client.list_tools()).tools}
                if predicate(names):
                    return names
                await self.wait(functools.partial(self.changed_since, seen), "tools/list_changed")


@pytest.fixture
def start_serve(tmp_path: Path) -> Iterator[Any]:
    """``start_serve(backends, aggregation=None)`` -> a started :class:`ServeProcess`."""
    started: list[ServeProcess] = []

    def start(backends: list[dict[str, Any]], aggregation: dict[str, Any] | None = None, **extra: Any) -> ServeProcess:
        config: dict[str, Any] = {"backends": backends, "failureHandling": FAST_HEALTH}
        if aggregation is not None:
            config["aggregation"] = aggregation
        path = tmp_path / f"serve-{len(started)}.yaml"
        path.write_text(yaml.safe_dump(config))
        process = ServeProcess(path, tmp_path / f"status-{len(started)}.json", tuple(extra.get("args", ())))
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.terminate(30)
        process.kill()
