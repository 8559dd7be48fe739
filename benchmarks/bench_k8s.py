"""``ActorReporter(K8sReporter)`` against a real kube-apiserver, versus toolhive's GET+PUT per update.

A burst of 10,000 status updates over 50 distinct statuses goes through
``ActorReporter(K8sReporter)``, once with the default client-side limiter (5 QPS, burst
10, like client-go) and once with it off.  For each run: the API requests the reporter
made during the burst, the burst's wall time, and the time from the last
``report_status`` until a GET (polled in a tight loop from another client, starting at
the end of the burst) shows the last status.

The naive reporter does what toolhive's ``K8sReporter.ReportStatus`` does for every
update, synchronously: GET the object, apply the mapping, PUT ``/status``, retrying on
409 with ``retry.DefaultRetry``.  It is measured on a sample (300 updates by default,
without a limiter) and extrapolated to 10,000; the table says so.  toolhive builds its
client from ``rest.InClusterConfig()``, whose QPS of 0 means client-go's default limiter
(5 QPS, burst 10), so the naive figure with that limiter is also given (requests / 5).

Targets: at least 100x fewer requests than the naive reporter; the last status visible
within 250 ms of the burst's end with the default limiter and within 50 ms with it off.

Two more sections run on the same control plane: requests per status change next to an
operator-like writer, update path versus apply (:mod:`benchmarks.k8s_per_change`), and
leader failover times, graceful and SIGKILL (:mod:`benchmarks.bench_failover`).

The benchmark starts its own control plane (``testkit/control_plane.py``, binaries from
``scripts/envtest.py ensure``) and installs toolhive's v0.63.0 CRD (``deploy/standalone/``),
so the runtime writes ``status.runtime``.

Run: ``python -m benchmarks.bench_k8s [--pin] [--quick]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client

from benchmarks import bench_failover
from benchmarks.common import pin_to_one_cpu, print_table, write_json
from benchmarks.k8s_per_change import per_change_section
from benchmarks.k8s_support import (
    NAMESPACE,
    create_vmcp,
    get_vmcp,
    make_statuses,
    running_control_plane,
    wait_visible,
)
from testkit.control_plane import ControlPlane
from vmcp_actors.model.status import Status
from vmcp_actors.reporting.actor_reporter import ActorReporter
from vmcp_actors.reporting.kubernetes.mapping import GROUP, PLURAL, VERSION, desired_status
from vmcp_actors.reporting.kubernetes.ratelimit import DEFAULT_BURST, DEFAULT_QPS
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter

UPDATES = 10_000
DISTINCT = 50
TARGET_REQUEST_RATIO = 100.0
TARGET_VISIBLE_MS = {"default limiter (5 QPS / burst 10)": 250.0, "limiter off": 50.0}


# --------------------------------------------------------------------------- the actor reporter


def measure_burst(plane: ControlPlane, name: str, qps: float, tag: str, updates: int) -> dict[str, Any]:
    """One burst through ``ActorReporter(K8sReporter)`` on a fresh object."""
    admin = plane.admin_api_client()
    poller = plane.admin_api_client()
    create_vmcp(admin, name)
    sink = K8sReporter(name, NAMESPACE, admin, qps=qps)
    reporter = ActorReporter(sink)
    shutdown = reporter.start()
    try:
        # Warm-up: the first GET (the object is not yet known) and a first write, then let
        # the bucket refill, as it does between the runtime's periodic reports.
        warm = make_statuses(1, f"{tag} warm-up")[0]
        reporter.report_status(warm)
        wait_visible(poller, name, warm.message)
        if qps > 0:
            time.sleep(DEFAULT_BURST / qps)
        before = sink.stats()

        statuses = make_statuses(DISTINCT, tag)
        sequence = [statuses[i % DISTINCT] for i in range(updates)]
        last = sequence[-1]
        report = reporter.report_status
        started = time.perf_counter()
        for status in sequence:
            report(status)
        burst_end = time.perf_counter()
        visible_at, polls = wait_visible(poller, name, last.message)
        reporter.wait_idle(30)
        after = sink.stats()
        stats = reporter.stats()
    finally:
        shutdown(30)
    stored = get_vmcp(admin, name)["status"]
    final = stored.get("runtime") or stored
    requests = {verb: after.requests.get(verb, 0) - before.requests.get(verb, 0) for verb in after.requests}
    return {
        "updates": updates,
        "qps": qps,
        "burst_ms": (burst_end - started) * 1000,
        "requests": sum(requests.values()),
        "requests_by_verb": requests,
        "writes": after.writes - before.writes,
        "conflicts": after.conflicts - before.conflicts,
        "rate_limited_ms": (after.rate_limited_s - before.rate_limited_s) * 1000,
        "visible_after_ms": (visible_at - burst_end) * 1000,
        "wall_ms": (visible_at - started) * 1000,
        "visibility_polls": polls,
        "last_is_last_reported": final.get("message") == last.message and not stats.pending,
        "actor": {"coalesced": stats.coalesced, "written": stats.written, "failed_attempts": stats.failed_attempts},
    }


# --------------------------------------------------------------------------- the naive reporter


class NaiveReporter:
    """toolhive's ``K8sReporter.ReportStatus``: GET, map, PUT per update; 409 → retry (DefaultRetry)."""

    def __init__(self, api: client.ApiClient, name: str) -> None:
        self._objects = client.CustomObjectsApi(api)
        self._name = name
        self._rng = random.Random(1)
        self.requests = 0

    def report_status(self, status: Status) -> None:
        for attempt in range(5):  # retry.DefaultRetry: 5 steps, 10 ms, jitter 0.1
            obj = cast(
                dict[str, Any],
                self._objects.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, self._name),
            )
            self.requests += 1
            obj["status"] = desired_status(obj, status, datetime.now(UTC))
            try:
                self._objects.replace_namespaced_custom_object_status(
                    GROUP, VERSION, NAMESPACE, PLURAL, self._name, obj
                )
                self.requests += 1
                return
            except client.ApiException as error:
                self.requests += 1
                if error.status != 409 or attempt == 4:
                    raise
                time.sleep(0.01 * (1 + 0.1 * self._rng.random()))


def measure_naive(plane: ControlPlane, name: str, sample: int) -> dict[str, Any]:
    admin = plane.admin_api_client()
    create_vmcp(admin, name)
    naive = NaiveReporter(admin, name)
    statuses = make_statuses(DISTINCT, "naive")
    naive.report_status(statuses[-1])  # warm-up: connection and first write
    naive.requests = 0
    started = time.perf_counter()
    for i in range(sample):
        naive.report_status(statuses[i % DISTINCT])
    elapsed = time.perf_counter() - started
    per_update_requests = naive.requests / sample
    return {
        "sample_updates": sample,
        "sample_requests": naive.requests,
        "sample_s": elapsed,
        "ms_per_update": elapsed / sample * 1000,
        "extrapolated_requests": per_update_requests * UPDATES,
        "extrapolated_wall_s": elapsed / sample * UPDATES,
        "extrapolated_wall_s_with_client_go_limiter": max(
            elapsed / sample * UPDATES, per_update_requests * UPDATES / DEFAULT_QPS
        ),
    }


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pin", action="store_true", help="pin this process to one CPU (the API server is not pinned)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and a smaller naive sample")
    args, _unknown = parser.parse_known_args(argv)  # `python -m benchmarks` passes every flag to every benchmark
    pinned = pin_to_one_cpu() if args.pin else False
    reps = 2 if args.quick else 5
    sample = 100 if args.quick else 300

    with running_control_plane() as plane:
        failover = bench_failover.failover_section(plane, 2 if args.quick else bench_failover.RUNS)
        per_change = per_change_section(plane, reps)
        naive = measure_naive(plane, "vmcp-naive", sample)
        scenarios = {"default limiter (5 QPS / burst 10)": DEFAULT_QPS, "limiter off": 0.0}
        runs: dict[str, list[dict[str, Any]]] = {}
        for label, qps in scenarios.items():
            key = "default" if qps else "off"
            measure_burst(plane, f"vmcp-{key}-warm", qps, f"{key} warm", 1_000)  # thread and client start-up
            runs[label] = [
                measure_burst(plane, f"vmcp-{key}-{rep}", qps, f"{key} run {rep}", UPDATES) for rep in range(reps)
            ]

    rows = []
    summary: dict[str, Any] = {}
    for label, results in runs.items():
        for index, run in enumerate(results):
            ratio = naive["extrapolated_requests"] / max(run["requests"], 1)
            ok = (
                ratio >= TARGET_REQUEST_RATIO
                and run["visible_after_ms"] <= TARGET_VISIBLE_MS[label]
                and run["last_is_last_reported"]
            )
            rows.append(
                [
                    label,
                    index + 1,
                    run["requests"],
                    f"{ratio:,.0f}x",
                    run["burst_ms"],
                    run["wall_ms"],
                    run["visible_after_ms"],
                    run["rate_limited_ms"],
                    run["last_is_last_reported"],
                    "PASS" if ok else "FAIL",
                ]
            )
        summary[label] = {
            "median_requests": statistics.median(r["requests"] for r in results),
            "median_visible_after_ms": statistics.median(r["visible_after_ms"] for r in results),
            "max_visible_after_ms": max(r["visible_after_ms"] for r in results),
            "median_wall_ms": statistics.median(r["wall_ms"] for r in results),
            "target_visible_ms": TARGET_VISIBLE_MS[label],
        }
    rows.append(
        [
            f"naive GET+PUT per update (measured {naive['sample_updates']}, extrapolated)",
            "-",
            round(naive["extrapolated_requests"]),
            "1x",
            naive["extrapolated_wall_s"] * 1000,
            naive["extrapolated_wall_s"] * 1000,
            "-",
            "-",
            "-",
            "-",
        ]
    )
    print_table(
        f"{UPDATES:,} updates over {DISTINCT} statuses into a real kube-apiserver (pinned={pinned})",
        [
            "reporter",
            "run",
            "API requests",
            "fewer than naive",
            "burst ms",
            "wall ms (to visible)",
            "visible after ms",
            "limiter waits ms",
            "last is last",
            "targets",
        ],
        rows,
    )
    print(
        f"naive: measured {naive['sample_updates']} updates in {naive['sample_s']:.2f} s "
        f"({naive['ms_per_update']:.2f} ms and {naive['sample_requests'] / naive['sample_updates']:.2f} requests per "
        f"update) -> {UPDATES:,} updates: {naive['extrapolated_requests']:,.0f} requests, "
        f"{naive['extrapolated_wall_s']:.0f} s without a limiter, "
        f"{naive['extrapolated_wall_s_with_client_go_limiter']:,.0f} s with client-go's default 5 QPS (extrapolated)"
    )
    for label, values in summary.items():
        print(
            f"{label}: median {values['median_requests']} requests, last status visible after median "
            f"{values['median_visible_after_ms']:.1f} ms (max {values['max_visible_after_ms']:.1f} ms, "
            f"target {values['target_visible_ms']:.0f} ms)"
        )
    result = {
        "updates": UPDATES,
        "distinct": DISTINCT,
        "pinned": pinned,
        "naive": naive,
        "runs": runs,
        "summary": summary,
        "requests_per_change": per_change,
        "failover": failover,
    }
    write_json("k8s", result)
    return result


if __name__ == "__main__":
    main()
