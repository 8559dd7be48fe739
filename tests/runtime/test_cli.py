"""The ``vmcp-actors`` command as a user runs it: a real subprocess, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.servers.fixtures import ECHO_SERVER
from vmcp_actors.backend.lifecycle_state import Health, State
from vmcp_actors.backend.snapshot import BackendSnapshot
from vmcp_actors.cli import main, render_table
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.model.codec import decode_status
from vmcp_actors.model.status import DiscoveredBackend, Phase, Status

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("VMCP_NAME", None)
    env.pop("VMCP_NAMESPACE", None)
    return env


def _config(tmp_path: Path) -> Path:
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


def _wait_for_phase(path: Path, phase: str, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "vmcp-actors exited early"
        if path.exists():
            try:
                if json.loads(path.read_text()).get("phase") == phase:
                    return
            except json.JSONDecodeError as exc:  # the file is written atomically: never torn
                raise AssertionError(f"torn status file: {exc}") from exc
        time.sleep(0.05)  # polling a file another process writes; there is nothing to wait on
    raise AssertionError(f"status file never showed phase {phase}")


def _run_then_signal(tmp_path: Path, signum: int) -> tuple[int, str, str, Path]:
    """Run ``vmcp-actors run`` until its status file says Ready, then send ``signum``."""
    status_file = tmp_path / "status.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vmcp_actors",
            "run",
            "--config",
            str(_config(tmp_path)),
            "--status-file",
            str(status_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        _wait_for_phase(status_file, "Ready", process)
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, out, err, status_file


def test_sigterm_stops_gracefully_and_the_file_holds_the_final_status(tmp_path: Path) -> None:
    code, out, err, status_file = _run_then_signal(tmp_path, signal.SIGTERM)
    assert code == 0, err
    assert out.splitlines()[-1] == "phase=Failed echo=stopped"  # the last line is the final view
    (final_line,) = [line for line in err.splitlines() if line.startswith("vmcp-actors: final status ")]
    final = decode_status(json.loads(final_line.removeprefix("vmcp-actors: final status ")))
    on_disk = decode_status(json.loads(status_file.read_text()))
    assert on_disk.same_content(final)
    assert on_disk.phase is Phase.FAILED  # the only backend was stopped: nothing is routable


def test_sigint_works_the_same(tmp_path: Path) -> None:
    code, _, err, status_file = _run_then_signal(tmp_path, signal.SIGINT)
    assert code == 0, err
    assert json.loads(status_file.read_text())["phase"] == "Failed"


def test_a_bad_config_exits_non_zero_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("backends:\n  - name: x\n    type: stdio\nfailureHandling:\n  healthCheckInterval: soon\n")
    result = subprocess.run(
        [sys.executable, "-m", "vmcp_actors", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert "backends[0].command" in result.stderr
    assert "failureHandling.healthCheckInterval" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_prints_ok_or_every_error(tmp_path: Path, capsys: object) -> None:
    good = _config(tmp_path)
    assert main(["validate", str(good)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"backends": [{"name": "a", "type": "sse"}, {"name": "a", "command": "x"}]}))
    assert main(["validate", str(bad)]) == 2


def test_render_table_shows_every_column_and_the_phase() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    spec = BackendSpec(name="github", type="streamable-http", url="http://127.0.0.1:1/mcp")
    snapshot = BackendSnapshot(
        name="github",
        transport="streamable-http",
        url=spec.url or "",
        state=State.FAILED,
        health=Health.UNHEALTHY,
        consecutive_failures=2,
        last_attempt=now,
        next_retry_after=now + timedelta(seconds=42),
        tool_names=(),
        last_error="connection failed: ConnectError: All connection attempts failed",
        last_error_kind="transient",
        http_status=None,
        last_probe_latency=None,
        has_outgoing_auth=False,
        attempt=2,
        mcp_revision="",
        service_data=spec.redacted(),
    )
    status = Status(
        phase=Phase.DEGRADED,
        message="1/2 backends routable (0 degraded, 1 unhealthy, 0 unknown)",
        discovered_backends=[DiscoveredBackend("github", status="unavailable")],
        backend_count=1,
    )
    text = render_table(status, {"github": snapshot}, now)
    header, row = text.splitlines()[:2]
    for column in ("BACKEND", "STATE", "HEALTH", "TOOLS", "FAILURES", "NEXT RETRY"):
        assert column in header
    assert row.split()[:7] == ["github", "streamable-http", "failed", "unavailable", "0", "2", "in"]
    assert "in 42s" in row
    assert "PHASE: Degraded" in text


def test_import_and_validate_load_neither_the_sdk_nor_the_kubernetes_client() -> None:
    """``import vmcp_actors`` and ``vmcp-actors validate`` stay fast: the heavy clients load only for ``run``."""
    example = REPO / "vmcp_actors" / "examples" / "example.yaml"
    probe = (
        "import sys, vmcp_actors\n"
        "from vmcp_actors.cli import main\n"
        f"code = main(['validate', {str(example)!r}])\n"
        "assert vmcp_actors.Phase.READY.value == 'Ready'\n"  # an export resolves on first use
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'mcp', 'kubernetes', 'pykka', 'httpx'})\n"
        "print(code, ','.join(heavy) or '-')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=_env(), timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 -"
