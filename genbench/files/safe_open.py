"""Safe file access for untrusted inputs: only regular files are opened, never past a size limit,
and a short read is an error (:class:`BadFile`), not a silently shorter file."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

# Largest image file: a 4096x4096 RGBA BMP is 64 MiB; compressed formats are smaller.
FILE_LIMIT_BYTES = 128 * 2**20
# Largest array file and largest declared array: 50,000 float64 28x28 images are 314 MB.
ARRAY_LIMIT_BYTES = 2 * 2**30


class BadFile(Exception):
    """One input file cannot be used; the message is the reason."""


# -- opening files ------------------------------------------------------------------

def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return kind
    return "not a regular file"


def _check_regular(st: os.stat_result, limit_bytes: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise BadFile(f"is {_file_kind(st.st_mode)}, not a regular file: not read")
    if st.st_size > limit_bytes:
        raise BadFile(f"{st.st_size} bytes is over the per-file limit of {limit_bytes} bytes")


def _open_checked(path: str | os.PathLike, limit_bytes: int) -> tuple[int, os.stat_result]:
    """A file descriptor of a regular file (symlinks followed) of at most ``limit_bytes``, and its ``fstat``.

    The path is checked before opening, so a device is never opened, and the open file
    again, so what is read is what was checked. ``O_NONBLOCK`` keeps a FIFO swapped in
    between the two from blocking the open.
    """
    _check_regular(os.stat(path), limit_bytes)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        _check_regular(st, limit_bytes)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _open_regular(path: Path, limit_bytes: int) -> BinaryIO:
    """Open a regular file of at most ``limit_bytes`` for reading, checked as :func:`_open_checked` checks."""
    return open(_open_checked(path, limit_bytes)[0], "rb")


def read_regular(path: str | os.PathLike, limit_bytes: int) -> bytes:
    """All the bytes of a regular file of at most ``limit_bytes``, checked as :func:`_open_checked` checks.

    The first read asks for the size ``fstat`` gave plus one byte, so a small file costs a
    small buffer (asking for the limit would allocate all of it on every file); a file
    that grows while being read is read on, and refused once over the limit.
    """
    fd, st = _open_checked(path, limit_bytes)
    try:
        parts, got, want = [], 0, st.st_size + 1
        while got <= limit_bytes:
            part = os.read(fd, min(want, limit_bytes + 1 - got))
            if not part:
                break
            parts.append(part)
            got += len(part)
            want = max(want, 2**20)
    finally:
        os.close(fd)
    if got > limit_bytes:
        raise BadFile(f"grew past the per-file limit of {limit_bytes} bytes while being read")
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    """``n`` bytes, fewer only at the end of the stream."""
    parts, got = [], 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)
