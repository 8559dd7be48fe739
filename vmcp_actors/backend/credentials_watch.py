"""Noticing that a rejected backend's credentials have changed, so it is retried at once.

A backend whose token the server rejected sits in ``auth_required``.  The README
promises that rotating a token needs no config change: the token is read from its
file (a mounted Secret) or variable at every connect.  So while a backend is
``auth_required`` its actor re-reads the token every
:data:`~vmcp_actors.backend.lifecycle_state.CREDENTIALS_POLL_INTERVAL` seconds and, as
soon as it differs from the one rejected, feeds
:class:`~vmcp_actors.backend.lifecycle_messages.CredentialsChanged` to the lifecycle,
which reconnects.  (A token rotated only at the server is caught by the lifecycle's
slow auth retry instead.)

Only a digest of the token is ever kept, never the token: the watch lives in an actor
whose state may be logged after a crash.  :class:`CredentialsWatch` is a pure value;
the actor reads the token (I/O) and schedules the checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import attrs

from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.errors import VmcpError

__all__ = ["CredentialsCheckDue", "CredentialsWatch", "credentials_fingerprint"]


@attrs.frozen
class CredentialsCheckDue:
    """Time to re-read an auth-required backend's token; ``watch`` tells a current check from a stale one."""

    watch: int


def credentials_fingerprint(spec: BackendSpec) -> str:
    """A digest of the token ``spec`` resolves right now; ``""`` when it has none or it cannot be read."""
    try:
        token = spec.auth.resolve_token()
    except VmcpError:
        return ""
    return hashlib.sha256(token.encode()).hexdigest() if token else ""


@attrs.frozen
class CredentialsWatch:
    """Whether the backend's credentials are being watched, and the digest of those rejected.

    ``watch`` numbers watches, so a check scheduled by an earlier one is stale.
    """

    watch: int = 0
    rejected: str | None = None

    @property
    def watching(self) -> bool:
        """Whether a rejection is being watched for a change."""
        return self.rejected is not None

    def follow(
        self, auth_required: bool, fingerprint: Callable[[], str]
    ) -> tuple[CredentialsWatch, CredentialsCheckDue | None]:
        """After each lifecycle step: start watching on entering ``auth_required``, stop on leaving it.

        Returns the new watch and, when a watch starts, the first check to schedule.
        ``fingerprint`` is only called when a watch starts.
        """
        if auth_required and not self.watching:
            started = CredentialsWatch(self.watch + 1, fingerprint())
            return started, CredentialsCheckDue(started.watch)
        if not auth_required and self.watching:
            return CredentialsWatch(self.watch + 1, None), None
        return self, None

    def check(
        self, due: CredentialsCheckDue, fingerprint: Callable[[], str]
    ) -> tuple[bool, CredentialsCheckDue | None]:
        """A check came due: whether the credentials changed, else the next check (``None`` if stale)."""
        if due.watch != self.watch or not self.watching:
            return False, None
        if fingerprint() != self.rejected:
            return True, None
        return False, CredentialsCheckDue(self.watch)
