"""``K8sReporter`` without an API server: the mapping, validation, config loading, errors, ``new_reporter``.

Behaviour that needs a server (concurrency, RBAC, outages) is tested against a real one in
``tests/integration/kube/test_k8s_reporter.py``; here only what does not: a closed port is
a real network error, and kubeconfig and in-cluster files are real files.
"""

from __future__ import annotations

import copy
import logging
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml
from kubernetes import client
from kubernetes.config import incluster_config

from vmcp_actors import K8sReporter as ReexportedK8sReporter
from vmcp_actors import new_reporter as reexported_new_reporter
from vmcp_actors.actorkit.timers import ManualClock
from vmcp_actors.errors import KubernetesConfigError, KubernetesTransientError, ReporterClosedError, ValidationError
from vmcp_actors.model.status import Condition, ConditionStatus, DiscoveredBackend, Phase, Status
from vmcp_actors.reporting.factory import new_reporter
from vmcp_actors.reporting.kubernetes.client import load_api_client
from vmcp_actors.reporting.kubernetes.mapping import desired_status, missing_core_conditions
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.reporting.sinks import LoggingReporter

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def dead_api_client() -> client.ApiClient:
    return client.ApiClient(client.Configuration(host=f"https://127.0.0.1:{closed_port()}"))


def write_kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "secret-token"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def vmcp_object(status: dict[str, Any] | None = None, generation: int = 3) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "toolhive.stacklok.dev/v1beta1",
        "kind": "VirtualMCPServer",
        "metadata": {"name": "vmcp", "namespace": "ns", "generation": generation, "resourceVersion": "42"},
        "spec": {"groupRef": {"name": "g"}, "incomingAuth": {"type": "anonymous"}},
    }
    if status is not None:
        obj["status"] = status
    return obj


def cond(
    kind: str, status: ConditionStatus, at: datetime = T0, reason: str = "Because", message: str = ""
) -> Condition:
    return Condition(kind, status, reason, message, last_transition_time=at)


# --------------------------------------------------------------------------- the mapping


def test_desired_status_is_toolhives_mapping() -> None:
    stored = {
        "phase": "Pending",
        "message": "old",
        "url": "http://vmcp.ns.svc:4483",
        "authzConfigHash": "abc",
        "oidcConfigHash": "def",
        "telemetryConfigHash": "ghi",
        "someFutureField": {"kept": True},
        "backendCount": 9,
        "discoveredBackends": [{"name": "gone", "status": "ready"}],
        "conditions": [
            {"type": "GroupRefValidated", "status": "True", "reason": "Ok", "message": "", "lastTransitionTime": "x"},
            {"type": "Degraded", "status": "True", "reason": "Slow", "message": "", "lastTransitionTime": "x"},
            {
                "type": "Ready",
                "status": "True",
                "reason": "Old",
                "message": "old",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 1,
            },
        ],
    }
    status = Status(
        phase=Phase.DEGRADED,
        message="1/2 backends routable",
        conditions=(
            cond("Ready", ConditionStatus.TRUE, T0, "SomeBackendsUnhealthy", "1/2"),
            cond("BackendsDiscovered", ConditionStatus.TRUE, T0),
        ),
        discovered_backends=(DiscoveredBackend("a", status="ready"), DiscoveredBackend("b", status="unavailable")),
        backend_count=1,
        observed_generation=77,  # ignored: the object's generation is what counts
        timestamp=NOW,  # ignored: not a CRD field
    )
    obj = vmcp_object(stored)
    original = copy.deepcopy(obj)

    result = desired_status(obj, status, NOW)

    assert obj == original, "the input must not be mutated"
    assert result == {
        "phase": "Degraded",
        "message": "1/2 backends routable",
        "url": "http://vmcp.ns.svc:4483",
        "authzConfigHash": "abc",
        "oidcConfigHash": "def",
        "telemetryConfigHash": "ghi",
        "someFutureField": {"kept": True},
        "backendCount": 1,
        "observedGeneration": 3,
        "discoveredBackends": [{"name": "a", "status": "ready"}, {"name": "b", "status": "unavailable"}],
        "conditions": [
            {"type": "GroupRefValidated", "status": "True", "reason": "Ok", "message": "", "lastTransitionTime": "x"},
            {
                "type": "Ready",
                "status": "True",
                "reason": "SomeBackendsUnhealthy",
                "message": "1/2",
                "lastTransitionTime": "2026-01-01T00:00:00Z",  # no flip: kept
                "observedGeneration": 3,
            },
            {
                "type": "BackendsDiscovered",
                "status": "True",
                "reason": "Because",
                "message": "",
                "lastTransitionTime": "2026-03-01T12:00:00Z",
                "observedGeneration": 3,
            },
        ],
    }


def test_desired_status_drops_empty_values_like_omitempty() -> None:
    stored = {"phase": "Ready", "message": "m", "backendCount": 2, "discoveredBackends": [{"name": "a"}]}
    result = desired_status(vmcp_object(stored, generation=0), Status(phase=Phase.FAILED), NOW)
    assert result == {"phase": "Failed"}


def test_desired_status_of_an_object_without_status() -> None:
    status = Status(phase=Phase.READY, conditions=(cond("Ready", ConditionStatus.TRUE),))
    result = desired_status(vmcp_object(), status, NOW)
    assert result["conditions"][0]["lastTransitionTime"] == "2026-03-01T12:00:00Z"
    assert result["observedGeneration"] == 3


def test_an_unknown_phase_becomes_pending() -> None:
    status = Status(phase=Phase.READY)
    object.__setattr__(status, "phase", "Running")  # what a newer vmcp.Phase could carry
    assert desired_status(vmcp_object(), status, NOW)["phase"] == "Pending"


def test_a_flip_takes_the_runtime_transition_time_unless_it_predates_the_stored_one() -> None:
    stored_at = "2026-03-01T12:00:00Z"
    stored = {"conditions": [{"type": "Ready", "status": "False", "reason": "R", "lastTransitionTime": stored_at}]}
    later = cond("Ready", ConditionStatus.TRUE, T0 + timedelta(hours=1))
    flipped_later = Status(phase=Phase.READY, conditions=(later,))
    assert desired_status(vmcp_object(stored), flipped_later, NOW)["conditions"][0]["lastTransitionTime"] == (
        "2026-03-01T13:00:00Z"
    )
    # The runtime saw Ready become True before another writer set it False: the flip on
    # the object happens now, and the time must not move backwards.
    flipped_earlier = Status(
        phase=Phase.READY, conditions=(cond("Ready", ConditionStatus.TRUE, T0 - timedelta(hours=1)),)
    )
    assert desired_status(vmcp_object(stored), flipped_earlier, NOW)["conditions"][0]["lastTransitionTime"] == (
        "2026-03-02T08:30:00Z"
    )


def test_foreign_condition_types_in_the_status_are_upserted_but_never_removed() -> None:
    stored = {
        "conditions": [
            {"type": "AuthConfigured", "status": "True", "reason": "R", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ]
    }
    with_it = Status(phase=Phase.READY, conditions=(cond("AuthConfigured", ConditionStatus.FALSE, T0, "Broken"),))
    result = desired_status(vmcp_object(stored), with_it, NOW)
    assert result["conditions"][0]["reason"] == "Broken"
    without_it = desired_status(vmcp_object(stored), Status(phase=Phase.READY), NOW)
    assert without_it["conditions"] == stored["conditions"]


def test_missing_core_conditions() -> None:
    assert missing_core_conditions(Status(phase=Phase.READY)) == ["Ready", "BackendsDiscovered"]
    full = Status(
        phase=Phase.READY,
        conditions=(cond("Ready", ConditionStatus.TRUE), cond("BackendsDiscovered", ConditionStatus.TRUE)),
    )
    assert missing_core_conditions(full) == []


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("name", "namespace", "field", "text"),
    [
        ("", "ns", "name", "name: cannot be empty"),
        ("vmcp", "", "namespace", "namespace: cannot be empty"),
        ("Bad_Name", "ns", "name", "DNS-1123 subdomain"),
        ("a" * 254, "ns", "name", "at most 253"),
        ("vmcp", "has.dot", "namespace", "DNS-1123 label"),
        ("vmcp", "n" * 64, "namespace", "at most 63"),
    ],
)
def test_name_and_namespace_are_validated_like_toolhive(name: str, namespace: str, field: str, text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        K8sReporter(name, namespace, dead_api_client())
    assert caught.value.field == field
    assert text in str(caught.value)


def test_dotted_names_are_valid() -> None:
    assert K8sReporter("my.vmcp-1", "team-a", dead_api_client()).name == "my.vmcp-1"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"qps": float("nan")}, "qps"),
        ({"qps": 5.0, "burst": 0}, "burst"),
        ({"request_timeout": 0}, "request_timeout"),
        ({"conflict_retries": -1}, "conflict_retries"),
        ({"cache_ttl": -1.0}, "cache_ttl"),
    ],
)
def test_options_are_validated(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        K8sReporter("vmcp", "ns", dead_api_client(), **options)
    assert caught.value.field == field


# --------------------------------------------------------------------------- errors and limiter


def test_an_unreachable_api_server_is_a_transient_error() -> None:
    reporter = K8sReporter("vmcp", "ns", dead_api_client(), qps=0)
    with pytest.raises(KubernetesTransientError) as caught:
        reporter.report_status(Status(phase=Phase.READY))
    assert "cannot reach the Kubernetes API server to get VirtualMCPServer ns/vmcp" in str(caught.value)
    assert caught.value.status is None
    assert reporter.stats().requests == {"get": 1}
    reporter.report_status(None)  # a no-op, like toolhive's
    assert reporter.stats().requests == {"get": 1}


def test_every_request_waits_for_a_token() -> None:
    clock = ManualClock()
    reporter = K8sReporter("vmcp", "ns", dead_api_client(), qps=2.0, burst=1, clock=clock, sleep=clock.advance)
    for _ in range(3):
        with pytest.raises(KubernetesTransientError):
            reporter.report_status(Status(phase=Phase.READY))
    stats = reporter.stats()
    assert stats.requests == {"get": 3}
    assert stats.total_requests == 3
    assert stats.rate_limited_s == pytest.approx(1.0)  # the 2nd and 3rd request waited 0.5 s each


def test_shutdown_closes_an_owned_client_and_later_reports_are_refused(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "config", f"https://127.0.0.1:{closed_port()}")
    reporter = K8sReporter("vmcp", "ns", environ={"KUBECONFIG": str(kubeconfig)})
    shutdown = reporter.start()
    assert reporter.start() is shutdown
    shutdown(1.0)
    shutdown(1.0)  # idempotent
    with pytest.raises(ReporterClosedError):
        reporter.report_status(Status(phase=Phase.READY))


# --------------------------------------------------------------------------- config loading


def test_kubeconfig_from_the_given_environment(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "config", "https://cluster.example:6443")
    api = load_api_client({"KUBECONFIG": f"{tmp_path / 'missing'}:{kubeconfig}"})
    assert api.configuration.host == "https://cluster.example:6443"
    assert api.configuration.api_key["BearerToken"] == "Bearer secret-token"


def test_the_default_kubeconfig_is_under_home(tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    write_kubeconfig(tmp_path / ".kube" / "config", "https://home.example:6443")
    assert load_api_client({"HOME": str(tmp_path)}).configuration.host == "https://home.example:6443"


def test_a_broken_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "config"
    broken.write_text("clusters: [\n", encoding="utf-8")
    with pytest.raises(KubernetesConfigError, match=f"failed to load the kubeconfig {broken}"):
        load_api_client({"KUBECONFIG": str(broken)})


def test_in_a_pod_the_service_account_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "token"
    token.write_text("pod-token", encoding="utf-8")
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    api = load_api_client({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"})
    assert api.configuration.host == "https://10.0.0.1:443"
    assert api.configuration.ssl_ca_cert == str(ca)


def test_in_a_pod_without_a_service_account_token_the_error_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "no-token"))
    env = {"VMCP_NAME": "vmcp", "VMCP_NAMESPACE": "ns", "KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    with pytest.raises(KubernetesConfigError) as caught:
        new_reporter({**env, "KUBERNETES_SERVICE_PORT": "443"})
    message = str(caught.value)
    assert "VirtualMCPServer ns/vmcp" in message
    assert "in-cluster config" in message
    assert "Service token file does not exist" in message


# --------------------------------------------------------------------------- new_reporter


def test_reexports() -> None:
    assert ReexportedK8sReporter is K8sReporter
    assert reexported_new_reporter is new_reporter


@pytest.mark.parametrize(
    ("env", "warning"),
    [
        ({}, None),
        ({"VMCP_NAME": "", "VMCP_NAMESPACE": ""}, None),
        ({"VMCP_NAME": "vmcp"}, "VMCP_NAME is set but VMCP_NAMESPACE is not"),
        ({"VMCP_NAME": "vmcp", "VMCP_NAMESPACE": ""}, "VMCP_NAME is set but VMCP_NAMESPACE is not"),
        ({"VMCP_NAMESPACE": "ns"}, "VMCP_NAMESPACE is set but VMCP_NAME is not"),
    ],
)
def test_without_both_variables_the_status_is_only_logged(
    env: dict[str, str], warning: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="vmcp_actors.reporting.factory"):
        reporter = new_reporter(env)
    assert isinstance(reporter, LoggingReporter)
    if warning is None:
        assert caplog.records == []
    else:
        (record,) = caplog.records
        assert record.levelno == logging.WARNING
        assert warning in record.getMessage()


def test_with_both_variables_but_no_cluster_config_the_error_says_why(tmp_path: Path) -> None:
    env = {"VMCP_NAME": "vmcp", "VMCP_NAMESPACE": "default", "HOME": str(tmp_path)}
    with pytest.raises(KubernetesConfigError) as caught:
        new_reporter(env)
    message = str(caught.value)
    assert "VirtualMCPServer default/vmcp" in message
    assert "KUBERNETES_SERVICE_HOST is not set" in message
    assert str(tmp_path / ".kube" / "config") in message


def test_an_invalid_name_names_the_variable(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "config", "https://cluster.example:6443")
    with pytest.raises(ValidationError) as caught:
        new_reporter({"VMCP_NAME": "Not_Valid", "VMCP_NAMESPACE": "ns", "KUBECONFIG": str(kubeconfig)})
    assert caught.value.field == "VMCP_NAME"
    assert str(caught.value).startswith("VMCP_NAME: must be a DNS-1123 subdomain")


def test_k8s_options_reach_the_reporter(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "config", f"https://127.0.0.1:{closed_port()}")
    clock = ManualClock()
    reporter = new_reporter(
        {"VMCP_NAME": "vmcp", "VMCP_NAMESPACE": "ns", "KUBECONFIG": str(kubeconfig)},
        qps=1.0,
        burst=1,
        clock=clock,
        sleep=clock.advance,
    )
    assert isinstance(reporter, K8sReporter)
    for _ in range(2):
        with pytest.raises(KubernetesTransientError):
            reporter.report_status(Status(phase=Phase.READY))
    assert reporter.stats().rate_limited_s == pytest.approx(1.0)
    reporter.start()(1.0)


def test_stats_are_a_frozen_snapshot() -> None:
    reporter = K8sReporter("vmcp", "ns", dead_api_client())
    stats = reporter.stats()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.writes = 1  # type: ignore[misc]
    assert stats.total_requests == 0
    assert reporter.last_seen is None
