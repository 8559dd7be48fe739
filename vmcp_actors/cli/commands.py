"""The ``vmcp-actors`` commands: ``run`` a vMCP runtime, ``serve`` it as a vMCP, ``validate`` a config.

``validate`` imports only the config stage, so it answers at once; everything ``run``
needs (the actors, the MCP SDK, the Kubernetes client, rich) is imported inside ``run``.

``run`` starts a :class:`~vmcp_actors.runtime.runtime.Runtime` and shows a live table of
backends (state, health, tools, failures, next retry) and the phase until SIGINT or
SIGTERM, then stops gracefully -- flushing the final status -- and exits 0 (see
:mod:`vmcp_actors.cli.signals` for every phase of signal handling, and
:mod:`vmcp_actors.cli.display` for where output and logs go).  With no ``--config`` it
runs the bundled example (real MCP servers shipped in the package, one of which fails
and recovers on a timer), so a newcomer sees the status move.  ``--metrics-port`` serves
the runtime's Prometheus metrics at ``/metrics`` (127.0.0.1 unless ``--metrics-host``).

``serve`` is ``run`` with an MCP server in front of the runtime (streamable HTTP at
``http://HOST:PORT/mcp``, status endpoints and ``/metrics`` beside it; see
:mod:`vmcp_actors.serve.command`): on a signal it drains the requests in flight first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, TextIO

from vmcp_actors.config.durations import parse_duration
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.errors import VmcpError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from vmcp_actors.backend.lifecycle_state import LifecyclePolicy
    from vmcp_actors.cli.display import View
    from vmcp_actors.leadership.service import Leadership
    from vmcp_actors.metrics.http import MetricsServer
    from vmcp_actors.reporting.protocol import Reporter
    from vmcp_actors.runtime.runtime import Runtime
    from vmcp_actors.serve.command import McpFront

__all__ = ["build_parser", "cmd_run", "cmd_serve", "cmd_validate", "reconnect_policy", "run_command"]

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
#: ``serve`` binds the loopback interface unless told otherwise (as toolhive's vMCP does).
DEFAULT_SERVE_HOST: Final = "127.0.0.1"
DEFAULT_SERVE_PORT: Final = 4483


def _load_config(path: str | None) -> tuple[RuntimeConfig, bool]:
    if path is not None:
        return RuntimeConfig.load(path), False
    import yaml

    from vmcp_actors.examples import example_config_text

    return RuntimeConfig.from_dict(yaml.safe_load(example_config_text()), source="bundled example"), True


def reconnect_policy(example: bool) -> LifecyclePolicy:
    """The backends' reconnect policy: muster's, or quicker for the bundled example; env overrides.

    Only reconnects: the probe timeout is ``failureHandling.healthCheckTimeout``'s, which
    the runtime applies over whatever policy it is given.
    """
    from vmcp_actors.actorkit.backoff import Backoff
    from vmcp_actors.backend.lifecycle_state import BACKOFF_JITTER, INITIAL_BACKOFF, MAX_BACKOFF, LifecyclePolicy

    initial = EXAMPLE_INITIAL_BACKOFF if example else INITIAL_BACKOFF
    override = os.environ.get(INITIAL_BACKOFF_ENV)
    if override:
        initial = parse_duration(override, INITIAL_BACKOFF_ENV)
    return LifecyclePolicy(backoff=Backoff(initial=initial, maximum=max(MAX_BACKOFF, initial), jitter=BACKOFF_JITTER))


def _reporter(status_file: str | None) -> tuple[Reporter, Leadership | None]:
    """The environment's sink (gated by leader election in Kubernetes mode), teed to a file if asked."""
    from vmcp_actors.leadership.service import resolve
    from vmcp_actors.reporting.sinks import FileReporter, TeeReporter

    base, leadership = resolve(None, None)
    if status_file is None:
        return base, leadership
    return TeeReporter(base, FileReporter(status_file)), leadership


def install_secret_redaction(config: RuntimeConfig) -> None:
    """Scrub the config's secrets from every log record, whoever logs it.

    The SDK and its HTTP client log raw URLs and headers at DEBUG.
    """
    from vmcp_actors.config.log_redaction import install_log_redaction
    from vmcp_actors.config.secret_values import SecretRedactor

    install_log_redaction(logging.getLogger(), SecretRedactor.from_config(config))


def _log_file(requested: str | None) -> Path:
    if requested is not None:
        return Path(requested)
    handle, name = tempfile.mkstemp(prefix="vmcp-actors-", suffix=".log")
    os.close(handle)
    return Path(name)


def _display(args: argparse.Namespace, out: TextIO, subtitle: str = "") -> tuple[View, Path | None]:
    """The live table on a terminal (logs to a file), else summary lines (logs to stderr)."""
    from vmcp_actors.cli.display import LineView, LiveView, configure_logging

    if not (out.isatty() and not args.debug):
        configure_logging(args.debug, None)
        return LineView(out), None
    from rich.console import Console

    log_file = _log_file(args.log_file)
    recent = configure_logging(False, log_file)
    return LiveView(Console(file=out, highlight=False), log_file, recent, subtitle=subtitle), log_file


def _serve_metrics(args: argparse.Namespace) -> MetricsServer | None:
    """Listen before the runtime starts, so a port in use is a config error, not a crash."""
    if args.metrics_port is None:
        return None
    from vmcp_actors.metrics.http import process_registry, serve_metrics

    server = serve_metrics(process_registry(), args.metrics_port, args.metrics_host)
    print(f"vmcp-actors: metrics at {server.url}", file=sys.stderr, flush=True)
    return server


@contextlib.contextmanager
def _metrics_served(server: MetricsServer | None) -> Iterator[None]:
    try:
        yield
    finally:
        if server is not None:
            server.close()


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    """Run the runtime until SIGINT/SIGTERM, showing the live view; exit 0 after a graceful stop.

    Once the final status is flushed and printed, further SIGINT/SIGTERM are ignored
    (the process is exiting with its code; see :mod:`vmcp_actors.cli.signals`).
    """
    return _run_runtime(args, out, None)


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    """``run`` with an MCP server in front of the runtime (see :mod:`vmcp_actors.serve.command`)."""
    from vmcp_actors.serve.command import McpFront

    try:
        front = McpFront(args.host, args.port, allowed_hosts=args.allowed_host, debug=args.debug)
    except OSError as exc:
        print(f"vmcp-actors: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        return _run_runtime(args, out, front)
    finally:
        front.close()


def _run_runtime(args: argparse.Namespace, out: TextIO, front: McpFront | None) -> int:
    """``run`` and ``serve``: start the runtime (and the front), show it, stop it on a signal."""
    # The heavy imports: a Ctrl-C while they run ends the process quietly with 130 (cli.main).
    from vmcp_actors.cli.signals import StopSignals
    from vmcp_actors.model.codec import encode_status
    from vmcp_actors.runtime.runtime import Runtime

    view, log_file = _display(args, out, "" if front is None else f"MCP at {front.url}")
    try:
        config, example = _load_config(args.config)
        reporter, leadership = _reporter(args.status_file)
        policy = reconnect_policy(example)
        server = _serve_metrics(args)
    except VmcpError as exc:
        print(f"vmcp-actors: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    install_secret_redaction(config)
    signals = StopSignals.install()
    if example:
        what = "running" if front is None else "serving"
        print(f"vmcp-actors: {what} the bundled example (--help for more)", file=sys.stderr)
    code = flush_failed = EXIT_OK
    with view, _metrics_served(server):
        runtime = Runtime.start(
            config, reporter, lifecycle_policy=policy, leader_election=leadership, metrics=_registry(server, front)
        )
        try:
            if front is not None:
                front.start(runtime)
            while not signals.wait(REFRESH_SECONDS):
                failure = None if front is None else front.failure()
                if failure is not None:
                    log.error("%s", failure)
                    code = EXIT_FAILURE
                    break
                view.show(runtime)
            view.show(runtime, stopping=True)
        finally:  # whatever went wrong above, the clients are drained and the final status flushed
            flushed = _stop(runtime, front)
        if not flushed:
            code = flush_failed = EXIT_FAILURE
        view.show(runtime)
    if flush_failed:
        print("vmcp-actors: stopped, but the final status was not flushed (see the log)", file=sys.stderr)
    final = runtime.status()
    if final is not None:
        line = "vmcp-actors: final status " + json.dumps(encode_status(final), sort_keys=True)
        if log_file is None:
            print(line, file=sys.stderr)
        else:  # the table shows the final phase; the whole status goes with the logs
            log.info("%s", line)
            print(f"vmcp-actors: stopped; final status ({final.phase.value}) flushed", file=sys.stderr)
    if log_file is not None:
        print(f"vmcp-actors: logs in {log_file}", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    signals.finish()
    return code


def _stop(runtime: Runtime, front: McpFront | None) -> bool:
    """Drain the MCP clients (``serve``), then stop the runtime; whether the final status was flushed."""
    if front is not None:
        front.drain()
    try:
        runtime.stop(STOP_TIMEOUT)
    except VmcpError as exc:
        log.error("stopped, but the final status was not flushed: %s", exc)
        return False
    return True


def _registry(server: MetricsServer | None, front: McpFront | None) -> CollectorRegistry | Literal[False]:
    """Where the runtime's metrics go: ``--metrics-port``'s server, ``serve``'s ``/metrics``, or nowhere."""
    if server is not None:
        return server.registry
    if front is not None:
        from vmcp_actors.metrics.http import process_registry

        return process_registry()
    return False


def _add_serve_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the runtime behind an MCP server (a vMCP) until SIGINT/SIGTERM")
    serve.add_argument("--config", help="YAML or JSON config (default: the bundled example)")
    serve.add_argument("--host", default=DEFAULT_SERVE_HOST, help=f"address to bind (default {DEFAULT_SERVE_HOST})")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_SERVE_PORT, help=f"port (default {DEFAULT_SERVE_PORT}; 0: any free port)"
    )
    serve.add_argument("--status-file", help="also write the status JSON (CRD shape) to this file, atomically")
    serve.add_argument("--debug", action="store_true", help="log at DEBUG to stderr instead of drawing the table")
    serve.add_argument(
        "--log-file", help="where logs go while the table is drawn (default: a new file in the temp dir)"
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        help="another Host (and Origin) name clients may use, e.g. behind a proxy or a Service (repeatable)",
    )
    serve.set_defaults(handler=cmd_serve, metrics_port=None)


def cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    """Load a config file and say OK, or print every problem (exit 2)."""
    try:
        config = RuntimeConfig.load(args.file)
    except VmcpError as exc:
        print(f"{exc}", file=sys.stderr)
        return EXIT_CONFIG
    names = ", ".join(spec.name for spec in config.backends) or "none"
    out.write(f"{args.file}: OK ({len(config.backends)} backends: {names})\n")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The ``vmcp-actors`` argument parser: ``run``, ``serve`` and ``validate``."""
    description = (
        "Run a vMCP runtime that keeps its view of its MCP backends true, serve it as a vMCP, or validate a config."
    )
    parser = argparse.ArgumentParser(prog="vmcp-actors", description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the runtime until SIGINT/SIGTERM")
    run.add_argument("--config", help="YAML or JSON config (default: the bundled example)")
    run.add_argument("--debug", action="store_true", help="log at DEBUG to stderr instead of drawing the table")
    run.add_argument("--status-file", help="also write the status JSON (CRD shape) to this file, atomically")
    run.add_argument("--log-file", help="where logs go while the table is drawn (default: a new file in the temp dir)")
    run.add_argument(
        "--metrics-port", type=int, metavar="N", help="serve Prometheus metrics at http://HOST:N/metrics (0: any port)"
    )
    run.add_argument("--metrics-host", default="127.0.0.1", help="address to serve metrics on (default: 127.0.0.1)")
    run.set_defaults(handler=cmd_run)
    _add_serve_parser(commands)
    validate = commands.add_parser("validate", help="check a config file and print its errors")
    validate.add_argument("file")
    validate.set_defaults(handler=cmd_validate)
    return parser


def run_command(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Parse ``argv`` (default: the process's) and run the command; return the exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.handler(args, out or sys.stdout)
    return code
