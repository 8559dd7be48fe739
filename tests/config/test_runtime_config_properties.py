"""RuntimeConfig under malformed input: a config or a ConfigError with field paths, nothing else."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.durations import format_duration
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.errors import ConfigError, ValidationError

KNOWN_KEYS = [
    "name",
    "backends",
    "failureHandling",
    "type",
    "command",
    "args",
    "env",
    "url",
    "headers",
    "timeout",
    "autoStart",
    "auto_start",
    "toolPrefix",
    "description",
    "cwd",
    "auth",
    "tokenEnv",
    "tokenFile",
    "healthCheckInterval",
    "healthCheckTimeout",
    "unhealthyThreshold",
    "statusReportingInterval",
    "partialFailureMode",
    "circuitBreaker",
    "enabled",
    "failureThreshold",
]
DURATION_TEXT = ["30s", "1m30s", "500ms", "0s", "1h", "10ns", "1.5h", "100µs", "2us"]
WORD_VALUES = ["stdio", "sse", "streamable-http", "bearer", "none", "fail", "best_effort", "http://h/mcp"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(DURATION_TEXT + WORD_VALUES)
)
keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=8) | st.integers(min_value=-3, max_value=3)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)
garbage_durations = (
    st.sampled_from(["30", "x", "30x", "-5s", "5 s", "", "1.s", ".5s", "5S", "1e3s", "∞", "9" * 70 + "h"])
    | st.text(max_size=10)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(10**40), max_value=10**40)
)


def check_config_error(error: ConfigError) -> None:
    """A ConfigError lists at least one problem, each a ValidationError with a field path, all in its message."""
    assert error.problems
    for problem in error.problems:
        assert isinstance(problem, ValidationError)
        assert problem.field
        assert str(problem).startswith(f"{problem.field}: ")
        assert str(problem) in str(error)


def assert_config_or_config_error(data: object) -> RuntimeConfig | None:
    """The property every input must satisfy; returns the config when one was built."""
    try:
        config = RuntimeConfig.from_dict(data, source="generated.yaml")
    except ConfigError as exc:
        check_config_error(exc)
        return None
    # Whatever from_dict accepts must be valid by the direct-construction rules too,
    # and usable by everything downstream.
    assert config.problems() == []
    config.failure_handling.health_config()
    json.dumps(config.dump())
    repr(config)
    return config


# --------------------------------------------------------------------------- valid configs

backend_names = st.from_regex(r"\A[a-z]([a-z0-9-]{0,9}[a-z0-9])?\Z")
# No NUL or CR/LF (rejected on purpose) and none of the characters YAML treats as line breaks.
plain_text = st.text(
    st.characters(exclude_characters="\x00\r\n\x85\u2028\u2029", exclude_categories=["Cs"]), max_size=12
)
env_names = st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,8}\Z")
header_names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,10}\Z")


def durations_within(low_ms: int, high_ms: int) -> st.SearchStrategy[object]:
    """A duration between the bounds, written either as Go text or as seconds."""
    millis = st.integers(min_value=low_ms, max_value=high_ms)
    return millis.map(lambda ms: format_duration(ms / 1000)) | millis.map(lambda ms: ms / 1000)


@st.composite
def stdio_backends(draw: st.DrawFn, name: str) -> dict[str, Any]:
    backend: dict[str, Any] = {
        "name": name,
        "type": "stdio",
        "command": draw(plain_text.filter(bool)),
        "args": draw(st.lists(plain_text, max_size=3)),
        "env": draw(st.dictionaries(env_names, plain_text, max_size=3)),
    }
    if draw(st.booleans()):
        backend["autoStart"] = draw(st.booleans())
    if draw(st.booleans()):
        backend["cwd"] = draw(plain_text.filter(bool))
    return backend


@st.composite
def remote_backends(draw: st.DrawFn, name: str) -> dict[str, Any]:
    backend: dict[str, Any] = {
        "name": name,
        "type": draw(st.sampled_from(["streamable-http", "sse"])),
        "url": draw(st.sampled_from(["http://127.0.0.1:8080/mcp", "https://mcp.example.com/sse", "http://h/"])),
        "headers": draw(st.dictionaries(header_names, plain_text, max_size=2)),
        "timeout": draw(durations_within(0, 3_600_000)),
    }
    if draw(st.booleans()):
        backend["auth"] = {"type": "bearer", "tokenEnv": draw(env_names)}
    if draw(st.booleans()):
        backend["toolPrefix"] = draw(plain_text)
        backend["description"] = draw(plain_text)
    return backend


@st.composite
def failure_blocks(draw: st.DrawFn) -> dict[str, Any]:
    interval_ms = draw(st.integers(min_value=2, max_value=600_000))
    enabled = draw(st.booleans())
    return {
        "healthCheckInterval": format_duration(interval_ms / 1000),
        "healthCheckTimeout": draw(durations_within(0, interval_ms - 1)),
        "unhealthyThreshold": draw(st.integers(min_value=1, max_value=20)),
        "statusReportingInterval": draw(durations_within(1, 600_000)),
        "partialFailureMode": draw(st.sampled_from(["fail", "best_effort"])),
        "circuitBreaker": {
            "enabled": enabled,
            "failureThreshold": draw(st.integers(min_value=1, max_value=20)),
            "timeout": draw(durations_within(1000 if enabled else 0, 600_000)),
        },
    }


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(backend_names, unique=True, max_size=4))
    backends = [draw(st.one_of(stdio_backends(name), remote_backends(name))) for name in names]
    data: dict[str, Any] = {"backends": backends}
    if draw(st.booleans()):
        data["failureHandling"] = draw(failure_blocks())
    if draw(st.booleans()):
        data["name"] = draw(backend_names)
    return data


@given(valid_configs())
def test_valid_configs_load_and_keep_their_backends(data: dict[str, Any]) -> None:
    config = assert_config_or_config_error(data)
    assert config is not None
    assert [spec.name for spec in config.backends] == [b["name"] for b in data["backends"]]
    for spec, raw in zip(config.backends, data["backends"], strict=True):
        assert spec == BackendSpec.from_dict(raw)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(valid_configs(), st.sampled_from(["vmcp.yaml", "vmcp.json", "vmcp"]))
def test_valid_configs_read_the_same_from_yaml_and_json_files(data: dict[str, Any], name: str) -> None:
    expected = RuntimeConfig.from_dict(data)
    text = json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data, allow_unicode=True)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_text(text, encoding="utf-8")
        assert RuntimeConfig.load(path) == expected


# --------------------------------------------------------------------------- malformed configs


def node_paths(tree: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node below the root, containers included."""
    found: list[tuple[Any, ...]] = []
    children: list[tuple[Any, object]] = []
    if isinstance(tree, dict):
        children = list(tree.items())
    elif isinstance(tree, list):
        children = list(enumerate(tree))
    for key, child in children:
        found.append((*prefix, key))
        found.extend(node_paths(child, (*prefix, key)))
    return found


MUTATIONS = ["replace", "delete", "duration", "negative", "wrap", "null", "empty", "stringify"]


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(draw(valid_configs()))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = node_paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = data
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        kind = draw(st.sampled_from(MUTATIONS))
        if kind == "delete":
            del parent[key]
        elif kind == "replace":
            parent[key] = draw(json_values)
        elif kind == "duration":
            parent[key] = draw(garbage_durations)
        elif kind == "negative":
            parent[key] = -draw(st.integers(min_value=1, max_value=10**6) | st.floats(min_value=1e-9, max_value=1e9))
        elif kind == "wrap":
            parent[key] = [parent[key]]
        elif kind == "null":
            parent[key] = None
        elif kind == "empty":
            parent[key] = draw(st.sampled_from(["", [], {}, 0]))
        else:
            parent[key] = str(parent[key])
    return data


@given(mutated_configs())
def test_mutated_configs_give_a_config_or_a_config_error_with_paths(data: dict[str, Any]) -> None:
    assert_config_or_config_error(data)


@given(json_values)
def test_arbitrary_documents_give_a_config_or_a_config_error_with_paths(data: object) -> None:
    assert_config_or_config_error(data)


@given(
    st.dictionaries(st.sampled_from(["name", "backends", "failureHandling"]), json_values),
    st.lists(st.dictionaries(keys, json_values, max_size=8), max_size=3),
    st.dictionaries(st.sampled_from(KNOWN_KEYS[18:]), json_values),
)
def test_arbitrary_values_under_known_keys(
    top: dict[str, Any], backends: list[dict[Any, Any]], handling: dict[str, Any]
) -> None:
    assert_config_or_config_error(top)
    assert_config_or_config_error({"backends": backends, "failureHandling": handling})


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(max_size=200) | st.sampled_from(["backends: [", "{", "a: b: c", "- - -", "\t", "name: &a [*a]"]),
    st.sampled_from(["c.yaml", "c.json", "c"]),
)
def test_arbitrary_file_contents_give_a_config_or_a_config_error(text: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            RuntimeConfig.load(path)
        except ConfigError as exc:
            check_config_error(exc)
            check_names_the_file(exc, path)


def check_names_the_file(error: ConfigError, path: Path) -> None:
    assert str(path) in str(error)


SECRET = "S3CR3T-d0-n0t-l0g"


@st.composite
def configs_holding_secrets(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(mutated_configs())
    data.setdefault("backends", [])
    if not isinstance(data["backends"], list):
        data["backends"] = []
    data["backends"].append(
        {
            "name": draw(st.sampled_from(["files", "bad name"])),
            "type": "streamable-http",
            "url": draw(st.sampled_from(["http://h/", "ftp://h/", "http://[h"])),
            "headers": {"Authorization": draw(st.sampled_from([SECRET, [SECRET], f"{SECRET}\n", {"v": SECRET}]))},
            "env": {"TOKEN": draw(st.sampled_from([SECRET, 7, [SECRET], f"{SECRET}\x00"]))},
        }
    )
    return data


@given(configs_holding_secrets())
def test_env_and_header_values_never_appear_in_errors_or_dumps(data: dict[str, Any]) -> None:
    try:
        config = RuntimeConfig.from_dict(data)
    except ConfigError as exc:
        texts = [str(exc), repr(exc)] + [f"{p!s} {p!r} {p.value!r}" for p in exc.problems]
    else:
        texts = [repr(config), json.dumps(config.dump())]
    assert not any(SECRET in text for text in texts)
