"""A stdio "MCP server" that violates the protocol by writing garbage to stdout.

It prints a few lines that are not JSON-RPC (a start-up banner, a half JSON object),
then keeps reading stdin without ever answering, until stdin closes.  A client must
report a protocol error (or time out within its connect timeout), never hang.
"""

from __future__ import annotations

import sys


def main() -> None:
    sys.stdout.write("Starting garbage server v0.0.1...\n")
    sys.stdout.write("{this is not json\n")
    sys.stdout.write("\x00\x01binary-ish noise\n")
    sys.stdout.flush()
    for _line in sys.stdin:
        continue


if __name__ == "__main__":
    main()
