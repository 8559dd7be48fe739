"""Properties of the pure aggregation rules (toolhive's prefix / priority / manual), with hypothesis.

Tool names are drawn from a tiny alphabet so that clashes between backends are the norm, not
the exception; filters and overrides are drawn from the tools the backends really have.
"""

from __future__ import annotations

from collections import Counter

import mcp_types as types
from hypothesis import given, settings
from hypothesis import strategies as st

from vmcp_actors.backend.catalogue import BackendCatalogue
from vmcp_actors.config.aggregation import AggregationConfig, ConflictResolution, ToolOverride, WorkloadTools
from vmcp_actors.dataplane.aggregation import AggregatedView, aggregate

TOOL_NAMES = ("echo", "add", "search", "read")
BACKEND_NAMES = ("alpha", "beta", "gamma", "delta")


def _tool(name: str, backend: str) -> types.Tool:
    return types.Tool(name=name, description=f"{name} of {backend}", input_schema={"type": "object"})


@st.composite
def catalogues(draw: st.DrawFn) -> list[BackendCatalogue]:
    backends = draw(st.lists(st.sampled_from(BACKEND_NAMES), min_size=1, max_size=4, unique=True))
    result = []
    for backend in backends:
        tools = draw(st.lists(st.sampled_from(TOOL_NAMES), max_size=4, unique=True))
        uris = draw(st.lists(st.sampled_from(("file:///a", "file:///b", "mem://c")), max_size=2, unique=True))
        prompts = draw(st.lists(st.sampled_from(("greet", "summarise")), max_size=2, unique=True))
        result.append(
            BackendCatalogue(
                backend=backend,
                tools=tuple(_tool(name, backend) for name in tools),
                resources=tuple(types.Resource(name=uri, uri=uri) for uri in uris),
                prompts=tuple(types.Prompt(name=name) for name in prompts),
            )
        )
    return result


@st.composite
def configs(draw: st.DrawFn, cats: list[BackendCatalogue]) -> AggregationConfig:
    strategy = draw(st.sampled_from(list(ConflictResolution)))
    entries = []
    used_targets: set[str] = set()
    for catalogue in cats:
        if not draw(st.booleans()):
            continue
        names = list(catalogue.tool_names)
        allowed = draw(st.none() | st.lists(st.sampled_from(names), unique=True)) if names else None
        overrides = {}
        for tool in allowed if allowed is not None else names:
            if draw(st.booleans()):
                target = draw(st.none() | st.sampled_from(("renamed_a", "renamed_b", "renamed_c", "echo")))
                if target is not None and (target in used_targets or target in overrides):
                    target = None
                if target is not None:
                    used_targets.add(target)
                overrides[tool] = ToolOverride(name=target, description="overridden")
        entries.append(WorkloadTools(catalogue.backend, allowed, overrides))
    order = draw(st.permutations([c.backend for c in cats]).flatmap(lambda p: st.just(p[: max(1, len(p) - 1)])))
    return AggregationConfig(
        conflict_resolution=strategy,
        prefix_format=draw(st.sampled_from(("{workload}_", "{workload}.", "x_"))),
        priority_order=tuple(order),
        tools=tuple(entries),
    )


Scenario = tuple[list[BackendCatalogue], AggregationConfig]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    cats = draw(catalogues())
    return cats, draw(configs(cats))


def _exposed_name(config: AggregationConfig, backend: str, original: str) -> str:
    entry = config.workload(backend)
    override = entry.override(original) if entry else None
    return override.name if override is not None and override.name else original


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_every_backend_tool_is_exposed_once_or_hidden_with_a_reason(scenario: Scenario) -> None:
    cats, config = scenario
    view = aggregate(cats, config)
    names = [tool.name for tool in view.tools]
    assert len(names) == len(set(names)), "exposed names are unique"
    exposed = Counter((tool.backend, tool.original_name) for tool in view.tools)
    hidden = Counter((item.backend, item.name) for item in view.hidden if item.kind == "tool")
    for catalogue in cats:
        for original in catalogue.tool_names:
            assert exposed[(catalogue.backend, original)] + hidden[(catalogue.backend, original)] == 1
    for item in view.hidden:
        assert item.reason


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_exposed_tools_are_the_backends_tools_after_filter_and_overrides(scenario: Scenario) -> None:
    cats, config = scenario
    view = aggregate(cats, config)
    by_backend = {c.backend: c for c in cats}
    for tool in view.tools:
        assert tool.original_name in by_backend[tool.backend].tool_names
        entry = config.workload(tool.backend)
        assert entry is None or entry.allows(tool.original_name)
        base = _exposed_name(config, tool.backend, tool.original_name)
        if config.conflict_resolution is ConflictResolution.PREFIX:
            assert tool.name == config.prefix_for(tool.backend) + base
        else:
            assert tool.name == base
        assert tool.tool.name == tool.name
        assert tool.input_schema == {"type": "object"}
        override = entry.override(tool.original_name) if entry else None
        expected = "overridden" if override else f"{tool.original_name} of {tool.backend}"
        assert tool.description == expected


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_conflicts_follow_the_strategy(scenario: Scenario) -> None:
    cats, config = scenario
    view = aggregate(cats, config)
    candidates: dict[str, set[str]] = {}
    for catalogue in cats:
        entry = config.workload(catalogue.backend)
        for original in catalogue.tool_names:
            if entry is None or entry.allows(original):
                name = _exposed_name(config, catalogue.backend, original)
                if config.conflict_resolution is ConflictResolution.PREFIX:
                    name = config.prefix_for(catalogue.backend) + name
                candidates.setdefault(name, set()).add(catalogue.backend)
    exposed = view.tools_by_name
    order = [c.backend for c in cats]
    for name, backends in candidates.items():
        if len(backends) == 1 or config.conflict_resolution is ConflictResolution.PREFIX:
            assert name in exposed
            continue
        if config.conflict_resolution is ConflictResolution.MANUAL:
            assert name not in exposed, "an unresolved clash hides every candidate"
            continue
        listed = [b for b in config.priority_order if b in backends]
        winner = listed[0] if listed else min(backends, key=order.index)
        assert exposed[name].backend == winner


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_the_view_is_deterministic_and_restricting_keeps_names(scenario: Scenario) -> None:
    cats, config = scenario
    view = aggregate(cats, config)
    assert aggregate(list(cats), config) == view
    assert view.restricted_to({c.backend for c in cats}) == view
    keep = {c.backend for c in cats[::2]}
    restricted = view.restricted_to(keep)
    assert {t.backend for t in restricted.tools} <= keep
    assert [t for t in view.tools if t.backend in keep] == list(restricted.tools)
    assert restricted.restricted_to(set()) == AggregatedView(hidden=view.hidden)


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_resources_are_listed_once_and_prompts_have_unique_names(scenario: Scenario) -> None:
    cats, config = scenario
    view = aggregate(cats, config)
    uris = [r.uri for r in view.resources]
    assert len(uris) == len(set(uris))
    assert set(uris) == {str(r.uri) for c in cats for r in c.resources}
    names = [p.name for p in view.prompts]
    assert len(names) == len(set(names))
    exposed = Counter((p.backend, p.original_name) for p in view.prompts)
    hidden = Counter((h.backend, h.name) for h in view.hidden if h.kind == "prompt")
    for catalogue in cats:
        for prompt in catalogue.prompts:
            assert exposed[(catalogue.backend, prompt.name)] + hidden[(catalogue.backend, prompt.name)] == 1
