"""Bearer tokens against a real streamable-HTTP server that checks them: rotation, wrong and missing tokens.

The server (``guarded_server.py --token-file``) accepts whatever token its file holds at
each request, so the test rotates the server's token by rewriting that file; the
backend reads its own token from a ``tokenFile`` the test rewrites too, as a mounted
Secret is.  The status must agree with the lifecycle at every point the test settles.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.waits import bound
from tests.runtime.support import settle
from tests.runtime.test_runtime import wait_snapshot
from tests.servers.fixtures import SERVERS_DIR, ServerFactory
from tests.sinks import FAST_HEALTH, FAST_RECONNECT, ControllableSink, FileSink
from vmcp_actors.backend.lifecycle_state import State
from vmcp_actors.config.auth import AuthSpec
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.model.status import Phase, Status
from vmcp_actors.runtime.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

GUARDED_SERVER = SERVERS_DIR / "guarded_server.py"


def remote_status(status: Status) -> str:
    backend = status.backend("remote")
    return "-" if backend is None else backend.status


def assert_unauthenticated(status: Status | None) -> None:
    """What a backend whose token is rejected looks like: not routable, and the status says why."""
    assert status is not None
    backend = status.backend("remote")
    assert backend is not None
    assert (status.phase, status.backend_count, backend.status) == (Phase.FAILED, 0, "unauthenticated")
    assert backend.message.startswith("Authentication failed: "), backend.message
    assert "401" in backend.message
    ready = status.condition("Ready")
    assert ready is not None
    assert ready.status.value == "False"


def start(tmp_path: Path, url: str, auth: AuthSpec) -> tuple[Runtime, FileSink]:
    spec = BackendSpec(name="remote", type="streamable-http", url=url, timeout=30, auth=auth)
    sink = FileSink(tmp_path / "status.json")
    config = RuntimeConfig(backends=[spec], failure_handling=FAST_HEALTH)
    return Runtime.start(config, sink, lifecycle_policy=FAST_RECONNECT), sink


def test_a_token_rotated_mid_session_shows_unauthenticated_until_the_token_file_catches_up(
    tmp_path: Path, mcp_servers: ServerFactory
) -> None:
    """Bug: a mid-session 401 moved the backend to auth_required, but the 401 probe read HEALTHY and the
    status stayed Ready; and the backend was never retried, so fixing the tokenFile recovered nothing."""
    server_token, client_token = tmp_path / "server-token", tmp_path / "client-token"
    server_token.write_text("token-alpha")
    client_token.write_text("token-alpha")
    server = mcp_servers.start(GUARDED_SERVER, "--token-file", str(server_token))
    runtime, sink = start(tmp_path, server.url("/mcp"), AuthSpec(type="bearer", token_file=str(client_token)))
    try:
        sink.wait_phase(Phase.READY)
        server_token.write_text("token-beta")  # the server rotates; the session's token is now rejected
        wait_snapshot(runtime, "remote", lambda snap: snap.state is State.AUTH_REQUIRED)
        settle(runtime)  # the 401 probe's answer, if it were folded, has been by now
        assert_unauthenticated(runtime.status())
        first_denied = next(i for i, w in enumerate(sink.writes) if remote_status(w) == "unauthenticated")
        assert [w.phase for w in sink.writes[first_denied:]] == [Phase.FAILED] * (len(sink.writes) - first_denied)
        assert runtime.snapshots()["remote"].next_retry_after is not None  # the slow auth retry is pending

        client_token.write_text("token-beta\n")  # the new token reaches the client: no restart, no config change

        def ready_again(s: ControllableSink) -> bool:
            return bool(s.writes) and s.writes[-1].phase is Phase.READY and remote_status(s.writes[-1]) == "ready"

        sink.wait_for(ready_again)
        assert runtime.snapshots()["remote"].state is State.CONNECTED
    finally:
        runtime.stop(bound(30.0))


@pytest.mark.parametrize("client", ["wrong-token", "no-auth"])
def test_a_wrong_or_missing_token_is_never_ready(tmp_path: Path, mcp_servers: ServerFactory, client: str) -> None:
    """Bug: a wrong or missing bearer token reported Ready (unauthenticated counted as routable, 0 tools)."""
    server_token, client_token = tmp_path / "server-token", tmp_path / "client-token"
    server_token.write_text("token-alpha")
    client_token.write_text("token-wrong")
    server = mcp_servers.start(GUARDED_SERVER, "--token-file", str(server_token))
    auth = AuthSpec(type="bearer", token_file=str(client_token)) if client == "wrong-token" else AuthSpec()
    runtime, sink = start(tmp_path, server.url("/mcp"), auth)
    try:
        sink.wait_for(lambda s: bool(s.writes) and remote_status(s.writes[-1]) == "unauthenticated")
        settle(runtime)
        assert_unauthenticated(runtime.status())
        assert runtime.snapshots()["remote"].tool_count == 0
        assert all(w.phase is not Phase.READY for w in sink.writes)
        if client == "wrong-token":
            client_token.write_text("token-alpha")  # fixed in place: recovered without a restart
            sink.wait_phase(Phase.READY)
    finally:
        runtime.stop(bound(30.0))
