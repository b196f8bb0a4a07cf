"""The parent's reading and checking of a new configuration on a reload (off the event loop).

The supervisor (supervisor.py) calls `read_new_config` in a thread: it reads
-f through a recording file system, exactly as at start, so that what the
children will parse is what was checked. Around the read it honours
keepalived 2.2.7's global_defs:

- `reload_file [PATH]`: the file exists (created, or truncated to zero) while
  the files are read and is removed after, so that a tool updating the config
  can wait for it to go before it writes again. Without a PATH: the parent's
  pid file with `.reload` for `.pid`, keepalived's choice in its pid directory.
- `reload_check_config [LOG_FILE]`: the check's messages (what `-t` prints)
  are written to LOG_FILE, truncated first (keepalived: /dev/null without one).
  pykeepalived always checks a new config before a reload; the keyword only
  adds the file.

The keywords are taken from the running configuration, as keepalived takes
them from the configuration it runs while reading the next one.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config_source import format_errors, load_recorded, load_snapshot

if TYPE_CHECKING:
    from ..config import LoadResult
    from ..config.model import GlobalDefs
    from ..config.snapshot import Snapshot

log = logging.getLogger("pykeepalived")


@dataclass
class NewConfig:
    result: LoadResult
    snapshot: Snapshot
    errors: list[str]  # FILE:LINE: ... per error that stops a start; empty: good


def reload_file_path(g: GlobalDefs, pid_file: str) -> str | None:
    """Where reload_file points, None when not set ("" = beside the pid file, as keepalived.reload)."""
    if g.reload_file is None:
        return None
    if g.reload_file:
        return g.reload_file
    stem = pid_file[:-4] if pid_file.endswith(".pid") else pid_file
    return f"{stem}.reload"


def check_log_path(g: GlobalDefs) -> str | None:
    if g.reload_check_config is None:
        return None
    return g.reload_check_config or os.devnull


def read_new_config(config_file: str, config_id: str | None, running: GlobalDefs, pid_file: str) -> NewConfig:
    """Read and check `config_file` as a start would; never raises for a bad config (errors are returned)."""
    marker = reload_file_path(running, pid_file)
    if marker:
        _create_marker(marker)
    try:
        result, snapshot = load_recorded(config_file, config_id)
        if not result.start_errors and result.config.global_defs.random_seed is not None:
            result = load_snapshot(snapshot)  # the values the children will see
    finally:
        if marker:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(marker)
    errors = format_errors(result)
    if (check_log := check_log_path(running)) is not None:
        _write_check_log(check_log, [d.format() for d in result.diagnostics], config_file, len(errors))
    return NewConfig(result, snapshot, errors)


def _create_marker(path: str) -> None:
    """keepalived: creat() the file 0644 (truncating one the updater made), before anything is read."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        log.info("Failed to create reload file (%s): %s", path, exc.strerror)
        return
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o644)  # whatever the daemon's umask (0177 by default)
    os.close(fd)


def _write_check_log(path: str, lines: list[str], config_file: str, errors: int) -> None:
    verdict = f"{config_file}: {errors} configuration error(s)" if errors else f"{config_file}: configuration OK"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        log.info("cannot write the reload check log %s: %s", path, exc.strerror)
        return
    with os.fdopen(fd, "w") as out:
        out.write("".join(f"{line}\n" for line in [*lines, verdict]))
