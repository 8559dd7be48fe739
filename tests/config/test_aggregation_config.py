"""The ``aggregation`` block of the config file: parsing, rules, field paths, round trip."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmcp_actors.config.aggregation import AggregationConfig, ConflictResolution, ToolOverride, WorkloadTools
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.errors import ConfigError

BACKENDS = [
    {"name": "github", "type": "streamable-http", "url": "http://127.0.0.1:9000/mcp"},
    {"name": "files", "type": "stdio", "command": "python"},
]


def _load(aggregation: object) -> RuntimeConfig:
    return RuntimeConfig.from_dict({"backends": BACKENDS, "aggregation": aggregation})


def _problems(aggregation: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        _load(aggregation)
    return {problem.field: str(problem) for problem in caught.value.problems}


def test_no_block_means_toolhives_default() -> None:
    config = RuntimeConfig.from_dict({"backends": BACKENDS})
    assert config.aggregation == AggregationConfig()
    assert config.aggregation.conflict_resolution is ConflictResolution.PREFIX
    assert config.aggregation.prefix_for("github") == "github_"
    assert "aggregation" not in config.dump()


def test_a_full_block() -> None:
    config = _load(
        {
            "conflictResolution": "priority",
            "conflictResolutionConfig": {"priorityOrder": ["files", "github"]},
            "tools": [
                {
                    "workload": "github",
                    "filter": ["search", "create_issue"],
                    "overrides": {
                        "search": {
                            "name": "gh_search",
                            "description": "Search GitHub",
                            "annotations": {"readOnlyHint": True, "title": "Search"},
                        }
                    },
                }
            ],
        }
    )
    aggregation = config.aggregation
    assert aggregation.conflict_resolution is ConflictResolution.PRIORITY
    assert aggregation.priority_order == ("files", "github")
    entry = aggregation.workload("github")
    assert entry is not None
    assert entry.allows("search")
    assert not entry.allows("delete_repo")
    assert entry.override("search") == ToolOverride(
        name="gh_search", description="Search GitHub", annotations=(("readOnlyHint", True), ("title", "Search"))
    )
    assert aggregation.workload("files") is None
    assert RuntimeConfig.from_dict(config.dump()) == config


@pytest.mark.parametrize(
    ("aggregation", "field", "text"),
    [
        ({"conflictResolution": "first"}, "aggregation.conflictResolution", "must be one of prefix, priority, manual"),
        ({"conflictResolution": "priority"}, "aggregation.conflictResolutionConfig.priorityOrder", "is required"),
        (
            {"conflictResolution": "priority", "conflictResolutionConfig": {"priorityOrder": ["github", "nope"]}},
            "aggregation.conflictResolutionConfig.priorityOrder[1]",
            "no backend named 'nope'",
        ),
        ({"conflictResolutionConfig": {"prefixFormat": ""}}, "aggregation.conflictResolutionConfig.prefixFormat", ""),
        ({"tools": [{"workload": "gitlab"}]}, "aggregation.tools[0].workload", "no backend named 'gitlab'"),
        ({"tools": [{"filter": ["a"]}]}, "aggregation.tools[0].workload", "is required"),
        (
            {"tools": [{"workload": "github"}, {"workload": "github"}]},
            "aggregation.tools[1].workload",
            "duplicate entry for 'github' (first at aggregation.tools[0])",
        ),
        ({"tools": [{"workload": "github", "filter": ["a", "a"]}]}, "aggregation.tools[0].filter[1]", "twice"),
        (
            {"tools": [{"workload": "github", "filter": ["a"], "overrides": {"b": {"name": "c"}}}]},
            "aggregation.tools[0].overrides.b",
            "which the filter hides",
        ),
        ({"tools": [{"workload": "github", "overrides": {"b": {}}}]}, "aggregation.tools[0].overrides.b", "at least"),
        (
            {"tools": [{"workload": "github", "overrides": {"b": {"name": "has space"}}}]},
            "aggregation.tools[0].overrides.b.name",
            "1-128 letters",
        ),
        (
            {"tools": [{"workload": "github", "overrides": {"a": {"name": "x"}, "b": {"name": "x"}}}]},
            "aggregation.tools[0].overrides.b.name",
            "also the new name of 'a'",
        ),
        (
            {
                "conflictResolution": "manual",
                "tools": [
                    {"workload": "github", "overrides": {"a": {"name": "x"}}},
                    {"workload": "files", "overrides": {"b": {"name": "x"}}},
                ],
            },
            "aggregation.tools[1].overrides.b.name",
            "every exposed name must be unique",
        ),
        (
            {"tools": [{"workload": "github", "overrides": {"a": {"annotations": {"readOnlyHint": "yes"}}}}]},
            "aggregation.tools[0].overrides.a.annotations.readOnlyHint",
            "must be true or false",
        ),
        (
            {"tools": [{"workload": "github", "overrides": {"a": {"annotations": {"colour": "red"}}}}]},
            "aggregation.tools[0].overrides.a.annotations.colour",
            "unknown key",
        ),
        (
            {"tools": [{"workload": "github", "overrides": {"a.b": {"nam": "x"}}}]},
            "aggregation.tools[0].overrides['a.b'].nam",
            "unknown key",
        ),
        ({"strategy": "prefix"}, "aggregation.strategy", "unknown key"),
        ([1], "aggregation", "must be a mapping"),
        ({"tools": {"workload": "github"}}, "aggregation.tools", "must be a list"),
        ({"tools": [{"workload": "github", "filter": "search"}]}, "aggregation.tools[0].filter", "list of strings"),
        ({"tools": [{"workload": "github", "overrides": ["a"]}]}, "aggregation.tools[0].overrides", "mapping"),
    ],
)
def test_every_problem_names_its_field(aggregation: object, field: str, text: str) -> None:
    problems = _problems(aggregation)
    assert field in problems, problems
    assert text in problems[field]
    assert problems[field].startswith(f"{field}: ")


def test_direct_construction_is_checked_by_problems() -> None:
    config = RuntimeConfig(
        aggregation=AggregationConfig(tools=(WorkloadTools("ghost"),)),
    )
    assert [p.field for p in config.problems()] == ["aggregation.tools[0].workload"]
    with pytest.raises(ConfigError):
        config.validate()


names = st.sampled_from(["github", "files"])
tool_names = st.from_regex(r"\A[a-z][a-z_]{0,8}\Z")


@st.composite
def blocks(draw: st.DrawFn) -> dict[str, Any]:
    block: dict[str, Any] = {"conflictResolution": draw(st.sampled_from(["prefix", "priority", "manual"]))}
    settings_block: dict[str, Any] = {"prefixFormat": draw(st.sampled_from(["{workload}_", "{workload}.", "p_"]))}
    if block["conflictResolution"] == "priority":
        settings_block["priorityOrder"] = draw(st.lists(names, min_size=1, unique=True))
    block["conflictResolutionConfig"] = settings_block
    entries = []
    targets: set[str] = set()
    for workload in draw(st.lists(names, unique=True)):
        entry: dict[str, Any] = {"workload": workload}
        tools = draw(st.lists(tool_names, unique=True, max_size=4))
        if draw(st.booleans()):
            entry["filter"] = tools
        overrides: dict[str, dict[str, Any]] = {}
        for tool in tools:
            new = draw(st.none() | tool_names)
            if new is not None and new not in targets:
                targets.add(new)
                overrides[tool] = {"name": new}
            elif draw(st.booleans()):
                overrides[tool] = {"description": "d", "annotations": {"openWorldHint": draw(st.booleans())}}
        if overrides:
            entry["overrides"] = overrides
        entries.append(entry)
    if entries:
        block["tools"] = entries
    return block


@settings(max_examples=150, deadline=None)
@given(blocks())
def test_valid_blocks_load_and_round_trip(block: dict[str, Any]) -> None:
    config = _load(block)
    assert RuntimeConfig.from_dict(config.dump()) == config
    assert config.problems() == []


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "conflictResolution",
                        "conflictResolutionConfig",
                        "tools",
                        "workload",
                        "filter",
                        "overrides",
                        "name",
                        "priorityOrder",
                        "prefixFormat",
                        "x",
                    ]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_anything_else_is_a_config_error_with_paths_or_a_valid_config(data: object) -> None:
    try:
        config = _load(data)
    except ConfigError as error:
        problems = error.problems
        assert all(problem.field.startswith("aggregation") for problem in problems)
    else:
        assert config.problems() == []
