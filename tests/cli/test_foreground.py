"""Ctrl-C on ``tox -e run`` in a real terminal (a pty) reaches vmcp-actors, not tox.

The terminal is a pseudo-terminal the test owns; typing Ctrl-C is writing ``\\x03`` to its
master side, and the kernel's line discipline sends SIGINT to the terminal's foreground
process group, exactly as for a user.  tox is played by a stand-in that does what tox
does with its command (runs it, waits, reports its exit code) and records whether it
got a SIGINT itself -- the thing that made tox print "evaluation failed :(".  The
command is the one ``tox.ini``'s ``run`` environment runs, read from ``tox.ini``.
"""

from __future__ import annotations

import configparser
import os
import pty
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from testkit.waits import bound
from tests.cli.support import REPO, cli_env, echo_config, wait_for_phase

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leaks")]

#: Plays tox: owns the terminal, runs the command, waits, reports (and notes any SIGINT of its own).
STAND_IN = """\
import os, signal, subprocess, sys
terminal = os.open(sys.argv[1], os.O_RDWR)  # a session leader opening a tty: its controlling terminal
for fd in (0, 1, 2):
    os.dup2(terminal, fd)
got = []
signal.signal(signal.SIGINT, lambda *_: got.append("SIGINT"))
code = subprocess.call(sys.argv[2:])
print(f"STAND-IN interrupted={bool(got)} exit={code}", flush=True)
"""


def tox_run_command(posargs: list[str]) -> list[str]:
    """The command of ``[testenv:run]`` in ``tox.ini``, with ``{posargs}`` filled in."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "tox.ini")
    (line,) = [line for line in parser["testenv:run"]["commands"].splitlines() if line.strip()]
    words = shlex.split(line)
    index = words.index("{posargs}")
    return [*words[:index], *posargs, *words[index + 1 :]]


def test_ctrl_c_stops_vmcp_actors_cleanly_and_tox_never_sees_it(tmp_path: Path) -> None:
    """Bug: Ctrl-C reached tox too, which ended with "evaluation failed :(" after a clean stop and exit 0."""
    bin_dir = tmp_path / "bin"  # what installing the package gives tox's env: a `vmcp-actors` script
    bin_dir.mkdir()
    script = bin_dir / "vmcp-actors"
    script.write_text(f"#!{sys.executable}\nfrom vmcp_actors.cli import main\nraise SystemExit(main())\n")
    script.chmod(0o755)
    stand_in = tmp_path / "stand_in.py"
    stand_in.write_text(STAND_IN)
    status_file, log_file = tmp_path / "status.json", tmp_path / "run.log"
    posargs = ["--config", str(echo_config(tmp_path)), "--status-file", str(status_file), "--log-file", str(log_file)]
    env = cli_env()
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env.get("PATH", "")])
    env["TERM"] = "xterm"

    master, slave = pty.openpty()
    screen: list[bytes] = []

    def drain() -> None:  # a terminal is read, or whoever writes to it blocks
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every process on the terminal has closed it
                return
            if not chunk:
                return
            screen.append(chunk)

    process = subprocess.Popen(
        [sys.executable, str(stand_in), os.ttyname(slave), *tox_run_command(posargs)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_for_phase(status_file, "Ready", lambda: process.poll() is None)
        os.write(master, b"\x03")  # Ctrl-C
        assert process.wait(timeout=bound()) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(slave)  # held until now: with no slave open the master reads EIO, before the stand-in opens it
        reader.join(bound())
        os.close(master)
    text = b"".join(screen).decode(errors="replace")
    assert "STAND-IN interrupted=False exit=0" in text, text[-2000:]
    assert "final status (Pending) flushed" in text  # vmcp-actors itself stopped cleanly
    assert "Traceback" not in text
