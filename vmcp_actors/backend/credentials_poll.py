"""The effectful half of the credentials watch: reading the token and scheduling the next look.

:class:`~vmcp_actors.backend.credentials_watch.CredentialsWatch` decides, purely, when a
rejected backend's credentials are watched and whether they changed.  Acting on that
needs I/O (the token is read from a file or a variable) and a timer; this shell does
both for the backend actor, on its thread, so the actor only learns "changed".
"""

from __future__ import annotations

from collections.abc import Callable

from vmcp_actors.actorkit.timers import Scheduler
from vmcp_actors.backend.credentials_watch import CredentialsCheckDue, CredentialsWatch, credentials_fingerprint
from vmcp_actors.config.backend_spec import BackendSpec

__all__ = ["CredentialsPoller"]


class CredentialsPoller:
    """Watches one backend's credentials while it is ``auth_required``.

    ``spec`` gives the backend's current spec (the token is read from it at each look);
    ``tell`` sends a :class:`CredentialsCheckDue` to the actor when a look is due.
    """

    def __init__(
        self, spec: Callable[[], BackendSpec], scheduler: Scheduler, interval: float, tell: Callable[[object], bool]
    ) -> None:
        self._spec = spec
        self._scheduler = scheduler
        self._interval = interval
        self._tell = tell
        self._watch = CredentialsWatch()

    def _fingerprint(self) -> str:
        return credentials_fingerprint(self._spec())

    def follow(self, auth_required: bool) -> None:
        """After each lifecycle step: start watching on entering ``auth_required``, stop on leaving it."""
        self._watch, first_check = self._watch.follow(auth_required, self._fingerprint)
        if first_check is not None:
            self._schedule(first_check)

    def changed(self, due: CredentialsCheckDue) -> bool:
        """A look came due: whether the token now differs from the one rejected (else look again later)."""
        changed, again = self._watch.check(due, self._fingerprint)
        if not changed and again is not None:
            self._schedule(again)
        return changed

    def _schedule(self, due: CredentialsCheckDue) -> None:
        tell = self._tell
        self._scheduler.call_later(self._interval, lambda: tell(due))
