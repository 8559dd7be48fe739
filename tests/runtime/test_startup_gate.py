"""Pending holds until every backend configured at start has a result, however late the timer fires.

A real stdio echo server that is quick, and a real streamable-HTTP server that holds its
``initialize`` until the test lets it go.  The runtime's scheduler is a manual one, so
the initial-wait timer fires exactly when the test says -- as it does on a loaded
machine, before the slow backend's connect deadline, whose clock starts only when that
backend's actor gets to it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.waits import bound
from tests.runtime.support import release, settle
from tests.runtime.test_runtime import stdio, wait_snapshot
from tests.servers.fixtures import SERVERS_DIR, ServerFactory
from tests.sinks import FAST_HEALTH, FAST_RECONNECT, ControllableSink, FileSink
from vmcp_actors.actorkit.timers import ManualScheduler
from vmcp_actors.backend.lifecycle_state import State
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.health.probe_schedule import initial_wait
from vmcp_actors.model.status import Phase
from vmcp_actors.runtime.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

GUARDED_SERVER = SERVERS_DIR / "guarded_server.py"
#: The slow backend's connect deadline: far beyond how long the test holds it.
SLOW_CONNECT_TIMEOUT = 120.0


def test_pending_holds_until_the_slow_backend_has_a_result_however_late_the_timer_fires(
    tmp_path: Path, mcp_servers: ServerFactory, echo_stdio_command: tuple[str, tuple[str, ...]]
) -> None:
    """Bug: for ~1 s under load the status read Ready, "All 1 backend healthy", while "slow" was starting."""
    held = mcp_servers.start(GUARDED_SERVER, "--hold-initialize")
    slow = BackendSpec(name="slow", type="streamable-http", url=held.url("/mcp"), timeout=SLOW_CONNECT_TIMEOUT)
    config = RuntimeConfig(backends=[stdio(echo_stdio_command, "fast"), slow], failure_handling=FAST_HEALTH)
    sink = FileSink(tmp_path / "status.json")
    scheduler = ManualScheduler()
    runtime = Runtime.start(config, sink, scheduler=scheduler, lifecycle_policy=FAST_RECONNECT)
    try:
        wait_snapshot(runtime, "fast", lambda snap: snap.running)
        wait_snapshot(runtime, "slow", lambda snap: snap.state is State.STARTING)
        # The initial wait runs out while "slow" is still in its handshake.
        scheduler.advance(initial_wait((s.connect_timeout for s in config.backends), FAST_HEALTH.health_check_timeout))
        settle(runtime)
        assert runtime.snapshots()["slow"].state is State.STARTING
        status = runtime.status()
        assert status is not None
        assert status.phase is Phase.PENDING, status.message
        assert all(write.phase is Phase.PENDING for write in sink.writes), [w.message for w in sink.writes]
        release(held)

        def both_ready(s: ControllableSink) -> bool:
            return bool(s.writes) and s.writes[-1].phase is Phase.READY and s.writes[-1].backend_count == 2

        sink.wait_for(both_ready)
        assert sink.writes[-1].message == "All 2 backends healthy"
        premature = [w.message for w in sink.writes if w.phase is not Phase.PENDING and len(w.discovered_backends) < 2]
        assert premature == []
    finally:
        release(held)
        runtime.stop(bound(30.0))
