"""Hostile config input is refused with a clear error and bounded work: FIFOs, devices, huge files, alias bombs."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.config.support import bomb, write
from vmcp_actors.config.auth import AuthSpec
from vmcp_actors.config.fields import FILE_FIELD
from vmcp_actors.config.files import MAX_CONFIG_BYTES, MAX_TOKEN_FILE_BYTES
from vmcp_actors.config.runtime_config import MAX_LISTED_PROBLEMS, RuntimeConfig
from vmcp_actors.config.yaml_loading import MAX_YAML_VALUES
from vmcp_actors.errors import ConfigError, ValidationError

#: Generous: each call returns in milliseconds when it works, and a hang is what is tested.
BOUND = 60.0


def finishes(call: Callable[[], object]) -> object:
    """Run ``call`` on a thread and return what it returned or raised; fail if it hangs past ``BOUND``."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # handed back to the test as the outcome
            outcome.append(exc)

    thread = threading.Thread(target=run, name="bounded-load", daemon=True)
    thread.start()
    thread.join(BOUND)
    assert not thread.is_alive(), f"still running after {BOUND}s: it hangs"
    return outcome[0]


def file_problem(outcome: object) -> str:
    assert isinstance(outcome, ConfigError), outcome
    (problem,) = outcome.problems
    assert problem.field == FILE_FIELD
    return str(problem)


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A named pipe nobody writes to; afterwards a writer opens and closes it, unblocking a hung reader."""
    path = tmp_path / "vmcp.yaml"
    os.mkfifo(path)
    yield path
    with contextlib.suppress(OSError):  # ENXIO: no reader is waiting, so none is stuck
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


# --------------------------------------------------------------------------- not regular files


def test_a_fifo_is_refused_at_once_not_waited_on(fifo: Path) -> None:
    message = file_problem(finishes(lambda: RuntimeConfig.load(fifo)))
    assert "cannot read the file: it is a FIFO (named pipe), not a regular file" in message


def test_a_device_is_refused() -> None:
    message = file_problem(finishes(lambda: RuntimeConfig.load("/dev/null")))
    assert "it is a character device, not a regular file" in message


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert "it is a directory, not a regular file" in file_problem(finishes(lambda: RuntimeConfig.load(tmp_path)))


def test_a_file_over_the_size_limit_is_refused_without_parsing(tmp_path: Path) -> None:
    path = write(tmp_path, "big.yaml", "#" * MAX_CONFIG_BYTES + "\n")
    message = file_problem(finishes(lambda: RuntimeConfig.load(path)))
    assert f"it is {MAX_CONFIG_BYTES + 1} bytes, more than the 1 MiB limit" in message


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    # Kubernetes mounts a ConfigMap key as a symlink into a ..data directory.
    target = write(tmp_path, "real.yaml", "backends: []\n")
    link = tmp_path / "vmcp.yaml"
    link.symlink_to(target)
    assert RuntimeConfig.load(link) == RuntimeConfig()


def test_a_token_file_that_is_a_fifo_or_huge_is_refused_without_showing_it(fifo: Path, tmp_path: Path) -> None:
    outcome = finishes(lambda: AuthSpec(type="bearer", token_file=str(fifo)).resolve_token({}))
    assert isinstance(outcome, ValidationError)
    assert "it is a FIFO (named pipe), not a regular file" in str(outcome)
    huge = write(tmp_path, "token", "x" * (MAX_TOKEN_FILE_BYTES + 1))
    with pytest.raises(ValidationError, match="more than the 64 KiB limit") as info:
        AuthSpec(type="bearer", token_file=str(huge)).resolve_token({})
    assert "xxxxxx" not in str(info.value)


# --------------------------------------------------------------------------- alias bombs


@pytest.fixture
def constructed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the values PyYAML builds: the loader's work, measured without a clock."""
    count = [0]
    original = yaml.constructor.BaseConstructor.construct_object

    def counting(self: yaml.constructor.BaseConstructor, node: yaml.Node, deep: bool = False) -> Any:
        count[0] += 1
        return original(self, node, deep)

    monkeypatch.setattr(yaml.constructor.BaseConstructor, "construct_object", counting)
    return count


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(bomb(8), id="8 levels as a name (hung validate)"),
        pytest.param(bomb(9), id="9 levels as a name"),
        pytest.param(bomb(9, "backends: *{last}"), id="9 levels as the backends"),
        pytest.param(bomb(7, "backends: [{{name: x, type: stdio, command: y, args: *{last}}}]"), id="7 levels as args"),
    ],
)
def test_an_alias_bomb_is_refused_before_anything_is_built(tmp_path: Path, text: str, constructed: list[int]) -> None:
    assert len(text.encode()) < 400
    message = file_problem(finishes(lambda: RuntimeConfig.load(write(tmp_path, "bomb.yaml", text))))
    assert f"YAML holds more than {MAX_YAML_VALUES} values, counting each alias as every value it repeats" in message
    assert constructed[0] == 0


def test_a_recursive_alias_is_refused(tmp_path: Path, constructed: list[int]) -> None:
    message = file_problem(finishes(lambda: RuntimeConfig.load(write(tmp_path, "loop.yaml", "backends: &b [*b]\n"))))
    assert "YAML alias refers to a value that contains it" in message
    assert constructed[0] == 0


@pytest.fixture
def composed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the nodes PyYAML composes: the parser's work, measured without a clock."""
    count = [0]
    original = yaml.composer.Composer.compose_node

    def counting(self: yaml.composer.Composer, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        count[0] += 1
        return original(self, parent, index)

    monkeypatch.setattr(yaml.composer.Composer, "compose_node", counting)
    return count


def test_a_huge_flat_document_stops_being_parsed_at_the_limit(
    tmp_path: Path, composed: list[int], constructed: list[int]
) -> None:
    text = "backends: [" + ",".join(["1"] * (MAX_CONFIG_BYTES // 2 - 20)) + "]\n"  # 500000 values, < 1 MiB
    message = file_problem(finishes(lambda: RuntimeConfig.load(write(tmp_path, "flat.yaml", text))))
    assert f"YAML holds more than {MAX_YAML_VALUES} values" in message
    assert composed[0] <= MAX_YAML_VALUES + 1
    assert constructed[0] == 0


def test_a_huge_json_document_is_refused(tmp_path: Path) -> None:
    text = '{"backends": [' + ",".join(["1"] * (MAX_YAML_VALUES + 1)) + "]}"
    message = file_problem(finishes(lambda: RuntimeConfig.load(write(tmp_path, "flat.json", text))))
    assert f"JSON holds more than {MAX_YAML_VALUES} values" in message


def test_thousands_of_problems_are_listed_up_to_a_limit() -> None:
    outcome = finishes(lambda: RuntimeConfig.from_dict({"backends": [1] * 5000}, source="many.yaml"))
    assert isinstance(outcome, ConfigError)
    assert len(outcome.problems) == MAX_LISTED_PROBLEMS + 1
    assert str(outcome.problems[-1]) == f"(root): ... and {5000 - MAX_LISTED_PROBLEMS} more problems not listed"


def test_ordinary_aliases_still_work(tmp_path: Path) -> None:
    backends = "\n".join(
        f"  - {{name: b{index}, type: stdio, command: server, env: *common}}" for index in range(1, 50)
    )
    first = "  - name: b0\n    type: stdio\n    command: server\n    env: &common {ROOT: /data}\n"
    text = f"backends:\n{first}{backends}\n"
    config = RuntimeConfig.load(write(tmp_path, "aliases.yaml", text))
    assert len(config.backends) == 50
    assert all(dict(spec.env) == {"ROOT": "/data"} for spec in config.backends)


def test_a_bad_value_built_in_python_is_shown_briefly() -> None:
    # from_dict gets data from Python too: the message is built from a bounded view of it.
    value: object = ["lol"] * 9
    for _ in range(9):
        value = [value] * 9
    outcome = finishes(lambda: RuntimeConfig.from_dict({"name": value, "backends": [{"name": "x", "type": value}]}))
    assert isinstance(outcome, ConfigError)
    assert len(str(outcome)) < 1000
    assert "name: must be a string, got list [[[[...]" in str(outcome)
    assert "backends[0].type: unsupported MCP server type: [[[[...]" in str(outcome)
