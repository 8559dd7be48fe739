"""vmcp-actors: keeps a Virtual MCP Server's view of its backends true, and reports it.

Only re-exports live here; see the modules for the why of each piece.  They are
imported lazily (PEP 562): ``import vmcp_actors`` costs almost nothing, and the MCP SDK
and the Kubernetes client are imported only when a name that needs them is first used,
so ``vmcp-actors validate`` and embedders that only read configs stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from vmcp_actors.actorkit.backoff import Backoff
    from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
    from vmcp_actors.backend.snapshot import BackendSnapshot
    from vmcp_actors.config.auth import AuthSpec
    from vmcp_actors.config.backend_spec import BackendSpec
    from vmcp_actors.config.failure_handling import FailureHandling
    from vmcp_actors.config.runtime_config import RuntimeConfig
    from vmcp_actors.errors import (
        ConfigError,
        KubernetesConfigError,
        KubernetesError,
        KubernetesNotFoundError,
        KubernetesPermissionError,
        ReporterClosedError,
        ReporterNotStartedError,
        ShutdownTimeoutError,
        ValidationError,
        VmcpError,
    )
    from vmcp_actors.leadership.service import Leadership
    from vmcp_actors.leadership.settings import LeaderElection
    from vmcp_actors.model.codec import decode_status, encode_status
    from vmcp_actors.model.status import (
        BackendHealth,
        CircuitState,
        Condition,
        ConditionStatus,
        DiscoveredBackend,
        Phase,
        Status,
    )
    from vmcp_actors.reporting.actor_reporter import ActorReporter
    from vmcp_actors.reporting.coalescing import ReporterStats
    from vmcp_actors.reporting.factory import new_reporter
    from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
    from vmcp_actors.reporting.protocol import Reporter, Shutdown
    from vmcp_actors.reporting.sinks import FileReporter, LoggingReporter, NoOpReporter, TeeReporter
    from vmcp_actors.runtime.runtime import Runtime, RuntimeStoppedError
    from vmcp_actors.runtime.supervision import RestartPolicy

#: Where each exported name is defined.
_EXPORTS: Final = {
    "vmcp_actors.actorkit.backoff": ("Backoff",),
    "vmcp_actors.backend.lifecycle_state": ("LifecyclePolicy",),
    "vmcp_actors.backend.snapshot": ("BackendSnapshot",),
    "vmcp_actors.config.auth": ("AuthSpec",),
    "vmcp_actors.config.backend_spec": ("BackendSpec",),
    "vmcp_actors.config.failure_handling": ("FailureHandling",),
    "vmcp_actors.config.runtime_config": ("RuntimeConfig",),
    "vmcp_actors.errors": (
        "ConfigError",
        "KubernetesConfigError",
        "KubernetesError",
        "KubernetesNotFoundError",
        "KubernetesPermissionError",
        "ReporterClosedError",
        "ReporterNotStartedError",
        "ShutdownTimeoutError",
        "ValidationError",
        "VmcpError",
    ),
    "vmcp_actors.leadership.service": ("Leadership",),
    "vmcp_actors.leadership.settings": ("LeaderElection",),
    "vmcp_actors.model.codec": (
        "decode_status",
        "encode_status",
    ),
    "vmcp_actors.model.status": (
        "BackendHealth",
        "CircuitState",
        "Condition",
        "ConditionStatus",
        "DiscoveredBackend",
        "Phase",
        "Status",
    ),
    "vmcp_actors.reporting.actor_reporter": ("ActorReporter",),
    "vmcp_actors.reporting.coalescing": ("ReporterStats",),
    "vmcp_actors.reporting.factory": ("new_reporter",),
    "vmcp_actors.reporting.kubernetes.reporter": ("K8sReporter",),
    "vmcp_actors.reporting.protocol": (
        "Reporter",
        "Shutdown",
    ),
    "vmcp_actors.reporting.sinks": (
        "FileReporter",
        "LoggingReporter",
        "NoOpReporter",
        "TeeReporter",
    ),
    "vmcp_actors.runtime.runtime": (
        "Runtime",
        "RuntimeStoppedError",
    ),
    "vmcp_actors.runtime.supervision": ("RestartPolicy",),
}
_MODULE_OF: Final = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "ActorReporter",
    "AuthSpec",
    "BackendHealth",
    "BackendSnapshot",
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
    "KubernetesConfigError",
    "KubernetesError",
    "KubernetesNotFoundError",
    "KubernetesPermissionError",
    "LeaderElection",
    "Leadership",
    "LifecyclePolicy",
    "LoggingReporter",
    "NoOpReporter",
    "Phase",
    "Reporter",
    "ReporterClosedError",
    "ReporterNotStartedError",
    "ReporterStats",
    "RestartPolicy",
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


def __getattr__(name: str) -> Any:
    """Import an exported name's module on first use, and keep the name here from then on."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The exports too, though they are not imported yet."""
    return sorted({*globals(), *__all__})
