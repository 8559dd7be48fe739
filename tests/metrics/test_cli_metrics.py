"""``vmcp-actors run --metrics-port``: a real subprocess, scraped over HTTP, stopped by a signal."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from testkit.waits import bound
from tests.metrics.scrape import Samples, eventually, scrape_url
from tests.metrics.support import cli_config, cli_env

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

URL_PREFIX = "vmcp-actors: metrics at "


def _read_lines(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line.rstrip("\n"))


def test_run_serves_metrics_on_loopback_until_stopped(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "vmcp_actors", "run", "--config", str(cli_config(tmp_path)), "--metrics-port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(process.stderr, lines), name="cli-stderr")
    reader.start()
    try:
        url = ""
        while not url:
            line = lines.get(timeout=bound(30))
            if line.startswith(URL_PREFIX):
                url = line.removeprefix(URL_PREFIX)
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/metrics")

        def scrape() -> Samples:
            assert process.poll() is None, "vmcp-actors exited early"
            return scrape_url(url)

        ready = eventually(
            scrape,
            lambda s: (
                s.get("vmcp_phase", phase="Ready") == 1.0
                and s.get("vmcp_backend_routable", backend="echo") == 1.0
                and s.value("vmcp_status_writes_total", sink="log", outcome="written") >= 1
                # Ready comes with the connect; the first probe one interval later (later still under load).
                and s.value("vmcp_backend_probes_total", backend="echo", outcome="success") >= 1
            ),
            "the bundled backend routable, probed and the status written",
        )
        assert ready.get("process_resident_memory_bytes") is not None  # the process's own metrics too
        assert ready.value("vmcp_backend_probes_total", backend="echo", outcome="success") >= 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=bound(30)) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(10)


def test_a_metrics_port_in_use_is_a_config_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "vmcp_actors",
                "run",
                "--config",
                str(cli_config(tmp_path)),
                "--metrics-port",
                str(port),
            ],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=bound(60),
        )
    assert result.returncode == 2
    assert f"metrics_port: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
