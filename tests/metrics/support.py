"""What the metrics tests run a vMCP with: fast timings, a recording file sink, backend specs.

Kept here rather than imported from other test modules, so the metrics tests do not break
when those are reorganised.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import yaml

from tests.servers.fixtures import ECHO_SERVER, RunningServer
from vmcp_actors.config.backend_spec import BackendSpec

REPO = Path(__file__).resolve().parents[2]


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
