"""RuntimeConfig: the file users write, the document's shape, problems in file order, no leaked secrets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.config.support import (
    ENV_SECRET,
    EXAMPLE,
    EXAMPLE_YAML,
    HEADER_SECRET,
    check_example,
    example,
    only_problem,
    problems_of,
    write,
)
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.failure_handling import DEFAULT_STATUS_REPORTING_INTERVAL, PartialFailureMode
from vmcp_actors.config.fields import ROOT_FIELD
from vmcp_actors.config.health_settings import CircuitBreakerConfig
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.errors import ConfigError, ValidationError

# --------------------------------------------------------------------------- the example


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
        (
            [EXAMPLE],
            ROOT_FIELD,
            "must be a mapping with the keys name, backends, failureHandling, aggregation, got list",
        ),
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
