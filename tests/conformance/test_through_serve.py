"""The MCP conformance suite against ``vmcp-actors serve`` with the fixture backend behind it.

The rule: every scenario the fixture backend passes directly (``test_direct.EXPECTED_PASS``)
passes through ``serve`` too.  The backend runs over streamable HTTP and the aggregation keeps
its names (``priority`` with the backend listed), so the suite finds the fixtures it calls
by their own names.  What the suite exercises here is what a proxy can lose: results passed
through untouched (content types, ``isError``, JSON Schema 2020-12 keywords), progress by the
client's token, log messages at the client's level, sampling and elicitation relayed to the
calling client and answered back, resource subscriptions, completions, DNS rebinding.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conformance.test_direct import EXPECTED_NOT_PASS, EXPECTED_PASS, SUITE_TIMEOUT_S, conformance
from tests.serve.harness import FAST_HEALTH, ServeProcess
from tests.servers.fixtures import CONFORMANCE_SERVER, RunningServer, ServerFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

EXPECTED_NOT_PASS_THROUGH_SERVE: dict[str, str] = {
    "server-sse-polling": "does not pass directly either (see test_direct.EXPECTED_NOT_PASS)",
}
"""Scenarios that do not pass through ``serve``, and why; each must also fail directly."""


@pytest.fixture(scope="module")
def suite_paths() -> Any:
    try:
        return conformance.ensure()
    except conformance.ConformanceError as error:
        pytest.fail(f"scripts/conformance.py could not provision the conformance suite:\n{error}")


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, RunningServer]]:
    factory = ServerFactory()
    process: ServeProcess | None = None
    try:
        backend = factory.start(CONFORMANCE_SERVER, "--transport", "streamable-http")
        config = {
            "backends": [{"name": "conformance", "type": "streamable-http", "url": backend.url(), "timeout": 30}],
            "failureHandling": FAST_HEALTH,
            "aggregation": {
                "conflictResolution": "priority",
                "conflictResolutionConfig": {"priorityOrder": ["conformance"]},
            },
        }
        work = tmp_path_factory.mktemp("serve-conformance")
        path = Path(work) / "serve.yaml"
        path.write_text(yaml.safe_dump(config))
        process = ServeProcess(path, Path(work) / "status.json")
        yield process, backend
    finally:
        if process is not None:
            process.kill()
        factory.close()


@pytest.fixture(scope="module")
def serve_run(suite_paths: Any, serve: tuple[ServeProcess, RunningServer]) -> Any:
    process, _ = serve
    _wait_for_fixture_tools(process)
    run = conformance.run_server_suite(process.url, suite="all", timeout_s=SUITE_TIMEOUT_S, paths=suite_paths)
    print(f"\n{run.table()}")
    return run


def _wait_for_fixture_tools(process: ServeProcess) -> None:
    """Wait (on list_changed notifications, with a deadline) until the fixture tools are served."""
    import asyncio

    from mcp import Client

    from tests.serve.harness import Observer

    async def wait() -> None:
        observer = Observer()
        async with Client(process.url, mode="legacy", message_handler=observer) as client:
            await observer.tools(client, lambda names: {"test_simple_text", "test_sampling"} <= names)

    asyncio.run(wait())


def _explain(run: Any, serve: tuple[ServeProcess, RunningServer]) -> str:
    process, backend = serve
    return f"{run.table()}\n--- serve stderr ---\n{process.stderr_tail}\n--- backend stderr ---\n{backend.stderr_tail}"


def test_the_not_passing_list_is_a_subset_of_what_fails_directly() -> None:
    assert set(EXPECTED_NOT_PASS_THROUGH_SERVE) <= set(EXPECTED_NOT_PASS)


def test_every_scenario_ran_through_serve(serve_run: Any, serve: tuple[ServeProcess, RunningServer]) -> None:
    assert set(serve_run.results) == set(EXPECTED_PASS) | set(EXPECTED_NOT_PASS), _explain(serve_run, serve)


@pytest.mark.parametrize("scenario", EXPECTED_PASS)
def test_scenario_that_passes_directly_passes_through_serve(
    scenario: str, serve_run: Any, serve: tuple[ServeProcess, RunningServer]
) -> None:
    result = serve_run.results[scenario]
    assert result.passed, f"{scenario}: {result.outcome.value}: {result.reason}\n{_explain(serve_run, serve)}"


@pytest.mark.parametrize("scenario", sorted(EXPECTED_NOT_PASS_THROUGH_SERVE))
def test_scenario_not_passing_directly_does_not_pass_through_serve_either(scenario: str, serve_run: Any) -> None:
    assert not serve_run.results[scenario].passed, f"{scenario} passes through serve now; update the lists"
