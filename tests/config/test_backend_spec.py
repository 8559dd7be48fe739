"""BackendSpec: muster's validation messages and change rules, parsing with field paths, no leaked secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.config.support import EXAMPLE, example, only_problem, problems_of
from vmcp_actors.config.auth import AuthSpec, AuthType
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.backend_values import DEFAULT_CONNECT_TIMEOUT
from vmcp_actors.config.fields import ROOT_FIELD
from vmcp_actors.errors import ConfigError, ValidationError

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


def test_timeout_bounds_the_handshake_of_every_transport_with_one_default() -> None:
    # Unlike muster (stdio fixed at 10 s), stdio honours timeout: slow interpreters need it.
    assert STDIO.connect_timeout == DEFAULT_CONNECT_TIMEOUT == 30.0
    assert attrs.evolve(STDIO, timeout=45).connect_timeout == 45.0
    assert attrs.evolve(STDIO, timeout=0).connect_timeout == 30.0
    assert BackendSpec(name="r", type="sse", url="http://h/").connect_timeout == 30.0
    assert BackendSpec(name="r", type="sse", url="http://h/", timeout=0).connect_timeout == 30.0
    assert BackendSpec(name="r", type="sse", url="http://h/", timeout=60).connect_timeout == 60.0


CHANGES_THAT_RESTART: dict[str, dict[str, Any]] = {
    "url": {"url": "http://127.0.0.1:9090/mcp"},
    "command": {"command": "python3"},
    "type": {"type": "sse"},
    "args": {"args": ["-m", "other"]},
    "env": {"env": {"ROOT": "/other"}},
    "headers": {"headers": {"X-Extra": "1"}},
    "timeout": {"timeout": 31},
    "auth": {"auth": AuthSpec(type="bearer", token_env="GH_TOKEN")},
}


@pytest.mark.parametrize("change", sorted(CHANGES_THAT_RESTART))
def test_these_changes_need_a_restart(change: str) -> None:
    base = REMOTE if change not in ("command", "args", "env") else STDIO
    new = attrs.evolve(base, **CHANGES_THAT_RESTART[change])
    assert base.config_changed(new)


def test_auto_start_matters_only_from_false_to_true_and_description_or_prefix_never() -> None:
    off = attrs.evolve(STDIO, auto_start=False)
    assert off.config_changed(STDIO)
    assert not STDIO.config_changed(off)
    assert not STDIO.config_changed(attrs.evolve(STDIO, description="new words"))
    assert not STDIO.config_changed(attrs.evolve(STDIO, tool_prefix="gh_")), "the data plane renames, live"
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


# --------------------------------------------------------------------------- parsing, as users write it


def test_every_backend_key_as_users_write_it() -> None:
    spec = BackendSpec.from_dict(
        {
            "name": "remote",
            "type": "sse",
            "url": "https://mcp.example.com/sse",
            "timeout": "1m30s",
            "autoStart": False,
            "toolPrefix": "gh_",
            "description": "GitHub tools",
            "cwd": "/srv",
            "auth": {"type": "bearer", "tokenEnv": "GH_TOKEN"},
        }
    )
    assert spec.timeout == 90.0
    assert spec.auto_start is False
    assert (spec.tool_prefix, spec.description, spec.cwd) == ("gh_", "GitHub tools", "/srv")
    assert spec.auth.type is AuthType.BEARER
    assert spec.auth.token_env == "GH_TOKEN"
    snake = BackendSpec.from_dict({"name": "s", "type": "stdio", "command": "x", "auto_start": False})
    assert snake.auto_start is False


# --------------------------------------------------------------------------- backend rules


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"backends__0__name": None}, "backends[0].name", "name is required"),
        ({"backends__0__name": "bad name!"}, "backends[0].name", "letters, digits"),
        ({"backends__0__name": 7}, "backends[0].name", "must be a string, got int 7"),
        ({"backends__0__type": None}, "backends[0].type", "type is required (stdio, streamable-http or sse)"),
        ({"backends__0__type": "grpc"}, "backends[0].type", "unsupported MCP server type: 'grpc'"),
        ({"backends__0__command": None}, "backends[0].command", "command is required for stdio type"),
        ({"backends__0__command": ["python"]}, "backends[0].command", "must be a string, got list ['python']"),
        ({"backends__0__args": "-m files"}, "backends[0].args", "must be a list of strings, got str"),
        ({"backends__0__args": ["--port", 8080]}, "backends[0].args[1]", "must be a string, got int"),
        ({"backends__0__cwd": "/srv\x00"}, "backends[0].cwd", "must not contain a NUL character"),
        ({"backends__0__env": ["ROOT=/data"]}, "backends[0].env", "must be a mapping of names to strings, got list"),
        ({"backends__0__env": {"PORT": 8080}}, "backends[0].env.PORT", "must be a string (quote numbers"),
        ({"backends__0__env": {"A=B": "x"}}, "backends[0].env['A=B']", "must not contain '='"),
        ({"backends__0__env": {1: "x"}}, "backends[0].env[1]", "names must be non-empty strings, got int 1"),
        ({"backends__0__autoStart": "yes"}, "backends[0].autoStart", "must be true or false, got str 'yes'"),
        ({"backends__1__url": None}, "backends[1].url", "url is required for streamable-http and sse types"),
        ({"backends__1__url": "ftp://h/"}, "backends[1].url", "must be an http or https URL, got scheme 'ftp'"),
        ({"backends__1__url": "http://[::1/mcp"}, "backends[1].url", "is not a valid URL"),
        ({"backends__1__url": "http://h:99999/"}, "backends[1].url", "has an invalid port"),
        ({"backends__1__timeout": 5000}, "backends[1].timeout", "must be between 0 and 3600 seconds, got 5000.0"),
        ({"backends__1__timeout": -1}, "backends[1].timeout", "must be between 0 and 3600 seconds, got -1.0"),
        ({"backends__1__timeout": "30 s"}, "backends[1].timeout", "invalid duration '30 s'"),
        ({"backends__1__headers": "Authorization: x"}, "backends[1].headers", "must be a mapping of names to"),
        ({"backends__1__headers": {"X": "a\nb"}}, "backends[1].headers.X", "must not contain NUL or line-break"),
        ({"backends__1__auth": {"type": "bearer"}}, "backends[1].auth", "exactly one of tokenEnv or tokenFile"),
        ({"backends__1__auth": {"type": "oauth"}}, "backends[1].auth.type", "must be none or bearer, got 'oauth'"),
        ({"backends__1__auth": {"tokenEnv": "T"}}, "backends[1].auth.type", "tokenEnv/tokenFile need type: bearer"),
        ({"backends__1__auth": "bearer"}, "backends[1].auth", "must be a mapping, got str"),
        (
            {"backends__0__auth": {"type": "bearer", "tokenFile": "/t"}},
            "backends[0].auth",
            "outgoing auth applies to remote backends only",
        ),
    ],
)
def test_each_backend_rule_names_its_field_path(change: dict[str, Any], field: str, message: str) -> None:
    problem = only_problem(example(**change))
    assert problem.field == field
    assert message in str(problem)
    assert str(problem).startswith(f"{field}: ")


def test_a_wrong_type_reports_once_not_again_as_a_missing_value() -> None:
    (problem,) = problems_of(example(backends__1__url=8080))
    assert str(problem) == "backends[1].url: must be a string, got int 8080"


def test_an_unknown_type_does_not_guess_which_of_command_and_url_is_required() -> None:
    data = example(backends__1__type="websocket")
    assert [p.field for p in problems_of(data)] == ["backends[1].type"]


def test_auto_start_and_its_snake_case_alias_may_not_both_be_given() -> None:
    problem = only_problem(example(backends__0__autoStart=True, backends__0__auto_start=False))
    assert str(problem) == "backends[0].auto_start: duplicates autoStart: write only one of them"


def test_duplicate_backend_names_are_reported_at_the_later_entry() -> None:
    data = example()
    data["backends"].append({"name": "files", "type": "stdio", "command": "other"})
    data["backends"].append({"name": "github", "type": "sse", "url": "http://h/sse"})
    problems = problems_of(data)
    assert [(p.field, str(p)) for p in problems] == [
        ("backends[2].name", "backends[2].name: duplicate backend name 'files' (first used by backends[0])"),
        ("backends[3].name", "backends[3].name: duplicate backend name 'github' (first used by backends[1])"),
    ]


def test_backend_spec_from_dict_alone() -> None:
    assert BackendSpec.from_dict(EXAMPLE["backends"][0]).command == "python"
    with pytest.raises(ConfigError) as info:
        BackendSpec.from_dict({"name": "x", "type": "sse", "urll": "http://h/"}, "backends[4]")
    assert [p.field for p in info.value.problems] == ["backends[4].urll", "backends[4].url"]
    with pytest.raises(ConfigError) as info:
        BackendSpec.from_dict(["x"])
    assert info.value.problems[0].field == ROOT_FIELD
