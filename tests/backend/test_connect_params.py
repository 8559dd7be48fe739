"""ConnectParams: validated, immutable, hashable, its repr never shows secrets; built from a spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vmcp_actors.backend.connect_params import DEFAULT_MAX_RESPONSE_BYTES, ConnectParams, params_for
from vmcp_actors.backend.failures import BackendError, FailureKind
from vmcp_actors.config.auth import AuthSpec
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.backend_values import DEFAULT_REMOTE_TIMEOUT, DEFAULT_STDIO_START_TIMEOUT
from vmcp_actors.errors import ConfigError


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
        ({"transport": "stdio", "command": "x", "max_response_bytes": 0}, "max_response_bytes"),
        ({"transport": "stdio", "command": "x", "max_response_bytes": True}, "max_response_bytes"),
        ({"transport": "stdio", "command": "x", "max_response_bytes": 1.5}, "max_response_bytes"),
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


def test_params_for_a_spec_use_its_connect_timeout() -> None:
    stdio = params_for(BackendSpec(name="s", command="server", args=("--x",), env={"K": "v"}, cwd="/tmp"))
    assert (stdio.transport, stdio.command, stdio.args, stdio.env, stdio.cwd) == (
        "stdio",
        "server",
        ("--x",),
        (("K", "v"),),
        "/tmp",
    )
    assert stdio.connect_timeout == DEFAULT_STDIO_START_TIMEOUT
    remote = params_for(BackendSpec(name="h", type="sse", url="http://127.0.0.1:1/sse"))
    assert remote.connect_timeout == DEFAULT_REMOTE_TIMEOUT
    assert ConnectParams(name="h", transport="sse", url="http://127.0.0.1:1/sse").connect_timeout == (
        DEFAULT_REMOTE_TIMEOUT
    )


def test_max_response_bytes_comes_from_the_spec_or_defaults_to_16_mib() -> None:
    """Issue 9 #9: the size limit is configurable per backend (``maxResponseBytes``)."""
    spec = BackendSpec.from_dict(
        {"name": "h", "type": "sse", "url": "http://127.0.0.1:1/sse", "maxResponseBytes": 4096}
    )
    assert params_for(spec).max_response_bytes == 4096
    assert spec.redacted()["maxResponseBytes"] == 4096
    assert spec.config_changed(BackendSpec.from_dict({"name": "h", "type": "sse", "url": "http://127.0.0.1:1/sse"}))
    unset = BackendSpec(name="s", command="server")
    assert params_for(unset).max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES == 16 * 1024 * 1024


@pytest.mark.parametrize("value", [0, 512, 2**31, True, "16MiB", 1.5])
def test_a_bad_max_response_bytes_names_the_field(value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        BackendSpec.from_dict({"name": "s", "type": "stdio", "command": "x", "maxResponseBytes": value})
    assert [problem.field for problem in caught.value.problems] == ["maxResponseBytes"]


def test_params_for_read_the_bearer_token_at_connect_time(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("file-secret\n")
    spec = BackendSpec(
        name="h",
        type="streamable-http",
        url="http://127.0.0.1:1/mcp",
        headers={"X-Team": "a"},
        auth=AuthSpec(type="bearer", token_file=str(token)),
    )
    assert dict(params_for(spec).headers) == {"X-Team": "a", "Authorization": "Bearer file-secret"}
    token.write_text("rotated\n")
    assert dict(params_for(spec).headers)["Authorization"] == "Bearer rotated"


def test_an_unreadable_token_is_a_configuration_failure_without_the_secret(tmp_path: Path) -> None:
    spec = BackendSpec(
        name="h",
        type="streamable-http",
        url="http://127.0.0.1:1/mcp",
        auth=AuthSpec(type="bearer", token_file=str(tmp_path / "missing")),
    )
    with pytest.raises(BackendError) as raised:
        params_for(spec)
    assert raised.value.kind is FailureKind.CONFIGURATION
    assert "auth.tokenFile" in raised.value.failure.message
