"""What the supervisor is told and asked, as frozen values.

Commands carry a :class:`concurrent.futures.Future` that the supervisor settles, so the
runtime waits for the outcome with a timeout instead of an ``ask`` that would block on
the supervisor's inbox.  Queries are answered through ``ask``.  The crash reports and
the restart timer come from the supervisor's own crash handlers and scheduler.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import attrs
import pykka

from vmcp_actors.backend.lifecycle_state import Lifecycle
from vmcp_actors.backend.snapshot import SnapshotCell
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.health.state import BackendHealthState

__all__ = [
    "AddBackendCommand",
    "BackendActorQuery",
    "BackendCrashed",
    "HealthActorQuery",
    "HealthCrashed",
    "RemoveBackendCommand",
    "RestartBackendDue",
    "StopAllCommand",
    "UpdateBackendCommand",
]


@attrs.frozen
class AddBackendCommand:
    """Start supervising a backend; ``done`` gets its snapshot cell, or the validation error."""

    spec: BackendSpec
    done: concurrent.futures.Future[SnapshotCell] = attrs.field(eq=False)


@attrs.frozen
class RemoveBackendCommand:
    """Stop a backend and forget it; ``done`` resolves once its actor has stopped."""

    name: str
    done: concurrent.futures.Future[None] = attrs.field(eq=False)


@attrs.frozen
class UpdateBackendCommand:
    """Give a backend a new spec; ``done`` resolves once it is handed over (or with the error)."""

    spec: BackendSpec
    done: concurrent.futures.Future[None] = attrs.field(eq=False)


@attrs.frozen
class StopAllCommand:
    """Stop every backend; ``done`` resolves when all have stopped."""

    done: concurrent.futures.Future[None] = attrs.field(eq=False)


@attrs.frozen
class HealthActorQuery:
    """Asked: the current health actor's ref, or ``None`` between a crash and its replacement."""


@attrs.frozen
class BackendActorQuery:
    """Asked: the ref of the actor currently running backend ``name``, or ``None``."""

    name: str


@attrs.frozen
class BackendCrashed:
    """A backend actor died outside its guard; sent by its crash handler, on the dying thread.

    ``releasing`` are the closes of its sessions still running on the I/O loop.
    """

    name: str
    ref: pykka.ActorRef[Any] = attrs.field(eq=False)
    lifecycle: Lifecycle
    error: str
    releasing: tuple[concurrent.futures.Future[Any], ...] = attrs.field(default=(), eq=False)


@attrs.frozen
class HealthCrashed:
    """The health actor died outside its guard; ``states`` are the health states it held."""

    ref: pykka.ActorRef[Any] = attrs.field(eq=False)
    states: dict[str, BackendHealthState] = attrs.field(eq=False)
    error: str


@attrs.frozen
class RestartBackendDue:
    """The backoff after a crash is over: rebuild the backend's actor from ``lifecycle``."""

    name: str
    lifecycle: Lifecycle
