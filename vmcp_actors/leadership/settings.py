"""``LeaderElection``: how this replica takes part in leader election (the embedding API's knob).

On by default in Kubernetes mode (``VMCP_NAME`` and ``VMCP_NAMESPACE`` set), because
several replicas of one VirtualMCPServer writing their own views of the same status
make it flap.  ``VMCP_LEADER_ELECTION=false`` turns it off (one replica, or an embedder
that elects by other means).  The holder identity is ``POD_NAME`` (from the downward
API), else the hostname, plus a random suffix so a restarted process is a new holder.

Pure: the environment, the hostname and the suffix are arguments, so the rules are
tested without touching the process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, TypeVar

import attrs

from vmcp_actors.errors import ValidationError
from vmcp_actors.leadership.election import (
    LEASE_DURATION,
    RENEW_DEADLINE,
    RETRY_PERIOD,
    LeaderElectionConfig,
    LeaderElectionConfigError,
    holder_identity,
    identity_base,
)

__all__ = ["ENV_LEADER_ELECTION", "ENV_POD_NAME", "LeaderElection", "parse_switch"]

#: ``false`` (or 0/no/off) turns leader election off; unset or ``true`` leaves it on.
ENV_LEADER_ELECTION: Final = "VMCP_LEADER_ELECTION"
#: Set from the downward API (``fieldRef: metadata.name``) in the example Deployment.
ENV_POD_NAME: Final = "POD_NAME"

_T = TypeVar("_T")
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})


def parse_switch(name: str, value: str | None, default: bool) -> bool:
    """An on/off environment variable; anything unrecognised is an error naming it."""
    if value is None or not value.strip():
        return default
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValidationError(name, f"must be true or false, got {value!r}", value)


@attrs.frozen
class LeaderElection:
    """Leader-election settings; the timing is client-go's unless changed (tests shorten it).

    ``identity`` replaces the whole holder identity (default: ``POD_NAME`` or the
    hostname, ``_``, a random suffix).  ``request_timeout`` bounds each Lease request
    (default: the retry period, at most the renew deadline).  ``events`` says whether
    the leader also emits Kubernetes Events.  An invalid setting raises
    :class:`~vmcp_actors.errors.ValidationError` naming it (``leader_election.<field>``).
    """

    enabled: bool = True
    identity: str | None = None
    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD
    request_timeout: float | None = None
    events: bool = True

    def __attrs_post_init__(self) -> None:
        # The same checks the elector will apply, now, so a bad setting fails at start-up.
        self.elector_config("validate", "validate", identity=self.identity or "validate")

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: object) -> LeaderElection:
        """Settings from the environment: only ``VMCP_LEADER_ELECTION`` is read."""
        enabled = parse_switch(ENV_LEADER_ELECTION, env.get(ENV_LEADER_ELECTION), True)
        return cls(enabled=enabled, **overrides)  # type: ignore[arg-type]

    @property
    def effective_request_timeout(self) -> float:
        """The per-request timeout the elector uses."""
        if self.request_timeout is not None:
            return self.request_timeout
        return min(self.retry_period, self.renew_deadline)

    @property
    def status_write_timeout(self) -> float:
        """The longest a status write may take so it cannot land after a rival took over.

        A write sent just before the renew deadline must be answered before the lease
        can expire for the others: ``lease_duration - renew_deadline``.
        """
        return self.lease_duration - self.renew_deadline

    def resolve_identity(self, env: Mapping[str, str], hostname: str, suffix: str) -> str:
        """``identity`` if set, else ``POD_NAME`` (or ``hostname``) + ``_`` + ``suffix``."""
        if self.identity is not None:
            return self.identity
        return _checked(lambda: holder_identity(identity_base(env.get(ENV_POD_NAME), hostname), suffix))

    def elector_config(self, vmcp_name: str, namespace: str, *, identity: str) -> LeaderElectionConfig:
        """The elector's config for VirtualMCPServer ``namespace/vmcp_name``."""
        return _checked(
            lambda: LeaderElectionConfig.for_vmcp(
                vmcp_name,
                namespace,
                identity,
                lease_duration=self.lease_duration,
                renew_deadline=self.renew_deadline,
                retry_period=self.retry_period,
                request_timeout=self.effective_request_timeout,
            )
        )


def _checked(make: Callable[[], _T]) -> _T:
    """``make()``, its config error re-raised as the project's ``ValidationError``."""
    try:
        return make()
    except LeaderElectionConfigError as error:
        message = str(error).split(": ", 1)[-1]
        raise ValidationError(f"leader_election.{error.field}", message, error.value) from error
