"""What the provisioning scripts share: the per-user cache, version stamps and a build lock.

``envtest.py`` (kube-apiserver, etcd, kubectl, promtool) and ``conformance.py`` (Node 22 and the
MCP conformance suite) both keep what they install under ``$XDG_CACHE_HOME/vmcp-actors/<name>``,
record what they installed in a stamp written atomically, and serialise concurrent installs with
an ``flock``, so that parallel test runs build at most once.

Only the standard library is used so the scripts run before any virtualenv exists.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

__all__ = ["STAMP_NAME", "file_lock", "read_stamp", "user_cache_root", "write_stamp"]

STAMP_NAME = "stamp.json"


def user_cache_root(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """Return ``$XDG_CACHE_HOME/vmcp-actors/<name>`` (``~/.cache`` when unset or relative).

    The XDG spec says a relative ``XDG_CACHE_HOME`` is invalid and must be ignored.
    """
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "vmcp-actors" / name


def read_stamp(directory: Path) -> dict[str, str]:
    """Return the stamp recorded in ``directory``, or an empty dict if absent or unreadable."""
    try:
        data = json.loads((directory / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(key): str(value) for key, value in data.items()}


def write_stamp(directory: Path, stamp: Mapping[str, str]) -> None:
    """Write the stamp atomically so a crash never leaves a half-written one behind."""
    tmp = directory / f".{STAMP_NAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(dict(stamp), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, directory / STAMP_NAME)


@contextmanager
def file_lock(path: Path, log: Callable[[str], None]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` so concurrent runs install at most once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        started = time.monotonic()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another run holds {path}; waiting for it to finish")
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            log(f"lock acquired after {time.monotonic() - started:.0f}s")
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
