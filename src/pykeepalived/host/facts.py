"""What the config checks ask about this machine: interfaces, executables, users."""

from __future__ import annotations

import os
import pwd
import shutil
import socket

SCRIPT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LocalHostFacts:
    """Answers from the running kernel (current network namespace) and /etc/passwd."""

    def interface_exists(self, name: str) -> bool:
        try:
            socket.if_nametoindex(name)
        except (OSError, ValueError):
            return False
        return True

    def find_executable(self, command: str) -> str | None:
        if any(c in command for c in "<>|&;$`("):
            return command  # keepalived hands such a command to the shell
        if "/" in command:
            return command if os.path.isfile(command) and os.access(command, os.X_OK) else None
        return shutil.which(command, path=SCRIPT_PATH)

    def user_exists(self, name: str) -> bool:
        try:
            pwd.getpwnam(name)
        except (KeyError, ValueError):
            return False
        return True
