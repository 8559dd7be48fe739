"""The echo MCP server over stdio, made hard to stop, for the process-cleanup tests.

Usage::

    python tests/servers/stubborn_stdio.py [--ignore-sigterm] [--linger] [--helper-pid-file PATH]

* ``--ignore-sigterm``: SIGTERM is ignored for the whole life of the process.
* ``--linger``: when stdin closes (the polite way to stop a stdio server) the server
  does not exit but keeps running; with ``--ignore-sigterm`` only SIGKILL ends it.
* ``--helper-pid-file PATH``: before serving, start a helper process that inherits
  the server's stdout (as a shell pipeline or a spawned tool would) and sleeps; its pid
  is written to ``PATH``.  The server itself exits politely on stdin EOF, the helper
  does not, and it keeps the server's stdout open.

Stdout carries only MCP messages; the helper never writes to it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from echo_server import build_server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--linger", action="store_true")
    parser.add_argument("--helper-pid-file")
    args = parser.parse_args(argv)

    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.helper_pid_file:
        helper = subprocess.Popen(
            [sys.executable, "-c", "import time\nwhile True: time.sleep(3600)"],
            stdin=subprocess.DEVNULL,  # stdout (the MCP pipe) and stderr are inherited
        )
        with open(args.helper_pid_file + ".tmp", "w") as handle:
            handle.write(str(helper.pid))
        os.replace(args.helper_pid_file + ".tmp", args.helper_pid_file)

    build_server(0).run("stdio")
    if args.linger:
        threading.Event().wait()  # stdin is closed; stay until killed


if __name__ == "__main__":
    main()
