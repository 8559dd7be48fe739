"""classify() decides by exception type, HTTP status and JSON-RPC code; never by message text."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Callable

import anyio
import httpx2
import mcp_types
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError

from vmcp_actors.backend.auth_challenge import AuthChallenge
from vmcp_actors.backend.classify import classify
from vmcp_actors.backend.failures import (
    BackendError,
    CommandLaunchError,
    Failure,
    FailureKind,
    HttpStatusError,
    redact_url,
)

SECRET = "s3cr3t-value"
CHALLENGE = 'Bearer realm="test", resource_metadata="http://127.0.0.1:9/.well-known/oauth-protected-resource"'


def _request(method: str = "POST", session: bool = False) -> httpx2.Request:
    headers = {"Authorization": f"Bearer {SECRET}"}
    if session:
        headers["Mcp-Session-Id"] = "abc"
    return httpx2.Request(method, f"https://user:{SECRET}@mcp.example.test/mcp?token={SECRET}", headers=headers)


def _httpx_status(status: int, www_authenticate: str | None = None, session: bool = False) -> httpx2.HTTPStatusError:
    request = _request(session=session)
    headers = {"WWW-Authenticate": www_authenticate} if www_authenticate else {}
    response = httpx2.Response(status, request=request, headers=headers)
    return httpx2.HTTPStatusError(f"error for {request.url}", request=request, response=response)


def _validation_error() -> pydantic.ValidationError:
    try:
        mcp_types.jsonrpc_message_adapter.validate_json("garbage", by_name=False)
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("garbage validated")


def _chained(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


# ------------------------------------------------------------------ network errors


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        socket.gaierror(-2, "Name or service not known"),
        OSError(113, "No route to host"),
        httpx2.ConnectError("All connection attempts failed"),
        httpx2.ReadError("boom"),
        httpx2.RemoteProtocolError("peer closed connection without sending complete message body"),
    ],
)
def test_network_errors_are_transient(exc: BaseException) -> None:
    failure = classify(exc)
    assert failure.kind is FailureKind.TRANSIENT
    assert failure.http_status is None


def test_messages_do_not_decide_the_kind() -> None:
    # muster would call these transient/config because of "eof" / "certificate" substrings.
    assert classify(MCPError(-32603, "unexpected EOF while reading certificate")).kind is FailureKind.PROTOCOL
    assert classify(RuntimeError("connection refused")).kind is FailureKind.PROTOCOL
    assert classify(ValueError("tls handshake timeout")).kind is FailureKind.CONFIGURATION


# -------------------------------------------------------------------- HTTP status


@pytest.mark.parametrize("status", [500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511, 599])
def test_5xx_is_transient_with_status(status: int) -> None:
    for exc in (HttpStatusError(status, method="POST", url="http://h/mcp"), _httpx_status(status)):
        failure = classify(exc)
        assert failure.kind is FailureKind.TRANSIENT
        assert failure.http_status == status
        assert str(status) in failure.message


@pytest.mark.parametrize("exc", [HttpStatusError(401, www_authenticate=CHALLENGE), _httpx_status(401, CHALLENGE)])
def test_401_is_auth_required_with_challenge(exc: BaseException) -> None:
    failure = classify(exc)
    assert failure.kind is FailureKind.AUTH_REQUIRED
    assert failure.http_status == 401
    assert failure.auth == AuthChallenge(
        scheme="Bearer",
        realm="test",
        resource_metadata_url="http://127.0.0.1:9/.well-known/oauth-protected-resource",
    )


@pytest.mark.parametrize("status", [400, 403, 404, 405, 406, 409, 410, 413, 415, 422])
def test_other_4xx_is_configuration_with_status(status: int) -> None:
    failure = classify(HttpStatusError(status, method="POST", url="http://h/mcp"))
    assert failure.kind is FailureKind.CONFIGURATION
    assert failure.http_status == status


@pytest.mark.parametrize("status", [408, 429])
def test_retry_later_4xx_is_transient(status: int) -> None:
    assert classify(HttpStatusError(status)).kind is FailureKind.TRANSIENT


def test_404_on_a_session_request_is_session_lost() -> None:
    assert classify(HttpStatusError(404, session_id_sent=True)).kind is FailureKind.SESSION_LOST
    assert classify(_httpx_status(404, session=True)).kind is FailureKind.SESSION_LOST
    assert classify(_httpx_status(404, session=False)).kind is FailureKind.CONFIGURATION


def test_http_messages_never_contain_secrets() -> None:
    for exc in (
        _httpx_status(503),
        _httpx_status(401, CHALLENGE),
        HttpStatusError(500, method="POST", url=f"https://u:{SECRET}@h/mcp?k={SECRET}"),
    ):
        failure = classify(exc)
        assert SECRET not in failure.message
        assert "mcp.example.test/mcp" in failure.message or "h/mcp" in failure.message


def test_http_status_beats_the_generic_sdk_error_it_was_hidden_behind() -> None:
    # What streamable HTTP raises for a 401: the status is only known from the hook.
    sdk_error = ExceptionGroup("tg", [ExceptionGroup("tg", [MCPError(-32603, "Server returned an error response")])])
    wrapped = _chained(HttpStatusError(401, www_authenticate=CHALLENGE), sdk_error)
    assert classify(wrapped).kind is FailureKind.AUTH_REQUIRED
    assert classify(sdk_error).kind is FailureKind.PROTOCOL


# ----------------------------------------------------------- TLS and configuration


def test_tls_errors_are_configuration_even_when_wrapped() -> None:
    cert = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer certificate")
    assert classify(cert).kind is FailureKind.CONFIGURATION
    wrapped = _chained(httpx2.ConnectError("connect failed"), cert)
    assert classify(wrapped).kind is FailureKind.CONFIGURATION
    assert classify(ssl.SSLError(1, "wrong version number")).kind is FailureKind.CONFIGURATION


@pytest.mark.parametrize("cause", [FileNotFoundError(2, "No such file or directory"), PermissionError(13, "denied")])
def test_stdio_launch_errors_are_configuration_and_name_the_command(cause: OSError) -> None:
    failure = classify(CommandLaunchError("my-mcp-server", None, cause))
    assert failure.kind is FailureKind.CONFIGURATION
    assert "my-mcp-server" in failure.message
    assert classify(cause).kind is FailureKind.CONFIGURATION


def test_launch_error_from_resource_exhaustion_is_transient() -> None:
    failure = classify(CommandLaunchError("srv", "/tmp", BlockingIOError(11, "Resource temporarily unavailable")))
    assert failure.kind is FailureKind.TRANSIENT
    assert "/tmp" in failure.message


@pytest.mark.parametrize(
    "exc", [httpx2.UnsupportedProtocol("ftp"), httpx2.InvalidURL("bad"), httpx2.TooManyRedirects("loop")]
)
def test_bad_urls_are_configuration(exc: BaseException) -> None:
    assert classify(exc).kind is FailureKind.CONFIGURATION


# ----------------------------------------------------------------------- timeouts


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError(),
        httpx2.ReadTimeout("timed out"),
        httpx2.ConnectTimeout("timed out"),
        MCPError(mcp_types.REQUEST_TIMEOUT, "Request 'ping' timed out"),
    ],
)
def test_timeouts_are_timeout(exc: BaseException) -> None:
    assert classify(exc).kind is FailureKind.TIMEOUT


# ---------------------------------------------------------- protocol and session


@pytest.mark.parametrize(
    "exc",
    [
        MCPError(mcp_types.INTERNAL_ERROR, "boom"),
        MCPError(mcp_types.METHOD_NOT_FOUND, "Method not found"),
        MCPError(mcp_types.PARSE_ERROR, "Failed to parse JSON response"),
        _validation_error(),
        json.JSONDecodeError("Expecting value", "x", 0),
    ],
)
def test_protocol_errors(exc: BaseException) -> None:
    assert classify(exc).kind is FailureKind.PROTOCOL


def test_connection_closed_is_session_lost_but_loses_to_the_real_cause() -> None:
    closed = MCPError(mcp_types.CONNECTION_CLOSED, "Connection closed")
    assert classify(closed).kind is FailureKind.SESSION_LOST
    assert classify(anyio.ClosedResourceError()).kind is FailureKind.SESSION_LOST
    group = ExceptionGroup("tg", [closed, httpx2.ConnectError("All connection attempts failed")])
    assert classify(group).kind is FailureKind.TRANSIENT


# ------------------------------------------------------------------ unwrapping


def test_exception_groups_are_unwrapped_and_cancellation_ignored() -> None:
    group = BaseExceptionGroup(
        "outer",
        [asyncio.CancelledError(), ExceptionGroup("inner", [httpx2.ConnectError("All connection attempts failed")])],
    )
    assert classify(group).kind is FailureKind.TRANSIENT
    assert classify(asyncio.CancelledError()).kind is FailureKind.TRANSIENT


def test_cause_chains_are_followed() -> None:
    assert classify(_chained(RuntimeError("wrapper"), ConnectionRefusedError())).kind is FailureKind.TRANSIENT
    implicit = RuntimeError("during handling")
    implicit.__context__ = TimeoutError()
    assert classify(implicit).kind is FailureKind.TIMEOUT


def test_cycles_terminate() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert classify(a).kind is FailureKind.PROTOCOL


def test_backend_error_passes_through() -> None:
    failure = Failure(FailureKind.AUTH_REQUIRED, "already classified", 401)
    assert classify(BackendError(failure)) is failure
    assert classify(ExceptionGroup("g", [BackendError(failure), OSError()])) is failure
    assert str(BackendError(failure)) == "already classified"
    assert BackendError(failure).kind is FailureKind.AUTH_REQUIRED


def test_unknown_exceptions_are_reported_with_their_type() -> None:
    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("broken __str__")

    failure = classify(Weird())
    assert failure.kind is FailureKind.PROTOCOL
    assert "Weird" in failure.message


def test_redact_url() -> None:
    assert (
        redact_url(f"https://u:{SECRET}@h.test:8443/p/mcp?t={SECRET}#f")
        == "https://<redacted>@h.test:8443/p/mcp?t=<redacted>"
    )
    assert redact_url("http://[::1]:9/mcp") == "http://[::1]:9/mcp"
    assert redact_url("http://[::1") == "<unparseable url>"


# ------------------------------------------------------------------- properties

_LEAVES: list[Callable[[], BaseException]] = [
    lambda: ConnectionRefusedError(111, "refused"),
    lambda: TimeoutError(),
    lambda: asyncio.CancelledError(),
    lambda: MCPError(mcp_types.CONNECTION_CLOSED, "Connection closed"),
    lambda: MCPError(mcp_types.INTERNAL_ERROR, SECRET),
    lambda: HttpStatusError(401, www_authenticate=f'Bearer realm="{SECRET}"'),
    lambda: HttpStatusError(503),
    lambda: _httpx_status(404, session=True),
    lambda: httpx2.ConnectError("All connection attempts failed"),
    lambda: ssl.SSLCertVerificationError(1, "certificate verify failed"),
    lambda: FileNotFoundError(2, "No such file or directory"),
    lambda: KeyboardInterrupt(),
    lambda: RuntimeError(SECRET),
    lambda: ValueError("x"),
    lambda: anyio.EndOfStream(),
    lambda: BackendError(Failure(FailureKind.PROTOCOL, "inner")),
]

_leaf = st.sampled_from(_LEAVES).map(lambda make: make())


def _group(children: list[BaseException]) -> BaseException:
    if all(isinstance(child, Exception) for child in children):
        return ExceptionGroup("group", children)  # type: ignore[type-var]
    return BaseExceptionGroup("group", children)


_tree = st.recursive(_leaf, lambda inner: st.lists(inner, min_size=1, max_size=4).map(_group), max_leaves=25)


@st.composite
def _linked_trees(draw: st.DrawFn) -> BaseException:
    """Trees plus arbitrary __cause__/__context__ links between their nodes (cycles included)."""
    root = draw(_tree)
    nodes: list[BaseException] = []
    stack = [root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        if isinstance(node, BaseExceptionGroup):
            stack.extend(node.exceptions)
    for _ in range(draw(st.integers(0, 6))):
        source = draw(st.sampled_from(nodes))
        target = draw(st.sampled_from(nodes))
        if draw(st.booleans()):
            source.__cause__ = target
        else:
            source.__context__ = target
    return root


@settings(max_examples=300, deadline=None)
@given(_linked_trees())
def test_classify_is_total_on_arbitrary_nested_groups(exc: BaseException) -> None:
    failure = classify(exc)
    assert isinstance(failure, Failure)
    assert isinstance(failure.kind, FailureKind)
    assert isinstance(failure.message, str)
    assert failure.message
    if failure.kind is not FailureKind.PROTOCOL:
        assert SECRET not in failure.message
