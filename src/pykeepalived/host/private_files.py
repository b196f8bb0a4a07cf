"""Every file the daemon writes, written so that a local user cannot steer it.

The dumps (`stats_dump_file`, `json_dump_file`), the checker's status file and
the pid files may be configured into a directory others can write (/tmp is
keepalived's default). Opening such a path the ordinary way follows a symlink
planted there (keepalived's CVE-2018-19044) or writes into a file someone else
created first and still owns (CVE-2018-19046).

`write_private` never opens the target: it creates a fresh file under a random
name in the same directory with O_CREAT|O_EXCL|O_NOFOLLOW (so nothing that
exists, link or file, is ever reused), sets its mode explicitly (independent of
the umask), writes it and renames it over the target. rename() replaces a
symlink or a foreign file instead of following or reusing it, so afterwards the
path holds a file owned by us with exactly the requested mode; readers see the
old or the new content, never half of it.

`read_own_small` is the reading side (pid files): no symlink following, regular
files only, a bounded read.

`keepalived_tmp_dir` and `dump_path` say where the signal dumps go, as
keepalived 2.2.7 decides it.

`daemon_umask` turns global_defs' `umask` into a number; keepalived runs with
0177 unless told otherwise, so files made by the daemon or its scripts without
an explicit mode are readable by their owner only. `make_dirs` gives directories
the daemon creates an explicit mode, since such a umask would leave them 0600.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterable

from ..errors import PyKeepalivedError
from ..config.values import parse_umask

DEFAULT_UMASK = 0o177  # keepalived's: rw for the owner only, nothing for anyone else
PRIVATE_MODE = 0o600
DIRECTORY_MODE = 0o755
_TEMP_ATTEMPTS = 8
WRITE_BATCH = 1 << 16  # write_private_parts joins pieces up to this many bytes per write


class UnsafeFileError(PyKeepalivedError):
    """A file we were asked to write or read is not one we can trust; the message says which and why."""


def write_private(path: str, data: str | bytes, mode: int = PRIVATE_MODE) -> None:
    """Replace `path` with a new file of ours holding `data`, with exactly `mode`.

    Raises UnsafeFileError (with the path and the reason) if it cannot; nothing is
    left behind then, and whatever was at `path` is untouched.
    """
    write_private_parts(path, (data,), mode)


def write_private_parts(path: str, parts: Iterable[str | bytes], mode: int = PRIVATE_MODE) -> None:
    """write_private with the data in pieces, written as they come (a big dump is never whole in memory).

    `parts` is consumed inside; an exception it raises leaves nothing behind either.
    """
    directory, name = os.path.split(os.path.abspath(path))
    fd, temp = _create_temp(directory, name, path)
    try:
        try:
            os.fchmod(fd, mode)
            batch: list[bytes] = []
            size = 0
            for part in parts:
                raw = part.encode() if isinstance(part, str) else part
                if len(raw) >= WRITE_BATCH:  # a big piece (a state part of 1.7 MiB) is written as it is, not copied
                    _write_all(fd, b"".join(batch))
                    _write_all(fd, raw)
                    batch, size = [], 0
                    continue
                batch.append(raw)
                size += len(raw)
                if size >= WRITE_BATCH:
                    _write_all(fd, b"".join(batch))
                    batch, size = [], 0
            _write_all(fd, b"".join(batch))
        finally:
            os.close(fd)
        os.rename(temp, path)
    except OSError as exc:
        _unlink_quietly(temp)
        if exc.errno == errno.EISDIR:
            raise UnsafeFileError(f"{path}: is a directory; not replacing it") from None
        raise UnsafeFileError(f"{path}: cannot write: {exc.strerror}") from None
    except BaseException:  # `parts` failed: no half-written file is left behind
        _unlink_quietly(temp)
        raise


def _write_all(fd: int, raw: bytes) -> None:
    view = memoryview(raw)
    while view:
        view = view[os.write(fd, view):]


def read_own_small(path: str, limit: int = 4096) -> str | None:
    """The start of a regular file at `path`, without following a symlink; None if there is none.

    Raises UnsafeFileError if `path` is a symlink or not a regular file, so that
    the caller can say so instead of trusting what it points at.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(f"{path}: is a symbolic link; not following it") from None
        raise UnsafeFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFileError(f"{path}: is not a regular file")
        return os.read(fd, limit).decode(errors="replace")
    finally:
        os.close(fd)


def make_dirs(path: str, mode: int = DIRECTORY_MODE) -> None:
    """mkdir -p with an explicit mode for every directory we create (the daemon's umask would strip x bits).

    Raises UnsafeFileError if a directory cannot be made.
    """
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent != path:
        make_dirs(parent, mode)
    try:
        os.mkdir(path, mode)
        os.chmod(path, mode)
    except FileExistsError:
        return
    except OSError as exc:
        raise UnsafeFileError(f"{path}: cannot create the directory: {exc.strerror}") from None


def daemon_umask(words: list[str] | None) -> tuple[int, str | None]:
    """The umask the daemon runs with: global_defs `umask` if valid, else keepalived's 0177.

    Returns (umask, problem): problem is a message to log when the configured
    value was unusable and the default is used instead.
    """
    if words is None:
        return DEFAULT_UMASK, None
    try:
        return parse_umask(list(words)), None
    except ValueError as exc:
        return DEFAULT_UMASK, f"global_defs {exc}; using {DEFAULT_UMASK:04o}"


def keepalived_tmp_dir() -> str:
    """keepalived's directory for its dump files: $TMPDIR if it is an absolute path, else /tmp (set_tmp_dir)."""
    tmp = os.environ.get("TMPDIR", "")
    return tmp if tmp.startswith("/") else "/tmp"


def dump_path(name: str, override: str | None = None, directory: str | None = None) -> str:
    """Where a dump goes: the configured file (or DIR/ for the default name), else DIRECTORY/NAME."""
    if override:
        return os.path.join(override, name) if override.endswith("/") else override
    return os.path.join(directory or keepalived_tmp_dir(), name)


def _create_temp(directory: str, name: str, path: str) -> tuple[int, str]:
    """A new file that did not exist before, under a name nobody can predict (O_EXCL: never a planted one)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(_TEMP_ATTEMPTS):
        temp = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(temp, flags, PRIVATE_MODE), temp
        except FileExistsError:
            continue
        except OSError as exc:
            raise UnsafeFileError(f"{path}: cannot create a file in {directory}: {exc.strerror}") from None
    raise UnsafeFileError(f"{path}: could not find a free temporary name in {directory}")


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
