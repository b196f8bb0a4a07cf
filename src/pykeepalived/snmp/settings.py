"""Whether the SNMP subagent runs, which MIBs it serves, whether it sends traps, and where snmpd listens.

keepalived 2.2.7's rules: `-x` switches on the KEEPALIVED-MIB VRRP and
checker parts and both RFC MIBs; the global_defs keywords enable_snmp_vrrp
(old name enable_snmp_keepalived), enable_snmp_checker, enable_snmp_rfc
(= rfcv2 + rfcv3), enable_snmp_rfcv2 and enable_snmp_rfcv3 switch on one part
each and start the agent even without -x; traps go out only with
enable_traps. The master's socket is -A, else snmp_socket, else
/var/agentx/master (net-snmp's default). -x serves all four MIB parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.model import GlobalDefs
from ..errors import PyKeepalivedError

DEFAULT_SOCKET = "/var/agentx/master"


class SnmpSocketError(PyKeepalivedError):
    """An snmp_socket / -A value that is neither a unix socket path nor tcp:HOST:PORT."""


@dataclass(frozen=True)
class SnmpSettings:
    vrrp: bool = False  # KEEPALIVED-MIB's global and vrrp parts
    checker: bool = False  # KEEPALIVED-MIB's check part
    rfcv2: bool = False  # VRRP-MIB (RFC 2787)
    rfcv3: bool = False  # VRRPv3-MIB
    traps: bool = False
    socket: str = DEFAULT_SOCKET

    @property
    def enabled(self) -> bool:
        return self.vrrp or self.checker or self.rfcv2 or self.rfcv3


def snmp_settings(g: GlobalDefs, snmp_flag: bool = False, socket_flag: str | None = None) -> SnmpSettings:
    return SnmpSettings(
        vrrp=snmp_flag or g.enable_snmp_vrrp,
        checker=snmp_flag or g.enable_snmp_checker,
        rfcv2=snmp_flag or g.enable_snmp_rfcv2,
        rfcv3=snmp_flag or g.enable_snmp_rfcv3,
        traps=g.enable_traps,
        socket=socket_flag or g.snmp_socket or DEFAULT_SOCKET,
    )


def parse_socket(text: str) -> tuple[str, str | int]:
    """("unix", PATH) or ("tcp", HOST, PORT) packed as ("tcp:HOST", PORT): net-snmp's agentXSocket forms we speak."""
    if text.startswith("tcp:"):
        host, _, port = text[4:].rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SnmpSocketError(f"SNMP socket {text!r}: use tcp:HOST:PORT")
        return (f"tcp:{host.strip('[]')}", int(port))
    path = text[5:] if text.startswith("unix:") else text
    if not path.startswith("/"):
        raise SnmpSocketError(f"SNMP socket {text!r}: use an absolute unix socket path or tcp:HOST:PORT")
    return ("unix", path)
