"""ConnectParams: validated, immutable, hashable, and its repr never shows secrets."""

from __future__ import annotations

from typing import Any

import pytest

from vmcp_actors.backend.session import ConnectParams

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]


def test_mappings_are_frozen_into_pairs_and_params_are_hashable() -> None:
    env = {"API_KEY": "env-secret-value", "MODE": "fast"}
    params = ConnectParams(name="a", transport="stdio", command="server", args=["--x"], env=env)
    env["API_KEY"] = "changed"
    assert params.env == (("API_KEY", "env-secret-value"), ("MODE", "fast"))
    assert params.args == ("--x",)
    assert hash(params) == hash(
        ConnectParams(name="a", transport="stdio", command="server", args=("--x",), env=params.env)
    )


def test_repr_redacts_env_and_header_values_and_url_credentials() -> None:
    stdio = ConnectParams(name="s", transport="stdio", command="server", env={"API_KEY": "env-secret-value"})
    http = ConnectParams(
        name="h",
        transport="streamable-http",
        url="https://user:pw-secret@example.test:8443/mcp?token=query-secret#frag",
        headers={"Authorization": "Bearer header-secret"},
    )
    for text in (repr(stdio), str(stdio), repr(http), str(http)):
        for secret in ("env-secret-value", "header-secret", "pw-secret", "query-secret"):
            assert secret not in text
    assert "API_KEY" in repr(stdio)
    assert "Authorization" in repr(http)
    assert "https://<redacted>@example.test:8443/mcp?token=<redacted>" in repr(http)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"transport": "stdio"}, "command"),
        ({"transport": "streamable-http"}, "url"),
        ({"transport": "sse"}, "url"),
        ({"transport": "websocket", "url": "ws://x"}, "transport"),
        ({"transport": "stdio", "command": "x", "connect_timeout": 0}, "connect_timeout"),
        ({"transport": "stdio", "command": "x", "connect_timeout": float("inf")}, "connect_timeout"),
    ],
)
def test_invalid_params_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        ConnectParams(name="bad", **kwargs)


def test_args_must_not_be_a_bare_string() -> None:
    with pytest.raises(TypeError):
        ConnectParams(name="bad", transport="stdio", command="x", args="--flag")


def test_is_remote() -> None:
    assert not ConnectParams(name="s", transport="stdio", command="x").is_remote
    assert ConnectParams(name="h", transport="sse", url="http://127.0.0.1:1/sse").is_remote
