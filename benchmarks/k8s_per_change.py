"""Requests per status change, next to an operator: the update path versus server-side apply.

100 distinct statuses are written one by one (50 ms apart) by ``K8sReporter`` with the
update path (GET+PUT with resourceVersion, what this project did before) and with
server-side apply (the default now), each alone and next to an operator-like writer
doing GET+PUT of the whole status every 100 ms, as toolhive's operator does.  Target:
exactly 1.0 request per change with apply, with or without the operator.  Part of
``bench_k8s``.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from typing import Any

from kubernetes import client

from benchmarks.common import print_table
from benchmarks.k8s_support import NAMESPACE, create_vmcp, get_vmcp, make_statuses
from testkit.control_plane import ControlPlane
from vmcp_actors.reporting.kubernetes.mapping import GROUP, PLURAL, VERSION
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter

PER_CHANGE_STATUSES = 100
OPERATOR_PERIOD_S = 0.1
REPORT_PERIOD_S = 0.05


class OperatorWriter:
    """toolhive's operator, as far as this object is concerned: GET + PUT of the whole status every 100 ms."""

    def __init__(self, api: client.ApiClient, name: str) -> None:
        self._objects = client.CustomObjectsApi(api)
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"operator-{name}")
        self.writes = 0
        self.conflicts = 0

    def __enter__(self) -> OperatorWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        seq = 0
        while not self._stop.wait(OPERATOR_PERIOD_S):
            obj = get_vmcp(self._objects.api_client, self._name)
            seq += 1
            obj["status"] = {**(obj.get("status") or {}), "url": f"http://vmcp-{seq}.example"}
            try:
                self._objects.replace_namespaced_custom_object_status(
                    GROUP, VERSION, NAMESPACE, PLURAL, self._name, obj, field_manager="toolhive-operator"
                )
                self.writes += 1
            except client.ApiException as error:
                if error.status != 409:
                    raise
                self.conflicts += 1


def measure_per_change(plane: ControlPlane, name: str, method: str, with_operator: bool) -> dict[str, Any]:
    """Write ``PER_CHANGE_STATUSES`` distinct statuses one by one; count the reporter's requests per change."""
    admin = plane.admin_api_client()
    create_vmcp(admin, name)
    sink = K8sReporter(name, NAMESPACE, plane.admin_api_client(), qps=0, method=method)
    statuses = make_statuses(PER_CHANGE_STATUSES + 1, f"{name}")
    sink.report_status(statuses[0])  # the one read at start, and the layout decided
    before = sink.stats()
    operator = OperatorWriter(plane.admin_api_client(), name)
    with operator if with_operator else contextlib.nullcontext():
        for status in statuses[1:]:
            sink.report_status(status)
            time.sleep(REPORT_PERIOD_S)  # pacing: each status is a change of its own
    after = sink.stats()
    requests = after.total_requests - before.total_requests
    writes = after.writes - before.writes
    return {
        "method": method,
        "with_operator": with_operator,
        "changes": PER_CHANGE_STATUSES,
        "writes": writes,
        "requests": requests,
        "requests_by_verb": {v: after.requests.get(v, 0) - before.requests.get(v, 0) for v in after.requests},
        "requests_per_change": requests / PER_CHANGE_STATUSES,
        "conflicts": after.conflicts - before.conflicts,
        "operator_writes": operator.writes,
        "operator_conflicts": operator.conflicts,
        "last_is_last_reported": get_vmcp(admin, name)["status"].get("runtime", {}).get("message")
        == statuses[-1].message,
    }


def per_change_section(plane: ControlPlane, reps: int) -> dict[str, Any]:
    """Requests per status change: update path vs apply, without and with a concurrent operator."""
    results: dict[str, list[dict[str, Any]]] = {}
    for method in ("update", "apply"):
        for with_operator in (False, True):
            label = f"{method}, {'with' if with_operator else 'no'} operator writer"
            results[label] = [
                measure_per_change(plane, f"pc-{method}-{int(with_operator)}-{rep}", method, with_operator)
                for rep in range(reps)
            ]
    rows = []
    summary: dict[str, Any] = {}
    for label, runs in results.items():
        per_change = statistics.median(r["requests_per_change"] for r in runs)
        conflicts = statistics.median(r["conflicts"] / r["changes"] for r in runs)
        operator_conflicts = statistics.median(r["operator_conflicts"] for r in runs)
        apply_ok = not label.startswith("apply") or all(r["requests_per_change"] == 1.0 for r in runs)
        correct = all(r["last_is_last_reported"] and r["writes"] == r["changes"] for r in runs)
        summary[label] = {
            "median_requests_per_change": per_change,
            "median_409_per_change": conflicts,
            "median_operator_409s": operator_conflicts,
        }
        rows.append(
            [
                label,
                len(runs),
                per_change,
                conflicts,
                operator_conflicts,
                correct,
                "PASS" if apply_ok and correct else "FAIL",
            ]
        )
    print_table(
        f"Requests per status change, {PER_CHANGE_STATUSES} changes {REPORT_PERIOD_S * 1000:.0f} ms apart, "
        f"operator GET+PUT every {OPERATOR_PERIOD_S * 1000:.0f} ms (medians of {reps})",
        ["reporter", "runs", "requests/change", "409s/change", "operator 409s", "all written", "target"],
        rows,
    )
    return {"runs": results, "summary": summary}
