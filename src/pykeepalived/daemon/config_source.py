"""Where a daemon process gets its configuration: the file at start, the parent's snapshot, a reload.

The parent reads keepalived.conf once through a recording file system
(host/recording.py) and hands the snapshot to its children in a memfd. On a
reload (SIGHUP) the parent reads and checks the file again and, only when it
is good, puts the new snapshot in place of the old one at the same fd number;
a child then reads it through /proc/<parent>/fd/N (`config_for_reload`). A
process running alone (-P or -C without a parent) reads and checks the file
itself. Moved out of cli.py so that the daemon can reach it without importing
upward.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import ReloadError

if TYPE_CHECKING:
    from ..config import LoadResult
    from ..config.model import KeepalivedConfig
    from ..config.snapshot import Snapshot


def _config_id(explicit: str | None) -> str:
    return explicit if explicit is not None else os.uname().nodename.split(".", 1)[0]


def load(path: str, config_id: str | None, host_checks: bool = True) -> LoadResult:
    from ..config import LexerOptions, read_config
    from ..host.files import LocalFileSystem

    options = LexerOptions(config_id=_config_id(config_id), cwd=os.getcwd())
    host = None
    if host_checks:  # `-t --no-host-checks` needs no sockets
        from ..host.facts import LocalHostFacts

        host = LocalHostFacts()
    return read_config(path, LocalFileSystem(), host, options)


def load_recorded(path: str, config_id: str | None, host_checks: bool = True) -> tuple[LoadResult, Snapshot]:
    """Read the configuration from disk and keep what was read, for the children (see host/recording.py)."""
    from ..config import LexerOptions, read_config
    from ..config.snapshot import Snapshot
    from ..host.facts import LocalHostFacts
    from ..host.recording import RecordingFileSystem

    snapshot = Snapshot(main=path, cwd=os.getcwd(), config_id=_config_id(config_id))
    options = LexerOptions(config_id=snapshot.config_id, cwd=snapshot.cwd)
    host = LocalHostFacts() if host_checks else None
    return read_config(path, RecordingFileSystem(snapshot), host, options), snapshot


def load_snapshot(snapshot: Snapshot, host_checks: bool = True) -> LoadResult:
    """Parse the configuration the daemon read at start, under the paths it had then."""
    from ..config import LexerOptions, read_config
    from ..config.glibc_random import GlibcRandom
    from ..config.snapshot import SnapshotFileSystem
    from ..host.facts import LocalHostFacts

    options = LexerOptions(config_id=snapshot.config_id, cwd=snapshot.cwd)
    host = LocalHostFacts() if host_checks else None
    result = read_config(snapshot.main, SnapshotFileSystem(snapshot), host, options)
    if (seed := result.config.global_defs.random_seed) is not None:  # keepalived's children: ${_RANDOM} seeded
        options.random = GlibcRandom(seed).between
        result = read_config(snapshot.main, SnapshotFileSystem(snapshot), host, options)
    return result


def format_errors(result: LoadResult) -> list[str]:
    """One line per error that stops a start (and so a reload), FILE:LINE first."""
    return [d.format() for d in result.start_errors]


def snapshot_digest(data: bytes) -> str:
    """What parent and children call a snapshot by (the reload result names it)."""
    import hashlib  # not for -t: its start-up time is measured (tests/unit/test_startup_imports.py)

    return hashlib.sha256(data).hexdigest()[:16]


def config_for_reload(config_fd: int, child: bool, config_file: str,
                      config_id: str | None) -> tuple[KeepalivedConfig, str]:
    """The configuration to reload to and its digest; ReloadError (one line per problem) when it is not good.

    A child reads the snapshot its parent has checked and placed at
    `config_fd` (the number the child was started with); a process alone
    reads `config_file` and checks it as a start would.
    """
    from ..config.snapshot import Snapshot, SnapshotError
    from ..host.recording import read_snapshot_fd_bytes

    if child and config_fd >= 0:
        try:
            data = read_snapshot_fd_bytes(config_fd, os.getppid())
            snapshot = Snapshot.decode(data)
        except (OSError, SnapshotError) as exc:
            raise ReloadError(f"cannot read the parent's configuration snapshot (fd {config_fd}): {exc}") from None
        result = load_snapshot(snapshot)
    else:
        result, snapshot = load_recorded(config_file, config_id)
        data = snapshot.encode()
        if not result.start_errors and result.config.global_defs.random_seed is not None:
            result = load_snapshot(snapshot)
    if errors := format_errors(result):
        raise ReloadError(f"{config_file}: {len(errors)} configuration error(s); keeping the running configuration",
                          errors)
    return result.config, snapshot_digest(data)
