"""vmcp-actors: keeps a Virtual MCP Server's view of its backends true, and reports it.

Only re-exports live here; see the modules for the why of each piece.
"""

from vmcp_actors.actors.reporter import ActorReporter, ReporterStats
from vmcp_actors.backoff import Backoff
from vmcp_actors.errors import (
    ReporterClosedError,
    ReporterNotStartedError,
    ShutdownTimeoutError,
    ValidationError,
    VmcpError,
)
from vmcp_actors.reporting.base import FileReporter, LoggingReporter, NoOpReporter, Reporter, Shutdown
from vmcp_actors.status import (
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

__all__ = [
    "ActorReporter",
    "BackendHealth",
    "Backoff",
    "CircuitState",
    "Condition",
    "ConditionStatus",
    "DiscoveredBackend",
    "FileReporter",
    "LoggingReporter",
    "NoOpReporter",
    "Phase",
    "Reporter",
    "ReporterClosedError",
    "ReporterNotStartedError",
    "ReporterStats",
    "Shutdown",
    "ShutdownTimeoutError",
    "Status",
    "ValidationError",
    "VmcpError",
    "decode_status",
    "encode_status",
]
