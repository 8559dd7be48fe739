"""WWW-Authenticate parsing: several challenges, quoting and escapes, Bearer preferred; never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmcp_actors.backend.auth_challenge import AuthChallenge, parse_www_authenticate


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        (",, ,", None),
        ("Bearer", AuthChallenge(scheme="Bearer")),
        (
            'Bearer realm="test", resource_metadata="http://h/.well-known/oauth-protected-resource", '
            'scope="a b", error="invalid_token"',
            AuthChallenge("Bearer", "test", "http://h/.well-known/oauth-protected-resource", "a b", "invalid_token"),
        ),
        (
            'Basic realm="a, b", Bearer realm="x\\"y", error=invalid_token',
            AuthChallenge("Bearer", 'x"y', error="invalid_token"),
        ),
        ("Negotiate abc==", AuthChallenge(scheme="Negotiate")),
        ('Basic realm="only basic"', AuthChallenge("Basic", "only basic")),
        ('bearer REALM="case"', AuthChallenge("bearer", "case")),
    ],
)
def test_parse_www_authenticate(header: str | None, expected: AuthChallenge | None) -> None:
    assert parse_www_authenticate(header) == expected


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_www_authenticate_never_raises(header: str) -> None:
    challenge = parse_www_authenticate(header)
    assert challenge is None or challenge.scheme
