"""A stdio server that takes 12 s to start becomes ready: ``timeout`` bounds every transport's handshake.

The server (``tests/servers/slow_stdio.py``) reads nothing for 12 s, as a FastMCP server
does while ``import fastmcp`` runs on a loaded machine.  The handshake used to be fixed
at 10 s for stdio whatever the config said, so it never became ready and ``validate``
still said OK.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.servers.fixtures import SERVERS_DIR
from tests.sinks import ControllableSink
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.lifecycle_state import LifecyclePolicy, State
from vmcp_actors.cli import main
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.runtime.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

START_DELAY = 12.0
#: Generous: the backends are ready ~12 s after the start; the bound only matters when broken.
WAIT = 90.0
SETTLED = frozenset({State.RUNNING, State.FAILED, State.UNREACHABLE, State.STOPPED})


def slow_backend(name: str, **extra: object) -> dict[str, object]:
    args = [str(SERVERS_DIR / "slow_stdio.py"), "--delay", str(START_DELAY)]
    return {"name": name, "type": "stdio", "command": sys.executable, "args": args, **extra}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "vmcp.yaml"
    document = {
        "backends": [slow_backend("given-30s", timeout="30s"), slow_backend("default")],
        "failureHandling": {"healthCheckInterval": "1s", "healthCheckTimeout": "500ms"},
    }
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def runtime(config_file: Path) -> Iterator[tuple[Runtime, ControllableSink]]:
    sink = ControllableSink()
    config = RuntimeConfig.load(config_file)
    # Retries far apart: a connect that failed would not be rescued by a quick second try.
    slow_retry = LifecyclePolicy(backoff=Backoff(initial=600.0, maximum=600.0, jitter=0.0))
    started = Runtime.start(
        RuntimeConfig(backends=config.backends, failure_handling=FailureHandling(status_reporting_interval=30.0)),
        sink,
        lifecycle_policy=slow_retry,
    )
    try:
        yield started, sink
    finally:
        started.stop(15.0)


def test_validate_accepts_the_timeout_and_it_is_the_handshake_bound(config_file: Path) -> None:
    assert main(["validate", str(config_file)]) == 0
    given, default = RuntimeConfig.load(config_file).backends
    assert given.connect_timeout == 30.0
    assert default.connect_timeout == 30.0  # the default tolerates a slow interpreter start too


def test_a_stdio_server_needing_12s_to_start_becomes_ready_on_its_first_connect(
    runtime: tuple[Runtime, ControllableSink],
) -> None:
    started, sink = runtime

    def settled(_: ControllableSink) -> bool:
        return all(snapshot.state in SETTLED for snapshot in started.snapshots().values())

    sink.wait_for(settled, WAIT)
    snapshots = started.snapshots()
    for name in ("given-30s", "default"):
        assert snapshots[name].state is State.RUNNING, snapshots[name].last_error
        assert snapshots[name].consecutive_failures == 0
        assert snapshots[name].tool_count == 2  # echo and add
