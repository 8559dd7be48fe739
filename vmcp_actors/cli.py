"""The ``vmcp-actors`` command: ``run`` a vMCP runtime, ``validate`` a config.

``run`` starts a :class:`~vmcp_actors.runtime.runtime.Runtime` and shows a live table of
backends (state, health, tools, failures, next retry) and the phase until SIGINT or
SIGTERM, then stops gracefully -- flushing the final status -- and exits 0.  With no
``--config`` it runs the bundled example (real MCP servers shipped in the package, one
of which fails and recovers on a timer), so a newcomer sees the status move.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final, TextIO

from vmcp_actors.actorkit.backoff import Backoff
from vmcp_actors.backend.actor import BackendSnapshot
from vmcp_actors.backend.lifecycle import BACKOFF_JITTER, INITIAL_BACKOFF, MAX_BACKOFF, LifecyclePolicy
from vmcp_actors.config.spec import RuntimeConfig, parse_duration
from vmcp_actors.errors import VmcpError
from vmcp_actors.model.status import Status, encode_status
from vmcp_actors.reporting.base import FileReporter, Reporter, TeeReporter
from vmcp_actors.runtime.runtime import Runtime

__all__ = ["main", "render_table"]

log = logging.getLogger("vmcp_actors.cli")

EXIT_OK: Final = 0
EXIT_CONFIG: Final = 2
EXIT_FAILURE: Final = 1
#: muster's env override of the initial reconnect backoff, kept under our own name.
INITIAL_BACKOFF_ENV: Final = "VMCP_INITIAL_BACKOFF"
#: The bundled example reconnects quickly so its recovery is visible within seconds.
EXAMPLE_INITIAL_BACKOFF: Final = 2.0
STOP_TIMEOUT: Final = 15.0
REFRESH_SECONDS: Final = 0.5


# --------------------------------------------------------------------------- rendering


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    return "now" if seconds <= 0 else f"in {seconds:.0f}s"


def render_table(status: Status | None, snapshots: Mapping[str, BackendSnapshot], now: datetime) -> str:
    """The live view: one row per backend, then the phase; plain text, no colours."""
    header = ("BACKEND", "TRANSPORT", "STATE", "HEALTH", "TOOLS", "FAILURES", "NEXT RETRY", "LAST ERROR")
    rows = [
        (
            snap.name,
            snap.transport,
            snap.state.value,
            _health(status, snap),
            str(snap.tool_count),
            str(snap.consecutive_failures),
            _ago(snap.next_retry_after, now) if snap.state.value in ("failed", "unreachable") else "-",
            (snap.last_error[:48] + "...") if len(snap.last_error) > 51 else (snap.last_error or "-"),
        )
        for snap in snapshots.values()
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    if status is None:
        lines.append("\nPHASE: (no status yet)")
    else:
        lines.append(f"\nPHASE: {status.phase.value}  backends routable: {status.backend_count}  -- {status.message}")
    return "\n".join(lines)


def _health(status: Status | None, snap: BackendSnapshot) -> str:
    """The health the status reports for the backend (the CRD's word), else the actor's."""
    if status is not None:
        backend = status.backend(snap.name)
        if backend is not None and backend.status:
            return backend.status
    return snap.health.value


class _LiveView:
    """Redraws the table in place on a terminal; prints one line per change otherwise."""

    def __init__(self, out: TextIO, interactive: bool) -> None:
        self._out = out
        self._interactive = interactive
        self._last = ""

    def show(self, runtime: Runtime) -> None:
        status = runtime.status()
        snapshots = runtime.snapshots()
        if self._interactive:
            text = render_table(status, snapshots, datetime.now().astimezone())
            self._out.write("\x1b[H\x1b[2J" + "vmcp-actors  (Ctrl-C to stop)\n\n" + text + "\n")
            self._out.flush()
            return
        line = _summary_line(status, snapshots)
        if line != self._last:
            self._last = line
            self._out.write(line + "\n")
            self._out.flush()


def _summary_line(status: Status | None, snapshots: Mapping[str, BackendSnapshot]) -> str:
    backends = " ".join(f"{s.name}={s.state.value}" for s in snapshots.values())
    phase = status.phase.value if status else "-"
    return f"phase={phase} {backends}".rstrip()


# --------------------------------------------------------------------------- commands


def _configure_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not debug:
        # The SDK logs every HTTP request and stray stdout line; the table says enough.
        for noisy in ("mcp", "httpx2", "httpx", "uvicorn"):
            logging.getLogger(noisy).setLevel(logging.ERROR)


def _load_config(path: str | None) -> tuple[RuntimeConfig, bool]:
    if path is not None:
        return RuntimeConfig.load(path), False
    import yaml

    from vmcp_actors.examples import example_config_text

    return RuntimeConfig.from_dict(yaml.safe_load(example_config_text()), source="bundled example"), True


def _lifecycle_policy(example: bool) -> LifecyclePolicy:
    initial = EXAMPLE_INITIAL_BACKOFF if example else INITIAL_BACKOFF
    override = os.environ.get(INITIAL_BACKOFF_ENV)
    if override:
        initial = parse_duration(override, INITIAL_BACKOFF_ENV)
    return LifecyclePolicy(backoff=Backoff(initial=initial, maximum=max(MAX_BACKOFF, initial), jitter=BACKOFF_JITTER))


def _reporter(status_file: str | None) -> Reporter:
    from vmcp_actors.reporting.factory import new_reporter

    base = new_reporter()
    if status_file is None:
        return base
    return TeeReporter(base, FileReporter(status_file))


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    _configure_logging(args.debug)
    try:
        config, example = _load_config(args.config)
        reporter = _reporter(args.status_file)
        policy = _lifecycle_policy(example)
    except VmcpError as exc:
        print(f"vmcp-actors: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        # A second signal while stopping (tox, systemd and kubelet all escalate) must not
        # kill the process mid-flush: the handler stays installed until stop() returns.
        if stop.is_set():
            print(f"vmcp-actors: {signal.Signals(signum).name} again; still stopping", file=sys.stderr)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    runtime = Runtime.start(config, reporter, lifecycle_policy=policy)
    if example:
        print("vmcp-actors: running the bundled example (see `vmcp-actors run --help`)", file=sys.stderr)
    view = _LiveView(out, interactive=out.isatty() and not args.debug)
    try:
        while not stop.wait(REFRESH_SECONDS):
            view.show(runtime)
    finally:
        try:
            runtime.stop(STOP_TIMEOUT)
        except VmcpError as exc:
            print(f"vmcp-actors: stopped, but the final status was not flushed: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    view.show(runtime)
    final = runtime.status()
    if final is not None:
        print("vmcp-actors: final status " + json.dumps(encode_status(final), sort_keys=True), file=sys.stderr)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    try:
        config = RuntimeConfig.load(args.file)
    except VmcpError as exc:
        print(f"{exc}", file=sys.stderr)
        return EXIT_CONFIG
    names = ", ".join(spec.name for spec in config.backends) or "none"
    out.write(f"{args.file}: OK ({len(config.backends)} backends: {names})\n")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    """``serve``: the runtime behind an MCP server (see :mod:`vmcp_actors.serve.command`)."""
    from vmcp_actors.serve.command import ServeHelpers, serve

    helpers = ServeHelpers(_configure_logging, _load_config, _reporter, _lifecycle_policy, render_table)
    return serve(args, out, helpers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmcp-actors", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the runtime until SIGINT/SIGTERM")
    run.add_argument("--config", help="YAML or JSON config (default: the bundled example)")
    run.add_argument("--debug", action="store_true", help="log at DEBUG to stderr instead of drawing the table")
    run.add_argument("--status-file", help="also write the status JSON (CRD shape) to this file, atomically")
    run.set_defaults(handler=cmd_run)
    serve = commands.add_parser("serve", help="run the runtime behind an MCP server (a vMCP) until SIGINT/SIGTERM")
    from vmcp_actors.serve.command import add_arguments

    add_arguments(serve)
    serve.set_defaults(handler=cmd_serve)
    validate = commands.add_parser("validate", help="check a config file and print its errors")
    validate.add_argument("file")
    validate.set_defaults(handler=cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args, out or sys.stdout)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
