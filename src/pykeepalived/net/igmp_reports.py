"""disable_local_igmp: no IGMP reports for link-local groups (224.0.0.0/24, VRRP's 224.0.0.18) while VRRP runs.

keepalived 2.2.7 (vrrp_daemon.c) writes 0 to
/proc/sys/net/ipv4/igmp_link_local_mcast_reports when the VRRP process
starts, if it was 1, and writes the 1 back when the process ends. The
setting belongs to the network namespace. If the file cannot be read or
written the option is dropped with a log line, as keepalived does.
"""

from __future__ import annotations

import logging

__all__ = ["LocalIgmpReports", "IGMP_LLM_REPORTS"]

log = logging.getLogger("pykeepalived.vrrp")
IGMP_LLM_REPORTS = "/proc/sys/net/ipv4/igmp_link_local_mcast_reports"


class LocalIgmpReports:
    """Turns the reports off at start and back on at stop, only if they were on."""

    def __init__(self, path: str = IGMP_LLM_REPORTS) -> None:
        self.path = path
        self._turned_off = False

    def disable(self) -> None:
        try:
            with open(self.path, "r+") as f:
                if f.read(1) != "1":
                    return
                f.seek(0)
                f.write("0\n")
        except OSError as exc:
            log.info("Unable to set %s: %s - disable_local_igmp ignored", self.path, exc)
            return
        self._turned_off = True

    def restore(self) -> None:
        if not self._turned_off:
            return
        self._turned_off = False
        try:
            with open(self.path, "w") as f:
                f.write("1\n")
        except OSError as exc:
            log.info("Unable to write %s: %s", self.path, exc)
