"""Which conntrackd commands each VRRP transition calls for (pure), after the manual's primary-backup.sh.

MASTER: commit the external cache into the kernel (-c), flush both caches
(-f), resync the internal cache from the kernel (-R), send it all to the
peer (-B). The commit must come before the VIPs are added (the first
packet the new master forwards must find its entry), so `before_vips`
gives it when the first member of the followed instance's sync group is
about to add its VIPs, and the MASTER transition only gives the rest.
BACKUP: check conntrackd answers (-s), shorten the kernel's timers so
entries of flows that moved away expire (-t), ask the master for a full
resync (-n). FAULT: -t.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.vocabulary import StateWord


@dataclass(frozen=True)
class CtCommand:
    """One `conntrackd -C CONF FLAG` and what it does, in our words for the log."""

    flag: str
    what: str


COMMIT = CtCommand("-c", "commit the external cache into the kernel")
FLUSH = CtCommand("-f", "flush the caches")
RESYNC = CtCommand("-R", "resync the internal cache from the kernel")
BULK = CtCommand("-B", "send a bulk update to the peer")
STATS = CtCommand("-s", "check that conntrackd answers")
SHORTEN = CtCommand("-t", "shorten the kernel's conntrack timers")
REQUEST = CtCommand("-n", "request a resync from the peer")


class CtSyncFollower:
    """Follows one VRRP instance (`followed`) and the members of its sync group (`members`)."""

    def __init__(self, followed: str, members: frozenset[str]) -> None:
        self.followed = followed
        self.members = members | {followed}
        self.committed = False  # the external cache went into the kernel in this mastership
        self.role: StateWord | None = None

    def before_vips(self, instance: str) -> list[CtCommand]:
        """`instance` is about to add its VIPs (it is becoming MASTER): commit first, once per mastership."""
        if instance not in self.members or self.committed or self.role == "MASTER":
            return []
        self.committed = True
        return [COMMIT]

    def state(self, instance: str, word: StateWord) -> list[CtCommand]:
        """`instance` entered `word`; only the followed instance's transitions move conntrackd."""
        if instance != self.followed or word == self.role:
            return []
        self.role = word
        if word == "MASTER":
            first = [] if self.committed else [COMMIT]
            self.committed = True
            return [*first, FLUSH, RESYNC, BULK]
        self.committed = False
        if word == "BACKUP":
            return [STATS, SHORTEN, REQUEST]
        if word == "FAULT":
            return [SHORTEN]
        return []  # STOP: conntrackd keeps running in the parent; the peer holds our flows already
