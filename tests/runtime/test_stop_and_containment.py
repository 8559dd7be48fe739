"""A host is never taken down: concurrent stops wait for each other, a sink's SystemExit is contained.

Real stdio MCP servers, real actors; the sink is the test's, because what is under test
is what the runtime does when a sink misbehaves.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pykka
import pytest

from testkit.waits import bound
from tests.runtime.test_runtime import runtime_threads, stdio
from tests.sinks import FAST_HEALTH, FAST_RECONNECT, ControllableSink, FileSink
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.model.status import Phase, Status
from vmcp_actors.runtime.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]


def test_a_second_concurrent_stop_returns_only_once_the_first_has_finished(
    tmp_path: Path, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    """Bug: a second stop() returned at once while the first was still flushing the final status."""
    sink = FileSink(tmp_path / "status.json")
    runtime = Runtime.start(
        RuntimeConfig(backends=[stdio(echo_stdio_command, "one")], failure_handling=FAST_HEALTH),
        sink,
        lifecycle_policy=FAST_RECONNECT,
    )
    try:
        sink.wait_phase(Phase.READY)
        sink.block()  # the first stop's status writes wait until the test lets them through
        first = threading.Thread(target=runtime.stop, args=(bound(),), name="first-stop")
        first.start()
        assert sink.entered.wait(bound()), "the first stop never reached the sink"
        seen: dict[str, Any] = {}

        def second_stop() -> None:
            runtime.stop(bound())
            # What the second caller may rely on once stop() returns: the runtime is down.
            seen["threads"] = [name for name in runtime_threads() if not name.startswith("first")]
            seen["final_written"] = bool(sink.writes) and sink.writes[-1].phase is Phase.PENDING  # the stopped status
            seen["first_alive"] = first.is_alive()

        second = threading.Thread(target=second_stop, name="second-stop")
        second.start()
        second.join(2.0)  # the fixed version is still waiting here; the bug had returned long before
        sink.unblock()
        second.join(bound())
        first.join(bound())
        assert not second.is_alive()
        assert seen["final_written"], "the second stop returned before the final status was flushed"
        assert seen["threads"] == []
        final = runtime.status()
        assert final is not None
        assert sink.on_disk().same_content(final)
    finally:
        sink.unblock()
        runtime.stop(bound())


class ExitingSink(FileSink):
    """A sink whose library calls ``sys.exit`` while ``exiting`` is set (a real thing some clients do)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.exiting = False
        self.exited = threading.Event()

    def report_status(self, status: Status | None) -> None:
        if status is not None and self.exiting:
            self.exited.set()
            raise SystemExit(3)
        super().report_status(status)


class Bystander(pykka.ThreadingActor):
    """An actor of the host's own, unrelated to the runtime."""

    def on_receive(self, message: Any) -> Any:
        return message


def test_a_sink_raising_system_exit_is_a_failing_sink_not_the_end_of_every_actor(
    tmp_path: Path, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    """Bug: pykka answers a BaseException in a handler with stop_all, killing the host's actors too."""
    sink = ExitingSink(tmp_path / "status.json")
    bystander = Bystander.start()
    runtime = Runtime.start(
        RuntimeConfig(backends=[stdio(echo_stdio_command, "one")], failure_handling=FAST_HEALTH),
        sink,
        lifecycle_policy=FAST_RECONNECT,
    )
    try:
        sink.wait_phase(Phase.READY)
        sink.exiting = True
        runtime.add_backend(stdio(echo_stdio_command, "two"))  # a status change for the sink to choke on
        assert sink.exited.wait(bound()), "the sink was never called"
        assert bystander.ask("still here?", timeout=bound()) == "still here?"
        sink.exiting = False  # the sink recovers: the reporter's retry writes the latest status

        def both_ready(s: ControllableSink) -> bool:
            return bool(s.writes) and s.writes[-1].phase is Phase.READY and s.writes[-1].backend_count == 2

        sink.wait_for(both_ready)
        assert bystander.ask("and now?", timeout=bound()) == "and now?"
        assert runtime.reporter.stats().failed_attempts >= 1
    finally:
        runtime.stop(bound())
        bystander.stop(timeout=bound())
