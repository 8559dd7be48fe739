"""RuntimeConfig: the file users write, every rule with its field path, and no leaked secrets."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from vmcp_actors.config.spec import (
    DEFAULT_STATUS_REPORTING_INTERVAL,
    FILE_FIELD,
    ROOT_FIELD,
    AuthType,
    BackendSpec,
    FailureHandling,
    PartialFailureMode,
    RuntimeConfig,
    TransportType,
    format_duration,
    parse_duration,
)
from vmcp_actors.errors import ConfigError, ValidationError
from vmcp_actors.health.rules import CircuitBreakerConfig, HealthConfig

ENV_SECRET = "env-sekrit-value-0451"
HEADER_SECRET = "Bearer header-sekrit-0452"

EXAMPLE_YAML = f"""\
backends:
  - name: files
    type: stdio
    command: python
    args: ["-m", "files_server"]
    env: {{ROOT: /data, TOKEN: {ENV_SECRET}}}
  - name: github
    type: streamable-http
    url: http://127.0.0.1:8080/mcp
    headers: {{Authorization: "{HEADER_SECRET}"}}
    timeout: 30
failureHandling:
  healthCheckInterval: 30s
  healthCheckTimeout: 10s
  unhealthyThreshold: 3
  statusReportingInterval: 30s
  circuitBreaker: {{enabled: false, failureThreshold: 5, timeout: 60s}}
"""

EXAMPLE: dict[str, Any] = {
    "backends": [
        {
            "name": "files",
            "type": "stdio",
            "command": "python",
            "args": ["-m", "files_server"],
            "env": {"ROOT": "/data", "TOKEN": ENV_SECRET},
        },
        {
            "name": "github",
            "type": "streamable-http",
            "url": "http://127.0.0.1:8080/mcp",
            "headers": {"Authorization": HEADER_SECRET},
            "timeout": 30,
        },
    ],
    "failureHandling": {
        "healthCheckInterval": "30s",
        "healthCheckTimeout": "10s",
        "unhealthyThreshold": 3,
        "statusReportingInterval": "30s",
        "circuitBreaker": {"enabled": False, "failureThreshold": 5, "timeout": "60s"},
    },
}


def example(**changes: Any) -> dict[str, Any]:
    """A deep copy of the example with dotted-path changes applied (``None`` deletes)."""
    data = copy.deepcopy(EXAMPLE)
    for dotted, value in changes.items():
        keys: list[Any] = [int(k) if k.isdigit() else k for k in dotted.split("__")]
        target: Any = data
        for key in keys[:-1]:
            target = target[key]
        if value is None:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return data


def problems_of(data: object) -> list[ValidationError]:
    with pytest.raises(ConfigError) as info:
        RuntimeConfig.from_dict(data, source="test.yaml")
    assert "test.yaml" in str(info.value)
    return info.value.problems


def only_problem(data: object) -> ValidationError:
    (problem,) = problems_of(data)
    return problem


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the example


def check_example(config: RuntimeConfig) -> None:
    files, github = config.backends
    assert files == BackendSpec(
        name="files",
        type="stdio",
        command="python",
        args=["-m", "files_server"],
        env={"ROOT": "/data", "TOKEN": ENV_SECRET},
    )
    assert github.type is TransportType.STREAMABLE_HTTP
    assert github.url == "http://127.0.0.1:8080/mcp"
    assert github.headers_dict() == {"Authorization": HEADER_SECRET}
    assert github.timeout == 30.0
    assert config.failure_handling == FailureHandling()
    assert config.name is None


def test_the_example_loads_from_yaml(tmp_path: Path) -> None:
    check_example(RuntimeConfig.load(write(tmp_path, "vmcp.yaml", EXAMPLE_YAML)))


@pytest.mark.parametrize("name", ["vmcp.json", "vmcp.conf"])
def test_the_example_loads_from_json_by_suffix_or_by_sniffing(tmp_path: Path, name: str) -> None:
    config = RuntimeConfig.load(write(tmp_path, name, json.dumps(EXAMPLE, indent=2)))
    check_example(config)
    assert config == RuntimeConfig.load(write(tmp_path, "same.yml", EXAMPLE_YAML))


def test_a_yaml_flow_mapping_without_a_suffix_is_not_mistaken_for_broken_json(tmp_path: Path) -> None:
    config = RuntimeConfig.load(write(tmp_path, "vmcp", "{name: edge, backends: []}"))
    assert config.name == "edge"


def test_a_path_object_and_a_string_path_both_load(tmp_path: Path) -> None:
    path = write(tmp_path, "vmcp.yaml", EXAMPLE_YAML)
    assert RuntimeConfig.load(path) == RuntimeConfig.load(str(path))


def test_everything_defaults_and_no_backends_is_a_valid_config() -> None:
    config = RuntimeConfig.from_dict({})
    assert config.backends == ()
    assert config.problems() == []
    handling = config.failure_handling
    assert (handling.health_check_interval, handling.health_check_timeout) == (30.0, 10.0)
    assert handling.unhealthy_threshold == 3
    assert handling.status_reporting_interval == DEFAULT_STATUS_REPORTING_INTERVAL == 30.0
    assert handling.partial_failure_mode is PartialFailureMode.FAIL
    assert handling.circuit_breaker == CircuitBreakerConfig(enabled=False, failure_threshold=5, open_timeout=60.0)
    assert RuntimeConfig.from_dict({"backends": [], "failureHandling": {}}) == config
    assert RuntimeConfig.from_dict({"backends": None, "failureHandling": None}) == config


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


def test_failure_handling_values_and_the_health_config_they_make() -> None:
    config = RuntimeConfig.from_dict(
        {
            "name": "edge-vmcp",
            "failureHandling": {
                "healthCheckInterval": "1m",
                "healthCheckTimeout": 0,
                "unhealthyThreshold": 5,
                "statusReportingInterval": 15,
                "partialFailureMode": "best_effort",
                "circuitBreaker": {"enabled": True, "failureThreshold": 2, "timeout": "1m30s"},
            },
        }
    )
    handling = config.failure_handling
    assert config.name == "edge-vmcp"
    assert handling.partial_failure_mode is PartialFailureMode.BEST_EFFORT
    assert handling.status_reporting_interval == 15.0
    assert handling.health_config() == HealthConfig(
        check_interval=60.0,
        timeout=0.0,
        unhealthy_threshold=5,
        degraded_threshold=5.0,
        circuit_breaker=CircuitBreakerConfig(enabled=True, failure_threshold=2, open_timeout=90.0),
    )


def test_a_disabled_breakers_leftover_timeout_is_not_checked_like_toolhive() -> None:
    config = RuntimeConfig.from_dict({"failureHandling": {"circuitBreaker": {"enabled": False, "timeout": "1ms"}}})
    assert config.failure_handling.circuit_breaker.open_timeout == 0.001


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("10ns", 1e-8),
        ("100us", 1e-4),
        ("100µs", 1e-4),
        ("1h1h", 7200.0),
        ("2562047h47m16.854775807s", (2**63 - 1) / 1e9),
        (30, 30.0),
        (2.5, 2.5),
        (0, 0.0),
        (-5, -5.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text, "f") == pytest.approx(seconds, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30", "has no unit: write 30s, or the number 30 without quotes"),
        ("x", "invalid duration 'x'"),
        ("30x", "invalid duration '30x'"),
        ("-5s", "invalid duration '-5s'"),
        ("5 s", "invalid duration '5 s'"),
        ("", "must not be empty"),
        (" 5s", "invalid duration ' 5s'"),
        ("5s\n", "invalid duration '5s\\n'"),
        ("5S", "invalid duration '5S'"),
        (".5s", "invalid duration '.5s'"),
        ("1.s", "invalid duration '1.s'"),
        ("2562047h47m16.854775808s", "out of range"),
        ("9" * 100 + "s", "invalid duration"),
        (10**10, "out of range"),
        (1e300, "out of range"),
        (math.inf, "must be a finite number"),
        (math.nan, "must be a finite number"),
        (True, "got bool True"),
        (None, "got NoneType None"),
        ([30], "got list [30]"),
    ],
)
def test_parse_duration_rejects_with_the_field_and_the_value(text: object, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_duration(text, "failureHandling.healthCheckInterval")
    assert info.value.field == "failureHandling.healthCheckInterval"
    assert message in str(info.value)
    assert str(info.value).startswith("failureHandling.healthCheckInterval: ")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (90, "1m30s"),
        (0.5, "500ms"),
        (3723.5, "1h2m3.5s"),
        (3600, "1h0m0s"),
        (60, "1m0s"),
        (1.5, "1.5s"),
        (1e-6, "1µs"),
        (1.5e-6, "1.5µs"),
        (1e-9, "1ns"),
        (0.0012, "1.2ms"),
        (-1.5, "-1.5s"),
        (30.000000001, "30.000000001s"),
    ],
)
def test_format_duration_reads_like_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("bad", [math.inf, math.nan, True, "30s"])
def test_format_duration_rejects_what_is_not_a_finite_number(bad: Any) -> None:
    with pytest.raises(ValueError, match="cannot format"):
        format_duration(bad)


# --------------------------------------------------------------------------- failure handling rules


@pytest.mark.parametrize(
    ("block", "field", "message"),
    [
        ({"healthCheckInterval": "0s"}, "healthCheckInterval", "must be > 0, got 0.0s"),
        ({"healthCheckInterval": -30}, "healthCheckInterval", "must be > 0, got -30.0s"),
        ({"healthCheckTimeout": -1}, "healthCheckTimeout", "must be >= 0, got -1.0s"),
        (
            {"healthCheckInterval": "10s", "healthCheckTimeout": "10s"},
            "healthCheckTimeout",
            "must be less than healthCheckInterval to prevent checks from queuing up (got 10.0s, interval 10.0s)",
        ),
        ({"unhealthyThreshold": 0}, "unhealthyThreshold", "must be >= 1, got 0"),
        ({"unhealthyThreshold": "3"}, "unhealthyThreshold", "must be an integer, got str"),
        ({"unhealthyThreshold": True}, "unhealthyThreshold", "must be an integer, got bool"),
        ({"statusReportingInterval": "0s"}, "statusReportingInterval", "must be > 0, got 0.0s"),
        ({"statusReportingInterval": -1}, "statusReportingInterval", "must be > 0, got -1.0s"),
        ({"partialFailureMode": "sometimes"}, "partialFailureMode", "must be fail or best_effort, got str 'sometimes'"),
        ({"partialFailureMode": 1}, "partialFailureMode", "must be fail or best_effort, got int 1"),
        ({"circuitBreaker": {"failureThreshold": 0}}, "circuitBreaker.failureThreshold", "must be >= 1, got 0"),
        (
            {"circuitBreaker": {"enabled": True, "timeout": "500ms"}},
            "circuitBreaker.timeout",
            "must be >= 1s, got 0.5s",
        ),
        ({"circuitBreaker": {"enabled": "yes"}}, "circuitBreaker.enabled", "must be a boolean"),
        ({"circuitBreaker": {"timeout": "1 m"}}, "circuitBreaker.timeout", "invalid duration '1 m'"),
        ({"circuitBreaker": [1]}, "circuitBreaker", "must be a mapping, got list"),
        ({"healthCheckInterval": "thirty"}, "healthCheckInterval", "invalid duration 'thirty'"),
    ],
)
def test_each_failure_handling_rule_names_its_field_and_value(block: dict[str, Any], field: str, message: str) -> None:
    problem = only_problem({"failureHandling": block})
    assert problem.field == f"failureHandling.{field}"
    assert str(problem).startswith(f"failureHandling.{field}: {message}")


def test_the_failure_handling_block_must_be_a_mapping() -> None:
    problem = only_problem({"failureHandling": "30s"})
    assert (problem.field, str(problem)) == ("failureHandling", "failureHandling: must be a mapping, got str")


def test_every_failure_handling_problem_is_reported_at_once_in_key_order() -> None:
    problems = problems_of(
        {
            "failureHandling": {
                "circuitBreaker": {"enabled": True, "failureThreshold": 0, "timeout": 0},
                "partialFailureMode": "x",
                "healthCheckInterval": 0,
                "healthCheckTimeout": -1,
                "unhealthyThreshold": 0,
                "statusReportingInterval": 0,
            }
        }
    )
    assert [p.field.removeprefix("failureHandling.") for p in problems] == [
        "healthCheckInterval",
        "healthCheckTimeout",
        "unhealthyThreshold",
        "statusReportingInterval",
        "partialFailureMode",
        "circuitBreaker.failureThreshold",
        "circuitBreaker.timeout",
    ]


def test_a_bad_interval_does_not_also_blame_the_timeout() -> None:
    problem = only_problem({"failureHandling": {"healthCheckInterval": "soon", "healthCheckTimeout": "45s"}})
    assert problem.field == "failureHandling.healthCheckInterval"
    problem = only_problem({"failureHandling": {"healthCheckInterval": 0, "healthCheckTimeout": "45s"}})
    assert problem.field == "failureHandling.healthCheckInterval"


def test_failure_handling_built_directly_reports_the_same_rules_and_health_config_repaths() -> None:
    handling = FailureHandling(health_check_interval=5.0, health_check_timeout=5.0, status_reporting_interval=0)
    assert [p.field for p in handling.problems()] == [
        "failureHandling.healthCheckTimeout",
        "failureHandling.statusReportingInterval",
    ]
    with pytest.raises(ValidationError) as info:
        handling.health_config()
    assert info.value.field == "failureHandling.healthCheckTimeout"
    with pytest.raises(ConfigError) as config_info:
        RuntimeConfig(failure_handling=handling).validate("direct")
    assert len(config_info.value.problems) == 2
    with pytest.raises(ValidationError, match="partialFailureMode: must be fail or best_effort"):
        FailureHandling(partial_failure_mode="never")


def test_failure_handling_from_dict_alone() -> None:
    handling = FailureHandling.from_dict({"healthCheckInterval": "45s"})
    assert handling.health_check_interval == 45.0
    with pytest.raises(ConfigError) as info:
        FailureHandling.from_dict({"unhealthyThreshold": -1, "healthCheckIntervall": "1s"})
    assert [p.field for p in info.value.problems] == [
        "failureHandling.healthCheckIntervall",
        "failureHandling.unhealthyThreshold",
    ]


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


# --------------------------------------------------------------------------- document shape and keys


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"backend": []}, "backend", "unknown key (did you mean 'backends'?)"),
        ({"failurehandling": {}}, "failurehandling", "unknown key (did you mean 'failureHandling'?)"),
        ({"zzz": 1}, "zzz", "unknown key (known keys: name, backends, failureHandling, aggregation)"),
        ({1: 1}, "[1]", "unknown key (known keys: name, backends, failureHandling, aggregation)"),
        ({"": 1}, "['']", "unknown key (known keys: name, backends, failureHandling, aggregation)"),
        (example(backends__1__urll="http://x/"), "backends[1].urll", "unknown key (did you mean 'url'?)"),
        (example(backends__0__agrs=[]), "backends[0].agrs", "unknown key (did you mean 'args'?)"),
        (example(backends__1__auth={"type": "bearer", "tokenenv": "T", "tokenFile": "/t"}), None, None),
        (
            example(failureHandling__circuitBreaker__threshold=3),
            "failureHandling.circuitBreaker.threshold",
            "unknown key (did you mean 'failureThreshold'?)",
        ),
        (
            example(failureHandling__healthCheckInterva="1s"),
            "failureHandling.healthCheckInterva",
            "unknown key (did you mean 'healthCheckInterval'?)",
        ),
    ],
)
def test_unknown_keys_are_errors_with_the_closest_known_key(
    data: dict[Any, Any], field: str | None, message: str | None
) -> None:
    problems = problems_of(data)
    if field is None:  # a typo inside auth: the key is named, and the auth rules are not run on a guess
        assert [p.field for p in problems] == ["backends[1].auth.tokenenv"]
        assert "did you mean 'tokenEnv'?" in str(problems[0])
        return
    (problem,) = problems
    assert problem.field == field
    assert str(problem) == f"{field}: {message}"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ([EXAMPLE], ROOT_FIELD, "must be a mapping with the keys name, backends, failureHandling, aggregation, got list"),
        ("backends", ROOT_FIELD, "got str"),
        (None, ROOT_FIELD, "got nothing (the document is empty)"),
        ({"backends": {"files": {}}}, "backends", "must be a list of backends, got dict"),
        ({"backends": "files"}, "backends", "must be a list of backends, got str"),
        ({"backends": [["files"]]}, "backends[0]", "must be a mapping, got list"),
        ({"name": ""}, "name", "must be 1-253 letters"),
        ({"name": "a b"}, "name", "got 'a b'"),
        ({"name": 3}, "name", "must be a string, got int 3"),
    ],
)
def test_the_document_shape(data: object, field: str, message: str) -> None:
    problem = only_problem(data)
    assert problem.field == field
    assert message in str(problem)


def test_all_problems_are_collected_in_file_order_under_the_file_name() -> None:
    data = example(
        failureHandling__healthCheckInterval="0s",
        backends__1__urll="x",
        backends__0__command=None,
    )
    data["extra"] = True
    with pytest.raises(ConfigError) as info:
        RuntimeConfig.from_dict(data, source="/etc/vmcp/config.yaml")
    error = info.value
    assert [p.field for p in error.problems] == [
        "extra",
        "backends[0].command",
        "backends[1].urll",
        "failureHandling.healthCheckInterval",
    ]
    lines = str(error).splitlines()
    assert lines[0] == "/etc/vmcp/config.yaml: invalid configuration (4 problems):"
    assert lines[1:] == [f"  {p}" for p in error.problems]
    assert isinstance(error, ValidationError)
    assert error.field == "extra"
    assert error.source == "/etc/vmcp/config.yaml"


def test_config_error_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one problem"):
        ConfigError([])


def test_runtime_config_built_directly_validates_on_request() -> None:
    dup = BackendSpec(name="a", command="x")
    config = RuntimeConfig(backends=[dup, dup], name="ok")
    assert [p.field for p in config.problems()] == ["backends[1].name"]
    with pytest.raises(ConfigError):
        config.validate()
    assert RuntimeConfig(backends=[dup]).validate() is not None
    with pytest.raises(ValidationError, match=r"backends\[0\]: must be a BackendSpec"):
        RuntimeConfig(backends=[{"name": "a"}])  # type: ignore[list-item]


# --------------------------------------------------------------------------- files


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as info:
        RuntimeConfig.load(path)
    (problem,) = info.value.problems
    assert problem.field == FILE_FIELD
    assert "cannot read the file: No such file or directory" in str(problem)
    assert str(path) in str(info.value)


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        RuntimeConfig.load(tmp_path)


def test_yaml_syntax_errors_name_line_and_column_but_not_the_line_text(tmp_path: Path) -> None:
    text = EXAMPLE_YAML.replace(
        f'headers: {{Authorization: "{HEADER_SECRET}"}}', f'headers: {{Authorization: "{HEADER_SECRET}"}} oops: 1'
    )
    with pytest.raises(ConfigError) as info:
        RuntimeConfig.load(write(tmp_path, "vmcp.yaml", text))
    (problem,) = info.value.problems
    assert problem.field == FILE_FIELD
    assert "YAML syntax error at line 10, column" in str(problem)
    assert HEADER_SECRET not in str(info.value)


def test_yaml_tabs_report_their_position(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"YAML syntax error at line 2, column 1: .*found character '\\t' that cannot start"
    ):
        RuntimeConfig.load(write(tmp_path, "vmcp.yaml", "backends:\n\t- name: x\n"))


def test_duplicate_yaml_keys_are_errors_but_merge_keys_may_override(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 3, column 5: found duplicate key 'url'"):
        RuntimeConfig.load(write(tmp_path, "dup.yaml", "backends:\n  - url: a\n    url: b\n"))
    merged = "backends:\n  - &base {name: a, type: stdio, command: one}\n  - <<: *base\n    name: b\n    command: two\n"
    config = RuntimeConfig.load(write(tmp_path, "merge.yaml", merged))
    assert [(b.name, b.command) for b in config.backends] == [("a", "one"), ("b", "two")]


def test_json_syntax_and_duplicate_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JSON syntax error at line 2, column 17: Expecting value"):
        RuntimeConfig.load(write(tmp_path, "vmcp.json", '{\n "backends": [1,]}'))
    with pytest.raises(ConfigError, match="duplicate key 'name'"):
        RuntimeConfig.load(write(tmp_path, "dup.json", '{"name": "a", "name": "b"}'))
    with pytest.raises(ConfigError, match="JSON syntax error at line 1"):
        RuntimeConfig.load(write(tmp_path, "sniffed", '{"backends": [1,]]'))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bin.yaml", b"\xff\xfe\x00", "is not UTF-8 text"),
        ("empty.yaml", "", "got nothing (the document is empty)"),
        ("list.yaml", "- name: a\n", "got list"),
        ("scalar.yml", "just text\n", "got str"),
        ("two.yaml", "a: 1\n---\nb: 2\n", "expected a single document in the stream; but found another document"),
        ("tag.yaml", "backends: !!python/object:os.system {}\n", "could not determine a constructor"),
        ("deep.yaml", "[" * 5000 + "]" * 5000, "nested too deeply"),
        ("deep.json", "[" * 100000 + "]" * 100000, "nested too deeply"),
        ("huge.yaml", "name: " + "9" * 5000, "cannot be read"),
        ("huge.json", '{"name": ' + "9" * 5000 + "}", "cannot be read"),
        ("backends.yaml", "backends: files\n", "backends: must be a list of backends, got str"),
    ],
)
def test_broken_files_are_config_errors_never_tracebacks(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        RuntimeConfig.load(write(tmp_path, name, content))
    assert message in str(info.value)
    assert all(problem.field for problem in info.value.problems)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    config = RuntimeConfig.load(write(tmp_path, "bom.json", b"\xef\xbb\xbf" + json.dumps(EXAMPLE).encode()))
    check_example(config)


# --------------------------------------------------------------------------- secrets


def test_dump_is_the_config_as_written_with_secrets_redacted() -> None:
    config = RuntimeConfig.from_dict(example(name="edge", backends__0__cwd="/srv"))
    dumped = config.dump()
    assert dumped["name"] == "edge"
    files, github = dumped["backends"]
    assert files["env"] == {"ROOT": "<redacted>", "TOKEN": "<redacted>"}
    assert files["cwd"] == "/srv"
    assert github["headers"] == {"Authorization": "<redacted>"}
    assert dumped["failureHandling"] == {
        "healthCheckInterval": "30s",
        "healthCheckTimeout": "10s",
        "unhealthyThreshold": 3,
        "statusReportingInterval": "30s",
        "partialFailureMode": "fail",
        "circuitBreaker": {"enabled": False, "failureThreshold": 5, "timeout": "1m0s"},
    }
    text = json.dumps(dumped)
    assert ENV_SECRET not in text
    assert HEADER_SECRET not in text
    assert "edge" in RuntimeConfig.from_dict(example(name="edge")).dump()["name"]


def test_secrets_are_not_in_repr() -> None:
    config = RuntimeConfig.from_dict(EXAMPLE)
    for text in (repr(config), str(config), repr(config.backends)):
        assert ENV_SECRET not in text
        assert HEADER_SECRET not in text


@pytest.mark.parametrize(
    "change",
    [
        {"backends__0__env": {"TOKEN": [ENV_SECRET]}},
        {"backends__0__env": {"TOKEN": f"{ENV_SECRET}\x00"}},
        {"backends__1__headers": {"Authorization": {"v": HEADER_SECRET}}},
        {"backends__1__headers": {"Authorization": f"{HEADER_SECRET}\r\n"}},
        {"backends__1__headers": [HEADER_SECRET]},
        {"backends__0__env": f"TOKEN={ENV_SECRET}"},
        {"backends__1__name": 7},
        {"backends__1__fieldWithSecret": HEADER_SECRET},
    ],
)
def test_secrets_are_not_in_errors(change: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        RuntimeConfig.from_dict(example(**change))
    texts = [str(info.value), repr(info.value)]
    texts += [f"{p!s} {p!r} {p.value!r}" for p in info.value.problems]
    for text in texts:
        assert ENV_SECRET not in text
        assert HEADER_SECRET not in text
