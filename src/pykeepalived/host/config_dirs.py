"""global_defs config_save_dir and tmp_config_directory: the directories keepalived 2.2.7 prepares at start.

config_save_dir DIR: keepalived's parent creates DIR (mode 0700 under the
umask: 0600 with keepalived's 0177, checked with keepalived 2.2.7 -t) when it
is missing, and reports a DIR that is not a directory or cannot be made; its
processes later write their configuration there before and after each reload
(keepalived_vrrp.PID.N.pre/post). pykeepalived prepares the directory the
same way at start, in the VRRP and checker processes (whichever comes first
makes it), not in `-t`; it has no reload yet, so nothing is saved there until
it has.

tmp_config_directory DIR: keepalived keeps the copy of the configuration its
processes read as an unlinked file in DIR instead of a memfd, and reports a
DIR where it cannot create one. pykeepalived's copy is always a sealed memfd
(config/snapshot.py): a disk file would add nothing the seal does not give,
so DIR only gets keepalived's check, an unlinked O_TMPFILE made and closed
at start, with keepalived's error line when that fails.
"""

from __future__ import annotations

import logging
import os
import stat

from ..config.model import GlobalDefs

log = logging.getLogger("pykeepalived")


def prepare_config_save_dir(path: str) -> None:
    """Make `path` (0700 under the umask) if it is missing; log keepalived's lines when it cannot be used."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:  # the other process made it meanwhile
            return
        except OSError as exc:
            log.error("Unable to create config_save_dir %s (error %d - %s)", path, exc.errno or 0, exc.strerror)
        return
    except OSError as exc:
        log.error("config_save_dir %s error %d - %s", path, exc.errno or 0, exc.strerror)
        return
    if not stat.S_ISDIR(st.st_mode):
        log.error("config_save_dir %s exists and is not a directory", path)


def check_tmp_config_directory(path: str) -> bool:
    """Whether an unlinked file can be made in `path`, as keepalived's open_tmpfile needs."""
    try:
        fd = os.open(path, os.O_TMPFILE | os.O_RDWR | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        log.error("Cannot open config directory %s for writing, errno %d - %s", path, exc.errno or 0, exc.strerror)
        return False
    os.close(fd)
    return True


def prepare_config_dirs(g: GlobalDefs) -> None:
    if g.config_save_dir:
        prepare_config_save_dir(g.config_save_dir.rstrip("/") or "/")
    if g.tmp_config_directory:
        check_tmp_config_directory(g.tmp_config_directory)
