"""A careless backend echoes the secrets its spec gave it: no caller of the data plane sees them.

The backend is the real SDK server over stdio with a secret in its environment (an env
value of its spec, which the runtime treats as a secret).  It echoes the value in a tool
result (text and structured content), a log message, a progress message, a tool error and
its tool's description; each must reach the caller with the value masked and the rest as
the backend sent it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import attrs
import mcp_types as types
import pytest

from tests.dataplane.harness import Watcher, start_runtime, stdio_backend
from vmcp_actors.runtime.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

__all__ = ["start_runtime"]

Start = Callable[..., tuple[Runtime, Watcher]]
SECRET = "sk-live-9f8e7d6c5b4a"
REDACTED = "<redacted>"


def test_secrets_a_backend_echoes_are_masked_in_everything_it_sends_back(start_runtime: Start) -> None:
    spec = attrs.evolve(stdio_backend("local"), env={"API_KEY": SECRET, "DATAPLANE_SECRET": SECRET})
    runtime, watch = start_runtime(spec)
    watch.has_tools("local_reveal", "local_reveal_error")

    (tool,) = [t for t in runtime.tools() if t.name == "local_reveal"]
    assert SECRET not in (tool.description or "")
    assert f"its key is {REDACTED}" in (tool.description or "")

    logs: list[types.LoggingMessageNotificationParams] = []
    progress: list[str | None] = []
    result = runtime.call_tool(
        "local_reveal",
        {"variable": "API_KEY"},
        on_log=logs.append,
        on_progress=lambda _done, _total, message: progress.append(message),
    )
    assert not result.is_error
    assert result.structured_content == {"value": REDACTED}
    assert SECRET not in json.dumps(result.model_dump(mode="json"))
    assert [str(entry.data) for entry in logs] == [f"revealing {REDACTED}"]
    assert progress == [f"revealed {REDACTED}"]

    failed = runtime.call_tool("local_reveal_error", {"variable": "API_KEY"})
    assert failed.is_error
    (block,) = failed.content
    assert isinstance(block, types.TextContent)
    assert SECRET not in block.text
    assert REDACTED in block.text

    # Nothing else is touched: a value that is not a secret comes back as sent.
    plain = runtime.call_tool("local_reveal", {"variable": "PATH_THAT_IS_NOT_SET"})
    assert plain.structured_content == {"value": ""}
