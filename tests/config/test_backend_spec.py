"""BackendSpec: muster's validation messages and change rules, and no leaked secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmcp_actors.config.auth import AuthSpec
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.errors import ValidationError

STDIO = BackendSpec(name="files", type="stdio", command="python", args=["-m", "files"], env={"ROOT": "/data"})
REMOTE = BackendSpec(
    name="github",
    type="streamable-http",
    url="http://127.0.0.1:8080/mcp",
    headers={"Authorization": "Bearer sekrit-header"},
    timeout=30,
)


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (BackendSpec(name="", command="x"), "name", "name is required"),
        (BackendSpec(name="bad name!", command="x"), "name", "letters, digits"),
        (BackendSpec(name="s", type="stdio"), "command", "command is required for stdio type"),
        (BackendSpec(name="r", type="sse"), "url", "url is required for streamable-http and sse types"),
        (BackendSpec(name="r", type="streamable-http", url="ftp://x/"), "url", "http or https"),
        (BackendSpec(name="r", type="streamable-http", url="http:///mcp"), "url", "must name a host"),
        (BackendSpec(name="r", type="streamable-http", url="http://h:99999/"), "url", "invalid port"),
        (BackendSpec(name="r", type="streamable-http", url="http://[::1/mcp"), "url", "not a valid URL"),
        (BackendSpec(name="r", type="sse", url="http://h/", timeout=-1), "timeout", "between 0 and"),
        (BackendSpec(name="r", type="sse", url="http://h/", timeout=30000), "timeout", "between 0 and"),
        (BackendSpec(name="r", type="sse", url="http://h/", auth=AuthSpec(type="bearer")), "auth", "exactly one"),
        (BackendSpec(name="s", command="x", auth=AuthSpec(type="bearer", token_env="T")), "auth", "remote backends"),
    ],
)
def test_validation_names_the_field_with_musters_messages(spec: BackendSpec, field: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        spec.validate()
    assert info.value.field == field
    assert message in str(info.value)


def test_unknown_type_is_rejected_at_construction() -> None:
    with pytest.raises(ValidationError, match="unsupported MCP server type: 'grpc'") as info:
        BackendSpec(name="x", type="grpc")
    assert info.value.field == "type"


def test_valid_specs_validate_and_problems_carry_the_path() -> None:
    assert STDIO.validate() is STDIO
    assert REMOTE.validate() is REMOTE
    (problem,) = BackendSpec(name="x", type="sse").problems("backends[3]")
    assert problem.field == "backends[3].url"


def test_connect_timeouts_follow_muster() -> None:
    assert STDIO.connect_timeout == 10.0
    assert BackendSpec(name="r", type="sse", url="http://h/").connect_timeout == 30.0
    assert BackendSpec(name="r", type="sse", url="http://h/", timeout=0).connect_timeout == 30.0
    assert BackendSpec(name="r", type="sse", url="http://h/", timeout=60).connect_timeout == 60.0


CHANGES_THAT_RESTART = {
    "url": {"url": "http://127.0.0.1:9090/mcp"},
    "command": {"command": "python3"},
    "type": {"type": "sse"},
    "args": {"args": ["-m", "other"]},
    "env": {"env": {"ROOT": "/other"}},
    "headers": {"headers": {"X-Extra": "1"}},
    "timeout": {"timeout": 31},
    "tool_prefix": {"tool_prefix": "gh"},
    "auth": {"auth": AuthSpec(type="bearer", token_env="GH_TOKEN")},
}


@pytest.mark.parametrize("change", sorted(CHANGES_THAT_RESTART))
def test_these_changes_need_a_restart(change: str) -> None:
    base = REMOTE if change not in ("command", "args", "env") else STDIO
    new = BackendSpec(**{**_fields(base), **CHANGES_THAT_RESTART[change]})
    assert base.config_changed(new)


def test_auto_start_matters_only_from_false_to_true_and_description_never() -> None:
    off = BackendSpec(**{**_fields(STDIO), "auto_start": False})
    assert off.config_changed(STDIO)
    assert not STDIO.config_changed(off)
    assert not STDIO.config_changed(BackendSpec(**{**_fields(STDIO), "description": "new words"}))
    assert STDIO.config_changed("not a spec")
    assert STDIO.config_changed(None)


def test_missing_and_empty_collections_are_equal() -> None:
    a = BackendSpec(name="x", command="c")
    b = BackendSpec(name="x", command="c", args=[], env={}, headers=None)
    assert a == b
    assert not a.config_changed(b)


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=4))
def test_env_order_does_not_count_as_a_change(env: dict[str, str]) -> None:
    forward = BackendSpec(name="x", command="c", env=env)
    backward = BackendSpec(name="x", command="c", env=dict(reversed(list(env.items()))))
    assert not forward.config_changed(backward)


def test_secrets_never_appear_in_repr_or_service_data() -> None:
    spec = BackendSpec(
        name="x",
        type="streamable-http",
        url="http://h/",
        headers={"Authorization": "Bearer sekrit-header"},
        env={"API_KEY": "sekrit-env"},
    )
    for text in (repr(spec), str(spec), str(spec.redacted())):
        assert "sekrit" not in text
        assert "Authorization" in text
    assert "sekrit" not in repr(STDIO) + repr(REMOTE)


def test_bearer_token_is_read_from_env_or_file_and_errors_never_show_it(tmp_path: Path) -> None:
    assert AuthSpec(type="bearer", token_env="TOK").resolve_token({"TOK": " abc "}) == "abc"
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert AuthSpec(type="bearer", token_file=str(token_file)).resolve_token({}) == "from-file"
    with pytest.raises(ValidationError, match="TOK is not set"):
        AuthSpec(type="bearer", token_env="TOK").resolve_token({})
    with pytest.raises(ValidationError, match="cannot read"):
        AuthSpec(type="bearer", token_file=str(tmp_path / "missing")).resolve_token({})
    assert AuthSpec().resolve_token({}) is None


def _fields(spec: BackendSpec) -> dict[str, object]:
    return {
        "name": spec.name,
        "type": spec.type,
        "command": spec.command,
        "args": spec.args,
        "env": spec.env,
        "url": spec.url,
        "headers": spec.headers,
        "timeout": spec.timeout,
        "auto_start": spec.auto_start,
        "tool_prefix": spec.tool_prefix,
        "description": spec.description,
        "auth": spec.auth,
        "cwd": spec.cwd,
    }
