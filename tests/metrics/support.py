"""What the metrics tests run a vMCP with: fast timings, a recording file sink, backend specs.

Kept here rather than imported from other test modules, so the metrics tests do not break
when those are reorganised.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import yaml

from tests.servers.fixtures import ECHO_SERVER, RunningServer
from tests.sinks import ControllableSink
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.model.codec import decode_status
from vmcp_actors.model.status import Phase, Status
from vmcp_actors.reporting.sinks import FileReporter

REPO = Path(__file__).resolve().parents[2]
FAST_RECONNECT = LifecyclePolicy(backoff=Backoff(initial=0.2, maximum=1.0, jitter=0.1))
FAST_HEALTH = FailureHandling(
    health_check_interval=0.5, health_check_timeout=0.4, unhealthy_threshold=2, status_reporting_interval=30.0
)


class FileSink(ControllableSink):
    """Writes through a real FileReporter (unless told to fail) and records each write."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.file = FileReporter(path)

    def report_status(self, status: Status | None) -> None:
        if status is not None and not self.failing:
            self.file.report_status(status)
        super().report_status(status)

    def on_disk(self) -> Status:
        return decode_status(json.loads(self.file.path.read_text()))

    def wait_phase(self, phase: Phase, timeout: float | None = None) -> Status:
        self.wait_for(lambda sink: bool(sink.writes) and sink.writes[-1].phase is phase, timeout)
        return self.writes[-1]


def runtime_threads() -> list[str]:
    prefixes = ("BackendActor", "HealthActor", "Supervisor", "_ReporterActor", "vmcp-")
    return [t.name for t in threading.enumerate() if t.name.startswith(prefixes)]


def stdio(command: tuple[str, tuple[str, ...]], name: str) -> BackendSpec:
    return BackendSpec(name=name, type="stdio", command=command[0], args=command[1])


def http(server: RunningServer, name: str = "remote") -> BackendSpec:
    return BackendSpec(name=name, type="streamable-http", url=server.url("/mcp"), timeout=5)


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("VMCP_NAME", None)
    env.pop("VMCP_NAMESPACE", None)
    return env


def cli_config(tmp_path: Path) -> Path:
    path = tmp_path / "vmcp.yaml"
    backend = {"name": "echo", "type": "stdio", "command": sys.executable, "args": [str(ECHO_SERVER)]}
    failure = {"healthCheckInterval": "1s", "healthCheckTimeout": "500ms"}
    path.write_text(yaml.safe_dump({"backends": [backend], "failureHandling": failure}))
    return path
