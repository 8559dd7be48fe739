"""The control plane's child processes, and the one way the harness waits for anything.

Why apart: etcd and kube-apiserver must never outlive a test run, even one killed with SIGKILL
(a parent-death signal covers what :mod:`atexit` cannot), a crashed child must be reported with
its log instead of as a timeout, and every wait polls a condition rather than sleeping a fixed
time. Those rules hold for any process the harness starts, so they live apart from the control
plane's own wiring of certificates, ports and flags.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

#: Every process the harness starts listens here only.
LOOPBACK = "127.0.0.1"
#: Interval between readiness probes; the only sleeping this module does.
POLL_INTERVAL_S = 0.05
#: Grace period between SIGTERM and SIGKILL when stopping a process.
STOP_TIMEOUT_S = 10.0
#: How many log lines of a failed process to quote in an error.
LOG_TAIL_LINES = 30

_T = TypeVar("_T")

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL the child when the process that started it dies.

    Runs in the child between fork and exec. It covers what :mod:`atexit` cannot: the test
    runner being killed with SIGKILL. Linux only; elsewhere it does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_port() -> int:
    """Return a TCP port on loopback that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class ControlPlaneError(RuntimeError):
    """The control plane could not be started, or an operation on it timed out."""


def poll_until(
    check: Callable[[], _T | None], *, timeout: float, what: str, on_wait: Callable[[], None] | None = None
) -> _T:
    """Call ``check`` until it returns something other than ``None``; fail after ``timeout``.

    ``on_wait`` runs between attempts (for example to notice that a process died, so a crash is
    reported at once instead of as a timeout).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}")
        if on_wait is not None:
            on_wait()
        time.sleep(POLL_INTERVAL_S)


class ChildProcess:
    """One child process with its log file, stoppable exactly once and idempotently."""

    def __init__(self, name: str, argv: list[str], log_file: Path) -> None:
        self.name = name
        self.log_file = log_file
        self._log = log_file.open("ab")
        try:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        except OSError:
            self._log.close()
            raise

    def exited(self) -> bool:
        """Tell whether the process has terminated."""
        return self.popen.poll() is not None

    def log_tail(self) -> str:
        """Return the last lines of the process log, for error messages."""
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def fail_if_exited(self) -> None:
        """Raise with the log tail if the process died (a crash should not look like a timeout)."""
        code = self.popen.poll()
        if code is not None:
            raise ControlPlaneError(
                f"{self.name} exited with status {code}; last log lines ({self.log_file}):\n{self.log_tail()}"
            )

    def stop(self, *, graceful: bool = True, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL (SIGKILL at once if not ``graceful``).

        Always reaps the process and closes the log, so no zombie or file handle is left.
        """
        try:
            if self.popen.poll() is None:
                if graceful:
                    self.popen.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):  # then it is killed below
                        self.popen.wait(timeout=timeout)
                        return
                self.popen.kill()
                self.popen.wait(timeout=timeout)
        finally:
            self._log.close()
