"""keepalived's default pid file paths, our status file and state file: names only, cheap to import.

The command line needs them for its defaults before it knows whether it will
run a daemon at all; importing daemon/run.py (asyncio and the rest) for them
would cost every `-t` the time of a daemon's imports.
"""

import os

DEFAULT_PID_FILE = "/run/keepalived.pid"
DEFAULT_VRRP_PID_FILE = "/run/keepalived_vrrp.pid"
DEFAULT_CHECKERS_PID_FILE = "/run/keepalived_checkers.pid"
DEFAULT_STATUS_FILE = "/run/pykeepalived/checker.json"


def state_path(pid_file: str) -> str:
    """Where the parent whose pid file is `pid_file` writes the state document (`<stem>.state.json` beside it).

    Here, not in daemon/state_feed.py, because `pykeepalived status` needs it
    too and must not import the daemon to start.
    """
    directory, name = os.path.split(os.path.abspath(pid_file))
    stem = name[:-4] if name.endswith(".pid") else name
    return os.path.join(directory, f"{stem}.state.json")
