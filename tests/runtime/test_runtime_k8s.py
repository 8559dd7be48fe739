"""The running vMCP end to end with its status in a real kube-apiserver.

Real MCP servers, real actors, ``K8sReporter`` writing ``VirtualMCPServer/status`` -- into
``status.runtime``, since the harness installs toolhive's v0.63.0 CRD; and the ``vmcp-actors``
command, configured the way the operator configures it (``VMCP_NAME``/``VMCP_NAMESPACE``),
stopped with SIGTERM: a graceful stop leaves Pending, Ready=False reason Stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml
from kubernetes import client

from testkit.control_plane import ControlPlane
from testkit.plane_process import poll_until
from testkit.processes import child_pids
from testkit.project import REPO_ROOT, create_vmcp, get_vmcp
from testkit.waits import bound
from tests.servers.fixtures import (
    ECHO_SERVER,
    ServerFactory,
    echo_stdio_command,
    mcp_servers,
)
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.model.codec import decode_status
from vmcp_actors.model.status import Phase
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.runtime.runtime import Runtime

__all__ = ["echo_stdio_command", "mcp_servers"]  # fixtures used by the tests below

FAST = FailureHandling(
    health_check_interval=0.5, health_check_timeout=0.4, unhealthy_threshold=2, status_reporting_interval=30.0
)
RECONNECT = LifecyclePolicy(backoff=Backoff(initial=0.2, maximum=1.0, jitter=0.1))


def stored(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """What the runtime wrote: ``status.runtime``."""
    status: dict[str, Any] = (get_vmcp(api, namespace).get("status") or {}).get("runtime") or {}
    return status


def wait_stored(api: client.ApiClient, namespace: str, predicate: Any, what: str) -> dict[str, Any]:
    result: dict[str, Any] = {}

    def check() -> bool | None:
        result.clear()
        result.update(stored(api, namespace))
        return True if predicate(result) else None

    poll_until(check, timeout=bound(), what=what)
    return result


@pytest.fixture
def runtime_k8s(
    admin_api: client.ApiClient, namespace: str, control_plane: ControlPlane
) -> Iterator[tuple[list[Runtime], str]]:
    create_vmcp(admin_api, namespace)
    started: list[Runtime] = []
    yield started, namespace
    for runtime in started:
        runtime.stop(bound(15.0))


def test_phase_and_backends_reach_the_api_and_follow_a_backend_outage(
    runtime_k8s: tuple[list[Runtime], str],
    admin_api: client.ApiClient,
    control_plane: ControlPlane,
    mcp_servers: ServerFactory,
    echo_stdio_command: tuple[str, tuple[str, ...]],
) -> None:
    started, namespace = runtime_k8s
    server = mcp_servers.echo("streamable-http")
    backends = [
        BackendSpec(name="files", type="stdio", command=echo_stdio_command[0], args=echo_stdio_command[1]),
        BackendSpec(name="remote", type="streamable-http", url=server.url("/mcp"), timeout=5),
    ]
    reporter = K8sReporter("vmcp", namespace, api_client=control_plane.admin_api_client())
    runtime = Runtime.start(
        RuntimeConfig(backends=backends, failure_handling=FAST), reporter, lifecycle_policy=RECONNECT
    )
    started.append(runtime)
    ready = wait_stored(admin_api, namespace, lambda s: s.get("phase") == "Ready", "phase Ready in the API")
    assert ready["backendCount"] == 2
    assert [b["name"] for b in ready["discoveredBackends"]] == ["files", "remote"]
    server.kill()
    degraded = wait_stored(admin_api, namespace, lambda s: s.get("phase") == "Degraded", "phase Degraded")
    remote = next(b for b in degraded["discoveredBackends"] if b["name"] == "remote")
    assert remote["status"] in ("unavailable", "unknown")
    mcp_servers.restart(server)
    wait_stored(admin_api, namespace, lambda s: s.get("phase") == "Ready", "phase Ready again")
    runtime.stop(bound(15.0))
    final = runtime.status()
    assert final is not None
    assert final.phase is Phase.PENDING
    in_api = stored(admin_api, namespace)
    assert decode_status({**in_api, "timestamp": None}).same_content(attrs.evolve(final, timestamp=None))
    assert in_api["message"].startswith("vMCP stopped at ")
    assert [(c["type"], c["status"], c["reason"]) for c in in_api["conditions"]] == [
        ("Ready", "False", "Stopped"),
        ("BackendsDiscovered", "True", "BackendsDiscovered"),
    ]


def test_sigterm_to_the_command_leaves_its_final_status_in_the_api(
    admin_api: client.ApiClient, namespace: str, control_plane: ControlPlane, tmp_path: Path
) -> None:
    create_vmcp(admin_api, namespace)
    config = tmp_path / "vmcp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "backends": [{"name": "echo", "type": "stdio", "command": sys.executable, "args": [str(ECHO_SERVER)]}],
                "failureHandling": {"healthCheckInterval": "1s", "healthCheckTimeout": "500ms"},
            }
        )
    )
    kubeconfig = control_plane.write_kubeconfig(tmp_path / "kubeconfig")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "KUBECONFIG": str(kubeconfig),
        "VMCP_NAME": "vmcp",
        "VMCP_NAMESPACE": namespace,
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    children = child_pids()
    process = subprocess.Popen(
        [sys.executable, "-m", "vmcp_actors", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_stored(admin_api, namespace, lambda s: s.get("phase") == "Ready", "the command's Ready in the API")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=bound())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    (line,) = [x for x in err.splitlines() if x.startswith("vmcp-actors: final status ")]
    final = decode_status(json.loads(line.removeprefix("vmcp-actors: final status ")))
    in_api = stored(admin_api, namespace)
    assert in_api["phase"] == final.phase.value == "Pending", "a graceful stop is not a failure"
    assert in_api["message"] == final.message
    assert final.message.startswith("vMCP stopped at ")
    ready = next(c for c in in_api["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Stopped")
    assert [c["type"] for c in in_api["conditions"]] == [c.type for c in final.conditions]
    assert child_pids() == children
