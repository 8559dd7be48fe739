"""The example config and helpers shared by the config tests (not a test module)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.backend_values import TransportType
from vmcp_actors.config.failure_handling import FailureHandling
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.errors import ConfigError, ValidationError

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
    assert dict(github.headers) == {"Authorization": HEADER_SECRET}
    assert github.timeout == 30.0
    assert config.failure_handling == FailureHandling()
    assert config.name is None


def bomb(levels: int, use: str = "name: *{last}") -> str:
    """The "billion laughs": nine-fold alias nesting, ``9**levels`` strings once expanded."""
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"{names[level]}: &{names[level]} [{','.join([f'*{names[level - 1]}'] * 9)}]")
    lines.append(use.format(last=names[levels - 1]))
    return "\n".join(lines) + "\n"
