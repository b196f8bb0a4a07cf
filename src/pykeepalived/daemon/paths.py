"""keepalived's default pid file paths and our status file: names only, cheap to import.

The command line needs them for its defaults before it knows whether it will
run a daemon at all; importing daemon/run.py (asyncio and the rest) for them
would cost every `-t` the time of a daemon's imports.
"""

DEFAULT_PID_FILE = "/run/keepalived.pid"
DEFAULT_VRRP_PID_FILE = "/run/keepalived_vrrp.pid"
DEFAULT_CHECKERS_PID_FILE = "/run/keepalived_checkers.pid"
DEFAULT_STATUS_FILE = "/run/pykeepalived/checker.json"
