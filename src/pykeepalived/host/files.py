"""Reading configuration files from the local disk for the config lexer.

Only regular, non-executable files are read, as keepalived 2.2.7 does: a FIFO
named by `include` or `-f` would otherwise block `-t` and start-up forever
(nobody writes to it), a device could block or have side effects on open, and
keepalived skips executables too. The path is checked with stat() before it is
opened (so a device is never opened), opened with O_NONBLOCK (so a FIFO swapped
in between cannot block the open), and the open descriptor is checked again
with fstat() before a byte is read.
"""

from __future__ import annotations

import glob
import os
import stat

from ..config.lexer import FileProblem, NotRegularFile
from ..config.memfs import expand_braces

MAX_CONFIG_BYTES = 64 * 1024 * 1024
_EXECUTABLE = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(mode: int) -> None:
    """Raise NotRegularFile unless `mode` is a regular file without any execute bit (keepalived's rule)."""
    if stat.S_ISDIR(mode):
        raise NotRegularFile("a directory")
    if not stat.S_ISREG(mode):
        raise NotRegularFile(f"not a regular non-executable file ({_kind(mode)})")
    if mode & _EXECUTABLE:
        raise NotRegularFile(f"not a regular non-executable file (mode {stat.S_IMODE(mode):04o} is executable)")


class LocalFileSystem:
    """The real file system, with keepalived's glob rules (braces, sorted matches)."""

    def read_text(self, path: str) -> str:
        try:
            check_regular(os.stat(path).st_mode)
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            raise FileProblem(exc.strerror or str(exc)) from None
        try:
            check_regular(os.fstat(fd).st_mode)
            chunks: list[bytes] = []
            size = 0
            while size <= MAX_CONFIG_BYTES:
                chunk = os.read(fd, min(1 << 20, MAX_CONFIG_BYTES + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            raise FileProblem(exc.strerror or str(exc)) from None
        finally:
            os.close(fd)
        if size > MAX_CONFIG_BYTES:
            raise FileProblem(f"larger than {MAX_CONFIG_BYTES} bytes")
        return b"".join(chunks).decode("utf-8", errors="replace")

    def glob(self, pattern: str) -> list[str]:
        found: list[str] = []
        try:
            for pat in expand_braces(pattern):
                found.extend(sorted(glob.glob(pat)))
        except (OSError, ValueError) as exc:
            raise FileProblem(str(exc)) from None
        return list(dict.fromkeys(found))
