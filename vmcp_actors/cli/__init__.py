"""The ``vmcp-actors`` command line (entry point ``vmcp-actors = vmcp_actors.cli:main``).

This module is kept tiny on purpose: the entry point imports it before anything can
handle a signal, and :func:`main` must be running before the heavy imports start, so
that a Ctrl-C during them ends the process quietly with 130 rather than with a
``KeyboardInterrupt`` traceback.  The commands live in :mod:`vmcp_actors.cli.commands`,
the table in :mod:`~vmcp_actors.cli.table`, the output and log routing in
:mod:`~vmcp_actors.cli.display`, signal handling in :mod:`~vmcp_actors.cli.signals`, and
the tox wrapper that keeps Ctrl-C away from tox in :mod:`~vmcp_actors.cli.foreground`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from vmcp_actors.cli.commands import build_parser, reconnect_policy
    from vmcp_actors.cli.table import render_table

__all__ = ["build_parser", "main", "reconnect_policy", "render_table"]

_LAZY = {
    "build_parser": "vmcp_actors.cli.commands",
    "reconnect_policy": "vmcp_actors.cli.commands",
    "render_table": "vmcp_actors.cli.table",
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line ``argv`` (default: the process's); return the exit code."""
    try:
        from vmcp_actors.cli.commands import run_command

        return run_command(argv, out)
    except KeyboardInterrupt:
        # Only possible before `run` installs its handlers: while importing, loading the
        # config or parsing arguments.  Nothing is running yet; say so and exit 130.
        from vmcp_actors.cli.signals import interrupted

        return interrupted()


def __getattr__(name: str) -> Any:
    """Import the command helpers on first use (PEP 562), keeping ``import vmcp_actors.cli`` cheap."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
