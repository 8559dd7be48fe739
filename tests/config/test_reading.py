"""Reading config files: YAML and JSON, strictly; every broken file is a ConfigError naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.config.support import (
    EXAMPLE,
    EXAMPLE_YAML,
    HEADER_SECRET,
    check_example,
    write,
)
from vmcp_actors.config.fields import FILE_FIELD
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.errors import ConfigError

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
