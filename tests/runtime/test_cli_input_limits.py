"""``vmcp-actors validate|run`` on hostile config paths: a clear error and exit 2, never a hang or a memory blow-up.

Each command runs as a real subprocess under an address-space cap (``RLIMIT_AS``), so
a reader that would fill memory fails inside the cap instead of taking the machine down,
and with a generous timeout, so a hang fails the test instead of the suite.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.config.support import bomb

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

REPO = Path(__file__).resolve().parents[2]
#: Far more than the command needs (~300 MiB of address space with every import), far less
#: than the 9-level bomb took before it was bounded (gigabytes).
MEMORY_CAP = 768 * 1024 * 1024
#: Generous: the command answers in seconds even on a loaded machine; a hang is what is tested.
TIMEOUT = 120.0


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def vmcp(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("VMCP_NAME", None)
    env.pop("VMCP_NAMESPACE", None)
    return subprocess.run(
        [sys.executable, "-m", "vmcp_actors", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        preexec_fn=_cap_memory,  # only setrlimit, which is safe between fork and exec
    )


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "vmcp.yaml"
    os.mkfifo(path)
    yield path
    with contextlib.suppress(OSError):  # ENXIO: no reader is waiting
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.parametrize("command", ["validate", "run --config"])
def test_a_fifo_exits_2_naming_the_problem(fifo: Path, command: str) -> None:
    result = vmcp(*command.split(), str(fifo))
    assert result.returncode == 2, result.stderr
    assert "cannot read the file: it is a FIFO (named pipe), not a regular file" in result.stderr
    assert "Traceback" not in result.stderr


def test_dev_zero_exits_2_without_reading_it() -> None:
    result = vmcp("validate", "/dev/zero")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "/dev/zero" in result.stderr
    assert "it is a character device, not a regular file" in result.stderr


@pytest.mark.parametrize("command", ["validate", "run --config"])
def test_an_alias_bomb_exits_2_inside_the_memory_cap(tmp_path: Path, command: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(9))
    result = vmcp(*command.split(), str(path))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "YAML holds more than 20000 values, counting each alias as every value it repeats" in result.stderr
    assert "lol" not in result.stderr
