"""What the config checks ask about this machine: interfaces, users, script files."""

from __future__ import annotations

import grp
import os
import pwd
import socket

from ..config.script_rules import FileStat

SCRIPT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _file_stat(st: os.stat_result) -> FileStat:
    return FileStat(st.st_mode, st.st_uid, st.st_gid, st.st_dev, st.st_ino)


class LocalHostFacts:
    """Answers from the running kernel (current network namespace), the file system and /etc/passwd.

    The file methods are the `ScriptFiles` of script vetting: they only stat
    and resolve, never open or run anything.
    """

    def interface_exists(self, name: str) -> bool:
        try:
            socket.if_nametoindex(name)
        except (OSError, ValueError):
            return False
        return True

    def user_exists(self, name: str) -> bool:
        return self.user_ids(name) is not None

    def online_cpus(self) -> int:
        """config/process_checks.py's CpuFacts: keepalived's sysconf(_SC_NPROCESSORS_ONLN)."""
        return os.sysconf("SC_NPROCESSORS_ONLN")

    # ------------------------------------------------------------------ ScriptFiles
    def lstat(self, path: str) -> FileStat | None:
        try:
            return _file_stat(os.lstat(path))
        except (OSError, ValueError):
            return None

    def stat(self, path: str) -> FileStat | None:
        try:
            return _file_stat(os.stat(path))
        except (OSError, ValueError):
            return None

    def realpath(self, path: str) -> str | None:
        try:
            return os.path.realpath(path, strict=True)
        except (OSError, ValueError):
            return None

    def search_path(self) -> list[str]:
        """keepalived searches its own PATH (the one scripts inherit)."""
        return os.environ.get("PATH", SCRIPT_PATH).split(":")

    def user_ids(self, name: str) -> tuple[int, int] | None:
        try:
            entry = pwd.getpwnam(name)
        except (KeyError, ValueError):
            return None
        return entry.pw_uid, entry.pw_gid

    def group_id(self, name: str) -> int | None:
        try:
            return grp.getgrnam(name).gr_gid
        except (KeyError, ValueError):
            return None

    def our_ids(self) -> tuple[int, int]:
        return os.geteuid(), os.getegid()
