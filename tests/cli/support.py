"""Helpers shared by the CLI tests (not a test module): the environment, a config, waiting on the status file."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from testkit.waits import bound
from tests.servers.fixtures import ECHO_SERVER

REPO = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    """The environment a ``vmcp-actors`` subprocess runs with: this tree first, no Kubernetes."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("VMCP_NAME", None)
    env.pop("VMCP_NAMESPACE", None)
    return env


def echo_config(tmp_path: Path) -> Path:
    """A config with one real stdio echo backend, probed every second."""
    path = tmp_path / "vmcp.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "backends": [
                    {"name": "echo", "type": "stdio", "command": sys.executable, "args": [str(ECHO_SERVER)]},
                ],
                "failureHandling": {"healthCheckInterval": "1s", "healthCheckTimeout": "500ms"},
            }
        )
    )
    return path


def wait_for_phase(path: Path, phase: str, alive: Callable[[], bool]) -> None:
    """Wait until the status file another process writes says ``phase``; fail if that process exits first."""
    deadline = time.monotonic() + bound()
    while time.monotonic() < deadline:
        assert alive(), "vmcp-actors exited early"
        if path.exists():
            try:
                if json.loads(path.read_text()).get("phase") == phase:
                    return
            except json.JSONDecodeError as exc:  # the file is written atomically: never torn
                raise AssertionError(f"torn status file: {exc}") from exc
        time.sleep(0.05)  # polling a file another process writes; there is nothing to wait on
    raise AssertionError(f"status file never showed phase {phase}")
