"""The ``aggregation`` block: how backends' tools become one vMCP's tools (toolhive's vMCP config).

::

    aggregation:
      conflictResolution: prefix          # prefix (default) | priority | manual
      conflictResolutionConfig:
        prefixFormat: "{workload}_"       # prefix: every tool is renamed prefix + name
        priorityOrder: [github, files]    # priority: the first listed backend keeps a clashing name
      tools:
        - workload: github                # a backend name
          filter: [create_issue, search]  # allow-list of the backend's own tool names
          overrides:
            search: {name: gh_search, description: "Search GitHub", annotations: {readOnlyHint: true}}

Values are frozen and carry no behaviour beyond lookups: the rules that apply them live in
:mod:`vmcp_actors.dataplane.aggregation`.  Parsing never stops at the first problem; every
problem is a :class:`~vmcp_actors.errors.ValidationError` whose ``field`` is the path in the
file (``aggregation.tools[1].overrides.search.name``), like the rest of the config; the
per-entry checks live in :mod:`~vmcp_actors.config.aggregation_rules`.

Two rules can only be checked against the live tools and are enforced at aggregation time,
not here: under ``manual`` a clash no override resolves hides every clashing tool (and is
reported), and a filter naming a tool the backend does not have simply matches nothing.
What *can* be known from the file is checked here, including two overrides that would give
the same exposed name.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

import attrs

from vmcp_actors.config.aggregation_rules import key_path, manual_collisions, name_list_problems, workload_problems
from vmcp_actors.errors import ValidationError

__all__ = [
    "DEFAULT_PREFIX_FORMAT",
    "AggregationConfig",
    "ConflictResolution",
    "ToolOverride",
    "WorkloadTools",
    "parse_aggregation",
]

DEFAULT_PREFIX_FORMAT: Final = "{workload}_"
#: ToolAnnotations fields an override may set, with the type each must have.
ANNOTATION_TYPES: Final[Mapping[str, type]] = {
    "title": str,
    "readOnlyHint": bool,
    "destructiveHint": bool,
    "idempotentHint": bool,
    "openWorldHint": bool,
}

_TOP_KEYS: Final = ("conflictResolution", "conflictResolutionConfig", "tools")
_RESOLUTION_KEYS: Final = ("prefixFormat", "priorityOrder")
_WORKLOAD_KEYS: Final = ("workload", "filter", "overrides")
_OVERRIDE_KEYS: Final = ("name", "description", "annotations")


class ConflictResolution(enum.StrEnum):
    """What happens when two backends expose the same tool name."""

    PREFIX = "prefix"
    PRIORITY = "priority"
    MANUAL = "manual"


@attrs.frozen
class ToolOverride:
    """A change to one tool as exposed: a new name, description, or annotation values."""

    name: str | None = None
    description: str | None = None
    annotations: tuple[tuple[str, Any], ...] = ()

    def annotation_values(self) -> dict[str, Any]:
        """The overridden annotations, by their camelCase wire names."""
        return dict(self.annotations)


def _freeze_overrides(value: Mapping[str, ToolOverride] | Iterable[tuple[str, ToolOverride]]) -> tuple[Any, ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted(items))


def _freeze_filter(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


@attrs.frozen
class WorkloadTools:
    """``aggregation.tools[]``: one backend's allow-list and per-tool overrides.

    ``filter`` is ``None`` when every tool passes; an empty tuple hides them all.
    Both the filter and the override keys use the backend's own tool names.
    """

    workload: str
    filter: tuple[str, ...] | None = attrs.field(default=None, converter=_freeze_filter)
    overrides: tuple[tuple[str, ToolOverride], ...] = attrs.field(default=(), converter=_freeze_overrides)

    def allows(self, tool: str) -> bool:
        """Whether the filter lets ``tool`` through."""
        return self.filter is None or tool in self.filter

    def override(self, tool: str) -> ToolOverride | None:
        """The override configured for ``tool``, if any."""
        for name, override in self.overrides:
            if name == tool:
                return override
        return None


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _workloads(value: Iterable[WorkloadTools]) -> tuple[WorkloadTools, ...]:
    return tuple(value)


def _prefixes(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((name, prefix) for name, prefix in pairs if prefix))


@attrs.frozen
class AggregationConfig:
    """The whole ``aggregation`` block; the default is toolhive's (prefix ``{workload}_``)."""

    conflict_resolution: ConflictResolution = ConflictResolution.PREFIX
    prefix_format: str = DEFAULT_PREFIX_FORMAT
    priority_order: tuple[str, ...] = attrs.field(default=(), converter=_names)
    tools: tuple[WorkloadTools, ...] = attrs.field(default=(), converter=_workloads)
    #: Backends' own ``toolPrefix`` (muster's field, from their specs, not from this block):
    #: wherever the strategy prefixes a backend's names, its ``toolPrefix`` replaces ``prefixFormat``.
    tool_prefixes: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_prefixes)

    def workload(self, backend: str) -> WorkloadTools | None:
        """The ``tools[]`` entry of ``backend``, if it has one."""
        for entry in self.tools:
            if entry.workload == backend:
                return entry
        return None

    def prefix_for(self, backend: str) -> str:
        """The prefix the prefix strategy puts in front of ``backend``'s tool names."""
        for name, prefix in self.tool_prefixes:
            if name == backend:
                return prefix
        return self.prefix_format.replace("{workload}", backend)

    def with_tool_prefix(self, backend: str, prefix: str) -> AggregationConfig:
        """This config with ``backend``'s ``toolPrefix`` set (``""``: back to ``prefixFormat``)."""
        others = [(name, value) for name, value in self.tool_prefixes if name != backend]
        return attrs.evolve(self, tool_prefixes=[*others, (backend, prefix)])

    def problems(self, path: str = "aggregation", backends: Collection[str] | None = None) -> list[ValidationError]:
        """Every rule this block breaks; ``backends`` (names) enables the cross-references."""
        found: list[ValidationError] = []
        resolution = f"{path}.conflictResolutionConfig"
        if not self.prefix_format or any(char.isspace() for char in self.prefix_format):
            found.append(
                ValidationError(f"{resolution}.prefixFormat", "must be non-empty, without spaces", self.prefix_format)
            )
        if self.conflict_resolution is ConflictResolution.PRIORITY and not self.priority_order:
            found.append(
                ValidationError(f"{resolution}.priorityOrder", "is required by conflictResolution: priority", None)
            )
        found.extend(name_list_problems(f"{resolution}.priorityOrder", self.priority_order, backends))
        workloads: dict[str, int] = {}
        for index, entry in enumerate(self.tools):
            entry_path = f"{path}.tools[{index}]"
            found.extend(workload_problems(entry, entry_path, backends))
            if entry.workload in workloads:
                found.append(
                    ValidationError(
                        f"{entry_path}.workload",
                        f"duplicate entry for {entry.workload!r} (first at {path}.tools[{workloads[entry.workload]}])",
                        entry.workload,
                    )
                )
            workloads.setdefault(entry.workload, index)
        if self.conflict_resolution is ConflictResolution.MANUAL:
            found.extend(manual_collisions(self.tools, path))
        return found

    def dump(self) -> dict[str, Any]:
        """The block as a user would write it."""
        data: dict[str, Any] = {"conflictResolution": self.conflict_resolution.value}
        resolution: dict[str, Any] = {"prefixFormat": self.prefix_format}
        if self.priority_order:
            resolution["priorityOrder"] = list(self.priority_order)
        data["conflictResolutionConfig"] = resolution
        if self.tools:
            data["tools"] = [_dump_workload(entry) for entry in self.tools]
        return data


def _dump_workload(entry: WorkloadTools) -> dict[str, Any]:
    data: dict[str, Any] = {"workload": entry.workload}
    if entry.filter is not None:
        data["filter"] = list(entry.filter)
    if entry.overrides:
        overrides: dict[str, Any] = {}
        for tool, override in entry.overrides:
            item: dict[str, Any] = {}
            if override.name is not None:
                item["name"] = override.name
            if override.description is not None:
                item["description"] = override.description
            if override.annotations:
                item["annotations"] = override.annotation_values()
            overrides[tool] = item
        data["overrides"] = overrides
    return data


# --------------------------------------------------------------------------- parsing


class _Shape:
    """Records shape problems (wrong type, unknown key) under a path; getters return fallbacks."""

    def __init__(self, found: list[ValidationError]) -> None:
        self.found = found

    def mapping(self, value: object, path: str, known: tuple[str, ...]) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.found.append(ValidationError(path, f"must be a mapping, got {type(value).__name__}", None))
            return {}
        for key in value:
            if key not in known:
                self.found.append(
                    ValidationError(key_path(path, key), f"unknown key (known keys: {', '.join(known)})", None)
                )
        return {key: item for key, item in value.items() if key in known}

    def string(self, value: object, path: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.found.append(ValidationError(path, f"must be a string, got {type(value).__name__}", None))
            return None
        return value

    def strings(self, value: object, path: str) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            self.found.append(ValidationError(path, f"must be a list of strings, got {type(value).__name__}", None))
            return None
        items: list[str] = []
        for index, item in enumerate(value):
            text = self.string(item, f"{path}[{index}]")
            if text is not None:
                items.append(text)
        return tuple(items)


def parse_aggregation(
    data: object, found: list[ValidationError], path: str = "aggregation", backends: Collection[str] | None = None
) -> AggregationConfig:
    """Parse the block, appending every problem (shape and rules) to ``found``.

    Returns a usable config even when problems were found (bad parts fall back to the
    defaults), so the caller can go on checking the rest of the file.
    """
    shape = _Shape(found)
    top = shape.mapping(data, path, _TOP_KEYS)
    before = len(found)
    resolution_text = shape.string(top.get("conflictResolution"), f"{path}.conflictResolution")
    resolution = ConflictResolution.PREFIX
    if resolution_text is not None:
        try:
            resolution = ConflictResolution(resolution_text)
        except ValueError:
            choices = ", ".join(item.value for item in ConflictResolution)
            found.append(
                ValidationError(f"{path}.conflictResolution", f"must be one of {choices}, got {resolution_text!r}")
            )
    resolution_path = f"{path}.conflictResolutionConfig"
    settings = shape.mapping(top.get("conflictResolutionConfig"), resolution_path, _RESOLUTION_KEYS)
    prefix = shape.string(settings.get("prefixFormat"), f"{resolution_path}.prefixFormat")
    order = shape.strings(settings.get("priorityOrder"), f"{resolution_path}.priorityOrder")
    entries: list[WorkloadTools] = []
    raw_tools = top.get("tools")
    if raw_tools is not None and not isinstance(raw_tools, list | tuple):
        found.append(ValidationError(f"{path}.tools", f"must be a list, got {type(raw_tools).__name__}", None))
    elif raw_tools is not None:
        entries = [_parse_workload(shape, item, f"{path}.tools[{index}]") for index, item in enumerate(raw_tools)]
    config = AggregationConfig(
        conflict_resolution=resolution,
        prefix_format=DEFAULT_PREFIX_FORMAT if prefix is None else prefix,
        priority_order=order or (),
        tools=tuple(entries),
    )
    if len(found) == before:
        found.extend(config.problems(path, backends))
    return config


def _parse_workload(shape: _Shape, data: object, path: str) -> WorkloadTools:
    entry = shape.mapping(data, path, _WORKLOAD_KEYS)
    workload = shape.string(entry.get("workload"), f"{path}.workload") or ""
    allowed = shape.strings(entry.get("filter"), f"{path}.filter")
    overrides: list[tuple[str, ToolOverride]] = []
    raw = entry.get("overrides")
    if raw is not None and not isinstance(raw, Mapping):
        shape.found.append(ValidationError(f"{path}.overrides", f"must be a mapping, got {type(raw).__name__}", None))
        raw = None
    for tool, item in (raw or {}).items():
        field = key_path(f"{path}.overrides", tool)
        if not isinstance(tool, str) or not tool:
            shape.found.append(ValidationError(field, "tool names must be non-empty strings", None))
            continue
        overrides.append((tool, _parse_override(shape, item, field)))
    return WorkloadTools(workload=workload, filter=allowed, overrides=tuple(overrides))


def _parse_override(shape: _Shape, data: object, path: str) -> ToolOverride:
    item = shape.mapping(data, path, _OVERRIDE_KEYS)
    annotations: list[tuple[str, Any]] = []
    for key, value in shape.mapping(item.get("annotations"), f"{path}.annotations", tuple(ANNOTATION_TYPES)).items():
        expected = ANNOTATION_TYPES[key]
        if not isinstance(value, expected):
            shape.found.append(
                ValidationError(
                    f"{path}.annotations.{key}",
                    f"must be {'true or false' if expected is bool else 'a string'}, got {type(value).__name__}",
                    None,
                )
            )
            continue
        annotations.append((key, value))
    return ToolOverride(
        name=shape.string(item.get("name"), f"{path}.name"),
        description=shape.string(item.get("description"), f"{path}.description"),
        annotations=tuple(sorted(annotations)),
    )
