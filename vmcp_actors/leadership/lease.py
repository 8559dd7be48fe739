"""The values the election rules read and write: the local time (``Now``) and a Lease record."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import attrs

# --------------------------------------------------------------------------- values


@attrs.frozen
class Now:
    """The moment a message is handled: local monotonic seconds, wall time, a draw in [0, 1).

    Expiry and deadlines use only ``monotonic``; ``wall`` only stamps ``acquireTime`` and
    ``renewTime`` for humans; ``draw`` jitters the candidates' polling.
    """

    monotonic: float
    wall: datetime
    draw: float = 0.5


@attrs.frozen
class LeaseRecord:
    """The ``spec`` of the Lease (client-go's ``LeaderElectionRecord``).

    ``holder_identity == ""`` means released.  Times are the writer's wall clock and are
    never compared with ours.
    """

    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    lease_transitions: int = 0

    @property
    def released(self) -> bool:
        """No one holds the Lease (it was released, or never held)."""
        return self.holder_identity == ""

    def to_spec(self) -> dict[str, object]:
        """The Lease ``spec`` as the API expects it (camelCase, RFC 3339 micro-times).

        ``holderIdentity`` is written even when empty, as client-go writes it on release.
        """
        spec: dict[str, object] = {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.lease_transitions,
        }
        if self.acquire_time is not None:
            spec["acquireTime"] = _format_micro_time(self.acquire_time)
        if self.renew_time is not None:
            spec["renewTime"] = _format_micro_time(self.renew_time)
        return spec

    @classmethod
    def from_spec(cls, spec: Mapping[str, object]) -> LeaseRecord:
        """Read a Lease ``spec`` (camelCase keys; times as strings or datetimes).

        Missing fields take the API's zero values: no holder means released, no duration
        means already expired.  A field of the wrong type raises ``ValueError`` naming it.
        """
        holder = spec.get("holderIdentity") or ""
        if not isinstance(holder, str):
            raise ValueError(f"spec.holderIdentity: must be a string, got {type(holder).__name__}")
        return cls(
            holder_identity=holder,
            lease_duration_seconds=_spec_int(spec, "leaseDurationSeconds"),
            acquire_time=_spec_time(spec, "acquireTime"),
            renew_time=_spec_time(spec, "renewTime"),
            lease_transitions=_spec_int(spec, "leaseTransitions"),
        )


def _format_micro_time(value: datetime) -> str:
    """metav1.MicroTime's wire format; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _spec_int(spec: Mapping[str, object], key: str) -> int:
    value = spec.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"spec.{key}: must be an integer, got {type(value).__name__}")
    return value


def _spec_time(spec: Mapping[str, object], key: str) -> datetime | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"spec.{key}: not an RFC 3339 time: {value!r}") from exc
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise ValueError(f"spec.{key}: must be a time, got {type(value).__name__}")
