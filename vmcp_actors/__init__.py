"""vmcp-actors: keeps a Virtual MCP Server's view of its backends true, and reports it.

Only re-exports live here; see the modules for the why of each piece.
"""

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.config.spec import AuthSpec, BackendSpec, FailureHandling, RuntimeConfig
from vmcp_actors.errors import (
    ConfigError,
    KubernetesError,
    KubernetesNotFoundError,
    KubernetesPermissionError,
    ReporterClosedError,
    ReporterNotStartedError,
    ShutdownTimeoutError,
    ValidationError,
    VmcpError,
)
from vmcp_actors.model.status import (
    BackendHealth,
    CircuitState,
    Condition,
    ConditionStatus,
    DiscoveredBackend,
    Phase,
    Status,
    decode_status,
    encode_status,
)
from vmcp_actors.reporting.actor_reporter import ActorReporter
from vmcp_actors.reporting.coalescing import ReporterStats
from vmcp_actors.reporting.factory import new_reporter
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.reporting.protocol import Reporter, Shutdown
from vmcp_actors.reporting.sinks import FileReporter, LoggingReporter, NoOpReporter, TeeReporter
from vmcp_actors.runtime.runtime import Runtime, RuntimeStoppedError

__all__ = [
    "ActorReporter",
    "AuthSpec",
    "BackendHealth",
    "BackendSpec",
    "Backoff",
    "CircuitState",
    "Condition",
    "ConditionStatus",
    "ConfigError",
    "DiscoveredBackend",
    "FailureHandling",
    "FileReporter",
    "K8sReporter",
    "KubernetesError",
    "KubernetesNotFoundError",
    "KubernetesPermissionError",
    "LoggingReporter",
    "NoOpReporter",
    "Phase",
    "Reporter",
    "ReporterClosedError",
    "ReporterNotStartedError",
    "ReporterStats",
    "Runtime",
    "RuntimeConfig",
    "RuntimeStoppedError",
    "Shutdown",
    "ShutdownTimeoutError",
    "Status",
    "TeeReporter",
    "ValidationError",
    "VmcpError",
    "decode_status",
    "encode_status",
    "new_reporter",
]
