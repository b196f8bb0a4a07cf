"""Which IPVS connection-sync daemons should run, following a VRRP instance as keepalived does.

`lvs_sync_daemon IFACE [INSTANCE] [id N] ...` asks the kernel to multicast
IPVS connection state (master) or receive it (backup), so that a backup
router that takes over already knows the established connections. Pure:
`SyncFollower` takes state changes and returns the start/stop commands;
ipvs_sync.py sends them.

keepalived's rules (2.2.7): with an instance, the VRRP process runs one
daemon at a time: backup at start, master while the instance is MASTER
(stopping backup first), backup again when it leaves MASTER, nothing after
stop. Without an instance the checker process runs both from start to stop.
The sync id defaults to the instance's virtual_router_id (0 without one).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.model import KeepalivedConfig
from ..config.vocabulary import StateWord

MASTER, BACKUP = "master", "backup"
STATE_CODES = {MASTER: 1, BACKUP: 2}  # IP_VS_STATE_MASTER, IP_VS_STATE_BACKUP


@dataclass(frozen=True)
class SyncDaemonSpec:
    interface: str
    sync_id: int
    instance: str | None = None
    maxlen: int | None = None
    port: int | None = None
    ttl: int | None = None
    group: str | None = None


@dataclass(frozen=True)
class SyncCommand:
    op: str  # "start" or "stop"
    role: str  # MASTER or BACKUP


def spec_for(config: KeepalivedConfig) -> SyncDaemonSpec | None:
    """The configured sync daemon, from global_defs or a vrrp_instance's old lvs_sync_daemon_interface."""
    syncd = config.global_defs.lvs_sync_daemon
    if syncd is not None:
        inst = config.vrrp_instances.get(syncd.instance) if syncd.instance else None
        default_id = (inst.virtual_router_id or 0) if inst is not None else 0
        sync_id = syncd.sync_id if syncd.sync_id is not None else default_id
        return SyncDaemonSpec(syncd.interface, sync_id, syncd.instance, syncd.maxlen, syncd.port, syncd.ttl,
                              str(syncd.group) if syncd.group is not None else None)
    for name, inst in config.vrrp_instances.items():
        if inst.lvs_sync_daemon_interface:
            return SyncDaemonSpec(inst.lvs_sync_daemon_interface, inst.virtual_router_id or 0, name)
    return None


class SyncFollower:
    """The sync daemon one VRRP instance's state calls for."""

    def __init__(self) -> None:
        self.running: str | None = None

    def start(self) -> list[SyncCommand]:
        return self._become(BACKUP)

    def state(self, word: StateWord) -> list[SyncCommand]:
        """After the instance entered MASTER, BACKUP or FAULT (STOP is `stop`)."""
        if word == "MASTER":
            return self._become(MASTER)
        if (word == "BACKUP" or word == "FAULT") and self.running != BACKUP:
            return self._become(BACKUP)
        return []

    def stop(self) -> list[SyncCommand]:
        return self._become(None)

    def _become(self, role: str | None) -> list[SyncCommand]:
        if role == self.running:
            return []
        out = [SyncCommand("stop", self.running)] if self.running else []
        if role is not None:
            out.append(SyncCommand("start", role))
        self.running = role
        return out
