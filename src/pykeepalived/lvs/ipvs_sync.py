"""Starting and stopping the kernel's IPVS connection-sync daemons (IPVS_CMD_NEW_DAEMON / DEL_DAEMON).

pyroute2 knows IPVS services and destinations but types the daemon
attribute as raw bytes, so this module declares that one nested attribute
on top of pyroute2's IPVS message and sends the two commands through its
generic netlink socket.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from ..config.model import KeepalivedConfig
from ..config.vocabulary import StateWord
from .model import DataPlaneError
from .sync_daemon import BACKUP, MASTER, STATE_CODES, SyncCommand, SyncDaemonSpec, spec_for

log = logging.getLogger("pykeepalived.lvs")
ESRCH, EEXIST = 3, 17
PROC_IPVS = Path("/proc/net/ip_vs")


def kernel_has_ipvs() -> bool:
    """True when IPVS is in the kernel (or its module loaded): /proc/net/ip_vs exists."""
    return PROC_IPVS.exists()


@functools.cache
def _message_class() -> Any:
    """One class for the life of the process: pyroute2 compiles a message's attribute map once per class."""
    from pyroute2.netlink import genlmsg, nla  # type: ignore[import-untyped]

    # Not a subclass of pyroute2's ipvsmsg: pyroute2 compiles an attribute map once and a subclass can
    # end up encoding with its parent's (raw bytes for the timeouts) once the parent has been used.
    class ipvsmsg_daemon(genlmsg):  # type: ignore[misc]  # noqa: N801 - pyroute2's naming
        prefix = "IPVS_CMD_ATTR_"
        nla_map = (
            ("IPVS_CMD_ATTR_UNSPEC", "none"),
            ("IPVS_CMD_ATTR_SERVICE", "hex"),
            ("IPVS_CMD_ATTR_DEST", "hex"),
            ("IPVS_CMD_ATTR_DAEMON", "daemon"),
            ("IPVS_CMD_ATTR_TIMEOUT_TCP", "uint32"),
            ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", "uint32"),
            ("IPVS_CMD_ATTR_TIMEOUT_UDP", "uint32"),
        )

        class daemon(nla):  # type: ignore[misc]  # noqa: N801
            prefix = "IPVS_DAEMON_ATTR_"
            nla_map = (
                ("IPVS_DAEMON_ATTR_UNSPEC", "none"),
                ("IPVS_DAEMON_ATTR_STATE", "uint32"),
                ("IPVS_DAEMON_ATTR_MCAST_IFN", "asciiz"),
                ("IPVS_DAEMON_ATTR_SYNC_ID", "uint32"),
                ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", "uint16"),
                ("IPVS_DAEMON_ATTR_MCAST_GROUP", "ip4addr"),
                ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "ip6addr"),
                ("IPVS_DAEMON_ATTR_MCAST_PORT", "uint16"),
                ("IPVS_DAEMON_ATTR_MCAST_TTL", "uint8"),
            )

    return ipvsmsg_daemon


def _u32(value: Any) -> int:
    """A u32 attribute as pyroute2 hands it back: a number, or (decoded with its stock IPVS message) hex bytes."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value:
        return int.from_bytes(bytes.fromhex(value.replace(":", "")), "little")
    return 0


class RawIpvs:
    """IPVS commands pyroute2's IPVS class lacks (sync daemons, flush, timeouts), on a socket of their own.

    Like every pyroute2 socket here it must be used from one worker thread,
    never from the daemon's event loop.
    """

    def __init__(self) -> None:
        self._sock: Any = None

    def request(self, cmd: int, attrs: list[tuple[str, Any]], *, dump: bool = False) -> list[Any]:
        from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST

        if self._sock is None:
            from pyroute2.netlink.generic import GenericNetlinkSocket  # type: ignore[import-untyped]

            sock = GenericNetlinkSocket()
            try:
                sock.bind("IPVS", _message_class())
            except Exception as exc:  # noqa: BLE001 - the family is missing without ip_vs
                sock.close()
                raise DataPlaneError(f"cannot reach IPVS over generic netlink: {exc} (is ip_vs loaded?)") from exc
            self._sock = sock
        msg = _message_class()()
        msg["cmd"] = cmd
        msg["version"] = 1
        msg["attrs"] = attrs
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        return list(self._sock.nlm_request(msg, msg_type=self._sock.prid, msg_flags=flags))

    def timeouts(self) -> tuple[int, int, int]:
        """IPVS's tcp, tcpfin and udp timeouts (seconds) now."""
        from pyroute2.netlink.generic import ipvs

        reply = self.request(ipvs.IPVS_CMD_GET_CONFIG, [])[0]
        return (_u32(reply.get_attr("IPVS_CMD_ATTR_TIMEOUT_TCP")),
                _u32(reply.get_attr("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN")),
                _u32(reply.get_attr("IPVS_CMD_ATTR_TIMEOUT_UDP")))

    def set_timeouts(self, tcp: int, tcpfin: int, udp: int) -> None:
        from pyroute2.netlink.generic import ipvs

        self.request(ipvs.IPVS_CMD_SET_CONFIG, [("IPVS_CMD_ATTR_TIMEOUT_TCP", tcp),
                                               ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", tcpfin),
                                               ("IPVS_CMD_ATTR_TIMEOUT_UDP", udp)])

    def flush(self) -> None:
        """Every IPVS service of this namespace, ours or not (lvs_flush asks for exactly that)."""
        from pyroute2.netlink.generic import ipvs

        self.request(ipvs.IPVS_CMD_FLUSH, [])

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def daemon_attrs(spec: SyncDaemonSpec, command: SyncCommand) -> list[tuple[str, Any]]:
    """The daemon attribute's fields: a start names everything set; a stop only the state and id."""
    attrs: list[tuple[str, Any]] = [("IPVS_DAEMON_ATTR_STATE", STATE_CODES[command.role])]
    if command.op == "stop":
        return attrs + [("IPVS_DAEMON_ATTR_SYNC_ID", spec.sync_id)]
    attrs += [("IPVS_DAEMON_ATTR_MCAST_IFN", spec.interface), ("IPVS_DAEMON_ATTR_SYNC_ID", spec.sync_id)]
    if spec.maxlen is not None:
        attrs.append(("IPVS_DAEMON_ATTR_SYNC_MAXLEN", spec.maxlen))
    if spec.group is not None:
        attrs.append(("IPVS_DAEMON_ATTR_MCAST_GROUP6" if ":" in spec.group else "IPVS_DAEMON_ATTR_MCAST_GROUP",
                      spec.group))
    if spec.port is not None:
        attrs.append(("IPVS_DAEMON_ATTR_MCAST_PORT", spec.port))
    if spec.ttl is not None:
        attrs.append(("IPVS_DAEMON_ATTR_MCAST_TTL", spec.ttl))
    return attrs


class SyncDaemonControl:
    """Sends sync-daemon commands to the kernel; a start that is already done or a stop of none is fine."""

    def __init__(self, spec: SyncDaemonSpec) -> None:
        self.spec = spec
        self.raw = RawIpvs()

    def send(self, command: SyncCommand) -> None:
        from pyroute2.netlink.generic import ipvs

        cmd = ipvs.IPVS_CMD_NEW_DAEMON if command.op == "start" else ipvs.IPVS_CMD_DEL_DAEMON
        try:
            self.raw.request(cmd, [("IPVS_CMD_ATTR_DAEMON", {"attrs": daemon_attrs(self.spec, command)})])
        except DataPlaneError:
            raise
        except Exception as exc:  # noqa: BLE001 - NetlinkError carries the errno
            code = getattr(exc, "code", None)
            if (command.op, code) in (("start", EEXIST), ("stop", ESRCH)):
                return
            raise DataPlaneError(f"cannot {command.op} the IPVS {command.role} sync daemon on "
                                 f"{self.spec.interface} (id {self.spec.sync_id}): {exc}") from exc
        log.info("IPVS %s sync daemon %s on %s, sync id %d", command.role,
                 "started" if command.op == "start" else "stopped", self.spec.interface, self.spec.sync_id)

    def close(self) -> None:
        self.raw.close()


class SyncDaemons:
    """lvs_sync_daemon in one process: the VRRP process follows its instance, the checker runs both.

    Failures are logged, never fatal: connection sync makes a failover
    smoother, but a router must keep routing without it. Without IPVS (the
    nftables data plane) there is nothing for IPVS to sync: connections live
    in conntrack, which the parent's conntrackd replicates (ctsync/); we say
    so once.
    """

    def __init__(self, spec: SyncDaemonSpec, *, follow: bool) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from .sync_daemon import SyncFollower

        self.spec = spec
        self.follower = SyncFollower() if follow else None
        self.control = SyncDaemonControl(spec)
        self._warned = False
        # One thread owns the netlink socket: pyroute2's sync API cannot run inside the daemon's event
        # loop, and one worker keeps the commands in order.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lvs-sync")

    @classmethod
    def for_vrrp(cls, config: KeepalivedConfig) -> SyncDaemons | None:
        spec = spec_for(config)
        if spec is None or spec.instance is None:
            return None
        if spec.instance not in config.vrrp_instances:
            log.error("lvs_sync_daemon names vrrp_instance %s, which does not exist; no connection sync",
                      spec.instance)
            return None
        return cls(spec, follow=True)

    @classmethod
    def for_checker(cls, config: KeepalivedConfig) -> SyncDaemons | None:
        spec = spec_for(config)
        return cls(spec, follow=False) if spec is not None and spec.instance is None else None

    def start(self) -> None:
        if self.follower is not None:
            self._send(self.follower.start())
        else:
            self._send([SyncCommand("stop", MASTER), SyncCommand("stop", BACKUP),
                        SyncCommand("start", MASTER), SyncCommand("start", BACKUP)])

    def state(self, instance: str, word: StateWord) -> None:
        if self.follower is not None and instance == self.spec.instance:
            self._send(self.follower.state(word))

    def stop(self) -> None:
        """Stop the daemons and wait for it (at most a few seconds): the process is about to exit."""
        if self.follower is not None:
            self._send(self.follower.stop())
        else:
            self._send([SyncCommand("stop", MASTER), SyncCommand("stop", BACKUP)])
        try:
            self._worker.submit(self.control.close).result(timeout=5)
        except Exception as exc:  # noqa: BLE001 - the kernel did not answer in time: exit anyway
            log.warning("lvs_sync_daemon: stopping did not finish: %s", exc)
        self._worker.shutdown(wait=False)

    def _send(self, commands: list[SyncCommand]) -> None:
        if not commands:
            return
        if not kernel_has_ipvs():
            if not self._warned:
                log.info("lvs_sync_daemon: this kernel has no IPVS, so there are no IPVS connections to sync; "
                         "on the nftables data plane conntrackd syncs the connections (docs/conntrack-sync.md)")
                self._warned = True
            return
        self._worker.submit(self._send_now, commands)

    def _send_now(self, commands: list[SyncCommand]) -> None:
        for command in commands:
            try:
                self.control.send(command)
            except DataPlaneError as exc:
                log.error("%s", exc)
