"""Field paths and the problems that carry them: the vocabulary every config parser shares.

A config error is only useful if it says where: ``backends[2].timeout``, not "a float
was expected".  These helpers build those paths, move a problem found by a nested
validator under its parent's path, and describe bad values briefly, so one huge or
secret-laden value cannot flood (or leak into) an error message.
"""

from __future__ import annotations

import difflib
import math
import re
import reprlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar

from vmcp_actors.errors import ValidationError

__all__ = [
    "FILE_FIELD",
    "ROOT_FIELD",
    "attempt",
    "check_aware",
    "check_count",
    "check_seconds",
    "describe",
    "key_path",
    "repath",
    "show",
    "unknown_keys",
]

_T = TypeVar("_T")

#: ``problem.field`` for problems with the file itself (unreadable, syntax) ...
FILE_FIELD: Final = "(file)"
#: ... and for a document or mapping that is not a mapping at all.
ROOT_FIELD: Final = "(root)"

_SIMPLE_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _short_repr() -> reprlib.Repr:
    """A ``repr`` that looks at a few items per level and a few levels only.

    ``repr`` of a YAML alias bomb is gigabytes long, so building it and cutting it short
    afterwards is no bound at all: the work must stop while the value is walked.
    """
    short = reprlib.Repr()
    short.maxlevel = 3
    short.maxtuple = short.maxlist = short.maxarray = short.maxdeque = 8
    short.maxdict = short.maxset = short.maxfrozenset = 8
    # Long enough that a string, number or object is shown exactly up to any sane limit.
    short.maxstring = short.maxlong = short.maxother = 4096
    return short


_SHORT: Final = _short_repr()


def show(value: object, limit: int = 60) -> str:
    """A value for an error message: a bounded repr, cut short so one bad value cannot flood it."""
    try:
        text = _SHORT.repr(value)
    except Exception:  # noqa: BLE001 - a value that cannot be shown must not hide the error about it
        text = f"<{type(value).__name__} that cannot be shown>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(value: object) -> str:
    """A value with its type (``int 3``), for "must be X, got ..." messages."""
    return f"{type(value).__name__} {show(value)}"


def key_path(path: str, key: object) -> str:
    """The field path of ``key`` under ``path``; odd keys are quoted so the path stays readable."""
    if isinstance(key, str) and _SIMPLE_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{show(key)}]"


def repath(error: ValidationError, prefix: str) -> ValidationError:
    """The same problem with its field moved under ``prefix`` (``timeout`` -> ``backends[0].timeout``)."""
    head = f"{error.field}: "
    text = str(error)
    message = text[len(head) :] if text.startswith(head) else text
    field = f"{prefix}.{error.field}" if prefix else error.field
    return ValidationError(field, message, error.value)


def attempt(found: list[ValidationError], prefix: str, build: Callable[[], _T]) -> _T | None:
    """Run a validating constructor; record its error under ``prefix`` instead of raising."""
    try:
        return build()
    except ValidationError as exc:
        found.append(repath(exc, prefix))
        return None


def unknown_keys(data: Mapping[Any, Any], known: tuple[str, ...], path: str) -> list[ValidationError]:
    """One problem per key the schema does not have, with the closest known key as a hint.

    Unknown keys are errors rather than warnings because the usual cause is a typo
    (``urll``), and a silently ignored typo leaves a default the user did not choose.
    """
    found: list[ValidationError] = []
    for key in data:
        if isinstance(key, str) and key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
        found.append(ValidationError(key_path(path, key), f"unknown key ({hint})", None))
    return found


def check_seconds(field: str, value: object) -> float:
    """A finite number of seconds as a float; bools are refused although Python counts them as ints."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, f"must be a number of seconds, got {type(value).__name__}", value)
    if not math.isfinite(value):
        raise ValidationError(field, f"must be finite, got {value}", value)
    return float(value)


def check_count(field: str, value: object, minimum: int) -> int:
    """An integer of at least ``minimum``; bools are refused for the same reason."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {type(value).__name__}", value)
    if value < minimum:
        raise ValidationError(field, f"must be >= {minimum}, got {value}", value)
    return value


def check_aware(field: str, value: datetime | None) -> None:
    """Reject a naive timestamp: every stamp the status reports must say its time zone."""
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise ValidationError(field, "must be a timezone-aware datetime", value)
