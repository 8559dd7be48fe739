"""Configuration: backend specs, failure handling and the runtime config file; every error names its field path.

The stage below every other: it imports only the error types, attrs and PyYAML, never
the MCP SDK, pykka or the Kubernetes client, so ``vmcp-actors validate`` stays fast.
Modules, each with one job: ``fields`` (field paths in problems), ``durations`` (Go
durations), ``reading`` (mappings and YAML/JSON files, strictly), ``health_settings``
(the health monitor's settings and defaults), ``auth``, ``backend_values`` and
``backend_spec`` (one backend: what its fields may hold, and the spec),
``failure_handling`` (the ``failureHandling`` block), ``runtime_config``
(the whole file), ``files`` (reading a user's file safely: regular, bounded),
``yaml_loading`` (YAML without duplicate keys or alias bombs),
``redaction`` (URLs and text without secrets), ``secret_values`` (the secrets a config
holds, as a redactor) and ``log_redaction`` (a logging filter using it).
"""

from vmcp_actors.config.auth import AuthSpec, AuthType
from vmcp_actors.config.backend_spec import BackendSpec, redact
from vmcp_actors.config.backend_values import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_REMOTE_TIMEOUT,
    DEFAULT_STDIO_START_TIMEOUT,
    TransportType,
)
from vmcp_actors.config.durations import format_duration, parse_duration
from vmcp_actors.config.failure_handling import DEFAULT_STATUS_REPORTING_INTERVAL, FailureHandling, PartialFailureMode
from vmcp_actors.config.health_settings import (
    DEFAULT_BREAKER_FAILURE_THRESHOLD,
    DEFAULT_BREAKER_OPEN_TIMEOUT,
    DEFAULT_DEGRADED_THRESHOLD,
    DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_HEALTH_CHECK_TIMEOUT,
    DEFAULT_UNHEALTHY_THRESHOLD,
    CircuitBreakerConfig,
    HealthConfig,
)
from vmcp_actors.config.log_redaction import RedactionFilter, install_log_redaction
from vmcp_actors.config.redaction import redact_url
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.config.secret_values import SecretRedactor

__all__ = [
    "DEFAULT_BREAKER_FAILURE_THRESHOLD",
    "DEFAULT_BREAKER_OPEN_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_DEGRADED_THRESHOLD",
    "DEFAULT_HEALTH_CHECK_INTERVAL",
    "DEFAULT_HEALTH_CHECK_TIMEOUT",
    "DEFAULT_REMOTE_TIMEOUT",
    "DEFAULT_STATUS_REPORTING_INTERVAL",
    "DEFAULT_STDIO_START_TIMEOUT",
    "DEFAULT_UNHEALTHY_THRESHOLD",
    "AuthSpec",
    "AuthType",
    "BackendSpec",
    "CircuitBreakerConfig",
    "FailureHandling",
    "HealthConfig",
    "PartialFailureMode",
    "RedactionFilter",
    "RuntimeConfig",
    "SecretRedactor",
    "TransportType",
    "format_duration",
    "install_log_redaction",
    "parse_duration",
    "redact",
    "redact_url",
]
