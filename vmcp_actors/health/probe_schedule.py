"""When the health actor probes, and how long a fresh vMCP stays Pending: pure values.

Two decisions used to live inside :class:`~vmcp_actors.health.actor.HealthActor`:

* **Probe tokens.**  Each backend is probed by a chain: a probe, its answer, a timer for
  the next one.  Timers cannot be taken back reliably (one may already sit in the inbox
  when it is cancelled) and a backend actor may answer a probe after it was replaced, so
  every probe and every timer carries a *token*.  :class:`ProbeSchedule` says which
  token is current: a timer whose token is not current is stale, so is an answer, and
  probes of one backend never overlap.
* **The initial wait.**  toolhive waits for the initial health checks before its first
  report, so a vMCP never claims "All 1 backend healthy" while its second backend is
  still starting.  :class:`StartupGate` keeps the status Pending until every backend
  added at startup has a result (connected, failed, needs auth).  The
  :func:`initial_wait` timer only releases backends that never said a word (one that is
  not started, or an actor that is wedged): a backend that has announced it is starting
  is awaited until its connect ends, because its connect deadline starts when its actor
  gets to it -- later than the timer on a loaded machine -- and a timer cannot know how
  much later.

Nothing here reads a clock or touches an actor; the actor passes monotonic seconds in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

__all__ = ["NO_PROBE_TIMEOUT", "ProbeSchedule", "StartupGate", "initial_wait", "probe_timeout"]

#: What a ``healthCheckTimeout`` of 0 (toolhive: no timeout) means for a probe: an hour,
#: so a probe that never answers still ends, and the next one runs, eventually.
NO_PROBE_TIMEOUT = 3600.0


def probe_timeout(configured: float) -> float:
    """The timeout of one probe for a configured ``healthCheckTimeout`` (0 means none)."""
    return configured if configured > 0 else NO_PROBE_TIMEOUT


def initial_wait(connect_timeouts: Iterable[float], health_check_timeout: float) -> float:
    """How long a fresh vMCP waits for its backends' first health data before reporting without it.

    Long enough for the slowest backend to connect and answer its first probe: after
    that, a backend without data is not starting, it is silent.
    """
    return max(connect_timeouts, default=0.0) + health_check_timeout


@attrs.frozen
class ProbeSchedule:
    """One backend's probe chain: the current token, whether a probe is out, when it started.

    ``started`` is the monotonic start of the probe in flight, or of the last one until
    the next is scheduled; the next probe is due one interval after it (toolhive's
    ticker), so a change is seen within one interval however long the last probe took.
    """

    token: int = 0
    probing: bool = False
    started: float | None = None

    def begin(self, mono: float) -> ProbeSchedule:
        """A probe goes out now, under a fresh token."""
        return ProbeSchedule(token=self.token + 1, probing=True, started=mono)

    def is_due(self, token: int) -> bool:
        """Whether a timer carrying ``token`` should start a probe (not stale, none in flight)."""
        return not self.probing and token == self.token

    def is_current(self, token: int) -> bool:
        """Whether an answer carrying ``token`` still counts (not from a superseded probe)."""
        return token == self.token

    def answered(self) -> ProbeSchedule:
        """The probe in flight has answered (or will never: its backend actor was replaced)."""
        return attrs.evolve(self, probing=False)

    def next_probe(self, mono: float, interval: float) -> tuple[ProbeSchedule, float]:
        """Schedule the next probe: the schedule holding its token, and the delay until it is due.

        The delay counts from the last probe's start, never below zero and never above
        ``interval``; without a probe started, it is one whole interval.
        """
        delay = interval
        if self.started is not None:
            delay = min(max(self.started + interval - mono, 0.0), interval)
        return ProbeSchedule(token=self.token + 1, probing=False, started=None), delay


@attrs.frozen
class StartupGate:
    """Which backends added at startup the first Ready/Degraded status still waits for.

    ``open`` is ``False`` until the runtime has added its configured backends (the
    first ``Refresh``); only backends added before then are awaited.  A health actor
    restarted after a crash starts open: its backends already have data.
    """

    open: bool = False
    awaiting: frozenset[str] = frozenset()

    @property
    def waiting(self) -> bool:
        """Whether the status must stay Pending for want of data."""
        return bool(self.awaiting)

    def added(self, name: str) -> StartupGate:
        """A backend was added: awaited if the configured set is still being added."""
        return self if self.open else attrs.evolve(self, awaiting=self.awaiting | {name})

    def removed(self, name: str) -> StartupGate:
        """A removed backend is never awaited."""
        return attrs.evolve(self, awaiting=self.awaiting - {name})

    def opened(self) -> tuple[StartupGate, bool]:
        """Every configured backend has been added; whether the initial wait starts now."""
        return (self, False) if self.open else (attrs.evolve(self, open=True), True)

    def observe(self, has_data: Callable[[str], bool]) -> StartupGate:
        """Stop awaiting the backends that now have data."""
        still = frozenset(name for name in self.awaiting if not has_data(name))
        return self if still == self.awaiting else attrs.evolve(self, awaiting=still)

    def expired(self, announced: Callable[[str], bool]) -> tuple[StartupGate, frozenset[str]]:
        """The initial wait is over: stop awaiting the backends never heard from, and say which.

        ``announced`` tells whether a backend has said anything yet (that it is
        starting, at least).  Those that have are still awaited until they have data:
        their connect has its own deadline, so a result is coming, and a status built
        without them would call the vMCP Ready on the strength of the fast backends.
        """
        silent = frozenset(name for name in self.awaiting if not announced(name))
        return attrs.evolve(self, open=True, awaiting=self.awaiting - silent), silent
