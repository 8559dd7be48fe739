"""Reading a file the user named, safely: regular files only, and never more than a limit.

A config path or a token file is user input like any other.  ``Path.read_bytes`` on a
FIFO blocks until someone writes to it (forever, for a config path nobody feeds), and
on ``/dev/zero`` or a runaway file it reads until memory runs out.  Here the file is
opened without blocking, checked to be a regular file on the *opened* descriptor (so
a path swapped between a check and the open cannot slip through), and read up to a
size limit, which also bounds a file that grows while it is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

__all__ = ["MAX_CONFIG_BYTES", "MAX_TOKEN_FILE_BYTES", "UnreadableFileError", "read_regular_file"]

#: A config file larger than this is refused: 50 backends fit in a few kilobytes.
MAX_CONFIG_BYTES: Final = 1024 * 1024
#: A bearer-token file larger than this is refused: tokens are a few kilobytes at most.
MAX_TOKEN_FILE_BYTES: Final = 64 * 1024

_CHUNK: Final = 64 * 1024
_KINDS: Final = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UnreadableFileError(Exception):
    """A file was not read; the message says why in words (never the file's content)."""


def _size_text(limit: int) -> str:
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    if limit % 1024 == 0:
        return f"{limit // 1024} KiB"
    return f"{limit} bytes"


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the regular file ``path`` (symlinks followed), at most ``limit`` of them.

    Raises:
        UnreadableFileError: the file cannot be opened, is not a regular file (a FIFO,
            a device, a directory) or holds more than ``limit`` bytes.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        descriptor = os.open(Path(path), flags)
    except OSError as exc:
        raise UnreadableFileError(exc.strerror or type(exc).__name__) from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFileError(f"it is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise UnreadableFileError(f"it is {info.st_size} bytes, more than the {_size_text(limit)} limit")
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(descriptor, _CHUNK):
            total += len(chunk)
            if total > limit:
                raise UnreadableFileError(f"it grew past the {_size_text(limit)} limit while being read")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFileError(exc.strerror or type(exc).__name__) from None
    finally:
        os.close(descriptor)
