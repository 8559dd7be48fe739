"""Pure aggregation rules: backends' catalogues plus the ``aggregation`` config -> one vMCP's view.

toolhive's vMCP aggregator, as a function.  Per backend, first its ``tools[]`` entry applies
(the filter, an allow-list of the backend's own names, then the overrides), then the
conflict strategy decides the exposed names:

* ``prefix`` (default): every tool is renamed ``prefixFormat`` (``{workload}`` replaced by
  the backend name) + name.  A name that still collides keeps the first backend's tool
  (config order) and hides the rest.
* ``priority``: a name kept by several backends goes to the one ranked first in
  ``priorityOrder`` (backends not listed rank after the listed ones, in config order); the
  others' tools of that name are hidden.
* ``manual``: every clash must have been resolved by overrides; a name several backends
  still share is hidden for all of them, and reported as a conflict.

Prompts follow toolhive: prefixed with the tool prefix under ``prefix``; under ``priority``
the listed backends keep their names (the first ranked wins a clash) and the others are
prefixed with ``{workload}_``; under ``manual`` a clashing name is prefixed for every backend
that has it.  Resources and templates are locators, never renamed: a URI several backends
list goes to the first in rank (priority) or config order.

Names are resolved over every backend whose catalogue is known, healthy or not, and only
then restricted to the routable ones (:meth:`AggregatedView.restricted_to`), so a tool's
exposed name does not change when another backend's health flaps.  Every input is an
immutable value and the output is one too; nothing here does I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import mcp_types as types

from vmcp_actors.backend.catalogue import BackendCatalogue
from vmcp_actors.config.aggregation import AggregationConfig, ConflictResolution
from vmcp_actors.model.status import BackendHealth

__all__ = [
    "AggregatedView",
    "Hidden",
    "RoutedPrompt",
    "RoutedResource",
    "RoutedResourceTemplate",
    "RoutedTool",
    "aggregate",
    "should_advertise",
]

_T = TypeVar("_T")


def should_advertise(health: BackendHealth | None) -> bool:
    """Whether a backend of this health contributes: healthy or degraded (toolhive's ``ShouldAdvertise``)."""
    return health in (BackendHealth.HEALTHY, BackendHealth.DEGRADED)


@attrs.frozen
class RoutedTool:
    """A tool as clients see it, and where it goes: ``backend``'s ``original_name``.

    ``tool`` is the SDK ``Tool`` to list (the backend's, with the exposed name and any
    override applied); the other fields are its parts, for callers that want plain values.
    """

    name: str
    backend: str
    original_name: str
    description: str | None
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    annotations: dict[str, Any] | None
    tool: types.Tool


@attrs.frozen
class RoutedResource:
    """A resource as listed by ``backend`` (URIs are never renamed)."""

    uri: str
    backend: str
    name: str
    resource: types.Resource


@attrs.frozen
class RoutedResourceTemplate:
    """A resource template as listed by ``backend``."""

    uri_template: str
    backend: str
    name: str
    template: types.ResourceTemplate


@attrs.frozen
class RoutedPrompt:
    """A prompt as clients see it; ``get_prompt`` goes to ``backend``'s ``original_name``."""

    name: str
    backend: str
    original_name: str
    description: str | None
    arguments: tuple[types.PromptArgument, ...]
    prompt: types.Prompt


@attrs.frozen
class Hidden:
    """A backend capability that is not exposed, and why (filter, lost or unresolved clash)."""

    kind: str
    backend: str
    name: str
    reason: str


@attrs.frozen
class AggregatedView:
    """The outcome of :func:`aggregate`: what to expose, and what was hidden and why."""

    tools: tuple[RoutedTool, ...] = ()
    resources: tuple[RoutedResource, ...] = ()
    resource_templates: tuple[RoutedResourceTemplate, ...] = ()
    prompts: tuple[RoutedPrompt, ...] = ()
    hidden: tuple[Hidden, ...] = ()

    @functools.cached_property
    def tools_by_name(self) -> Mapping[str, RoutedTool]:
        """Exposed tools by exposed name."""
        return {tool.name: tool for tool in self.tools}

    @functools.cached_property
    def prompts_by_name(self) -> Mapping[str, RoutedPrompt]:
        """Exposed prompts by exposed name."""
        return {prompt.name: prompt for prompt in self.prompts}

    @functools.cached_property
    def resources_by_uri(self) -> Mapping[str, RoutedResource]:
        """Exposed resources by URI."""
        return {resource.uri: resource for resource in self.resources}

    @property
    def conflicts(self) -> tuple[Hidden, ...]:
        """Hidden capabilities that lost a name clash or could not be resolved."""
        return tuple(item for item in self.hidden if item.reason.startswith(("conflict", "unresolved")))

    def hidden_named(self, kind: str, name: str) -> tuple[Hidden, ...]:
        """Why capabilities of ``kind`` whose backend name is ``name`` are not exposed."""
        return tuple(item for item in self.hidden if item.kind == kind and item.name == name)

    def restricted_to(self, backends: Collection[str]) -> AggregatedView:
        """The same view with only the capabilities of ``backends`` (the routable ones)."""
        return AggregatedView(
            tools=tuple(item for item in self.tools if item.backend in backends),
            resources=tuple(item for item in self.resources if item.backend in backends),
            resource_templates=tuple(item for item in self.resource_templates if item.backend in backends),
            prompts=tuple(item for item in self.prompts if item.backend in backends),
            hidden=self.hidden,
        )


# --------------------------------------------------------------------------- tools


@attrs.frozen
class _Candidate:
    backend: str
    original: str
    name: str
    tool: types.Tool


def _candidates(catalogue: BackendCatalogue, config: AggregationConfig, hidden: list[Hidden]) -> list[_Candidate]:
    """The backend's tools after its filter and overrides, before conflict resolution."""
    entry = config.workload(catalogue.backend)
    found: list[_Candidate] = []
    seen: set[str] = set()
    for tool in catalogue.tools:
        if tool.name in seen:
            hidden.append(Hidden("tool", catalogue.backend, tool.name, "conflict: listed twice by its backend"))
            continue
        seen.add(tool.name)
        if entry is not None and not entry.allows(tool.name):
            hidden.append(Hidden("tool", catalogue.backend, tool.name, "filtered out by aggregation.tools[].filter"))
            continue
        override = entry.override(tool.name) if entry is not None else None
        if override is None:
            found.append(_Candidate(catalogue.backend, tool.name, tool.name, tool))
            continue
        update: dict[str, Any] = {}
        if override.description is not None:
            update["description"] = override.description
        if override.annotations:
            base = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else {}
            update["annotations"] = types.ToolAnnotations.model_validate({**base, **override.annotation_values()})
        changed = tool.model_copy(update=update) if update else tool
        found.append(_Candidate(catalogue.backend, tool.name, override.name or tool.name, changed))
    return found


def _rank(config: AggregationConfig, order: Sequence[str]) -> Callable[[str], tuple[int, int]]:
    """Sort key for backends: priorityOrder first (under priority), then config order."""
    listed = {name: index for index, name in enumerate(config.priority_order)}
    position = {name: index for index, name in enumerate(order)}
    use_priority = config.conflict_resolution is ConflictResolution.PRIORITY

    def rank(backend: str) -> tuple[int, int]:
        first = listed.get(backend, len(listed)) if use_priority else 0
        return first, position.get(backend, len(position))

    return rank


def _group(candidates: Iterable[_T], key: Callable[[_T], str]) -> dict[str, list[_T]]:
    groups: dict[str, list[_T]] = {}
    for item in candidates:
        groups.setdefault(key(item), []).append(item)
    return groups


def _resolve_tools(
    candidates: list[_Candidate], config: AggregationConfig, order: Sequence[str], hidden: list[Hidden]
) -> list[_Candidate]:
    strategy = config.conflict_resolution
    if strategy is ConflictResolution.PREFIX:
        candidates = [attrs.evolve(c, name=config.prefix_for(c.backend) + c.name) for c in candidates]
    rank = _rank(config, order)
    kept: dict[str, _Candidate] = {}
    for name, group in _group(candidates, lambda c: c.name).items():
        backends = sorted({c.backend for c in group}, key=rank)
        if strategy is ConflictResolution.MANUAL and len(backends) > 1:
            for c in group:
                others = ", ".join(b for b in backends if b != c.backend)
                reason = (
                    f"unresolved conflict: {name!r} is also exposed by {others} "
                    "(conflictResolution: manual needs an override that renames it)"
                )
                hidden.append(Hidden("tool", c.backend, c.original, reason))
            continue
        winner = min(group, key=lambda c: rank(c.backend))
        kept[name] = winner
        why = "priorityOrder" if strategy is ConflictResolution.PRIORITY else "config order"
        for c in group:
            if c is not winner:
                hidden.append(
                    Hidden("tool", c.backend, c.original, f"conflict: {name!r} goes to {winner.backend!r} by {why}")
                )
    return [c for c in candidates if kept.get(c.name) is c]


def _routed_tool(candidate: _Candidate) -> RoutedTool:
    tool = (
        candidate.tool
        if candidate.tool.name == candidate.name
        else candidate.tool.model_copy(update={"name": candidate.name})
    )
    annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None
    return RoutedTool(
        name=candidate.name,
        backend=candidate.backend,
        original_name=candidate.original,
        description=tool.description,
        input_schema=dict(tool.input_schema),
        output_schema=None if tool.output_schema is None else dict(tool.output_schema),
        annotations=annotations,
        tool=tool,
    )


# --------------------------------------------------------------------------- prompts, resources


def _prompt_name(prompt: types.Prompt, backend: str, clash: bool, config: AggregationConfig) -> str:
    strategy = config.conflict_resolution
    if strategy is ConflictResolution.PREFIX:
        return config.prefix_for(backend) + prompt.name
    if strategy is ConflictResolution.PRIORITY:
        return prompt.name if backend in config.priority_order else f"{backend}_{prompt.name}"
    return f"{backend}_{prompt.name}" if clash else prompt.name


def _resolve_prompts(
    catalogues: Sequence[BackendCatalogue], config: AggregationConfig, order: Sequence[str], hidden: list[Hidden]
) -> list[RoutedPrompt]:
    owners = _group(((c.backend, p.name) for c in catalogues for p in c.prompts), lambda pair: pair[1])
    rank = _rank(config, order)
    named: list[tuple[str, str, types.Prompt]] = []
    for catalogue in sorted(catalogues, key=lambda c: rank(c.backend)):
        for prompt in catalogue.prompts:
            clash = len({backend for backend, _ in owners[prompt.name]}) > 1
            named.append((_prompt_name(prompt, catalogue.backend, clash, config), catalogue.backend, prompt))
    routed: dict[str, RoutedPrompt] = {}
    for name, backend, prompt in named:
        if name in routed:
            hidden.append(
                Hidden("prompt", backend, prompt.name, f"conflict: {name!r} goes to {routed[name].backend!r}")
            )
            continue
        exposed = prompt if prompt.name == name else prompt.model_copy(update={"name": name})
        routed[name] = RoutedPrompt(
            name, backend, prompt.name, prompt.description, tuple(prompt.arguments or ()), exposed
        )
    position = {c.backend: index for index, c in enumerate(catalogues)}
    return sorted(routed.values(), key=lambda p: position[p.backend])


def _first_by(
    catalogues: Sequence[BackendCatalogue],
    items: Callable[[BackendCatalogue], Iterable[_T]],
    key: Callable[[_T], str],
    rank: Callable[[str], tuple[int, int]],
    kind: str,
    hidden: list[Hidden],
) -> list[tuple[str, _T]]:
    """Each key once: the backend ranked first keeps it, the others' copies are hidden."""
    kept: dict[str, str] = {}
    for catalogue in sorted(catalogues, key=lambda c: rank(c.backend)):
        for item in items(catalogue):
            if key(item) in kept:
                reason = f"conflict: {key(item)!r} goes to {kept[key(item)]!r}"
                hidden.append(Hidden(kind, catalogue.backend, key(item), reason))
            else:
                kept[key(item)] = catalogue.backend
    emitted: set[str] = set()
    result: list[tuple[str, _T]] = []
    for catalogue in catalogues:
        for item in items(catalogue):
            if kept.get(key(item)) == catalogue.backend and key(item) not in emitted:
                emitted.add(key(item))
                result.append((catalogue.backend, item))
    return result


# --------------------------------------------------------------------------- the whole view


def aggregate(catalogues: Sequence[BackendCatalogue], config: AggregationConfig) -> AggregatedView:
    """The aggregated view of ``catalogues`` (in config order) under ``config``.

    Deterministic: the same catalogues in the same order always give an equal view.
    """
    order = [catalogue.backend for catalogue in catalogues]
    hidden: list[Hidden] = []
    candidates = [c for catalogue in catalogues for c in _candidates(catalogue, config, hidden)]
    tools = [_routed_tool(c) for c in _resolve_tools(candidates, config, order, hidden)]
    rank = _rank(config, order)
    resources = _first_by(catalogues, lambda c: c.resources, lambda r: str(r.uri), rank, "resource", hidden)
    templates = _first_by(
        catalogues, lambda c: c.resource_templates, lambda t: t.uri_template, rank, "resource template", hidden
    )
    prompts = _resolve_prompts(catalogues, config, order, hidden)
    return AggregatedView(
        tools=tuple(tools),
        resources=tuple(RoutedResource(str(r.uri), backend, r.name, r) for backend, r in resources),
        resource_templates=tuple(
            RoutedResourceTemplate(t.uri_template, backend, t.name, t) for backend, t in templates
        ),
        prompts=tuple(prompts),
        hidden=tuple(hidden),
    )
