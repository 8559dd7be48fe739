"""One knob for every wait in the tests: how long to wait for an event before calling it lost.

Tests wait on events (a sink write, a snapshot, a process line), never on time, so a
bound costs nothing when things work: it only decides how long a broken run takes to
fail.  A bound too tight for a loaded machine fails a correct run instead -- a fresh
clone's suite once failed on a busy 2-core machine because a restarted stdio server was
still importing the SDK when a fixed 5 s wait ran out.  So every bound is generous by
default and goes through :func:`bound`, which multiplies it by ``VMCP_TEST_TIMEOUT_SCALE``
(a positive number, default 1) for machines slower still.

Bounds that *are* the behaviour under test (``stop(3.0)`` returns within 5 s) are not
waits and do not go through here.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["DEFAULT_WAIT", "SCALE_ENV", "bound", "scale"]

#: The environment variable that scales every test wait.
SCALE_ENV: Final = "VMCP_TEST_TIMEOUT_SCALE"
#: How long a test waits for an event unless it says otherwise (before scaling).
DEFAULT_WAIT: Final = 60.0


def scale() -> float:
    """The factor from ``VMCP_TEST_TIMEOUT_SCALE``: 1 when unset; a bad value fails loudly."""
    raw = os.environ.get(SCALE_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{SCALE_ENV} must be a positive number, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{SCALE_ENV} must be a positive number, got {raw!r}")
    return value


def bound(seconds: float = DEFAULT_WAIT) -> float:
    """How long to wait for something expected within ``seconds`` on an idle machine, scaled."""
    return seconds * scale()
