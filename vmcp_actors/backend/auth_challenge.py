"""``WWW-Authenticate`` parsing: what a 401 tells a client about how to authenticate.

A backend that answers 401 names its authorization server in the challenge (RFC 9728
``resource_metadata``); the failure a 401 becomes carries the parsed challenge, so the
auth-required hook can start OAuth without re-reading HTTP headers.  Pure text
processing: no I/O, never raises on malformed input.
"""

from __future__ import annotations

import re

import attrs

__all__ = ["AuthChallenge", "parse_www_authenticate"]


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
