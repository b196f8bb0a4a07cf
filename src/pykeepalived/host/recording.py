"""Reading the configuration once, for every process of the daemon: a recording file system and its memfd.

The parent reads keepalived.conf (and its includes) through
`RecordingFileSystem`, which wraps the local file system and keeps every
answer it gave the lexer; the resulting `Snapshot` (config/snapshot.py) goes
into a sealed memfd that the parent keeps open. Children get the fd (pass_fds
and `--config-fd N`) and parse the snapshot instead of the disk, so that a
child respawned after the file was edited or broken runs the configuration the
daemon started with, as keepalived's children do. Checker workers, which their
checker process starts without passing fds, read the same memfd through
`/proc/<checker pid>/fd/N` (the checker's pid is their verified `--parent-pid`).
"""

from __future__ import annotations

import fcntl
import os

from ..config.lexer import FileProblem, FileSystem, NotRegularFile
from ..config.snapshot import Snapshot
from .files import LocalFileSystem

MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024


class RecordingFileSystem:
    """A FileSystem that serves `inner`'s answers and keeps them in `snapshot`."""

    def __init__(self, snapshot: Snapshot, inner: FileSystem | None = None) -> None:
        self.inner: FileSystem = inner if inner is not None else LocalFileSystem()
        self.snapshot = snapshot

    def read_text(self, path: str) -> str:
        try:
            text = self.inner.read_text(path)
        except NotRegularFile as exc:  # skipped with a warning: the children must skip it the same way
            self.snapshot.skipped[path] = str(exc)
            raise
        except FileProblem as exc:
            self.snapshot.problems[f"read:{path}"] = str(exc)
            raise
        self.snapshot.files[path] = text
        return text

    def glob(self, pattern: str) -> list[str]:
        try:
            found = self.inner.glob(pattern)
        except FileProblem as exc:
            self.snapshot.problems[f"glob:{pattern}"] = str(exc)
            raise
        self.snapshot.globs[pattern] = list(found)
        return found


def snapshot_memfd(snapshot: Snapshot) -> int:
    """A sealed (read-only for everyone) memfd holding the snapshot; close-on-exec, so only pass_fds hands it on."""
    data = snapshot.encode()
    fd = os.memfd_create("pykeepalived-config", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    except OSError:
        os.close(fd)
        raise
    return fd


def read_snapshot_fd(fd: int, owner_pid: int | None = None) -> Snapshot:
    """The snapshot in memfd `fd` of this process (or of `owner_pid`'s); OSError or SnapshotError if unreadable.

    Read through /proc so that the read has an offset of its own: the fd's
    offset is shared with the parent and the other children.
    """
    return Snapshot.decode(read_snapshot_fd_bytes(fd, owner_pid))


def read_snapshot_fd_bytes(fd: int, owner_pid: int | None = None) -> bytes:
    """The encoded snapshot in memfd `fd` (see read_snapshot_fd), for a digest as well as for decoding."""
    path = f"/proc/{owner_pid if owner_pid is not None else 'self'}/fd/{fd}"
    with open(path, "rb") as handle:
        return handle.read(MAX_SNAPSHOT_BYTES + 1)
