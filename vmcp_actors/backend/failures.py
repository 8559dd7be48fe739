"""Failure vocabulary: what went wrong with a backend, in the terms the lifecycle acts on.

A :class:`Failure` is a kind plus a message; the lifecycle decides retries, backoff and
``unreachable`` from the kind alone.  The exceptions here are the ones the MCP I/O layer
raises or records for facts the SDK swallows; deciding which :class:`FailureKind` an
arbitrary exception means is :func:`vmcp_actors.backend.classify.classify`'s job, kept
apart because it has to know the SDK's exception types and this module must not.

Pure: no I/O, no clock, no SDK.  Messages are built from fixed text plus short,
non-secret details; header values, environment values, URL user-info and query strings
never reach a :class:`Failure` message (:func:`redact_url`).
"""

from __future__ import annotations

import enum

import attrs

from vmcp_actors.backend.auth_challenge import AuthChallenge
from vmcp_actors.config.redaction import redact_url

__all__ = [
    "BackendError",
    "CommandLaunchError",
    "Failure",
    "FailureKind",
    "HttpStatusError",
    "describe_exception",
    "redact_url",
    "truncate",
]

MAX_DETAIL = 200
"""Longest exception detail quoted in a failure message: a peer's text is not trusted."""


class FailureKind(enum.Enum):
    """Why talking to a backend failed, in the terms the lifecycle acts on.

    * ``TRANSIENT``: the network or the server is unwell (refused, reset, DNS, HTTP 5xx);
      retry with backoff.
    * ``AUTH_REQUIRED``: HTTP 401; the server is reachable but wants credentials.
    * ``CONFIGURATION``: retrying the same settings cannot help (bad URL or command,
      TLS trust, HTTP 4xx other than 401/408/429).
    * ``PROTOCOL``: the peer does not speak MCP correctly (garbage on stdout, JSON-RPC
      error responses, results that fail validation).
    * ``SESSION_LOST``: the connection or session is gone (stdio process exited, server
      forgot the ``Mcp-Session-Id``); reconnecting starts a fresh one.
    * ``TIMEOUT``: no answer in time.  The lifecycle counts it like ``TRANSIENT`` for
      remote servers; it stays a separate kind so messages can say what happened.
    """

    TRANSIENT = "transient"
    AUTH_REQUIRED = "auth_required"
    CONFIGURATION = "configuration"
    PROTOCOL = "protocol"
    SESSION_LOST = "session_lost"
    TIMEOUT = "timeout"


@attrs.frozen
class Failure:
    """One classified failure: a kind, a human-readable message, and structured extras.

    ``http_status`` is set whenever an HTTP response status was the deciding fact, and
    ``auth`` carries the parsed challenge of a 401 (or a 403 that sent one).
    """

    kind: FailureKind
    message: str
    http_status: int | None = None
    auth: AuthChallenge | None = None


class BackendError(Exception):
    """The only exception type the MCP I/O layer raises; ``failure`` says what happened.

    Callers never see SDK exceptions (``MCPError``, ``httpx2`` errors, exception groups):
    they are classified at the boundary so actors can act on ``failure.kind`` alone.
    """

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure

    @property
    def kind(self) -> FailureKind:
        """Shortcut for ``self.failure.kind``."""
        return self.failure.kind


class HttpStatusError(Exception):
    """An HTTP response with an error status, captured where the SDK would swallow it.

    The streamable-HTTP transport turns every non-2xx answer into a generic JSON-RPC
    error (code -32603 "Server returned an error response", or -32600 "Session not
    found" when the body says so), losing the status and the ``WWW-Authenticate`` header.
    The connection's HTTP client records them with a response hook and raises this.
    ``session_id_sent`` tells a forgotten session (404 on a request that carried an
    ``Mcp-Session-Id``) apart from a wrong URL (404 without one).
    """

    def __init__(
        self,
        status: int,
        *,
        reason: str = "",
        method: str = "",
        url: str = "",
        www_authenticate: str | None = None,
        session_id_sent: bool = False,
    ) -> None:
        self.status = status
        self.reason = reason
        self.method = method
        self.url = redact_url(url) if url else ""
        self.www_authenticate = www_authenticate
        self.session_id_sent = session_id_sent
        where = f" for {method} {self.url}".rstrip() if (method or self.url) else ""
        super().__init__(f"HTTP {status}{(' ' + reason) if reason else ''}{where}")


class CommandLaunchError(Exception):
    """Starting a stdio server's command failed; the cause is the ``OSError``/``ValueError``.

    Carries the command (never its arguments or environment, which may hold secrets)
    so the message can name what could not be started.
    """

    def __init__(self, command: str, cwd: str | None, cause: BaseException) -> None:
        self.command = command
        self.cwd = cwd
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else describe_exception(cause)
        where = f" in working directory {cwd!r}" if cwd else ""
        super().__init__(f"cannot start stdio command {command!r}{where}: {reason}")
        self.__cause__ = cause


def describe_exception(exc: BaseException) -> str:
    """``TypeName: first line of the message``, truncated; the message may not be trusted."""
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, TimeoutError):
        text = exc.strerror
    else:
        try:
            text = str(exc)
        except Exception:  # noqa: BLE001 - a broken __str__ must not break classification
            text = ""
    text = truncate(text.splitlines()[0] if text else "")
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def truncate(text: str) -> str:
    """``text`` cut to :data:`MAX_DETAIL` characters, marked with ``...`` when cut."""
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."
