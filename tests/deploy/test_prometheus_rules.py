"""``deploy/prometheus/vmcp-alerts.yaml`` checked and unit-tested by a real ``promtool``.

``check rules`` is what Prometheus itself would refuse at load time; ``test rules`` pins when each
alert fires, so a change to an expression or a ``for:`` that silently stops an alert fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.cli_tools import PROMETHEUS_RULES, PROVISIONING_TIMEOUT_S, promtool_binary, run_checked
from testkit.project import load_envtest

# The first test may build promtool inside the fixture (see cli_tools.PROVISIONING_TIMEOUT_S).
pytestmark = pytest.mark.timeout(PROVISIONING_TIMEOUT_S)

POD = {"namespace": "mcp", "pod": "vmcp-actors-7d4b9-x2k4q"}


@pytest.fixture(scope="module")
def promtool(request: pytest.FixtureRequest) -> Path:
    return promtool_binary(request.config)


def test_promtool_is_the_pinned_release(promtool: Path) -> None:
    envtest = load_envtest()
    output = run_checked([str(promtool), "--version"])
    assert f"promtool, version {envtest.prometheus_release()} " in output.stdout + output.stderr


def test_rules_pass_promtool_check_with_every_lint(promtool: Path) -> None:
    completed = run_checked([str(promtool), "check", "rules", "--lint=all", "--lint-fatal", str(PROMETHEUS_RULES)])
    assert "SUCCESS: 2 rules found" in completed.stdout + completed.stderr


def backend_down_annotations(backend: str) -> dict[str, str]:
    return {
        "summary": f"vMCP backend {backend} has not been routable for 5 minutes",
        "description": (
            f"The vmcp-actors runtime {POD['namespace']}/{POD['pod']} has not routed requests to backend {backend} "
            "for at least 5 minutes. Clients of the Virtual MCP Server do not see that backend's tools. Check the "
            "backend and the VirtualMCPServer's status.discoveredBackends for the last error."
        ),
    }


def status_writes_annotations(rate: str) -> dict[str, str]:
    where = f"{POD['namespace']}/{POD['pod']}"
    return {
        "summary": f"vMCP status writes from {where} keep failing",
        "description": (
            f"The vmcp-actors runtime {where} has failed to write the VirtualMCPServer status for at least 10 minutes "
            f"({rate} failed writes/s over the last 5 minutes), so the status Kubernetes shows is stale. Check the "
            "runtime's log for the API server's answer: 403 means RBAC (deploy/rbac), 422 a schema mismatch with the "
            "installed CRD."
        ),
    }


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    selector = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return {"series": f"{name}{{{selector}}}", "values": values}


def alert(alertname: str, eval_time: str, expected: list[dict[str, Any]]) -> dict[str, Any]:
    return {"eval_time": eval_time, "alertname": alertname, "exp_alerts": expected}


def test_alerts_fire_exactly_when_intended(promtool: Path, tmp_path: Path) -> None:
    github = {**POD, "backend": "github"}
    files = {**POD, "backend": "files"}
    failed = {**POD, "outcome": "failed"}
    down = {
        "exp_labels": {"alertname": "VmcpBackendDown", "severity": "warning", **github},
        "exp_annotations": backend_down_annotations("github"),
    }
    writes_failing = {
        "exp_labels": {"alertname": "VmcpStatusWritesFailing", "severity": "warning", **failed},
        "exp_annotations": status_writes_annotations("16.67m"),
    }
    tests = {
        "rule_files": [str(PROMETHEUS_RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                # github goes unroutable at 2m and stays so; files flaps for 3 minutes and recovers.
                "interval": "1m",
                "input_series": [
                    series("vmcp_backend_routable", github, "1 1 0x20"),
                    series("vmcp_backend_routable", files, "1 0 0 0 1x20"),
                ],
                "alert_rule_test": [
                    alert("VmcpBackendDown", "6m", []),
                    alert("VmcpBackendDown", "7m", [down]),
                    alert("VmcpBackendDown", "20m", [down]),
                ],
            },
            {
                # One failed write a minute from 6m on; successful writes all along never alert.
                "interval": "1m",
                "input_series": [
                    series("vmcp_status_writes_total", failed, "0x5 1+1x30"),
                    series("vmcp_status_writes_total", {**POD, "outcome": "written"}, "0+10x36"),
                ],
                "alert_rule_test": [
                    alert("VmcpStatusWritesFailing", "5m", []),
                    alert("VmcpStatusWritesFailing", "15m", []),
                    alert("VmcpStatusWritesFailing", "16m", [writes_failing]),
                ],
            },
            {
                # A burst of failures that stops within the 10 minutes never pages anyone.
                "interval": "1m",
                "input_series": [series("vmcp_status_writes_total", failed, "0 1 2 3 3x30")],
                "alert_rule_test": [alert("VmcpStatusWritesFailing", m, []) for m in ("5m", "12m", "20m")],
            },
        ],
    }
    test_file = tmp_path / "vmcp-alerts.test.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    completed = run_checked([str(promtool), "test", "rules", str(test_file)])
    assert "SUCCESS" in completed.stdout + completed.stderr
