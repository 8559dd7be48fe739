"""Kubernetes Event values for the series rules: reasons, types, keys, occurrences and write effects.

See :mod:`vmcp_actors.leadership.event_series` for the rules that aggregate them.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final

import attrs

#: client-go ``tools/events`` ``finishTime``: a series idle this long is over.
SERIES_WINDOW: Final = 6 * 60.0
#: client-go ``tools/record`` ``defaultSpamBurst``.
SPAM_BURST: Final = 25
#: client-go ``defaultSpamQPS = 1. / 300.``: one token back every 5 minutes.
SPAM_REFILL_INTERVAL: Final = 300.0
#: Keys remembered at most (client-go's LRU holds 4096; a VirtualMCPServer needs far fewer).
MAX_KEYS: Final = 1024
#: ``events.k8s.io/v1`` validation: ``note`` is at most 1 kB.
MAX_NOTE_BYTES: Final = 1024
#: ``events.k8s.io/v1`` validation: reason, action, reportingController, reportingInstance.
_MAX_FIELD: Final = 128
_MAX_NAME: Final = 253
_SUFFIX: Final = re.compile(r"[a-z0-9]{1,32}")
_DIGEST_CHARS: Final = 10
#: Refill arithmetic in floats may land a hair below a whole token at the very moment
#: next_flush_at promised one; without this slack a flush at that moment would write
#: nothing and ask to be called again at the same moment.
_TOKEN_SLACK: Final = 1e-9


class EventSeriesError(ValueError):
    """An occurrence or policy field is invalid; ``field`` names it."""

    def __init__(self, field: str, message: str, value: object = None) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field}: {message}")


class Reason(enum.StrEnum):
    """The reasons the runtime reports (``reason`` is CamelCase by API convention)."""

    PHASE_CHANGED = "PhaseChanged"
    BACKEND_UNAVAILABLE = "BackendUnavailable"
    BACKEND_UNAUTHENTICATED = "BackendUnauthenticated"
    BACKEND_RECOVERED = "BackendRecovered"
    LEADER_ELECTED = "LeaderElected"


class EventType(enum.StrEnum):
    """``type`` of an Event: the API accepts only these two."""

    NORMAL = "Normal"
    WARNING = "Warning"


#: A backend that is down or refuses our credentials needs attention; the rest is news.
DEFAULT_TYPES: Final[Mapping[Reason, EventType]] = {
    Reason.PHASE_CHANGED: EventType.NORMAL,
    Reason.BACKEND_UNAVAILABLE: EventType.WARNING,
    Reason.BACKEND_UNAUTHENTICATED: EventType.WARNING,
    Reason.BACKEND_RECOVERED: EventType.NORMAL,
    Reason.LEADER_ELECTED: EventType.NORMAL,
}

#: ``action`` (required by events.k8s.io/v1): what the controller was doing.
DEFAULT_ACTIONS: Final[Mapping[Reason, str]] = {
    Reason.PHASE_CHANGED: "ReportStatus",
    Reason.BACKEND_UNAVAILABLE: "CheckBackend",
    Reason.BACKEND_UNAUTHENTICATED: "CheckBackend",
    Reason.BACKEND_RECOVERED: "CheckBackend",
    Reason.LEADER_ELECTED: "ElectLeader",
}


def _check_text(field: str, value: str) -> None:
    if not value:
        raise EventSeriesError(field, "must not be empty", value)
    if len(value) > _MAX_FIELD:
        raise EventSeriesError(field, f"must be at most {_MAX_FIELD} characters, got {len(value)}", value)


def _truncate_utf8(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, cut on a character boundary."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode(errors="ignore")


@attrs.frozen
class ObjectRef:
    """The object an Event is about (``regarding``); the Event lives in its namespace."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str = ""

    def __attrs_post_init__(self) -> None:
        for field in ("api_version", "kind", "name", "namespace"):
            if not getattr(self, field):
                raise EventSeriesError(f"regarding.{field}", "must not be empty")


@attrs.frozen
class SeriesKey:
    """What makes two occurrences "the same" Event."""

    regarding: ObjectRef
    reason: Reason
    type: EventType
    note_key: str
    reporting_controller: str

    def digest(self) -> str:
        """A short stable digest of the key (no ``hash()``: it must survive restarts)."""
        r = self.regarding
        parts = (r.api_version, r.kind, r.namespace, r.name, r.uid, self.reason, self.type)
        text = "\x00".join((*parts, self.note_key, self.reporting_controller))
        return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_CHARS]


@attrs.frozen
class Occurrence:
    """One thing that happened.

    ``note_key`` says which notes belong to one series (say, the backend's name, so each
    backend has its own "unavailable" Event while the note may carry the changing error
    text); it defaults to the note itself.  ``name_suffix`` (lowercase letters and digits)
    names the Event if this occurrence starts a series; it must not repeat for a key, or
    a new series would find the old Event under its name (Events outlive the process by
    the API server's ``--event-ttl``).  The wall time in nanoseconds, in hex, is what
    client-go uses.  ``type`` and ``action`` default per reason.
    """

    regarding: ObjectRef
    reason: Reason
    note: str
    reporting_controller: str
    reporting_instance: str
    name_suffix: str
    note_key: str | None = None
    type: EventType | None = None
    action: str | None = None

    def __attrs_post_init__(self) -> None:
        _check_text("reporting_controller", self.reporting_controller)
        _check_text("reporting_instance", self.reporting_instance)
        _check_text("action", self.event_action)
        if not _SUFFIX.fullmatch(self.name_suffix):
            raise EventSeriesError(
                "name_suffix", f"must be 1-32 lowercase letters or digits, got {self.name_suffix!r}", self.name_suffix
            )

    @property
    def event_type(self) -> EventType:
        """The type given, else the reason's default."""
        return self.type if self.type is not None else DEFAULT_TYPES[self.reason]

    @property
    def event_action(self) -> str:
        """The action given, else the reason's default."""
        return self.action if self.action is not None else DEFAULT_ACTIONS[self.reason]

    @property
    def key(self) -> SeriesKey:
        """The series this occurrence counts into."""
        note_key = self.note if self.note_key is None else self.note_key
        return SeriesKey(self.regarding, self.reason, self.event_type, note_key, self.reporting_controller)


def event_name(key: SeriesKey, suffix: str) -> str:
    """``<regarding name>.<key digest>-<suffix>``: deterministic, a valid DNS subdomain.

    The digest keeps two series about the same object apart even with the same suffix;
    the suffix keeps a new series apart from an old Event of the same key that may still
    exist (Events live for the API server's ``--event-ttl``, one hour by default).
    """
    if not _SUFFIX.fullmatch(suffix):
        raise EventSeriesError("name_suffix", f"must be 1-32 lowercase letters or digits, got {suffix!r}", suffix)
    tail = f".{key.digest()}-{suffix}"
    prefix = key.regarding.name[: _MAX_NAME - len(tail)].rstrip(".-")
    return f"{prefix}{tail}" if prefix else tail[1:]


# --------------------------------------------------------------------------- effects


@attrs.frozen
class SeriesFields:
    """``series`` of an events.k8s.io/v1 Event: ``count`` >= 2 and when last seen."""

    count: int
    last_observed_time: datetime


@attrs.frozen
class EventFields:
    """Everything a Create writes."""

    name: str
    namespace: str
    regarding: ObjectRef
    reason: Reason
    type: EventType
    action: str
    note: str
    reporting_controller: str
    reporting_instance: str
    event_time: datetime
    series: SeriesFields | None = None


@attrs.frozen
class Create:
    """Create ``event``; report the outcome with :func:`answered`."""

    event: EventFields


@attrs.frozen
class PatchSeries:
    """Patch ``series`` of Event ``name``; report the outcome with :func:`answered`.

    The count is absolute, so repeating a patch is harmless.
    """

    name: str
    namespace: str
    count: int
    last_observed_time: datetime


class WriteOutcome(enum.StrEnum):
    """How the API server answered a Create or PatchSeries."""

    SUCCEEDED = "succeeded"
    NOT_FOUND = "not found"  # a patch found no Event: it expired (--event-ttl) or was deleted
    ALREADY_EXISTS = "already exists"  # a create found the Event: an earlier try landed after all
    FAILED = "failed"  # timeout, 5xx, anything else: it may or may not have landed


class DropReason(enum.StrEnum):
    """Why an occurrence was not written now."""

    RATE_LIMITED = "rate limited: counted, written with a later write"
    TOO_MANY_KEYS = "too many distinct events remembered: not counted"


@attrs.frozen
class Drop:
    """Nothing to write now; ``pending`` occurrences of ``key`` wait for a token."""

    reason: DropReason
    key: SeriesKey
    pending: int = 0


Effect = Create | PatchSeries | Drop
