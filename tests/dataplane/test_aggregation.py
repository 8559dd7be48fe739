"""Examples of the aggregation rules, one per toolhive behaviour they port."""

from __future__ import annotations

import mcp_types as types

from vmcp_actors.backend.catalogue import BackendCatalogue
from vmcp_actors.config.aggregation import AggregationConfig, ConflictResolution, ToolOverride, WorkloadTools
from vmcp_actors.dataplane.aggregation import aggregate, should_advertise
from vmcp_actors.model.status import BackendHealth


def _catalogue(
    backend: str, *tools: str, prompts: tuple[str, ...] = (), uris: tuple[str, ...] = ()
) -> BackendCatalogue:
    return BackendCatalogue(
        backend=backend,
        tools=tuple(
            types.Tool(
                name=name,
                description=f"{name}@{backend}",
                input_schema={"type": "object", "properties": {"x": {"type": "string"}}},
                annotations=types.ToolAnnotations(read_only_hint=False, title="t"),
            )
            for name in tools
        ),
        prompts=tuple(types.Prompt(name=name, description=f"{name}@{backend}") for name in prompts),
        resources=tuple(types.Resource(name=uri, uri=uri) for uri in uris),
    )


def test_prefix_is_the_default_and_renames_every_tool() -> None:
    view = aggregate([_catalogue("github", "search"), _catalogue("files", "search", "read")], AggregationConfig())
    assert [(t.name, t.backend, t.original_name) for t in view.tools] == [
        ("github_search", "github", "search"),
        ("files_search", "files", "search"),
        ("files_read", "files", "read"),
    ]
    assert view.tools[0].input_schema == {"type": "object", "properties": {"x": {"type": "string"}}}
    assert not view.hidden


def test_prefix_format_placeholders() -> None:
    config = AggregationConfig(prefix_format="{workload}.")
    assert [t.name for t in aggregate([_catalogue("gh", "a")], config).tools] == ["gh.a"]
    static = AggregationConfig(prefix_format="vmcp_")
    view = aggregate([_catalogue("gh", "a"), _catalogue("fs", "a")], static)
    assert [t.name for t in view.tools] == ["vmcp_a"]
    assert view.hidden[0].backend == "fs"
    assert view.hidden[0].reason.startswith("conflict")


def test_a_backends_own_tool_prefix_replaces_the_prefix_format_for_it() -> None:
    config = AggregationConfig(tool_prefixes={"github": "gh."})
    view = aggregate([_catalogue("github", "search", prompts=("p",)), _catalogue("files", "search")], config)
    assert [(t.name, t.backend) for t in view.tools] == [("gh.search", "github"), ("files_search", "files")]
    assert [p.name for p in view.prompts] == ["gh.p"]
    assert config.with_tool_prefix("github", "") == AggregationConfig()
    assert config.with_tool_prefix("github", "gh.") == config
    priority = AggregationConfig(conflict_resolution=ConflictResolution.PRIORITY, tool_prefixes={"github": "gh."})
    assert [t.name for t in aggregate([_catalogue("github", "search")], priority).tools] == ["search"]


def test_priority_keeps_the_first_listed_backend_and_hides_the_others() -> None:
    config = AggregationConfig(conflict_resolution=ConflictResolution.PRIORITY, priority_order=("files", "github"))
    view = aggregate([_catalogue("github", "search", "issues"), _catalogue("files", "search")], config)
    assert {(t.name, t.backend) for t in view.tools} == {("search", "files"), ("issues", "github")}
    (hidden,) = view.conflicts
    assert (hidden.backend, hidden.name) == ("github", "search")
    assert "priorityOrder" in hidden.reason


def test_priority_ranks_unlisted_backends_after_listed_ones() -> None:
    config = AggregationConfig(conflict_resolution=ConflictResolution.PRIORITY, priority_order=("c",))
    view = aggregate([_catalogue("a", "x"), _catalogue("b", "x"), _catalogue("c", "x")], config)
    assert view.tools_by_name["x"].backend == "c"
    view = aggregate([_catalogue("a", "x"), _catalogue("b", "x")], config)
    assert view.tools_by_name["x"].backend == "a"


def test_manual_hides_an_unresolved_clash_and_an_override_resolves_it() -> None:
    manual = AggregationConfig(conflict_resolution=ConflictResolution.MANUAL)
    view = aggregate([_catalogue("a", "x", "y"), _catalogue("b", "x")], manual)
    assert [t.name for t in view.tools] == ["y"]
    assert {h.backend for h in view.conflicts} == {"a", "b"}
    assert all("unresolved" in h.reason for h in view.conflicts)
    resolved = AggregationConfig(
        conflict_resolution=ConflictResolution.MANUAL,
        tools=(WorkloadTools("b", overrides={"x": ToolOverride(name="b_x")}),),
    )
    view = aggregate([_catalogue("a", "x", "y"), _catalogue("b", "x")], resolved)
    assert {(t.name, t.backend, t.original_name) for t in view.tools} == {
        ("x", "a", "x"),
        ("y", "a", "y"),
        ("b_x", "b", "x"),
    }


def test_filter_and_overrides() -> None:
    config = AggregationConfig(
        tools=(
            WorkloadTools(
                "gh",
                filter=("search", "issues"),
                overrides={
                    "search": ToolOverride(
                        name="find", description="Find things", annotations=(("readOnlyHint", True),)
                    )
                },
            ),
        )
    )
    view = aggregate([_catalogue("gh", "search", "issues", "delete")], config)
    assert [t.name for t in view.tools] == ["gh_find", "gh_issues"]
    find = view.tools[0]
    assert find.original_name == "search"
    assert find.description == "Find things"
    assert find.annotations == {"title": "t", "readOnlyHint": True}
    assert find.tool.annotations is not None
    assert find.tool.annotations.read_only_hint is True
    (hidden,) = view.hidden
    assert (hidden.name, hidden.reason) == ("delete", "filtered out by aggregation.tools[].filter")
    empty = AggregationConfig(tools=(WorkloadTools("gh", filter=()),))
    assert aggregate([_catalogue("gh", "search")], empty).tools == ()


def test_prompts_follow_toolhive() -> None:
    cats = [_catalogue("a", prompts=("greet", "only_a")), _catalogue("b", prompts=("greet",))]
    prefix = aggregate(cats, AggregationConfig())
    assert [p.name for p in prefix.prompts] == ["a_greet", "a_only_a", "b_greet"]
    priority = aggregate(
        cats, AggregationConfig(conflict_resolution=ConflictResolution.PRIORITY, priority_order=("b",))
    )
    assert {(p.name, p.backend) for p in priority.prompts} == {("greet", "b"), ("a_greet", "a"), ("a_only_a", "a")}
    manual = aggregate(cats, AggregationConfig(conflict_resolution=ConflictResolution.MANUAL))
    assert {(p.name, p.original_name) for p in manual.prompts} == {
        ("a_greet", "greet"),
        ("b_greet", "greet"),
        ("only_a", "only_a"),
    }


def test_resources_are_never_renamed_and_the_first_backend_keeps_a_shared_uri() -> None:
    cats = [_catalogue("a", uris=("file:///x",)), _catalogue("b", uris=("file:///x", "file:///y"))]
    view = aggregate(cats, AggregationConfig())
    assert [(r.uri, r.backend) for r in view.resources] == [("file:///x", "a"), ("file:///y", "b")]
    priority = aggregate(
        cats, AggregationConfig(conflict_resolution=ConflictResolution.PRIORITY, priority_order=("b",))
    )
    assert priority.resources_by_uri["file:///x"].backend == "b"


def test_only_healthy_and_degraded_backends_are_advertised() -> None:
    assert should_advertise(BackendHealth.HEALTHY)
    assert should_advertise(BackendHealth.DEGRADED)
    for health in (BackendHealth.UNHEALTHY, BackendHealth.UNKNOWN, BackendHealth.UNAUTHENTICATED, None):
        assert not should_advertise(health)
