"""Run a command in the terminal's foreground on its own, so Ctrl-C reaches it and not its parent.

``tox -e run`` is the README's main command.  Ctrl-C makes the terminal send SIGINT to
its whole foreground process group: tox and ``vmcp-actors`` alike.  ``vmcp-actors``
stops cleanly and exits 0, but tox treats its own SIGINT as an interruption and ends
with ``evaluation failed :(`` -- a newcomer reads that as a failure.  No tox setting
changes that (``suicide_timeout``/``interrupt_timeout`` only tune how tox escalates
towards its child), so tox must not get the SIGINT at all.

That is what a shell does for a job: this wrapper (``tox.ini`` runs
``python -m vmcp_actors.cli.foreground vmcp-actors run``) starts the command in a
process group of its own and makes that group the terminal's foreground group, so the
terminal's Ctrl-C (and Ctrl-Z) go to the command only.  tox, in the background
group, sees none of it, waits for the command like any other, and reports its exit
code.  The terminal is handed back when the command ends (or stops on Ctrl-Z: then this
wrapper stops its own group too, so the shell sees tox's job stopped, and hands the
terminal back to the command on ``fg``).

Signals sent to the wrapper itself (tox escalating after its own interrupt, ``kill``)
are forwarded to the command.  Without a controlling terminal, or when not in its
foreground (``tox -e run &``), there is nothing to take over and the command simply
replaces the wrapper (``exec``).  The exit code is the command's; a command killed by
signal N exits 128 + N, as a shell reports it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Final

__all__ = ["main", "run_in_foreground"]

_FORWARDED: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_USAGE: Final = "usage: python -m vmcp_actors.cli.foreground COMMAND [ARG...]"


def _controlling_terminal() -> int | None:
    """A descriptor on our controlling terminal if we are in its foreground group, else ``None``."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
    with contextlib.suppress(OSError):  # no controlling terminal after all: not the foreground job
        if os.tcgetpgrp(tty) == os.getpgrp():
            return tty
    os.close(tty)
    return None


@contextlib.contextmanager
def _no_sigttou() -> Iterator[None]:
    """Hand the terminal over from a background group: ``tcsetpgrp`` would otherwise stop us with SIGTTOU."""
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTTOU, previous)


def _give_terminal(tty: int, group: int) -> None:
    with _no_sigttou(), contextlib.suppress(OSError):
        os.tcsetpgrp(tty, group)


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def run_in_foreground(command: Sequence[str], tty: int) -> int:
    """Run ``command`` as the terminal's foreground job; return its exit code."""
    started: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        # Installed before the command starts (a caught signal reverts to the default in
        # the exec'd command): a Ctrl-C in the instant before the hand-over reaches us,
        # not a KeyboardInterrupt traceback.
        if started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(started[0], signum)

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    child = subprocess.Popen(list(command), process_group=0)
    pid = child.pid
    started.append(pid)
    _give_terminal(tty, pid)
    own_group = os.getpgrp()
    try:
        while True:
            _, status = os.waitpid(pid, os.WUNTRACED)
            if not os.WIFSTOPPED(status):
                child.returncode = os.waitstatus_to_exitcode(status)
                return _exit_code(status)
            # Ctrl-Z stopped the command: stop our group too (tox with it), so the shell sees
            # its job stopped and takes the terminal; on `fg` we continue here.
            _give_terminal(tty, own_group)
            os.killpg(own_group, signal.SIGSTOP)
            _give_terminal(tty, pid)
            os.killpg(pid, signal.SIGCONT)
    finally:
        _give_terminal(tty, own_group)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command given on the command line in the terminal's foreground; return its exit code."""
    command = list(sys.argv[1:] if argv is None else argv)
    if not command:
        print(_USAGE, file=sys.stderr)
        return 2
    tty = _controlling_terminal()
    if tty is None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execvp(command[0], command)  # nothing to take over: become the command
    try:
        return run_in_foreground(command, tty)
    finally:
        os.close(tty)


if __name__ == "__main__":
    raise SystemExit(main())
