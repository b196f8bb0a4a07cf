"""A reload with checker worker processes: the new configuration where the workers read it.

Workers build their plan from the configuration memfd of the checker
process, read through /proc/<checker>/fd/N (check/workers.py, cli.py's
`--config-fd N --parent-pid`). Before the checker restarts them after a
reload, fd N of the checker process must hold the configuration being
reloaded to: in a child, the snapshot the parent checked and put at the same
number of its own (daemon/config_source.py); in a checker running alone
(-C), the file read again. The new memfd replaces fd N in one dup2, so a
worker reads either the old snapshot or the new one, never a mix; the plan
fingerprint each worker checks (workers.py) catches a file that changed in
between.
"""

from __future__ import annotations

import os

from ..config import LexerOptions, read_config
from ..config.snapshot import Snapshot, SnapshotError
from ..errors import ReloadError
from ..host.facts import LocalHostFacts
from ..host.recording import RecordingFileSystem, read_snapshot_fd_bytes, snapshot_memfd


def _read_file(config_file: str, config_id: str | None) -> Snapshot:
    snapshot = Snapshot(main=config_file, cwd=os.getcwd(),
                        config_id=config_id if config_id is not None else os.uname().nodename.split(".", 1)[0])
    options = LexerOptions(config_id=snapshot.config_id, cwd=snapshot.cwd)
    result = read_config(config_file, RecordingFileSystem(snapshot), LocalHostFacts(), options)
    if result.start_errors:
        raise ReloadError(f"{config_file} changed again and has errors; keeping the running configuration",
                          [d.format() for d in result.start_errors])
    return snapshot


def publish_for_workers(config_fd: int, child: bool, config_file: str, config_id: str | None) -> None:
    """Make fd `config_fd` of this process hold the configuration being reloaded to (ReloadError if it cannot)."""
    if config_fd < 0:
        raise ReloadError("the checker has no configuration fd for its worker processes; keeping the running "
                          "configuration")
    try:
        snapshot = (Snapshot.decode(read_snapshot_fd_bytes(config_fd, os.getppid())) if child
                    else _read_file(config_file, config_id))
        fd = snapshot_memfd(snapshot)
    except (OSError, SnapshotError) as exc:
        raise ReloadError(f"cannot hand the new configuration to the checker workers: {exc}; keeping the running "
                          "configuration") from None
    try:
        os.dup2(fd, config_fd, inheritable=False)
    finally:
        os.close(fd)
