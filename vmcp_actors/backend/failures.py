"""Failure vocabulary: what went wrong with a backend, decided from exception *types*.

Upstream muster decides "is this transient?" by lower-casing error messages and looking
for substrings such as ``"eof"`` or ``"certificate"`` (reference §3.3, gotcha §10.7), so a
word inside an unrelated message flips the outcome.  Here :func:`classify` walks the
exception tree (``ExceptionGroup`` members, ``__cause__`` and ``__context__``) and decides
from exception classes, HTTP status codes and JSON-RPC error codes only.  Messages are
built from fixed text plus short, non-secret details; header values, environment values,
URL user-info and query strings never reach a :class:`Failure` message.

The module is pure: no I/O, no clock.  It knows the exception types of the official MCP
SDK (``mcp.shared.exceptions.MCPError``) and of its HTTP client (``httpx2``) because those
are what the transports raise; :mod:`vmcp_actors.backend.session` adds two exception types of
its own (:class:`HttpStatusError`, :class:`CommandLaunchError`) for facts the SDK swallows.
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import ssl
from collections.abc import Iterator

import anyio
import attrs
import httpx2
import mcp_types
import pydantic
from mcp.shared.exceptions import MCPError

from vmcp_actors.config.redaction import redact_url

__all__ = [
    "AuthChallenge",
    "BackendError",
    "CommandLaunchError",
    "Failure",
    "FailureKind",
    "HttpStatusError",
    "classify",
    "parse_www_authenticate",
    "redact_url",
]

_MAX_DETAIL = 200
_MAX_NODES = 256


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
class AuthChallenge:
    """The parts of a ``WWW-Authenticate`` challenge a client needs to start OAuth.

    ``resource_metadata_url`` is the RFC 9728 protected-resource metadata location that
    MCP authorization starts from; ``error`` is the RFC 6750 error code if the server
    sent one.
    """

    scheme: str
    realm: str | None = None
    resource_metadata_url: str | None = None
    scope: str | None = None
    error: str | None = None


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
        reason = _os_reason(cause)
        where = f" in working directory {cwd!r}" if cwd else ""
        super().__init__(f"cannot start stdio command {command!r}{where}: {reason}")
        self.__cause__ = cause


def parse_www_authenticate(header: str | None) -> AuthChallenge | None:
    """Parse a ``WWW-Authenticate`` value into an :class:`AuthChallenge`; never raises.

    Handles several comma-separated challenges (``Basic realm="a", Bearer realm="b"``),
    quoted strings with backslash escapes and token values.  The ``Bearer`` challenge is
    preferred because MCP authorization is OAuth 2.1 bearer-token based; otherwise the
    first challenge is returned.  ``None`` for an empty or unparseable header.
    """
    if not header:
        return None
    challenges = _parse_challenges(header)
    if not challenges:
        return None
    scheme, params = next(((s, p) for s, p in challenges if s.lower() == "bearer"), challenges[0])
    return AuthChallenge(
        scheme=scheme,
        realm=params.get("realm"),
        resource_metadata_url=params.get("resource_metadata"),
        scope=params.get("scope"),
        error=params.get("error"),
    )


_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SCHEME_AND_REST = re.compile(rf"({_TOKEN})\s+(.*)", re.DOTALL)
_PARAM = re.compile(rf"({_TOKEN})\s*=\s*(.*)", re.DOTALL)


def _parse_challenges(header: str) -> list[tuple[str, dict[str, str]]]:
    """Split RFC 9110 challenges: ``scheme [token68 | name=value *(, name=value)]``, comma separated.

    Each top-level comma-separated item is either ``scheme``, ``scheme name=value``,
    ``scheme token68`` (starts a new challenge) or ``name=value`` (continues the current
    one).  Quoted strings may contain commas and backslash escapes.
    """
    challenges: list[tuple[str, dict[str, str]]] = []
    for item in _split_top_level(header):
        if not item:
            continue
        param = _PARAM.fullmatch(item)
        if param is not None and challenges:
            challenges[-1][1].setdefault(param.group(1).lower(), _unquote(param.group(2)))
            continue
        scheme_and_rest = _SCHEME_AND_REST.fullmatch(item)
        if scheme_and_rest is None:
            if param is None and re.fullmatch(_TOKEN, item):
                challenges.append((item, {}))
            continue
        params: dict[str, str] = {}
        rest = scheme_and_rest.group(2).strip()
        first = _PARAM.fullmatch(rest)
        if first is not None and not _TOKEN68.fullmatch(rest):
            params[first.group(1).lower()] = _unquote(first.group(2))
        challenges.append((scheme_and_rest.group(1), params))
    return challenges


def _split_top_level(header: str) -> list[str]:
    """Split on commas that are not inside a quoted string; items are stripped."""
    items: list[str] = []
    current: list[str] = []
    in_quotes = False
    escaped = False
    for char in header:
        if escaped:
            current.append(char)
            escaped = False
        elif in_quotes and char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            in_quotes = not in_quotes
        elif char == "," and not in_quotes:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    return items


def _unquote(value: str) -> str:
    """Undo RFC 9110 quoted-string quoting (an unterminated quote keeps the rest)."""
    value = value.strip()
    if not value.startswith('"'):
        return value
    out: list[str] = []
    escaped = False
    for char in value[1:]:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            break
        else:
            out.append(char)
    return "".join(out)


# --------------------------------------------------------------------------- classify


def classify(exc: BaseException) -> Failure:
    """Classify any exception (group) into a :class:`Failure`; never raises.

    The whole exception tree is searched (group members, causes, contexts) and the most
    specific finding wins, in this order: an already classified :class:`BackendError`;
    an HTTP status; TLS/certificate errors; launch and URL configuration errors; timeouts;
    protocol violations; network errors; and last the symptoms every failure drags along
    (cancellation, "connection closed", closed streams).  Anything unknown is reported as
    ``PROTOCOL`` with its type name, so it is visible rather than silently retried.
    """
    try:
        best: tuple[int, Failure] | None = None
        for node in _walk(exc):
            found = _classify_one(node)
            if found is not None and (best is None or found[0] < best[0]):
                best = found
        if best is not None:
            return best[1]
        return Failure(FailureKind.PROTOCOL, f"unexpected error: {_describe(exc)}")
    except Exception as failure_to_classify:  # noqa: BLE001 - classify is total: it must never raise
        return Failure(FailureKind.PROTOCOL, f"unclassifiable error ({type(failure_to_classify).__name__})")


def _walk(root: BaseException) -> Iterator[BaseException]:
    """Breadth-first over an exception tree: groups, ``__cause__``, implicit ``__context__``.

    Bounded and cycle-safe, because exception chains can loop and groups can be huge.
    """
    seen: set[int] = set()
    queue: list[BaseException] = [root]
    index = 0
    while index < len(queue) and index < _MAX_NODES:
        node = queue[index]
        index += 1
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, BaseExceptionGroup):
            queue.extend(node.exceptions)
        if node.__cause__ is not None:
            queue.append(node.__cause__)
        elif node.__context__ is not None and not node.__suppress_context__:
            queue.append(node.__context__)


# Lower rank wins.  Symptoms rank last so that the real cause found anywhere in the tree
# beats them (a dead transport shows up as CancelledError + "Connection closed" too).
_RANK_BACKEND = 0
_RANK_HTTP = 10
_RANK_TLS = 20
_RANK_CONFIG = 30
_RANK_PROTOCOL_VIOLATION = 35
_RANK_TIMEOUT = 40
_RANK_NETWORK = 50
_RANK_PROTOCOL = 60
_RANK_CONFIG_WEAK = 70
_RANK_SYMPTOM = 90

_CONFIG_OS_ERRORS = (FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError)


def _classify_one(exc: BaseException) -> tuple[int, Failure] | None:
    """Classify a single exception, ignoring its children; ``None`` if it says nothing."""
    if isinstance(exc, BackendError):
        return _RANK_BACKEND, exc.failure
    if isinstance(exc, HttpStatusError):
        return _RANK_HTTP, _from_status(exc.status, str(exc), exc.www_authenticate, session_id_sent=exc.session_id_sent)
    if isinstance(exc, httpx2.HTTPStatusError):
        return _RANK_HTTP, _from_httpx_status(exc)
    if isinstance(exc, ssl.SSLCertVerificationError | ssl.CertificateError):
        return _RANK_TLS, Failure(FailureKind.CONFIGURATION, f"TLS certificate verification failed: {_describe(exc)}")
    if isinstance(exc, ssl.SSLError):
        return _RANK_TLS, Failure(FailureKind.CONFIGURATION, f"TLS error: {_describe(exc)}")
    if isinstance(exc, CommandLaunchError):
        cause = exc.__cause__
        kind = (
            FailureKind.CONFIGURATION
            if cause is None or isinstance(cause, (*_CONFIG_OS_ERRORS, ValueError))
            else FailureKind.TRANSIENT
        )
        return _RANK_CONFIG, Failure(kind, str(exc))
    if isinstance(exc, httpx2.UnsupportedProtocol | httpx2.InvalidURL | httpx2.TooManyRedirects):
        return _RANK_CONFIG, Failure(FailureKind.CONFIGURATION, f"invalid server URL: {_describe(exc)}")
    if isinstance(exc, _CONFIG_OS_ERRORS):
        return _RANK_CONFIG, Failure(FailureKind.CONFIGURATION, _describe(exc))
    if isinstance(exc, pydantic.ValidationError | json.JSONDecodeError):
        return _RANK_PROTOCOL_VIOLATION, Failure(
            FailureKind.PROTOCOL, f"server sent a message that is not valid MCP ({type(exc).__name__})"
        )
    if isinstance(exc, TimeoutError | httpx2.TimeoutException):
        return _RANK_TIMEOUT, Failure(FailureKind.TIMEOUT, f"timed out: {_describe(exc)}")
    if isinstance(exc, MCPError):
        return _from_mcp_error(exc)
    if isinstance(exc, httpx2.TransportError | ConnectionError | OSError):
        return _RANK_NETWORK, Failure(FailureKind.TRANSIENT, f"connection failed: {_describe(exc)}")
    if isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream):
        return _RANK_SYMPTOM, Failure(FailureKind.SESSION_LOST, f"connection closed ({type(exc).__name__})")
    if isinstance(exc, ValueError | TypeError):
        return _RANK_CONFIG_WEAK, Failure(FailureKind.CONFIGURATION, f"invalid parameters: {_describe(exc)}")
    if isinstance(exc, BaseExceptionGroup):
        return None
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit | GeneratorExit):
        return _RANK_SYMPTOM, Failure(FailureKind.TRANSIENT, f"operation was cancelled ({type(exc).__name__})")
    return None


def _from_mcp_error(exc: MCPError) -> tuple[int, Failure]:
    code = exc.code
    text = _truncate(exc.message)
    if code == mcp_types.REQUEST_TIMEOUT:
        return _RANK_TIMEOUT, Failure(FailureKind.TIMEOUT, f"request timed out: {text}")
    if code == mcp_types.CONNECTION_CLOSED:
        return _RANK_SYMPTOM, Failure(FailureKind.SESSION_LOST, "connection to the server closed")
    if code == mcp_types.PARSE_ERROR:
        return _RANK_PROTOCOL_VIOLATION, Failure(FailureKind.PROTOCOL, f"server sent unparseable data: {text}")
    return _RANK_PROTOCOL, Failure(FailureKind.PROTOCOL, f"server returned JSON-RPC error {code}: {text}")


def _from_httpx_status(exc: httpx2.HTTPStatusError) -> Failure:
    response = exc.response
    request = exc.request
    session_id_sent = "mcp-session-id" in request.headers
    description = (
        f"HTTP {response.status_code} {response.reason_phrase} for {request.method} {redact_url(str(request.url))}"
    )
    return _from_status(
        response.status_code,
        description,
        response.headers.get("www-authenticate"),
        session_id_sent=session_id_sent,
    )


def _from_status(status: int, description: str, www_authenticate: str | None, *, session_id_sent: bool) -> Failure:
    """Decide by HTTP status code; see :class:`FailureKind` for the meaning of each kind."""
    challenge = parse_www_authenticate(www_authenticate)
    if status == 401:
        return Failure(FailureKind.AUTH_REQUIRED, f"authentication required: {description}", status, challenge)
    if status == 404 and session_id_sent:
        return Failure(
            FailureKind.SESSION_LOST,
            f"server no longer knows the MCP session (it restarted or expired it): {description}",
            status,
        )
    if 500 <= status <= 599:
        return Failure(FailureKind.TRANSIENT, f"server error: {description}", status)
    if status in (408, 429):
        # RFC 9110 §15.5.9 / RFC 6585 §4: "try again later" by definition, unlike other 4xx.
        return Failure(FailureKind.TRANSIENT, f"server asked to retry later: {description}", status)
    return Failure(FailureKind.CONFIGURATION, f"server rejected the request: {description}", status, challenge)


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return _describe(exc)


def _describe(exc: BaseException) -> str:
    """``TypeName: first line of the message``, truncated; the message may not be trusted."""
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, TimeoutError):
        text = exc.strerror
    else:
        try:
            text = str(exc)
        except Exception:  # noqa: BLE001 - a broken __str__ must not break classification
            text = ""
    text = _truncate(text.splitlines()[0] if text else "")
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
