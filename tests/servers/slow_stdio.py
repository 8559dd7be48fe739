"""The echo server over stdio, starting only after a delay: a slow interpreter start, on purpose.

Usage::

    python tests/servers/slow_stdio.py --delay SECONDS

Until the delay is over nothing reads stdin, so the client's ``initialize`` waits in the
pipe exactly as it does while a real server is still importing its framework (``import
fastmcp`` took 8-11 s on a loaded 2-core machine).  The delay is the behaviour under
test, not a synchronisation: the client is what must wait long enough.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the repo root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay", type=float, required=True)
    args = parser.parse_args(argv)
    time.sleep(args.delay)  # the slow start being simulated
    from tests.servers.echo_server import main as echo_main

    echo_main(["--transport", "stdio"])


if __name__ == "__main__":
    main()
