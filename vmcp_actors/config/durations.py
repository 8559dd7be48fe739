"""Go durations (``1m30s``, ``500ms``): parsed the way the toolhive CRD accepts them, shown the way Go prints them.

Users copy ``failureHandling`` between a toolhive ``VirtualMCPServer`` and this
runtime's config file, so both must accept exactly the same text, and dumps and
messages must read back the way the user wrote it.  Arithmetic is exact (fractions
of nanoseconds), so ``0.1s`` is 100 ms and not 99.999... ms, and both directions are
bounded by Go's int64-nanosecond ``time.Duration``.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Final

from vmcp_actors.config.fields import describe, show
from vmcp_actors.errors import ValidationError

__all__ = ["MAX_DURATION_CHARS", "MAX_DURATION_NS", "format_duration", "parse_duration"]

#: The CRD's duration pattern (toolhive): number-unit terms, no sign, no spaces.
_DURATION_PATTERN: Final = re.compile(r"([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+")
_DURATION_TERM: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_BARE_NUMBER: Final = re.compile(r"[0-9]+(\.[0-9]+)?")
_NS_PER_UNIT: Final = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_NS_PER_SECOND: Final = 10**9
#: Go's ``time.Duration`` is int64 nanoseconds: nothing longer exists on toolhive's side.
MAX_DURATION_NS: Final = 2**63 - 1
_MAX_DURATION_TEXT: Final = "2562047h47m16.854775807s"
#: Longer duration strings are nonsense; the cap also bounds the exact arithmetic below.
MAX_DURATION_CHARS: Final = 64
_DURATION_HINT: Final = "a Go duration such as '30s', '1m30s' or '500ms' (units ns, us, µs, ms, s, m, h)"


def parse_duration(text: object, field: str) -> float:
    """Seconds from a Go-style duration string (``1m30s``) or a plain number of seconds.

    Strings must match the CRD pattern exactly, so a file accepted here is accepted by
    the toolhive operator too: no sign, no spaces, a unit on every term.  Numbers are
    this project's convenience and are passed through (negative ones included) so the
    range rule of the field they feed -- which exists once, in that field's validator --
    reports them.  Both forms are bounded by Go's int64-nanosecond range.

    Raises:
        ValidationError: naming ``field``, for anything else or anything out of range.
    """
    if isinstance(text, str):
        return _parse_text(text, field)
    if isinstance(text, bool) or not isinstance(text, (int, float)):
        raise ValidationError(field, f"must be {_DURATION_HINT} or a number of seconds, got {describe(text)}", text)
    if isinstance(text, float) and not math.isfinite(text):
        raise ValidationError(field, f"must be a finite number of seconds, got {text}", text)
    # An int is compared exactly; a float as a float, which is all the precision it has.
    if abs(text) * _NS_PER_SECOND > MAX_DURATION_NS:
        raise _out_of_range(field, text)
    return float(text)


def _parse_text(text: str, field: str) -> float:
    """The string form: CRD pattern, exact sum of the terms, Go's range."""
    if not text:
        raise ValidationError(field, f"must not be empty: write {_DURATION_HINT}", text)
    if len(text) > MAX_DURATION_CHARS or not _DURATION_PATTERN.fullmatch(text):
        if len(text) <= MAX_DURATION_CHARS and _BARE_NUMBER.fullmatch(text):  # quoted whole in the hint
            message = f"duration {show(text)} has no unit: write {text}s, or the number {text} without quotes"
        else:
            message = f"invalid duration {show(text)}: expected {_DURATION_HINT}"
        raise ValidationError(field, message, text)
    # Exact arithmetic, so "0.1s" + "0.2s" style sums round once, at the very end.
    total = sum(
        (Fraction(number) * _NS_PER_UNIT[unit] for number, unit in _DURATION_TERM.findall(text)),
        start=Fraction(0),
    )
    if total > MAX_DURATION_NS:
        raise _out_of_range(field, text)
    return float(total / _NS_PER_SECOND)


def _out_of_range(field: str, value: object) -> ValidationError:
    return ValidationError(field, f"is out of range (at most {_MAX_DURATION_TEXT}), got {show(value)}", value)


def _fraction_text(value: int, digits: int) -> str:
    """``value / 10**digits`` in decimal with trailing zeros dropped (Go's ``fmtFrac``)."""
    whole, fraction = divmod(value, 10**digits)
    return f"{whole}.{fraction:0{digits}d}".rstrip("0") if fraction else str(whole)


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` for ``seconds``, rounded to the nanosecond.

    Used wherever a duration is shown back to the user (``--debug`` dumps, messages), so
    it reads the way they write it: ``1m30s``, ``500ms``, ``1h0m0s``.

    Raises:
        ValueError: for anything but a finite int or float (bools included).
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise ValueError(f"cannot format {seconds!r} as a duration")
    ns = round(Fraction(seconds) * _NS_PER_SECOND)
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns == 0:
        return "0s"
    if ns < 10**3:
        return f"{sign}{ns}ns"
    if ns < 10**6:
        return f"{sign}{_fraction_text(ns, 3)}µs"
    if ns < 10**9:
        return f"{sign}{_fraction_text(ns, 6)}ms"
    whole_seconds, fraction = divmod(ns, _NS_PER_SECOND)
    hours, rest = divmod(whole_seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{_fraction_text(secs * _NS_PER_SECOND + fraction, 9)}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return f"{sign}{text}"
