"""The runtime's config file: the backends, how failures are handled, and the one place it is read.

The file a user writes (YAML or JSON, toolhive's camelCase keys) becomes a
:class:`RuntimeConfig` only if it is valid.  Every problem is collected with its field
path and listed in file order, so one run shows everything to fix, and no input --
however malformed -- escapes as anything but ``ConfigError``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from vmcp_actors.config.aggregation import AggregationConfig, parse_aggregation
from vmcp_actors.config.backend_spec import BackendSpec, backend_rule_problems, parse_backend
from vmcp_actors.config.backend_values import NAME_PATTERN, NAME_RULE
from vmcp_actors.config.failure_handling import FAILURE_KEYS, FailureHandling, parse_failure_handling
from vmcp_actors.config.fields import ROOT_FIELD, show, unknown_keys
from vmcp_actors.config.reading import MappingReader, is_list, read_document
from vmcp_actors.errors import ConfigError, ValidationError

__all__ = ["RuntimeConfig"]

_TOP_KEYS: Final = ("name", "backends", "failureHandling", "aggregation")
#: Problems listed at most: a list of thousands (a generated file gone wrong) helps nobody.
MAX_LISTED_PROBLEMS: Final = 100
_BACKEND_INDEX: Final = re.compile(r"backends\[(\d+)\]")


def _backend_tuple(value: Iterable[BackendSpec]) -> tuple[BackendSpec, ...]:
    backends = tuple(value)
    for index, spec in enumerate(backends):
        if not isinstance(spec, BackendSpec):
            raise ValidationError(f"backends[{index}]", f"must be a BackendSpec, got {type(spec).__name__}", None)
    return backends


def _section(problem: ValidationError) -> tuple[int, int]:
    """Sort key putting problems in file order: top level, each backend in turn, failureHandling, aggregation."""
    match = _BACKEND_INDEX.match(problem.field)
    if match:
        return 2, int(match.group(1))
    if problem.field.startswith("backends"):
        return 1, 0
    if problem.field.startswith("failureHandling."):
        key = problem.field.removeprefix("failureHandling.").split(".", 1)[0]
        return 3, FAILURE_KEYS.index(key) if key in FAILURE_KEYS else len(FAILURE_KEYS)
    if problem.field.startswith("failureHandling"):
        return 3, -1
    if problem.field.startswith("aggregation"):
        return 4, 0
    return 0, 0


def _listed(found: list[ValidationError]) -> list[ValidationError]:
    """The first ``MAX_LISTED_PROBLEMS`` problems, and one line saying how many more there are."""
    if len(found) <= MAX_LISTED_PROBLEMS:
        return found
    hidden = len(found) - MAX_LISTED_PROBLEMS
    return [*found[:MAX_LISTED_PROBLEMS], ValidationError(ROOT_FIELD, f"... and {hidden} more problems not listed")]


def _rule_problems(
    name: str | None,
    backends: Iterable[tuple[int, BackendSpec, frozenset[str]]],
    handling: FailureHandling,
    handling_skip: frozenset[str],
) -> list[ValidationError]:
    """The rules of a parsed config, skipping fields whose values failed to parse.

    A duplicate backend name is reported at the later entry, right after that entry's
    own problems, pointing at the first use.
    """
    found: list[ValidationError] = []
    if name is not None and not NAME_PATTERN.match(name):
        found.append(ValidationError("name", f"{NAME_RULE}, got {show(name)}", name))
    first_use: dict[str, int] = {}
    for index, spec, skip in backends:
        path = f"backends[{index}]"
        found.extend(backend_rule_problems(spec, path, skip))
        if not spec.name or f"{path}.name" in skip:
            continue
        if spec.name in first_use:
            found.append(
                ValidationError(
                    f"{path}.name",
                    f"duplicate backend name {spec.name!r} (first used by backends[{first_use[spec.name]}])",
                    spec.name,
                )
            )
        else:
            first_use[spec.name] = index
    found.extend(handling.problems("failureHandling", handling_skip))
    return found


@attrs.frozen
class RuntimeConfig:
    """Everything the runtime reads from its config file: the backends, failure handling, aggregation.

    Build one with :meth:`load` or :meth:`from_dict`, which return only valid configs
    and otherwise raise ``ConfigError`` listing every problem.  Direct construction does
    not validate (like ``BackendSpec``); call :meth:`problems` or :meth:`validate`.
    A config with no backends is valid: the vMCP is Ready with nothing to serve.
    """

    backends: tuple[BackendSpec, ...] = attrs.field(default=(), converter=_backend_tuple)
    failure_handling: FailureHandling = attrs.field(factory=FailureHandling)
    name: str | None = None
    aggregation: AggregationConfig = attrs.field(factory=AggregationConfig)

    def problems(self) -> list[ValidationError]:
        """Every problem: each backend's own, duplicate names, failure handling, the vMCP name, aggregation."""
        return _rule_problems(
            self.name,
            ((index, spec, frozenset()) for index, spec in enumerate(self.backends)),
            self.failure_handling,
            frozenset(),
        ) + self.aggregation.problems("aggregation", {spec.name for spec in self.backends})

    def validate(self, source: str | None = None) -> RuntimeConfig:
        """Check every rule; return self so calls chain.

        Raises:
            ConfigError: listing every problem, under ``source``.
        """
        found = self.problems()
        if found:
            raise ConfigError(found, source)
        return self

    @classmethod
    def from_dict(cls, data: object, source: str = "<config>") -> RuntimeConfig:
        """Parse and validate a decoded config document; ``source`` names it in the error.

        Raises:
            ConfigError: whatever ``data`` is, never anything else; every problem
                carries a non-empty field path (``(root)`` when the document is not a
                mapping).
        """
        if not isinstance(data, Mapping):
            described = "nothing (the document is empty)" if data is None else type(data).__name__
            raise ConfigError(
                [
                    ValidationError(
                        ROOT_FIELD, f"must be a mapping with the keys {', '.join(_TOP_KEYS)}, got {described}"
                    )
                ],
                source,
            )
        found = unknown_keys(data, _TOP_KEYS, "")
        top = MappingReader(data, "", found)
        name = top.string("name")
        entries: list[tuple[int, BackendSpec, frozenset[str]]] = []
        raw_backends = data.get("backends")
        if raw_backends is not None and not is_list(raw_backends):
            top.fail("backends", f"must be a list of backends, got {type(raw_backends).__name__}")
        elif raw_backends is not None:
            for index, item in enumerate(raw_backends):
                parsed = parse_backend(item, f"backends[{index}]", found)
                if parsed is not None:
                    entries.append((index, *parsed))
        handling, handling_skip = parse_failure_handling(data.get("failureHandling"), "failureHandling", found)
        found.extend(_rule_problems(None if "name" in top.bad else name, entries, handling, handling_skip))
        names = {spec.name for _, spec, _ in entries}
        aggregation = parse_aggregation(data.get("aggregation"), found, "aggregation", names)
        if found:
            raise ConfigError(_listed(sorted(found, key=_section)), source)
        backends = tuple(spec for _, spec, _ in entries)
        return cls(backends=backends, failure_handling=handling, name=name, aggregation=aggregation)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RuntimeConfig:
        """Read, parse and validate a YAML (``.yaml``/``.yml``) or JSON (``.json``) file.

        Other names are sniffed: a document starting with ``{`` or ``[`` is read as
        JSON, anything else as YAML.

        Raises:
            ConfigError: for every failure -- missing file, bad encoding, syntax error
                (with line and column), wrong shape, broken rules.
        """
        source = os.fspath(path)
        return cls.from_dict(read_document(Path(source), source), source)

    def dump(self) -> dict[str, Any]:
        """The config as a user would write it, with env and header values redacted (``--debug``)."""
        data: dict[str, Any] = {}
        if self.name is not None:
            data["name"] = self.name
        backends: list[dict[str, Any]] = []
        for spec in self.backends:
            entry = spec.redacted()
            if spec.cwd:
                entry["cwd"] = spec.cwd
            backends.append(entry)
        data["backends"] = backends
        data["failureHandling"] = self.failure_handling.dump()
        if self.aggregation != AggregationConfig():
            data["aggregation"] = self.aggregation.dump()
        return data
