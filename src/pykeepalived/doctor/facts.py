"""What `doctor` knows about a host, as plain data, and what it says about it (`Finding`).

The shell (`gather.py`, `route_probe.py`) fills these from the kernel; the
rules (`host_rules.py`, `firewall.py`, `peer.py`) read only these, so a unit
test builds a host by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import Any, Literal

Severity = Literal["ERROR", "WARNING", "INFO"]
SEVERITIES: tuple[Severity, ...] = ("ERROR", "WARNING", "INFO")
IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface


@dataclass(frozen=True)
class Finding:
    """One line of doctor's report: what is wrong and the fix. INFO lines are notes, not findings."""

    severity: Severity
    area: str
    message: str
    fix: str = ""
    where: tuple[str, ...] = ()  # FILE:LINE places it is about

    def line(self) -> str:
        text = f"{self.severity} {self.area}: {self.message}"
        return f"{text} -- fix: {self.fix}" if self.fix else text

    @property
    def counts(self) -> bool:
        """Errors and warnings make the exit status 1; notes do not."""
        return self.severity != "INFO"


@dataclass(frozen=True)
class Interface:
    """One interface of the namespace: its kind ("veth", "dummy", "loopback", ...), flags and addresses."""

    name: str
    kind: str = ""
    up: bool = True
    noarp: bool = False
    addresses: tuple[IPInterface, ...] = ()


@dataclass(frozen=True)
class ProcessFact:
    """A keepalived or pykeepalived daemon in this network namespace (doctor's own process is never one)."""

    pid: int
    argv: tuple[str, ...]
    program: Literal["keepalived", "pykeepalived"]
    config: str | None  # the -f file, made absolute; None: the default


@dataclass(frozen=True)
class NetworkManagerFact:
    """NetworkManager running in this namespace, and the devices it manages (None: it could not be asked)."""

    pid: int
    managed: frozenset[str] | None


@dataclass(frozen=True)
class DataPlaneFacts:
    """What the data plane needs: the choice (--dataplane / pykeepalived_dataplane) and what the host has."""

    wanted: str = "auto"  # auto | ipvs | nftables | none
    ipvs: bool = False
    nftables: bool = True  # the Python binding imports and the kernel takes a table
    nftables_problem: str | None = None
    unbuildable: tuple[str, ...] = ()  # FILE:LINE: reason, for each service nftables cannot build


@dataclass(frozen=True)
class HostFacts:
    """The host (this network namespace) as doctor saw it."""

    sysctls: Mapping[str, str] = field(default_factory=dict)  # "net.ipv4.conf.eth0.rp_filter" -> "1"
    interfaces: Mapping[str, Interface] = field(default_factory=dict)
    processes: tuple[ProcessFact, ...] = ()
    network_manager: NetworkManagerFact | None = None
    ruleset: Mapping[str, Any] | None = None  # `nft -j list ruleset`, None when it could not be read
    ruleset_problem: str | None = None
    dataplane: DataPlaneFacts = field(default_factory=DataPlaneFacts)

    def holds(self, address: IPAddress) -> bool:
        return any(a.ip == address for i in self.interfaces.values() for a in i.addresses)

    def device_of(self, address: IPAddress) -> str | None:
        for iface in self.interfaces.values():
            if any(a.ip == address for a in iface.addresses):
                return iface.name
        return None


@dataclass(frozen=True)
class ProbeTarget:
    """One route-back probe: connect to a NAT real server from `source`, on `device`, and see the answer come back.

    `control` is the router's own address on `device`: the same probe from it
    (answered on the LAN itself) tells a real server that is down from one
    whose replies go to another gateway.
    """

    real_server: IPAddress
    port: int
    device: str
    source: IPAddress
    control: IPAddress | None
    gateway_vip: IPAddress
    where: str  # the real server's FILE:LINE


ProbeOutcome = Literal["answered", "timeout", "unreachable", "error"]


@dataclass(frozen=True)
class ProbeResult:
    target: ProbeTarget
    outcome: ProbeOutcome
    control: ProbeOutcome | None = None
    detail: str = ""
