"""Reading what users write: one mapping's keys by shape, and whole YAML/JSON files, strictly.

Two jobs with one rule: no input, however malformed, escapes as anything but a
:class:`~vmcp_actors.errors.ValidationError` naming its field (collected) or a
:class:`~vmcp_actors.errors.ConfigError` naming the file.  Duplicate keys are errors in
both YAML and JSON, because the parsers' silent "last one wins" turns a typo into a
setting nobody chose, and error texts never quote the offending line, which may hold
a secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vmcp_actors.config.durations import parse_duration
from vmcp_actors.config.fields import FILE_FIELD, describe, key_path, repath, show
from vmcp_actors.config.files import MAX_CONFIG_BYTES, UnreadableFileError, read_regular_file
from vmcp_actors.config.yaml_loading import (
    MAX_YAML_VALUES,
    RecursiveAliasError,
    TooManyValuesError,
    load_bounded_yaml,
)
from vmcp_actors.errors import ConfigError, ValidationError

__all__ = ["MappingReader", "is_list", "read_document"]

_T = TypeVar("_T")


def is_list(value: object) -> bool:
    """Whether ``value`` is a YAML/JSON sequence (a list; tuples for callers building data in Python)."""
    return isinstance(value, (list, tuple))


class MappingReader:
    """Reads one mapping's known keys, recording a problem for each value of the wrong shape.

    Every getter returns a usable fallback after a problem, so the other keys are still
    checked, and remembers the key in ``bad`` so the rule checks that run afterwards skip
    it: a field gets one problem, not a parse error plus a rule error about the fallback.
    """

    def __init__(self, data: Mapping[Any, Any], path: str, found: list[ValidationError]) -> None:
        self.data = data
        self.path = path
        self.found = found
        self.bad: set[str] = set()

    def field(self, key: str) -> str:
        """The field path of ``key`` in this mapping."""
        return key_path(self.path, key)

    def fail(self, key: str, message: str, value: object = None, *, field: str | None = None) -> None:
        """Record a problem with ``key`` (at ``field`` when it is inside the value) and mark the key bad."""
        self.found.append(ValidationError(field or self.field(key), message, value))
        self.bad.add(key)

    def string(self, key: str) -> str | None:
        """A string value, ``None`` when absent or bad; a NUL can reach no argument, path or header."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got {describe(value)}", value)
            return None
        if "\x00" in value:
            self.fail(key, "must not contain a NUL character", value)
            return None
        return value

    def boolean(self, key: str, default: bool) -> bool:
        """A YAML boolean; strings such as ``"yes"`` are refused rather than guessed."""
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {describe(value)}", value)
            return default
        return value

    def duration(self, key: str, default: float) -> float:
        """A duration in seconds, ``default`` when absent or bad."""
        found = self.optional_duration(key)
        return default if found is None else found

    def optional_duration(self, key: str) -> float | None:
        """A duration in seconds, ``None`` when absent or bad."""
        value = self.data.get(key)
        if value is None:
            return None
        try:
            return parse_duration(value, self.field(key))
        except ValidationError as exc:
            self.found.append(exc)
            self.bad.add(key)
            return None

    def convert(self, key: str, converter: Callable[[Any], _T], default: _T, prefix: str | None = None) -> _T:
        """Use a converter that raises ``ValidationError`` (the enums), re-pathing its error."""
        value = self.data.get(key)
        if value is None:
            return default
        try:
            return converter(value)
        except ValidationError as exc:
            self.found.append(repath(exc, self.path if prefix is None else prefix))
            self.bad.add(key)
            return default

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of strings (``args``); elements that are not strings are named by index."""
        value = self.data.get(key)
        if value is None:
            return ()
        if not is_list(value):
            self.fail(key, f"must be a list of strings, got {type(value).__name__}", None)
            return ()
        items: list[str] = []
        for index, item in enumerate(value):
            field = f"{self.field(key)}[{index}]"
            if not isinstance(item, str):
                self.fail(key, f"must be a string, got {type(item).__name__}", None, field=field)
            elif "\x00" in item:
                self.fail(key, "must not contain a NUL character", None, field=field)
            else:
                items.append(item)
        return tuple(items) if key not in self.bad else ()

    def secret_map(self, key: str, *, forbidden: str) -> tuple[tuple[str, str], ...]:
        """A string-to-string mapping whose values are secrets (``env``, ``headers``).

        Problems name the entry and the value's type, never the value, and carry no
        ``value``: these errors end up in logs.  ``forbidden`` lists characters the
        value cannot contain (NUL for env, line breaks too for headers).
        """
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, Mapping):
            self.fail(key, f"must be a mapping of names to strings, got {type(value).__name__}", None)
            return ()
        pairs: list[tuple[str, str]] = []
        for name, item in value.items():
            problem = _secret_entry_problem(name, item, forbidden)
            if problem:
                self.fail(key, problem, None, field=key_path(self.field(key), name))
            else:
                pairs.append((name, item))
        return tuple(pairs) if key not in self.bad else ()


def _secret_entry_problem(name: object, item: object, forbidden: str) -> str:
    """What is wrong with one ``name: value`` entry of a secret map ("" if nothing); never quotes the value."""
    if not isinstance(name, str) or not name:
        return f"names must be non-empty strings, got {describe(name)}"
    if any(char in name for char in "=\x00\r\n"):
        return "name must not contain '=', NUL or line breaks"
    if not isinstance(item, str):
        hint = " (quote numbers and booleans in YAML)" if isinstance(item, (bool, int, float)) else ""
        return f"must be a string{hint}, got {type(item).__name__}"
    if any(char in item for char in forbidden):
        return "value must not contain NUL or line-break characters"
    return ""


# --------------------------------------------------------------------------- files


class _DuplicateJsonKeyError(ValueError):
    """A JSON object repeats a key (json.loads would silently keep the last)."""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateJsonKeyError(key)
        result[key] = value
    return result


def _file_error(source: str, message: str) -> ConfigError:
    return ConfigError([ValidationError(FILE_FIELD, message, None)], source)


def _load_yaml(text: str, source: str) -> object:
    try:
        return load_bounded_yaml(text)  # a SafeLoader: plain data only
    except TooManyValuesError:
        raise _file_error(
            source,
            f"YAML holds more than {MAX_YAML_VALUES} values, counting each alias as every value it "
            "repeats (an alias bomb?); a config never needs that many",
        ) from None
    except RecursiveAliasError:
        raise _file_error(source, "YAML alias refers to a value that contains it (a recursive document)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        # Only the problem text: str(exc) quotes the offending line, which may hold a secret.
        what = "; ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        raise _file_error(source, f"YAML syntax error{where}: {what}") from None
    except yaml.YAMLError as exc:
        raise _file_error(source, f"YAML error: {exc}") from None
    except RecursionError:
        raise _file_error(source, "YAML is nested too deeply") from None
    except ValueError as exc:
        # e.g. an integer literal longer than Python's int-conversion limit.
        raise _file_error(source, f"YAML value cannot be read: {exc}") from None


def _count_json_values(document: object, limit: int) -> None:
    """Refuse a JSON document of more than ``limit`` values, as YAML is refused (JSON has no aliases)."""
    count = 0
    pending = [document]
    while pending:
        value = pending.pop()
        count += 1
        if count > limit:
            raise TooManyValuesError
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def _load_json(text: str, source: str) -> object:
    try:
        document: object = json.loads(text, object_pairs_hook=_json_object)
        _count_json_values(document, MAX_YAML_VALUES)
        return document
    except TooManyValuesError:
        raise _file_error(
            source, f"JSON holds more than {MAX_YAML_VALUES} values; a config never needs that many"
        ) from None
    except json.JSONDecodeError as exc:
        raise _file_error(source, f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except _DuplicateJsonKeyError as exc:
        raise _file_error(source, f"JSON object has a duplicate key {show(exc.args[0])}") from None
    except RecursionError:
        raise _file_error(source, "JSON is nested too deeply") from None
    except ValueError as exc:
        raise _file_error(source, f"JSON value cannot be read: {exc}") from None


def read_document(path: Path, source: str) -> object:
    """The decoded YAML or JSON document in ``path``; ``source`` names the file in errors.

    ``.json`` is JSON and ``.yaml``/``.yml`` YAML; other names are sniffed: a document
    starting with ``{`` or ``[`` is tried as JSON first, anything else is YAML.

    Only a regular file of at most ``MAX_CONFIG_BYTES`` is read: a FIFO would block
    forever and ``/dev/zero`` would fill memory.  A document may hold at most
    ``MAX_YAML_VALUES`` values, a YAML alias counting as every value it repeats.

    Raises:
        ConfigError: for a missing, unreadable, non-regular or oversized file, bad
            encoding, a syntax error (with line and column), too many values or an
            alias bomb.
    """
    try:
        raw = read_regular_file(path, MAX_CONFIG_BYTES)
    except UnreadableFileError as exc:
        raise _file_error(source, f"cannot read the file: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error(source, f"is not UTF-8 text (invalid byte at offset {exc.start})") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _load_json(text, source)
    if suffix in (".yaml", ".yml") or not text.lstrip().startswith(("{", "[")):
        return _load_yaml(text, source)
    try:
        return _load_json(text, source)
    except ConfigError as json_error:
        # A YAML flow mapping also starts with "{"; report the JSON error only if YAML fails too.
        try:
            return _load_yaml(text, source)
        except ConfigError:
            raise json_error from None
