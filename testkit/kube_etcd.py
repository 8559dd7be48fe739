"""etcd for the test control plane: one member on free loopback ports, with a throwaway data dir.

Why apart: etcd is the control plane's storage and nothing else talks to it, but starting it
reliably has its own rules: ``--unsafe-no-fsync`` (a test cluster's data need not survive a power
cut, and fsync on a loaded machine makes every write slow), a retry on new ports when the free
ones were taken between choosing and binding them, and health read from ``/health`` rather than
from the process being alive.
"""

from __future__ import annotations

import functools
import http.client
import json
import urllib.request
from pathlib import Path

from testkit.plane_process import LOOPBACK, ChildProcess, ControlPlaneError, free_port, poll_until

#: How many times to pick new ports when etcd finds the chosen ones taken.
START_ATTEMPTS = 3


def start_etcd(binary: str, workdir: Path, *, timeout: float) -> tuple[ChildProcess, int]:
    """Start ``binary`` with its data under ``workdir``; once healthy, return it and its client port.

    A process that does not become healthy is stopped before the error propagates, so a failed
    or interrupted start leaves nothing running.
    """
    data_dir = workdir / "etcd-data"
    data_dir.mkdir(mode=0o700, exist_ok=True)
    last_error: ControlPlaneError | None = None
    for _ in range(START_ATTEMPTS):
        client_port, peer_port = free_port(), free_port()
        client_url = f"http://{LOOPBACK}:{client_port}"
        peer_url = f"http://{LOOPBACK}:{peer_port}"
        process = ChildProcess(
            "etcd",
            [
                binary,
                "--name=default",
                f"--data-dir={data_dir}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            workdir / "etcd.log",
        )
        try:
            poll_until(
                functools.partial(etcd_healthy, client_url),
                timeout=timeout,
                what="etcd to become healthy",
                on_wait=process.fail_if_exited,
            )
        except ControlPlaneError as error:
            process.stop()
            last_error = error
            if "address already in use" not in process.log_tail():
                raise
            continue
        except BaseException:
            process.stop()
            raise
        return process, client_port
    raise ControlPlaneError(f"etcd could not bind free ports: {last_error}")


def etcd_healthy(url: str) -> bool | None:
    """``True`` once etcd at ``url`` reports itself healthy; ``None`` (keep polling) until then."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            body = json.loads(response.read())
    except (OSError, ValueError, http.client.HTTPException):
        return None
    return True if isinstance(body, dict) and body.get("health") == "true" else None
