"""The backend's pure modules import no MCP SDK, no pykka, no threads: the rules stay testable alone.

Checked two ways: by the modules each one imports directly (parsed, so a lazy import
inside a function counts too), and by what importing them pulls in, in a fresh
interpreter where the package root's own imports are left out.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = (
    "vmcp_actors.backend.auth_challenge",
    "vmcp_actors.backend.connect_params",
    "vmcp_actors.backend.failures",
    "vmcp_actors.backend.lifecycle",
    "vmcp_actors.backend.lifecycle_messages",
    "vmcp_actors.backend.lifecycle_state",
    "vmcp_actors.backend.messages",
    "vmcp_actors.backend.snapshot",
)
#: Nothing of these may be loaded by a pure module, directly or through another one.
FORBIDDEN = ("mcp", "mcp_types", "httpx2", "anyio", "pydantic", "pykka", "kubernetes", "asyncio", "concurrent")
#: Nor imported by one itself (the standard library may use threads internally).
FORBIDDEN_DIRECT = (*FORBIDDEN, "threading", "vmcp_actors.actorkit.loop", "vmcp_actors.actorkit.guard")


def _runtime_imports(module: str) -> list[str]:
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    type_checking = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    ]
    for block in type_checking:
        for node in ast.walk(block):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.remove(node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    names.remove(alias.name)
    return names


def _forbidden(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == f or name.startswith(f"{f}.") for f in forbidden)


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_imports_nothing_impure_itself(module: str) -> None:
    found = [name for name in _runtime_imports(module) if _forbidden(name, FORBIDDEN_DIRECT)]
    assert found == []


def test_importing_the_pure_modules_loads_no_sdk_no_pykka_no_asyncio() -> None:
    script = (
        "import importlib, json, sys, types\n"
        "root = types.ModuleType('vmcp_actors')\n"
        f"root.__path__ = [{str(ROOT / 'vmcp_actors')!r}]\n"
        "sys.modules['vmcp_actors'] = root\n"
        f"for name in {PURE!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    loaded = json.loads(result.stdout)
    assert set(PURE) <= set(loaded)
    assert [name for name in loaded if _forbidden(name, FORBIDDEN)] == []
