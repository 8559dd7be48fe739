"""Failure classification: which :class:`~vmcp_actors.backend.failures.FailureKind` an exception means.

Upstream muster decides "is this transient?" by lower-casing error messages and looking
for substrings such as ``"eof"`` or ``"certificate"`` (reference §3.3, gotcha §10.7), so a
word inside an unrelated message flips the outcome.  Here :func:`classify` walks the
exception tree (``ExceptionGroup`` members, ``__cause__`` and ``__context__``) and decides
from exception classes, HTTP status codes and JSON-RPC error codes only, through one
ordered table of rules (:data:`_RULES`).

It knows the exception types of the official MCP SDK (``mcp.shared.exceptions.MCPError``),
of its HTTP client (``httpx2``) and of anyio, because those are what the transports raise;
that is why it lives apart from the pure failure vocabulary in
:mod:`vmcp_actors.backend.failures`, which the lifecycle imports.  No I/O, no clock.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable, Iterator
from typing import Any, Final

import anyio
import httpx2
import mcp_types
import pydantic
from mcp.shared.exceptions import MCPError

from vmcp_actors.backend.auth_challenge import parse_www_authenticate
from vmcp_actors.backend.failures import (
    BackendError,
    CommandLaunchError,
    Failure,
    FailureKind,
    HttpStatusError,
    describe_exception,
    redact_url,
    truncate,
)

__all__ = ["classify", "is_connection_closed"]

_MAX_NODES = 256

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

_Ranked = tuple[int, Failure]


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
        best: _Ranked | None = None
        for node in _walk(exc):
            found = _classify_one(node)
            if found is not None and (best is None or found[0] < best[0]):
                best = found
        if best is not None:
            return best[1]
        return Failure(FailureKind.PROTOCOL, f"unexpected error: {describe_exception(exc)}")
    except Exception as failure_to_classify:  # noqa: BLE001 - classify is total: it must never raise
        return Failure(FailureKind.PROTOCOL, f"unclassifiable error ({type(failure_to_classify).__name__})")


def is_connection_closed(exc: BaseException) -> bool:
    """Whether ``exc`` is the symptom of a transport that is gone, whatever the cause."""
    if isinstance(exc, MCPError):
        return exc.code == mcp_types.CONNECTION_CLOSED
    return isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream)


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


def _classify_one(exc: BaseException) -> _Ranked | None:
    """Classify a single exception, ignoring its children; ``None`` if it says nothing.

    The first rule whose types match decides, so the table's order is the precedence
    between overlapping types (``TimeoutError`` and ``ssl.SSLError`` are ``OSError`` too;
    ``pydantic.ValidationError`` is a ``ValueError``).
    """
    for types, rule in _RULES:
        if isinstance(exc, types):
            return rule(exc)
    return None


# --------------------------------------------------------------------------- rules


def _backend_error(exc: BackendError) -> _Ranked:
    return _RANK_BACKEND, exc.failure


def _recorded_status(exc: HttpStatusError) -> _Ranked:
    return _RANK_HTTP, _from_status(exc.status, str(exc), exc.www_authenticate, session_id_sent=exc.session_id_sent)


def _httpx_status(exc: httpx2.HTTPStatusError) -> _Ranked:
    response = exc.response
    request = exc.request
    description = (
        f"HTTP {response.status_code} {response.reason_phrase} for {request.method} {redact_url(str(request.url))}"
    )
    failure = _from_status(
        response.status_code,
        description,
        response.headers.get("www-authenticate"),
        session_id_sent="mcp-session-id" in request.headers,
    )
    return _RANK_HTTP, failure


def _tls_verification(exc: BaseException) -> _Ranked:
    return _RANK_TLS, Failure(
        FailureKind.CONFIGURATION, f"TLS certificate verification failed: {describe_exception(exc)}"
    )


def _tls(exc: BaseException) -> _Ranked:
    return _RANK_TLS, Failure(FailureKind.CONFIGURATION, f"TLS error: {describe_exception(exc)}")


def _launch(exc: CommandLaunchError) -> _Ranked:
    cause = exc.__cause__
    configuration = cause is None or isinstance(cause, (*_CONFIG_OS_ERRORS, ValueError))
    return _RANK_CONFIG, Failure(FailureKind.CONFIGURATION if configuration else FailureKind.TRANSIENT, str(exc))


def _invalid_url(exc: BaseException) -> _Ranked:
    return _RANK_CONFIG, Failure(FailureKind.CONFIGURATION, f"invalid server URL: {describe_exception(exc)}")


def _config_os_error(exc: BaseException) -> _Ranked:
    return _RANK_CONFIG, Failure(FailureKind.CONFIGURATION, describe_exception(exc))


def _invalid_message(exc: BaseException) -> _Ranked:
    return _RANK_PROTOCOL_VIOLATION, Failure(
        FailureKind.PROTOCOL, f"server sent a message that is not valid MCP ({type(exc).__name__})"
    )


def _timeout(exc: BaseException) -> _Ranked:
    return _RANK_TIMEOUT, Failure(FailureKind.TIMEOUT, f"timed out: {describe_exception(exc)}")


def _mcp_error(exc: MCPError) -> _Ranked:
    code = exc.code
    text = truncate(exc.message)
    if code == mcp_types.REQUEST_TIMEOUT:
        return _RANK_TIMEOUT, Failure(FailureKind.TIMEOUT, f"request timed out: {text}")
    if code == mcp_types.CONNECTION_CLOSED:
        return _RANK_SYMPTOM, Failure(FailureKind.SESSION_LOST, "connection to the server closed")
    if code == mcp_types.PARSE_ERROR:
        return _RANK_PROTOCOL_VIOLATION, Failure(FailureKind.PROTOCOL, f"server sent unparseable data: {text}")
    return _RANK_PROTOCOL, Failure(FailureKind.PROTOCOL, f"server returned JSON-RPC error {code}: {text}")


def _network(exc: BaseException) -> _Ranked:
    return _RANK_NETWORK, Failure(FailureKind.TRANSIENT, f"connection failed: {describe_exception(exc)}")


def _stream_closed(exc: BaseException) -> _Ranked:
    return _RANK_SYMPTOM, Failure(FailureKind.SESSION_LOST, f"connection closed ({type(exc).__name__})")


def _invalid_parameters(exc: BaseException) -> _Ranked:
    return _RANK_CONFIG_WEAK, Failure(FailureKind.CONFIGURATION, f"invalid parameters: {describe_exception(exc)}")


def _says_nothing(_exc: BaseException) -> None:
    """A group says nothing itself; its members are walked."""
    return


def _cancelled(exc: BaseException) -> _Ranked:
    return _RANK_SYMPTOM, Failure(FailureKind.TRANSIENT, f"operation was cancelled ({type(exc).__name__})")


_Rule = tuple[tuple[type[BaseException], ...], Callable[[Any], _Ranked | None]]

#: Ordered: the first rule whose exception types match an exception decides for it.
_RULES: Final[tuple[_Rule, ...]] = (
    ((BackendError,), _backend_error),
    ((HttpStatusError,), _recorded_status),
    ((httpx2.HTTPStatusError,), _httpx_status),
    ((ssl.SSLCertVerificationError, ssl.CertificateError), _tls_verification),
    ((ssl.SSLError,), _tls),
    ((CommandLaunchError,), _launch),
    ((httpx2.UnsupportedProtocol, httpx2.InvalidURL, httpx2.TooManyRedirects), _invalid_url),
    (_CONFIG_OS_ERRORS, _config_os_error),
    ((pydantic.ValidationError, json.JSONDecodeError), _invalid_message),
    ((TimeoutError, httpx2.TimeoutException), _timeout),
    ((MCPError,), _mcp_error),
    ((httpx2.TransportError, ConnectionError, OSError), _network),
    ((anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream), _stream_closed),
    ((ValueError, TypeError), _invalid_parameters),
    ((BaseExceptionGroup,), _says_nothing),
    ((asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit), _cancelled),
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
