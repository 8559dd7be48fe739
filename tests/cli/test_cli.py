"""The ``vmcp-actors`` command as a user runs it: a real subprocess, real signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.waits import bound
from tests.cli.support import REPO, cli_env, echo_config, wait_for_phase
from vmcp_actors.cli import main
from vmcp_actors.model.codec import decode_status
from vmcp_actors.model.status import Phase

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]


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
            str(echo_config(tmp_path)),
            "--status-file",
            str(status_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        wait_for_phase(status_file, "Ready", lambda: process.poll() is None)
        process.send_signal(signum)
        out, err = process.communicate(timeout=bound())
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
        env=cli_env(),
        timeout=bound(),
    )
    assert result.returncode == 2
    assert "backends[0].command" in result.stderr
    assert "failureHandling.healthCheckInterval" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_prints_ok_or_every_error(tmp_path: Path, capsys: object) -> None:
    good = echo_config(tmp_path)
    assert main(["validate", str(good)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"backends": [{"name": "a", "type": "sse"}, {"name": "a", "command": "x"}]}))
    assert main(["validate", str(bad)]) == 2


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
        [sys.executable, "-c", probe], capture_output=True, text=True, env=cli_env(), timeout=bound(), check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 -"
