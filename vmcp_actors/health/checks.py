"""Field checks shared by the health values: numbers of seconds, counts, aware timestamps.

They raise :class:`~vmcp_actors.errors.ValidationError` naming the field by the key a user
or the CRD knows it by, so a bad value is found where it was written.
"""

from __future__ import annotations

import math
from datetime import datetime

from vmcp_actors.errors import ValidationError

__all__ = ["check_aware", "check_count", "check_duration"]


def check_duration(field: str, value: object) -> float:
    """``value`` as a finite number of seconds (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, f"must be a number of seconds, got {type(value).__name__}", value)
    if not math.isfinite(value):
        raise ValidationError(field, f"must be finite, got {value}", value)
    return float(value)


def check_count(field: str, value: object, minimum: int) -> int:
    """``value`` as an integer of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {type(value).__name__}", value)
    if value < minimum:
        raise ValidationError(field, f"must be >= {minimum}, got {value}", value)
    return value


def check_aware(field: str, value: datetime | None) -> None:
    """Reject a naive timestamp: every stamp the status reports must say its time zone."""
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise ValidationError(field, "must be a timezone-aware datetime", value)
