"""The MCP conformance suite against the fixture backend directly, with nothing in between.

Why: the vMCP ``serve`` front end will be held to "every scenario that passes directly passes
through ``serve``". That rule needs a measured baseline: which of the pinned suite's server
scenarios ``tests/servers/conformance_server.py`` passes on its own, and why the others do not.
The two lists below are that baseline. They must cover every scenario the pinned suite lists, so
a new suite version with new scenarios fails here until someone measures and files them, and a
scenario filed as not passing must keep failing for the recorded reason (like a strict xfail), so
a fix upstream is noticed too.

The suite is provisioned by ``scripts/conformance.py`` (npm, pinned versions, cached); a machine
without npm or the npm registry fails this module rather than skipping it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import PromptReference, TextContent, TextResourceContents

from tests.servers.fixtures import RunningServer, ServerFactory

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_SCRIPT = REPO_ROOT / "scripts" / "conformance.py"
CONFORMANCE_SERVER = REPO_ROOT / "tests" / "servers" / "conformance_server.py"
_MODULE_NAME = "vmcp_actors_conformance"

SUITE_TIMEOUT_S = 600.0
"""Generous: the 32 scenarios take ~4 s against a local server; a loaded CI machine is slower."""

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]
"""The first test also pays for a cold ``npm install`` (up to 900 s) and the suite run."""

EXPECTED_PASS: tuple[str, ...] = (
    "server-initialize",
    "logging-set-level",
    "ping",
    "completion-complete",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-logging",
    "tools-call-error",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "json-schema-2020-12",
    "elicitation-sep1034-defaults",
    "server-sse-multiple-streams",
    "elicitation-sep1330-enums",
    "resources-list",
    "resources-read-text",
    "resources-read-binary",
    "resources-templates-read",
    "resources-subscribe",
    "resources-unsubscribe",
    "prompts-list",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-get-embedded-resource",
    "prompts-get-with-image",
    "dns-rebinding-protection",
)
"""Scenarios the fixture passes directly: every check succeeded, none failed or warned."""

EXPECTED_NOT_PASS: dict[str, tuple[str, frozenset[str], str]] = {
    "server-sse-polling": (
        "warn",
        frozenset({"server-sse-priming-event", "server-sse-retry-field"}),
        "The scenario (pending in the suite) posts tools/call test_reconnection with a hard-coded "
        "'mcp-protocol-version: 2025-03-26' header. The SDK sends SSE priming events (id, empty data, "
        "retry) and lets a tool close its stream only for clients of 2025-11-25 or later (SEP-1699: "
        "older clients cannot resume), so the stream carries the result straight through: no priming "
        "event, no retry field (two WARNINGs), no disconnect to resume (INFO). With a 2025-11-25 header "
        "the same fixture primes, closes and resumes from its event store.",
    ),
}
"""Scenarios the fixture does not pass directly: (outcome, ids of the failing/warning checks, why)."""


def load_conformance() -> ModuleType:
    """Import ``scripts/conformance.py`` (a script, not a package) once, so tests share its logic."""
    loaded = sys.modules.get(_MODULE_NAME)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, CONFORMANCE_SCRIPT)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {CONFORMANCE_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_MODULE_NAME]
        raise
    return module


conformance = load_conformance()


@pytest.fixture(scope="module")
def suite_paths() -> Any:
    """The provisioned suite; a provisioning failure fails the tests with the script's explanation."""
    try:
        return conformance.ensure()
    except conformance.ConformanceError as error:
        pytest.fail(f"scripts/conformance.py could not provision the conformance suite:\n{error}")


@pytest.fixture(scope="module")
def fixture_server() -> Iterator[RunningServer]:
    """The fixture backend over streamable HTTP on a free 127.0.0.1 port (waits for ``READY``)."""
    factory = ServerFactory()
    try:
        yield factory.start(CONFORMANCE_SERVER, "--transport", "streamable-http")
    finally:
        factory.close()


@pytest.fixture(scope="module")
def direct_run(suite_paths: Any, fixture_server: RunningServer) -> Any:
    """One run of every scenario of the pinned suite (``--suite all``) against the fixture."""
    run = conformance.run_server_suite(fixture_server.url(), suite="all", timeout_s=SUITE_TIMEOUT_S, paths=suite_paths)
    print(f"\n{run.table()}")
    return run


def _explain(run: Any, server: RunningServer) -> str:
    return f"{run.table()}\n--- fixture server stderr ---\n{server.stderr_tail}"


def test_the_lists_cover_every_server_scenario_of_the_pinned_suite(suite_paths: Any) -> None:
    listed = conformance.list_server_scenarios(suite_paths)
    assert len(set(EXPECTED_PASS)) == len(EXPECTED_PASS)
    assert not set(EXPECTED_PASS) & set(EXPECTED_NOT_PASS)
    assert set(EXPECTED_PASS) | set(EXPECTED_NOT_PASS) == set(listed), (
        f"scenarios not measured yet: {sorted(set(listed) - set(EXPECTED_PASS) - set(EXPECTED_NOT_PASS))}; "
        f"scenarios the suite no longer has: {sorted((set(EXPECTED_PASS) | set(EXPECTED_NOT_PASS)) - set(listed))}"
    )


def test_every_scenario_ran(direct_run: Any, fixture_server: RunningServer) -> None:
    assert set(direct_run.results) == set(EXPECTED_PASS) | set(EXPECTED_NOT_PASS), _explain(direct_run, fixture_server)


@pytest.mark.parametrize("scenario", EXPECTED_PASS)
def test_scenario_passes_directly(scenario: str, direct_run: Any, fixture_server: RunningServer) -> None:
    result = direct_run.results[scenario]
    assert result.passed, f"{scenario}: {result.outcome.value}: {result.reason}\n{_explain(direct_run, fixture_server)}"


@pytest.mark.parametrize("scenario", sorted(EXPECTED_NOT_PASS))
def test_scenario_known_not_to_pass_directly_still_fails_for_the_recorded_reason(
    scenario: str, direct_run: Any, fixture_server: RunningServer
) -> None:
    outcome, check_ids, why = EXPECTED_NOT_PASS[scenario]
    result = direct_run.results[scenario]
    assert not result.passed, f"{scenario} passes now: move it to EXPECTED_PASS (it was filed because: {why})"
    bad = frozenset(check.id for check in result.checks if check.status in ("FAILURE", "WARNING"))
    assert (result.outcome.value, bad) == (outcome, check_ids), (
        f"{scenario} no longer fails the recorded way ({why}); now: {result.reason}"
    )


def _closed_port() -> int:
    """A 127.0.0.1 port nothing listens on: bound (so the kernel picks a free one) and closed again."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_missing_server_fails_rather_than_passing(suite_paths: Any) -> None:
    """The harness must not turn "could not connect" into a pass (or into an exception)."""
    run = conformance.run_server_suite(
        f"http://127.0.0.1:{_closed_port()}/mcp", "ping", timeout_s=SUITE_TIMEOUT_S, paths=suite_paths
    )
    assert list(run.results) == ["ping"]
    assert run.results["ping"].outcome.value == "fail", run.table()
    assert run.returncode != 0


def test_the_fixture_server_also_speaks_stdio() -> None:
    """The same fixtures over stdio, for backends that vMCP launches as child processes."""

    async def exercise() -> None:
        params = StdioServerParameters(command=sys.executable, args=[str(CONFORMANCE_SERVER), "--transport", "stdio"])
        async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert {"test_simple_text", "test_sampling", "json_schema_2020_12_tool"} <= tools
            text = await client.call_tool("test_simple_text", {})
            assert text.content == [TextContent(type="text", text="This is a simple text response for testing.")]
            error = await client.call_tool("test_error_handling", {})
            assert error.is_error
            read = await client.read_resource("test://template/42/data")
            assert isinstance(read.contents[0], TextResourceContents)
            assert '"id": "42"' in read.contents[0].text
            completion = await client.complete(
                PromptReference(type="ref/prompt", name="test_prompt_with_arguments"), {"name": "arg1", "value": "te"}
            )
            assert completion.completion.values == ["test", "testing", "tested"]

    asyncio.run(exercise())
