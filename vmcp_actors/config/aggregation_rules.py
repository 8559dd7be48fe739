"""The checks of the ``aggregation`` block that the file alone can decide, one entry at a time.

:meth:`AggregationConfig.problems <vmcp_actors.config.aggregation.AggregationConfig.problems>`
walks the block and calls these for each name list, ``tools[]`` entry and, under
``manual``, the overrides across entries.  They stay apart from the values so that
module reads as the shape of the block and this one as its rules.  Every problem is a
:class:`~vmcp_actors.errors.ValidationError` whose ``field`` is the path a user can find
in the file (``aggregation.tools[1].overrides.search.name``), which is why
:func:`key_path` quotes keys that are not plain identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Final

from vmcp_actors.errors import ValidationError

if TYPE_CHECKING:
    from vmcp_actors.config.aggregation import WorkloadTools

__all__ = ["key_path", "manual_collisions", "name_list_problems", "workload_problems"]

#: MCP tool names (SEP-986): 1-128 of letters, digits, ``_``, ``-``, ``.`` and ``/``.
_TOOL_NAME: Final = re.compile(r"[A-Za-z0-9_./-]{1,128}")
_SIMPLE_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def key_path(path: str, key: object) -> str:
    """``path.key`` for a plain key, ``path['odd key']`` for any other, so the path stays readable.

    Unlike :func:`vmcp_actors.config.fields.key_path` it quotes with the full ``repr``:
    the messages this block has always given.
    """
    if isinstance(key, str) and _SIMPLE_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{key!r}]"


def name_list_problems(path: str, names: tuple[str, ...], backends: Collection[str] | None) -> list[ValidationError]:
    """Empty, repeated, or (when ``backends`` is given) unknown backend names in a list."""
    found: list[ValidationError] = []
    seen: set[str] = set()
    for index, name in enumerate(names):
        if not name:
            found.append(ValidationError(f"{path}[{index}]", "must not be empty", name))
        elif name in seen:
            found.append(ValidationError(f"{path}[{index}]", f"{name!r} is listed twice", name))
        elif backends is not None and name not in backends:
            found.append(ValidationError(f"{path}[{index}]", f"no backend named {name!r}", name))
        seen.add(name)
    return found


def workload_problems(entry: WorkloadTools, path: str, backends: Collection[str] | None) -> list[ValidationError]:
    """One ``tools[]`` entry: its backend, filter, and overrides (hidden, empty, or clashing names)."""
    found: list[ValidationError] = []
    if not entry.workload:
        found.append(ValidationError(f"{path}.workload", "is required (the name of a backend)", None))
    elif backends is not None and entry.workload not in backends:
        known = ", ".join(sorted(backends)) or "none configured"
        found.append(
            ValidationError(f"{path}.workload", f"no backend named {entry.workload!r} (backends: {known})", None)
        )
    if entry.filter is not None:
        found.extend(_duplicates(f"{path}.filter", entry.filter))
    targets: dict[str, str] = {}
    for tool, override in entry.overrides:
        field = key_path(f"{path}.overrides", tool)
        if entry.filter is not None and tool not in entry.filter:
            found.append(ValidationError(field, f"overrides {tool!r}, which the filter hides", tool))
        if override.name is None and override.description is None and not override.annotations:
            found.append(ValidationError(field, "must set at least one of name, description, annotations", None))
        if override.name is not None and not _TOOL_NAME.fullmatch(override.name):
            found.append(
                ValidationError(f"{field}.name", "must be 1-128 letters, digits, '_', '-', '.' or '/'", override.name)
            )
        elif override.name is not None and override.name in targets:
            found.append(
                ValidationError(
                    f"{field}.name", f"{override.name!r} is also the new name of {targets[override.name]!r}", None
                )
            )
        if override.name is not None:
            targets.setdefault(override.name, tool)
    return found


def _duplicates(path: str, names: tuple[str, ...]) -> list[ValidationError]:
    seen: set[str] = set()
    found: list[ValidationError] = []
    for index, name in enumerate(names):
        if not name:
            found.append(ValidationError(f"{path}[{index}]", "must not be empty", name))
        elif name in seen:
            found.append(ValidationError(f"{path}[{index}]", f"{name!r} is listed twice", name))
        seen.add(name)
    return found


def manual_collisions(entries: tuple[WorkloadTools, ...], path: str) -> list[ValidationError]:
    """Under ``manual``, two backends' overrides must not produce the same name."""
    owner: dict[str, str] = {}
    found: list[ValidationError] = []
    for index, entry in enumerate(entries):
        for tool, override in entry.overrides:
            if override.name is None:
                continue
            field = f"{key_path(f'{path}.tools[{index}].overrides', tool)}.name"
            if override.name in owner and owner[override.name] != entry.workload:
                found.append(
                    ValidationError(
                        field,
                        f"{override.name!r} is also the new name of a tool of {owner[override.name]!r}; "
                        "under conflictResolution: manual every exposed name must be unique",
                        None,
                    )
                )
            owner.setdefault(override.name, entry.workload)
    return found
