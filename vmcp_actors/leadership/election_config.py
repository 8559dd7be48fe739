"""Leader election settings: client-go's defaults, the Lease and holder names, and their validation.

See :mod:`vmcp_actors.leadership.election` for the rules these settings drive.
"""

from __future__ import annotations

import math
import re
from typing import Final

import attrs

#: client-go / kube-controller-manager default ``LeaseDuration``.
LEASE_DURATION: Final = 15.0
#: client-go default ``RenewDeadline``.
RENEW_DEADLINE: Final = 10.0
#: client-go default ``RetryPeriod``.
RETRY_PERIOD: Final = 2.0
#: client-go ``leaderelection.JitterFactor``: a candidate retries after
#: ``retry_period * (1 + JITTER_FACTOR * u)``, ``u`` uniform in [0, 1).
JITTER_FACTOR: Final = 1.2
#: What client-go's ``release`` writes as ``leaseDurationSeconds`` (holder cleared), so
#: even an elector that ignores the empty holder takes over one second later.
RELEASED_LEASE_DURATION_SECONDS: Final = 1
#: The Lease of VirtualMCPServer ``x`` is ``x-vmcp-status``.
LEASE_NAME_SUFFIX: Final = "-vmcp-status"

_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_MAX_SUBDOMAIN: Final = 253
_MAX_LABEL: Final = 63


class LeaderElectionConfigError(ValueError):
    """A leader-election setting is invalid; ``field`` names it.

    A ``ValueError`` (this module depends on nothing but the standard library and attrs)
    that carries the field name, like the project's ``ValidationError``, so a caller can
    point at the exact setting.
    """

    def __init__(self, field: str, message: str, value: object = None) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field}: {message}")


# --------------------------------------------------------------------------- names


def lease_name(vmcp_name: str) -> str:
    """The Lease guarding the status of VirtualMCPServer ``vmcp_name``.

    One Lease per server (not one per runtime) so replicas that serve different servers
    never contend, and the name says what it guards when an operator lists Leases.
    """
    name = f"{vmcp_name}{LEASE_NAME_SUFFIX}"
    _check_subdomain("lease_name", name)
    return name


def identity_base(pod_name: str | None, hostname: str) -> str:
    """``POD_NAME`` when the downward API sets it, else the hostname.

    The pod name tells an operator which replica leads; the hostname is the fallback
    outside Kubernetes (where it is usually the pod name anyway).
    """
    for candidate in (pod_name, hostname):
        if candidate is not None and candidate.strip():
            return candidate.strip()
    raise LeaderElectionConfigError("identity", "neither POD_NAME nor the hostname is set", hostname)


def holder_identity(base: str, suffix: str) -> str:
    """``<base>_<suffix>``, as client-go callers build ``hostname + "_" + uuid``.

    The random suffix makes a restarted process a *new* holder: it cannot mistake the
    Lease its previous incarnation held for its own and renew it without waiting.
    """
    if not base.strip():
        raise LeaderElectionConfigError("identity", "the base name must not be empty", base)
    if not suffix.strip():
        raise LeaderElectionConfigError("identity", "the random suffix must not be empty", suffix)
    return f"{base.strip()}_{suffix.strip()}"


def _check_subdomain(field: str, value: str) -> None:
    if not value:
        raise LeaderElectionConfigError(field, "must not be empty", value)
    if len(value) > _MAX_SUBDOMAIN:
        raise LeaderElectionConfigError(field, f"must be at most {_MAX_SUBDOMAIN} characters, got {len(value)}", value)
    if not _DNS_SUBDOMAIN.fullmatch(value):
        raise LeaderElectionConfigError(
            field, f"must be a DNS subdomain (lowercase letters, digits, '-', '.'), got {value!r}", value
        )


# --------------------------------------------------------------------------- config


def _check_duration(field: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LeaderElectionConfigError(field, f"must be a number of seconds, got {type(value).__name__}", value)
    if not math.isfinite(value) or value <= 0:
        raise LeaderElectionConfigError(field, f"must be a finite number of seconds > 0, got {value}", value)


@attrs.frozen
class LeaderElectionConfig:
    """Which Lease, who we are, and the timing; validated on construction.

    ``request_timeout`` bounds how long a write may stay unanswered before the rules give
    up on it and look at the Lease again (the shell should use the same HTTP timeout).
    """

    lease_name: str
    namespace: str
    identity: str
    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD
    jitter_factor: float = JITTER_FACTOR
    request_timeout: float = RETRY_PERIOD

    def __attrs_post_init__(self) -> None:
        _check_subdomain("lease_name", self.lease_name)
        if not self.namespace or len(self.namespace) > _MAX_LABEL or not _DNS_LABEL.fullmatch(self.namespace):
            raise LeaderElectionConfigError(
                "namespace", f"must be a DNS label of at most {_MAX_LABEL} characters, got {self.namespace!r}"
            )
        if not self.identity.strip() or self.identity != self.identity.strip():
            raise LeaderElectionConfigError(
                "identity", f"must be non-empty without surrounding spaces, got {self.identity!r}"
            )
        for field in ("lease_duration", "renew_deadline", "retry_period", "request_timeout"):
            _check_duration(field, getattr(self, field))
        if not float(self.lease_duration).is_integer():
            # The Lease stores whole seconds; a fraction would silently shorten the lease
            # the others wait for, below what the renew deadline was checked against.
            raise LeaderElectionConfigError(
                "lease_duration", f"must be a whole number of seconds, got {self.lease_duration}", self.lease_duration
            )
        if not self.renew_deadline < self.lease_duration:
            raise LeaderElectionConfigError(
                "renew_deadline",
                f"must be shorter than lease_duration ({self.lease_duration}) so the leader stops before a rival "
                f"may take over, got {self.renew_deadline}",
                self.renew_deadline,
            )
        jitter = self.jitter_factor
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not math.isfinite(jitter) or jitter < 0:
            raise LeaderElectionConfigError("jitter_factor", f"must be a finite number >= 0, got {jitter}", jitter)
        if not self.retry_period * self.jitter_factor < self.renew_deadline:
            raise LeaderElectionConfigError(
                "retry_period",
                f"retry_period * jitter_factor ({self.retry_period * self.jitter_factor:g}) must be shorter than "
                f"renew_deadline ({self.renew_deadline}) so the leader gets more than one try, got {self.retry_period}",
                self.retry_period,
            )
        if not self.request_timeout <= self.renew_deadline:
            raise LeaderElectionConfigError(
                "request_timeout",
                f"must not exceed renew_deadline ({self.renew_deadline}), got {self.request_timeout}",
                self.request_timeout,
            )

    @classmethod
    def for_vmcp(cls, vmcp_name: str, namespace: str, identity: str, **timing: float) -> LeaderElectionConfig:
        """The config for VirtualMCPServer ``vmcp_name``: its Lease, in its namespace."""
        return cls(lease_name(vmcp_name), namespace, identity, **timing)

    @property
    def lease_duration_seconds(self) -> int:
        """What this replica writes as ``leaseDurationSeconds``."""
        return int(self.lease_duration)

    @property
    def tolerated_clock_drift(self) -> float:
        """The largest clock-rate error ``rho`` (0.2 = 20 %) under which leaders never overlap.

        The leader stops after ``renew_deadline`` local seconds, at most
        ``renew_deadline / (1 - rho)`` real ones; a rival waits ``lease_duration`` local
        seconds, at least ``lease_duration / (1 + rho)`` real ones.  The first is shorter
        exactly when ``rho < (lease - deadline) / (lease + deadline)``.
        """
        return (self.lease_duration - self.renew_deadline) / (self.lease_duration + self.renew_deadline)

    def poll_interval(self, draw: float) -> float:
        """client-go's ``wait.Jitter(retryPeriod, JitterFactor)`` for a draw in [0, 1)."""
        return self.retry_period * (1 + self.jitter_factor * min(max(draw, 0.0), 1.0))
