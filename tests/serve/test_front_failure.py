"""If the MCP front fails to start, ``serve`` still stops the runtime and flushes its final status."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import pytest

from tests.cli.support import echo_config
from vmcp_actors.cli.commands import run_command
from vmcp_actors.runtime.runtime import Runtime
from vmcp_actors.serve.command import McpFront

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]


class FrontBroke(Exception):
    """What the patched front raises."""


def test_a_front_that_fails_to_start_still_stops_the_runtime_and_flushes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Runtime] = []

    def broken_start(self: McpFront, runtime: Runtime) -> None:
        started.append(runtime)
        raise FrontBroke("the app could not be built")

    monkeypatch.setattr(McpFront, "start", broken_start)
    monkeypatch.delenv("VMCP_NAME", raising=False)
    monkeypatch.delenv("VMCP_NAMESPACE", raising=False)
    status_file = tmp_path / "status.json"
    argv = ["serve", "--config", str(echo_config(tmp_path)), "--port", "0", "--status-file", str(status_file)]
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(FrontBroke):
            run_command(argv)
    finally:  # the command installed its stop-signal handlers in this (the test's) process
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    (runtime,) = started
    assert runtime.stopped
    assert json.loads(status_file.read_text())["phase"] == "Pending", "the final (stopped) status was flushed"
    assert not [t.name for t in threading.enumerate() if t.name == "vmcp-aio"], "the runtime's loop still runs"
