"""What opening one MCP connection needs, and who answered: immutable, safe to log.

:func:`params_for` turns a configured :class:`~vmcp_actors.config.backend_spec.BackendSpec` into
:class:`ConnectParams` at connect time (so a bearer token file is read when it is used,
not when the config was loaded).  Nothing here imports the MCP SDK.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Literal

import attrs

from vmcp_actors.backend.failures import BackendError, Failure, FailureKind, redact_url
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.backend_values import DEFAULT_REMOTE_TIMEOUT
from vmcp_actors.errors import ValidationError

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "ConnectParams", "ServerInfo", "TransportKind", "params_for"]

TransportKind = Literal["stdio", "streamable-http", "sse"]

DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""Largest message a backend may send (one HTTP response body, one stdio line, one SSE
event): far above any real ``tools/list``, far below what would hurt the host.  A server
answering ``initialize`` with 2 GB once drove this process to 1.86 GB of RSS."""


def _freeze_pairs(value: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> tuple[tuple[str, str], ...]:
    """Normalise a mapping or an iterable of pairs into an immutable tuple of pairs."""
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(key), str(val)) for key, val in items)


def _freeze_args(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("args must be a sequence of strings, not a single string")
    return tuple(str(arg) for arg in value)


@attrs.frozen(repr=False)
class ConnectParams:
    """Everything needed to open one MCP connection; immutable and safe to log.

    ``env`` and ``headers`` are stored as tuples of ``(name, value)`` pairs (a mapping is
    accepted and frozen) so the object is hashable and can travel between threads.  The
    repr shows their names only: values are credentials more often than not.

    A stdio server gets the SDK's minimal inherited environment (``HOME``, ``LOGNAME``,
    ``PATH``, ``SHELL``, ``TERM``, ``USER``) plus ``env``, not our whole environment, so
    our own secrets do not leak into every child.  Its stderr is inherited.

    ``max_response_bytes`` bounds every message the server sends (HTTP body, stdio
    line, SSE event); a larger one fails the connection with an error naming the limit.
    """

    name: str
    transport: TransportKind
    command: str | None = None
    args: tuple[str, ...] = attrs.field(default=(), converter=_freeze_args)
    env: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_freeze_pairs)
    cwd: str | None = None
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_freeze_pairs)
    connect_timeout: float = DEFAULT_REMOTE_TIMEOUT
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def __attrs_post_init__(self) -> None:
        if self.transport not in ("stdio", "streamable-http", "sse"):
            raise ValueError(f"transport: unsupported MCP transport {self.transport!r}")
        if self.transport == "stdio" and not self.command:
            raise ValueError("command: required for the stdio transport")
        if self.transport != "stdio" and not self.url:
            raise ValueError(f"url: required for the {self.transport} transport")
        if not (self.connect_timeout > 0 and math.isfinite(self.connect_timeout)):
            raise ValueError("connect_timeout: must be a positive number of seconds")
        if isinstance(self.max_response_bytes, bool) or not (
            isinstance(self.max_response_bytes, int) and self.max_response_bytes > 0
        ):
            raise ValueError("max_response_bytes: must be a positive number of bytes")

    @property
    def is_remote(self) -> bool:
        """True for the HTTP transports (muster's notion of a "remote" server)."""
        return self.transport != "stdio"

    def __repr__(self) -> str:
        env = ", ".join(f"{key}=<redacted>" for key, _ in self.env)
        headers = ", ".join(f"{key}: <redacted>" for key, _ in self.headers)
        url = redact_url(self.url) if self.url else None
        return (
            f"ConnectParams(name={self.name!r}, transport={self.transport!r}, command={self.command!r}, "
            f"args={self.args!r}, env={{{env}}}, cwd={self.cwd!r}, url={url!r}, headers={{{headers}}}, "
            f"connect_timeout={self.connect_timeout!r}, max_response_bytes={self.max_response_bytes!r})"
        )

    __str__ = __repr__


@attrs.frozen
class ServerInfo:
    """Who answered ``initialize`` (the SDK's ``Implementation``, minus SDK types)."""

    name: str
    version: str
    title: str | None = None


def params_for(spec: BackendSpec) -> ConnectParams:
    """The parameters to connect ``spec`` now, with its bearer token (if any) as a header.

    Raises :class:`BackendError` with a ``CONFIGURATION`` failure when the token cannot be
    read or the spec cannot make a connection: retrying the same settings will not help.
    """
    try:
        headers = dict(spec.headers)
        token = spec.auth.resolve_token()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return ConnectParams(
            name=spec.name,
            transport=spec.type.value,
            command=spec.command,
            args=spec.args,
            env=spec.env,
            cwd=spec.cwd,
            url=spec.url,
            headers=tuple(headers.items()),
            connect_timeout=spec.connect_timeout,
            max_response_bytes=spec.max_response_bytes or DEFAULT_MAX_RESPONSE_BYTES,
        )
    except (ValidationError, ValueError) as exc:
        raise BackendError(Failure(FailureKind.CONFIGURATION, str(exc))) from None
