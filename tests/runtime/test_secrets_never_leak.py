"""Secrets never leave the process: not in the status (file, API, stderr), snapshots, reprs, dumps or logs.

Real MCP servers over real HTTP, real actors, the real ``vmcp-actors`` command:

* a URL carrying ``user:SECRET@`` and ``?api_key=SECRET`` is published without them;
* ``--debug`` lets the SDK and its HTTP stack log raw URLs and headers, and a server
  that echoes the bearer token in its 401 challenge still leaks nothing to stderr;
* a server whose JSON-RPC error quotes the token and a header leaks neither into
  ``last_error``, the live table or the WARNING logs.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from testkit.control_plane import ControlPlane
from testkit.plane_process import poll_until
from testkit.project import create_vmcp, get_vmcp
from tests.servers.fixtures import SERVERS_DIR, RunningServer, ServerFactory
from tests.sinks import FileSink
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
from vmcp_actors.cli import render_table
from vmcp_actors.config.auth import AuthSpec
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.model.codec import encode_status
from vmcp_actors.model.status import Phase
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.runtime.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

REPO = Path(__file__).resolve().parents[2]
SECRET_ECHO_SERVER = SERVERS_DIR / "secret_echo_server.py"
URL_SECRET = "S3CR3T-url-0481"
TOKEN = "tok-e2e-0482-abcdef"
HEADER_SECRET = "hdr-e2e-0483-key"
ENV_SECRET = "env-e2e-0484-pass"
TOKEN_ENV = "VMCP_TEST_E2E_TOKEN"
REDACTED = "<redacted>"
#: Generous: every wait ends on an event; the bound only matters when something is broken.
WAIT = 60.0

FAST = FailureHandling(
    health_check_interval=0.5, health_check_timeout=0.4, unhealthy_threshold=2, status_reporting_interval=30.0
)
RECONNECT = LifecyclePolicy(backoff=Backoff(initial=0.2, maximum=1.0, jitter=0.1), probe_timeout=2.0)


def secret_url(server: RunningServer) -> str:
    return f"http://svc:{URL_SECRET}@127.0.0.1:{server.port}/mcp?api_key={URL_SECRET}"


def redacted_url(server: RunningServer) -> str:
    return f"http://{REDACTED}@127.0.0.1:{server.port}/mcp?api_key={REDACTED}"


def assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets or (URL_SECRET, TOKEN, HEADER_SECRET, ENV_SECRET):
        assert secret not in text, f"{secret!r} leaked in: ...{text[max(0, text.find(secret) - 300) :][:600]}"


@pytest.fixture
def sink(tmp_path: Path) -> FileSink:
    return FileSink(tmp_path / "status.json")


@pytest.fixture
def run(sink: FileSink) -> Iterator[Callable[..., Runtime]]:
    started: list[Runtime] = []

    def start(*backends: BackendSpec) -> Runtime:
        runtime = Runtime.start(
            RuntimeConfig(backends=backends, failure_handling=FAST), sink, lifecycle_policy=RECONNECT
        )
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        runtime.stop(15.0)


# --------------------------------------------------------------------------- URL credentials


def test_url_credentials_are_in_no_status_snapshot_repr_or_dump(
    run: Callable[..., Runtime], sink: FileSink, mcp_servers: ServerFactory
) -> None:
    server = mcp_servers.echo("streamable-http")
    spec = BackendSpec(name="remote", type="streamable-http", url=secret_url(server), timeout=10)
    runtime = run(spec)
    sink.wait_for(lambda s: bool(s.writes) and s.writes[-1].phase is Phase.READY, WAIT)  # it connects with them
    status = runtime.status()
    assert status is not None
    snapshot = runtime.snapshots()["remote"]
    texts = {
        "status file": sink.file.path.read_text(),
        "status": json.dumps(encode_status(status)),
        "snapshot": repr(snapshot),
        "service data": json.dumps(snapshot.service_data),
        "spec repr": repr(spec),
        "config dump": json.dumps(runtime.config.dump()),
        "live table": render_table(status, runtime.snapshots(), datetime.now(UTC)),
    }
    for where, text in texts.items():
        assert URL_SECRET not in text, where
    (backend,) = status.discovered_backends
    assert backend.url == snapshot.url == snapshot.service_data["url"] == redacted_url(server)


def test_url_credentials_are_not_in_the_kubernetes_status(
    admin_api: client.ApiClient, namespace: str, control_plane: ControlPlane, mcp_servers: ServerFactory
) -> None:
    create_vmcp(admin_api, namespace)
    server = mcp_servers.echo("streamable-http")
    spec = BackendSpec(name="remote", type="streamable-http", url=secret_url(server), timeout=10)
    reporter = K8sReporter("vmcp", namespace, api_client=control_plane.admin_api_client())
    runtime = Runtime.start(
        RuntimeConfig(backends=(spec,), failure_handling=FAST), reporter, lifecycle_policy=RECONNECT
    )
    try:
        stored: dict[str, Any] = {}

        def ready() -> bool | None:
            stored.clear()
            stored.update((get_vmcp(admin_api, namespace).get("status") or {}).get("runtime", {}))
            return True if stored.get("phase") == "Ready" else None

        poll_until(ready, timeout=WAIT, what="phase Ready in the API")
    finally:
        runtime.stop(15.0)
    assert_clean(json.dumps(get_vmcp(admin_api, namespace)), URL_SECRET)
    assert stored["discoveredBackends"][0]["url"] == redacted_url(server)


# --------------------------------------------------------------------------- the command, with --debug


def _command_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("VMCP_NAME", None)
    env.pop("VMCP_NAMESPACE", None)
    env[TOKEN_ENV] = TOKEN
    return env


def _run_debug_until(tmp_path: Path, backend: dict[str, Any], done: Callable[[str], bool]) -> tuple[str, str, str]:
    """``vmcp-actors run --debug`` until ``done(stderr so far)``, then SIGTERM; its stdout, stderr, status file."""
    config = tmp_path / "vmcp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "backends": [
                    backend,
                    {
                        "name": "local",
                        "type": "stdio",
                        "command": sys.executable,
                        "args": [str(SERVERS_DIR / "echo_server.py")],
                        "env": {"DB_PASS": ENV_SECRET},
                    },
                ],
                "failureHandling": {"healthCheckInterval": "1s", "healthCheckTimeout": "500ms"},
            }
        )
    )
    status_file, err_file = tmp_path / "status.json", tmp_path / "stderr.log"
    command = [sys.executable, "-m", "vmcp_actors", "run", "--debug", "--config", str(config)]
    with err_file.open("w") as err:
        process = subprocess.Popen(
            [*command, "--status-file", str(status_file)],
            stdout=subprocess.PIPE,
            stderr=err,  # a file, not a pipe: --debug writes more than a pipe buffer holds
            text=True,
            env=_command_env(),
        )
        try:
            deadline = time.monotonic() + WAIT
            while not done(err_file.read_text()):
                assert process.poll() is None, "vmcp-actors exited early:\n" + err_file.read_text()[-3000:]
                assert time.monotonic() < deadline, "never got there:\n" + err_file.read_text()[-3000:]
                time.sleep(0.1)  # polling files another process writes; there is nothing to wait on
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=WAIT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, err_file.read_text()[-3000:]
    return out, err_file.read_text(), status_file.read_text()


def _status_ready(status_file: Path) -> Callable[[str], bool]:
    def ready(_: str) -> bool:
        try:
            phase: object = json.loads(status_file.read_text()).get("phase")
        except (OSError, json.JSONDecodeError):
            return False  # not written yet (it is replaced atomically, so never torn)
        return phase == "Ready"

    return ready


def test_the_command_publishes_and_logs_no_url_credentials_even_with_debug(
    tmp_path: Path, mcp_servers: ServerFactory
) -> None:
    server = mcp_servers.echo("streamable-http")
    backend = {"name": "remote", "type": "streamable-http", "url": secret_url(server), "timeout": 10}
    out, err, status = _run_debug_until(tmp_path, backend, _status_ready(tmp_path / "status.json"))
    assert "HTTP Request: POST" in err  # the HTTP client did log its requests, URL and all
    assert redacted_url(server) in err
    assert_clean(out + err + status)


def test_debug_logs_of_a_401_challenge_echoing_the_token_show_no_secret(
    tmp_path: Path, mcp_servers: ServerFactory
) -> None:
    server = mcp_servers.start(SECRET_ECHO_SERVER, "--mode", "challenge")
    backend = {
        "name": "remote",
        "type": "streamable-http",
        "url": server.url("/mcp"),
        "headers": {"X-Api-Key": HEADER_SECRET},
        "auth": {"type": "bearer", "tokenEnv": TOKEN_ENV},
    }
    out, err, status = _run_debug_until(tmp_path, backend, lambda err: "www-authenticate" in err.lower())
    assert "401" in err  # the challenge was received and logged ...
    assert 'error_description="the token <redacted> is not valid"' in err  # ... scrubbed
    assert_clean(out + err + status)


# --------------------------------------------------------------------------- a backend's own words


def test_a_json_rpc_error_quoting_the_token_is_scrubbed_from_last_error_table_and_logs(
    run: Callable[..., Runtime],
    sink: FileSink,
    mcp_servers: ServerFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = mcp_servers.start(SECRET_ECHO_SERVER, "--mode", "rpc-error")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    spec = BackendSpec(
        name="remote",
        type="streamable-http",
        url=server.url("/mcp"),
        headers={"X-Api-Key": HEADER_SECRET},
        auth=AuthSpec(type="bearer", token_file=str(token_file)),
        timeout=10,
    )
    caplog.set_level(logging.WARNING)
    runtime = run(spec)
    sink.wait_for(lambda _: bool(runtime.snapshots()["remote"].last_error), WAIT)
    snapshot = runtime.snapshots()["remote"]
    assert snapshot.last_error == (
        f"server returned JSON-RPC error -32602: rejected token {REDACTED} and key {REDACTED}"
    )
    status = runtime.status()
    assert status is not None
    assert_clean(render_table(status, runtime.snapshots(), datetime.now(UTC)))
    assert_clean(json.dumps(encode_status(status)))
    warnings = [record for record in caplog.records if record.name.startswith("vmcp_actors")]
    assert any("rejected token" in record.getMessage() for record in warnings)  # the failure was logged
    assert_clean(caplog.text)
