"""Signals as users and supervisors send them to a real ``vmcp-actors run``: twice, late, and during import."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from testkit.waits import bound
from tests.cli.support import cli_env, echo_config, wait_for_phase

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

FINAL_LINE = "vmcp-actors: final status "


class Lines:
    """Reads a child's stream on a thread: lines to wait on, and all of them for the assertions."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.seen.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, wanted: str) -> bool:
        """Wait until a line starts with ``wanted``; ``False`` if the stream ended first."""
        deadline = time.monotonic() + bound()
        while True:
            line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            if line is None:
                return False
            if line.startswith(wanted):
                return True

    def text(self) -> str:
        self._thread.join(bound())
        return "".join(self.seen)


# (first signal, second signal, when the second comes: seconds after the first, or right after the final status)
TWICE = [
    (signal.SIGTERM, signal.SIGTERM, 0.05),
    (signal.SIGTERM, signal.SIGINT, 0.2),
    (signal.SIGINT, signal.SIGTERM, 0.4),
    (signal.SIGTERM, signal.SIGTERM, 0.6),
    (signal.SIGINT, signal.SIGINT, 0.9),
    (signal.SIGTERM, signal.SIGTERM, "after the final status"),
    (signal.SIGTERM, signal.SIGINT, "after the final status"),
]


@pytest.mark.parametrize(("first", "second", "when"), TWICE, ids=lambda v: getattr(v, "name", str(v)))
def test_a_second_signal_at_any_moment_never_changes_the_exit_code(
    tmp_path: Path, first: signal.Signals, second: signal.Signals, when: float | str
) -> None:
    """Bug: a second TERM/INT 0.05-0.9 s after the first made the exit code -15/-2 in 17 of 20 runs."""
    status_file = tmp_path / "status.json"
    command = [sys.executable, "-m", "vmcp_actors", "run", "--config", str(echo_config(tmp_path))]
    process = subprocess.Popen(
        [*command, "--status-file", str(status_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    assert process.stderr is not None
    err = Lines(process.stderr)
    try:
        wait_for_phase(status_file, "Ready", lambda: process.poll() is None)
        process.send_signal(first)
        if isinstance(when, float):
            time.sleep(when)  # the scenario itself: a supervisor escalating after this long
        else:
            assert err.wait_for(FINAL_LINE), "no final status line"
        if process.poll() is None:
            process.send_signal(second)
        code = process.wait(timeout=bound())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = err.text()
    assert code == 0, text
    assert FINAL_LINE in text
    assert "Traceback" not in text


@pytest.mark.parametrize("module", ["pykka", "yaml", "anyio"])
def test_ctrl_c_while_importing_exits_130_without_a_traceback(tmp_path: Path, module: str) -> None:
    """Bug: SIGINT during the (slow) imports printed a KeyboardInterrupt traceback.

    ``-X importtime`` reports each import as it completes, so the test sends SIGINT right
    after ``module`` is imported: certainly during ``run``'s imports (the MCP SDK's take
    much longer), before any handler of ours is installed.
    """
    command = [sys.executable, "-X", "importtime", "-m", "vmcp_actors", "run", "--config", str(echo_config(tmp_path))]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=cli_env())
    assert process.stderr is not None
    try:
        for line in process.stderr:
            if line.startswith("import time:") and line.rsplit("|", 1)[-1].strip() == module:
                process.send_signal(signal.SIGINT)
                break
        else:
            pytest.fail(f"{module} was never imported")
        rest = process.stderr.read()
        code = process.wait(timeout=bound())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    messages = [line for line in rest.splitlines() if not line.startswith("import time:")]
    assert code == 130, messages
    assert messages == ["vmcp-actors: interrupted before the runtime started"]
