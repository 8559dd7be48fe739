"""What one health probe came back with, in the only terms the health rules distinguish.

A probe (an MCP ``ping`` on the backend's session) either succeeds, with a latency that
decides "slow", or fails with a :class:`ProbeFailureKind`.  Failures are reported by
toolhive's sanitized :class:`ErrorCategory`, followed by the failure's message, which
the backend stage builds free of credentials (redacted URLs, scrubbed secret values)
and which is cut to one line of :data:`MAX_FAILURE_MESSAGE` characters here.
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

from vmcp_actors.config.fields import check_seconds as check_duration
from vmcp_actors.errors import ValidationError

__all__ = [
    "MAX_FAILURE_MESSAGE",
    "ErrorCategory",
    "ProbeFailure",
    "ProbeFailureKind",
    "ProbeResult",
    "short_message",
]

#: Probe failure messages are shown in logs and the health API; cap them so a backend
#: cannot flood either with a megabyte of HTML error page.
MAX_FAILURE_MESSAGE: Final = 200


class ProbeFailureKind(enum.StrEnum):
    """Why a probe failed, in the only terms the health rules distinguish."""

    AUTH = "auth"  # HTTP 401/403 or an MCP auth error
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    OTHER = "other"


class ErrorCategory(enum.StrEnum):
    """toolhive's sanitized error categories (``sanitizeError``) and their status texts.

    A status message starts with the category; the (credential-free) reason follows it.
    """

    AUTHENTICATION_FAILED = "authentication_failed"
    TIMEOUT = "timeout"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    CONNECTION_FAILED = "connection_failed"
    HEALTH_CHECK_FAILED = "health_check_failed"

    @property
    def text(self) -> str:
        """The wording ``categorizeErrorForMessage`` uses in ``discoveredBackends[].message``."""
        return _CATEGORY_TEXT[self]


_CATEGORY_TEXT: Final = {
    ErrorCategory.AUTHENTICATION_FAILED: "Authentication failed",
    ErrorCategory.TIMEOUT: "Health check timed out",
    ErrorCategory.BACKEND_UNAVAILABLE: "Backend unavailable",
    ErrorCategory.CONNECTION_FAILED: "Connection failed",
    ErrorCategory.HEALTH_CHECK_FAILED: "Health check failed",
}

_KIND_CATEGORY: Final = {
    ProbeFailureKind.AUTH: ErrorCategory.AUTHENTICATION_FAILED,
    ProbeFailureKind.TIMEOUT: ErrorCategory.TIMEOUT,
    ProbeFailureKind.CONNECTION: ErrorCategory.CONNECTION_FAILED,
    ProbeFailureKind.OTHER: ErrorCategory.HEALTH_CHECK_FAILED,
}


def _to_kind(value: object) -> ProbeFailureKind:
    try:
        return ProbeFailureKind(str(value))
    except ValueError:
        allowed = ", ".join(kind.value for kind in ProbeFailureKind)
        raise ValidationError("probeFailure.kind", f"must be one of {allowed}, got {value!r}", value) from None


def short_message(value: object) -> str:
    """``value`` as one line of at most :data:`MAX_FAILURE_MESSAGE` characters.

    It ends up in log lines and the health API, so it must be bounded and unbroken.
    """
    if not isinstance(value, str):
        raise ValidationError("probeFailure.message", f"must be a string, got {type(value).__name__}", value)
    text = " ".join(value.split())
    return text if len(text) <= MAX_FAILURE_MESSAGE else text[: MAX_FAILURE_MESSAGE - 1] + "…"


@attrs.frozen
class ProbeFailure:
    """A failed probe's kind and a short message the caller has already stripped of secrets."""

    kind: ProbeFailureKind = attrs.field(converter=_to_kind)
    message: str = attrs.field(default="", converter=short_message)

    @property
    def category(self) -> ErrorCategory:
        """The sanitized category the status shows for this failure."""
        return _KIND_CATEGORY[self.kind]


@attrs.frozen
class ProbeResult:
    """What one health probe (an MCP ``ping``) came back with.

    ``latency`` is measured by the caller on the monotonic clock; it decides "slow".
    """

    ok: bool
    latency: float = 0.0
    failure: ProbeFailure | None = None

    def __attrs_post_init__(self) -> None:
        latency = check_duration("probeResult.latency", self.latency)
        if latency < 0:
            raise ValidationError("probeResult.latency", f"must be >= 0, got {latency}", latency)
        object.__setattr__(self, "latency", latency)
        if self.ok != (self.failure is None):
            raise ValidationError("probeResult.failure", "must be set exactly when ok is False", self.failure)

    @classmethod
    def success(cls, latency: float = 0.0) -> ProbeResult:
        """A probe that answered after ``latency`` seconds."""
        return cls(ok=True, latency=latency)

    @classmethod
    def failed(cls, kind: ProbeFailureKind | str, message: str = "", latency: float = 0.0) -> ProbeResult:
        """A probe that failed with ``kind``; ``message`` must already be free of secrets."""
        return cls(ok=False, latency=latency, failure=ProbeFailure(kind, message))
