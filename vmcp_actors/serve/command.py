"""``vmcp-actors serve``: the runtime plus an MCP server in front of it -- a real vMCP.

The HTTP server (uvicorn) runs on the runtime's own I/O loop, next to every backend session,
so a client's request reaches its backend without changing threads.  The main thread
waits for SIGINT/SIGTERM and draws the live table, as ``run`` does.

Startup prints ``serving MCP at http://HOST:PORT/mcp`` on stderr once the port accepts
connections (``--port 0`` picks a free port, which the line names).  Shutdown, on the first
signal: stop accepting connections, let the requests in flight finish (at most
``DRAIN_TIMEOUT`` seconds), end the clients' event streams, then stop the runtime gracefully
(backends closed, final status flushed) and exit 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Final, TextIO

import attrs
import uvicorn

from vmcp_actors.backend.lifecycle import LifecyclePolicy
from vmcp_actors.config.spec import RuntimeConfig
from vmcp_actors.errors import VmcpError
from vmcp_actors.model.status import encode_status
from vmcp_actors.reporting.base import Reporter
from vmcp_actors.runtime.runtime import Runtime
from vmcp_actors.serve.app import build_app

__all__ = ["DRAIN_TIMEOUT", "ServeHelpers", "add_arguments", "serve"]

log = logging.getLogger("vmcp_actors.serve")

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 4483
DRAIN_TIMEOUT: Final = 10.0
"""How long requests in flight get to finish after SIGTERM before the runtime stops anyway."""
STOP_TIMEOUT: Final = 15.0
REFRESH_SECONDS: Final = 0.5
EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_CONFIG: Final = 2


@attrs.frozen
class ServeHelpers:
    """What ``serve`` shares with ``run`` (handed over by the command-line module)."""

    configure_logging: Callable[[bool], None]
    load_config: Callable[[str | None], tuple[RuntimeConfig, bool]]
    reporter: Callable[[str | None], Reporter]
    lifecycle_policy: Callable[[bool], LifecyclePolicy]
    render_table: Callable[..., str]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` options."""
    parser.add_argument("--config", help="YAML or JSON config (default: the bundled example)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)")
    parser.add_argument("--status-file", help="also write the status JSON (CRD shape) to this file, atomically")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG to stderr instead of drawing the table")
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        help="another Host (and Origin) name clients may use, e.g. behind a proxy (repeatable)",
    )


class _AnnouncingServer(uvicorn.Server):
    """uvicorn, saying where it serves once the socket accepts connections."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._announce()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it Nagle holds back the small writes of every SSE response for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/mcp"


class _View:
    """The live table on a terminal, one line per change otherwise (as ``run``)."""

    def __init__(self, out: TextIO, interactive: bool, render: Callable[..., str], url: str) -> None:
        self._out = out
        self._interactive = interactive
        self._render = render
        self._url = url
        self._last = ""

    def show(self, runtime: Runtime) -> None:
        status, snapshots = runtime.status(), runtime.snapshots()
        if self._interactive:
            text = self._render(status, snapshots, datetime.now().astimezone())
            tools = len(runtime.tools())
            self._out.write(f"\x1b[H\x1b[2Jvmcp-actors serve  {self._url}  ({tools} tools; Ctrl-C to stop)\n\n{text}\n")
            self._out.flush()
            return
        line = f"phase={status.phase.value if status else '-'} tools={len(runtime.tools())} " + " ".join(
            f"{s.name}={s.state.value}" for s in snapshots.values()
        )
        if line != self._last:
            self._last = line
            self._out.write(line.rstrip() + "\n")
            self._out.flush()


def serve(args: argparse.Namespace, out: TextIO, helpers: ServeHelpers) -> int:
    """Run ``vmcp-actors serve`` until SIGINT/SIGTERM; the process's exit code."""
    helpers.configure_logging(args.debug)
    try:
        config, example = helpers.load_config(args.config)
        reporter = helpers.reporter(args.status_file)
        policy = helpers.lifecycle_policy(example)
    except VmcpError as exc:
        print(f"vmcp-actors: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(f"vmcp-actors: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            print(f"vmcp-actors: {signal.Signals(signum).name} again; still stopping", file=sys.stderr)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _serve(args, out, helpers, config, reporter, policy, sock, stop, example)
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(
    args: argparse.Namespace,
    out: TextIO,
    helpers: ServeHelpers,
    config: RuntimeConfig,
    reporter: Reporter,
    policy: LifecyclePolicy,
    sock: socket.socket,
    stop: threading.Event,
    example: bool,
) -> int:
    port = sock.getsockname()[1]
    url = _url(args.host, port)
    runtime = Runtime.start(config, reporter, lifecycle_policy=policy)
    if example:
        print("vmcp-actors: serving the bundled example (see `vmcp-actors serve --help`)", file=sys.stderr)
    served = build_app(runtime, args.host, extra_hosts=tuple(args.allowed_host))
    uv_config = uvicorn.Config(
        served.app,
        lifespan="on",
        log_config=None,
        access_log=False,
        log_level="debug" if args.debug else "warning",
        timeout_graceful_shutdown=int(DRAIN_TIMEOUT) + 5,
    )
    server = _AnnouncingServer(uv_config, lambda: print(f"serving MCP at {url}", file=sys.stderr, flush=True))
    serving = runtime.io_thread.submit(server.serve(sockets=[sock]))
    view = _View(out, out.isatty() and not args.debug, helpers.render_table, url)
    code = EXIT_OK
    try:
        while not stop.wait(REFRESH_SECONDS):
            if serving.done():
                print(f"vmcp-actors: the MCP server stopped: {serving.exception()!r}", file=sys.stderr)
                code = EXIT_FAILURE
                break
            view.show(runtime)
    finally:
        server.should_exit = True  # stop accepting; uvicorn waits for the open connections
        try:
            runtime.io_thread.submit(served.endpoint.drain(DRAIN_TIMEOUT)).result(DRAIN_TIMEOUT + 5)
            serving.result(timeout=DRAIN_TIMEOUT + 10)
        except Exception as exc:  # noqa: BLE001 - whatever happened, the runtime must still stop
            log.error("the MCP server did not shut down cleanly: %r", exc)
        try:
            runtime.stop(STOP_TIMEOUT)
        except VmcpError as exc:
            print(f"vmcp-actors: stopped, but the final status was not flushed: {exc}", file=sys.stderr)
            return EXIT_FAILURE
    view.show(runtime)
    final = runtime.status()
    if final is not None:
        print("vmcp-actors: final status " + json.dumps(encode_status(final), sort_keys=True), file=sys.stderr)
    return code
