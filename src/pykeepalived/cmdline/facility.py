"""`-S`: keepalived's syslog facility argument, turned into the facility code syslog gets.

keepalived 2.2.7 takes a number 0-7 or `local0`..`local7` (both mean
LOG_LOCALn), or the names `daemon` (its default) and `user`. Anything else is
reported ("Invalid log facility 'X'") and the default is kept: the daemon
still starts.
"""

from __future__ import annotations

# <syslog.h>'s codes (facility number, not yet shifted by 3 as in the PRI field)
LOG_USER = 1
LOG_DAEMON = 3
LOG_LOCAL0 = 16
DEFAULT_FACILITY = LOG_DAEMON

_NAMES = {"daemon": LOG_DAEMON, "user": LOG_USER}


def parse_facility(text: str) -> int | None:
    """The syslog facility code for a `-S` argument; None when keepalived would call it invalid."""
    digits = text[5:] if text.startswith("local") else text
    if digits.isascii() and digits.isdigit() and int(digits) <= 7:
        return LOG_LOCAL0 + int(digits)
    return _NAMES.get(text)


def facility_name(code: int) -> str:
    """The `-S` spelling of a facility code (what the parent hands its children)."""
    if LOG_LOCAL0 <= code <= LOG_LOCAL0 + 7:
        return f"local{code - LOG_LOCAL0}"
    return "user" if code == LOG_USER else "daemon"
