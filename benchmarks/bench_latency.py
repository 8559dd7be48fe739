"""Latency from a backend's health change to the new status being written by the sink.

Two kinds of change, each measured over many transitions with a real runtime, a real
stdio MCP server and a real :class:`~vmcp_actors.reporting.sinks.FileReporter`:

* **Session-revealed**: the server is SIGKILLed.  The session itself tells the backend
  actor, and the status changes without waiting for a probe.  Target: p99 < 100 ms.
* **Probe-revealed**: the server is SIGSTOPped (its session stays open but nothing
  answers) and later SIGCONTinued.  Only a probe can see it.  Target: within one probe
  interval (+ the probe timeout, for failures) + 100 ms.  toolhive's status lags up to
  its 30 s reporting interval on top of its probes.

Both run twice: with a FileReporter, and with a K8sReporter writing to a real
kube-apiserver (started for the run; ``--no-k8s`` skips it).  Each is measured with the
runtime's Prometheus metrics off and on, in the same run, alternating in blocks of
transitions; the target is p50 and p99 with metrics on within 5 % of off.

Run: ``python -m benchmarks.bench_latency [--transitions N] [--quick] [--no-k8s]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import percentile, print_table, write_json
from testkit.processes import child_pids
from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.model.status import Status
from vmcp_actors.reporting.protocol import OnceShutdown, Reporter, Shutdown
from vmcp_actors.reporting.sinks import FileReporter
from vmcp_actors.runtime.runtime import Runtime

ECHO_SERVER = Path(__file__).resolve().parent.parent / "tests" / "servers" / "echo_server.py"
PROBE_INTERVAL = 1.0
PROBE_TIMEOUT = 0.25


class TimedSink:
    """Wraps a sink and records when each status was written (after the write returned)."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.writes: list[tuple[float, Status]] = []
        self.changed = threading.Condition()

    def report_status(self, status: Status | None) -> None:
        if status is None:
            return
        self.inner.report_status(status)
        with self.changed:
            self.writes.append((time.perf_counter(), status))
            self.changed.notify_all()

    def start(self) -> Shutdown:
        inner = self.inner.start()
        return OnceShutdown(inner)

    def wait_after(self, since: float, predicate: Callable[[Status], bool], timeout: float = 30.0) -> float:
        """Seconds from ``since`` until a status matching ``predicate`` was written."""

        def found() -> float | None:
            for at, status in reversed(self.writes):
                if at < since:
                    return None
                if predicate(status):
                    return at - since
            return None

        with self.changed:
            if not self.changed.wait_for(lambda: found() is not None, timeout):
                raise RuntimeError("the expected status was never written")
            result = found()
            assert result is not None
            return result


def backend_status(name: str, *crd_statuses: str) -> Callable[[Status], bool]:
    def matches(status: Status) -> bool:
        backend = status.backend(name)
        return backend is not None and backend.status in crd_statuses

    return matches


def server_pid(runtime: Runtime, before: set[int]) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = child_pids() - before
        if len(pids) == 1 and runtime.snapshots()["echo"].running:
            return pids.pop()
        threading.Event().wait(0.01)
    raise RuntimeError("the echo server never came up")


def start_runtime(sink: TimedSink, metrics: bool = True) -> Runtime:
    spec = BackendSpec(name="echo", type="stdio", command=sys.executable, args=(str(ECHO_SERVER),))
    failure = FailureHandling(
        health_check_interval=PROBE_INTERVAL,
        health_check_timeout=PROBE_TIMEOUT,
        unhealthy_threshold=1,
        status_reporting_interval=300.0,
    )
    policy = LifecyclePolicy(backoff=Backoff(initial=0.05, maximum=1.0, jitter=0.1), probe_timeout=PROBE_TIMEOUT)
    return Runtime.start(
        RuntimeConfig(backends=[spec], failure_handling=failure),
        sink,
        lifecycle_policy=policy,
        metrics=None if metrics else False,
    )


def measure_session_revealed(sink: TimedSink, transitions: int, metrics: bool = True) -> list[float]:
    others = child_pids()  # e.g. the kube-apiserver and etcd of the K8s run
    runtime = start_runtime(sink, metrics)
    latencies: list[float] = []
    try:
        sink.wait_after(0.0, backend_status("echo", "ready"))
        for _ in range(transitions):
            pid = server_pid(runtime, others)
            started = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            # Not routable any more: "unavailable" (session gone) or "unknown" (already
            # reconnecting; the reporter keeps only the latest of two quick changes).
            latencies.append(sink.wait_after(started, backend_status("echo", "unavailable", "unknown")))
            sink.wait_after(started, lambda s: s.backend_count == 1)  # reconnected before the next kill
    finally:
        runtime.stop(15)
    return latencies


def measure_probe_revealed(sink: TimedSink, transitions: int, metrics: bool = True) -> tuple[list[float], list[float]]:
    others = child_pids()
    runtime = start_runtime(sink, metrics)
    failing: list[float] = []
    recovering: list[float] = []
    try:
        sink.wait_after(0.0, backend_status("echo", "ready"))
        pid = server_pid(runtime, others)
        for _ in range(transitions // 2):
            started = time.perf_counter()
            os.kill(pid, signal.SIGSTOP)
            failing.append(sink.wait_after(started, backend_status("echo", "unavailable")))
            started = time.perf_counter()
            os.kill(pid, signal.SIGCONT)
            # The first good probe after failures is "degraded" (recovering), then "ready".
            recovering.append(sink.wait_after(started, backend_status("echo", "degraded", "ready")))
    finally:
        runtime.stop(15)
    return failing, recovering


#: Metrics off and on alternate in blocks of this many transitions, so both see the same
#: drift in machine load over a run of several minutes.
BLOCK = 20


def measure_sink(label: str, make_sink: Callable[[str], Reporter], transitions: int) -> dict[str, Any]:
    killed_off: list[float] = []
    killed: list[float] = []
    failing_off: list[float] = []
    recovering_off: list[float] = []
    failing: list[float] = []
    recovering: list[float] = []
    for start in range(0, transitions, BLOCK):
        block = min(BLOCK, transitions - start)
        killed_off += measure_session_revealed(TimedSink(make_sink("session-off")), block, metrics=False)
        killed += measure_session_revealed(TimedSink(make_sink("session")), block, metrics=True)
        more_failing, more_recovering = measure_probe_revealed(TimedSink(make_sink("probe-off")), block, False)
        failing_off += more_failing
        recovering_off += more_recovering
        more_failing, more_recovering = measure_probe_revealed(TimedSink(make_sink("probe")), block, True)
        failing += more_failing
        recovering += more_recovering
    probe_target = (PROBE_INTERVAL + 0.1) * 1000
    rows = [
        _row("server killed -> not routable (session-revealed)", killed, 100.0),
        _row("server frozen -> unavailable (probe-revealed)", failing, probe_target + PROBE_TIMEOUT * 1000),
        _row("server thawed -> routable again (probe-revealed)", recovering, probe_target),
    ]
    print_table(
        f"health change -> status written by {label}, metrics on (probe interval {PROBE_INTERVAL:g} s, "
        f"timeout {PROBE_TIMEOUT:g} s)",
        ["transition", "n", "p50 ms", "p99 ms", "max ms", "target ms", "result"],
        rows,
    )
    overhead = [
        _overhead_row("session-revealed", killed_off, killed),
        _overhead_row("probe-revealed failure", failing_off, failing),
        _overhead_row("probe-revealed recovery", recovering_off, recovering),
    ]
    print_table(
        f"metrics off vs on, {label} (same run, alternating blocks of {BLOCK}; target: on within 5 % of off)",
        ["transition", "p50 off ms", "p50 on ms", "p50 on/off", "p99 off ms", "p99 on ms", "p99 on/off"],
        overhead,
    )
    return {
        "session_revealed_ms": [v * 1000 for v in killed],
        "probe_failure_ms": [v * 1000 for v in failing],
        "probe_recovery_ms": [v * 1000 for v in recovering],
        "metrics_off": {
            "session_revealed_ms": [v * 1000 for v in killed_off],
            "probe_failure_ms": [v * 1000 for v in failing_off],
            "probe_recovery_ms": [v * 1000 for v in recovering_off],
        },
        "probe_interval_s": PROBE_INTERVAL,
        "probe_timeout_s": PROBE_TIMEOUT,
    }


def _overhead_row(name: str, off: list[float], on: list[float]) -> list[object]:
    p50_off, p50_on = percentile(off, 0.5) * 1000, percentile(on, 0.5) * 1000
    p99_off, p99_on = percentile(off, 0.99) * 1000, percentile(on, 0.99) * 1000
    return [name, p50_off, p50_on, p50_on / p50_off, p99_off, p99_on, p99_on / p99_off]


def _row(name: str, values: list[float], target_ms: float) -> list[object]:
    p50 = percentile(values, 0.5) * 1000
    p99 = percentile(values, 0.99) * 1000
    return [name, len(values), p50, p99, max(values) * 1000, target_ms, "PASS" if p99 <= target_ms else "FAIL"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transitions", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20 transitions of each kind")
    parser.add_argument("--pin", action="store_true", help="accepted for symmetry; not used here")
    parser.add_argument("--no-k8s", action="store_true", help="skip the K8sReporter run (no kube-apiserver)")
    args, _unknown = parser.parse_known_args(argv)  # `python -m benchmarks` passes every flag to every benchmark
    transitions = 20 if args.quick else args.transitions
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        result["file_sink"] = measure_sink(
            "FileReporter", lambda key: FileReporter(Path(directory) / f"{key}.json"), transitions
        )
    if not args.no_k8s:
        from benchmarks.k8s_support import NAMESPACE, create_vmcp, running_control_plane
        from vmcp_actors.reporting.kubernetes.reporter import K8sReporter

        with running_control_plane() as plane:
            api = plane.admin_api_client()
            for key in ("session-off", "session", "probe-off", "probe"):
                create_vmcp(api, f"latency-{key}")
            result["k8s_sink"] = measure_sink(
                "K8sReporter (real kube-apiserver)",
                lambda key: K8sReporter(f"latency-{key}", NAMESPACE, api_client=api),
                transitions,
            )
    print("toolhive, for comparison: probe interval 30 s, then up to 30 s more until its next status report")
    write_json("latency", result)
    return result


if __name__ == "__main__":
    main()
