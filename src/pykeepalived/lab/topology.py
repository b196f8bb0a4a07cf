"""Hosts on one Ethernet segment: namespaces joined by a bridge.

The switch lives in its own namespace so that nothing of the lab touches the
machine's own network stack, and so that interface names only have to be
unique inside each namespace: every host's interface is simply `eth0`, and
the switch ports are named after the host's role.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from types import TracebackType
from typing import Any

from pykeepalived.lab.netns import LabError, Netns

IFNAMSIZ = 15  # longest interface name Linux accepts
Address = IPv4Address | IPv6Address


def unique_prefix(tag: str) -> str:
    """A short name prefix unique to this run, e.g. "ka-3f9c1a".

    Namespace names are not length-limited, but they end up in file names,
    logs and the `ip netns list` of whoever has to clean up a crashed run, so
    they stay short; the random part keeps parallel runs (xdist, two CI jobs
    on one machine) from colliding.
    """
    clean = "".join(ch for ch in tag if ch.isalnum() or ch in "-_")[:8] or "lab"
    return f"{clean}-{secrets.token_hex(3)}"


def _parse_addresses(entries: list[dict[str, Any]]) -> set[Address]:
    found: set[Address] = set()
    for link in entries:
        for info in link.get("addr_info", []):
            local = info.get("local")
            if local:
                found.add(ipaddress.ip_address(local))
    return found


@dataclass
class Host:
    """A namespace with one interface on the lab segment."""

    name: str
    netns: Netns
    ifname: str
    ipv4: IPv4Interface
    ipv6: IPv6Interface
    port: str = field(default="", repr=False)  # the switch-side veth, for cut()/heal()

    def addresses(self, ifname: str | None = None) -> set[IPv4Address | IPv6Address]:
        """Every address on the interface right now (what `ip -j addr show dev` lists)."""
        return _parse_addresses(self.netns.ip_json("addr", "show", "dev", ifname or self.ifname))

    def all_addresses(self) -> set[IPv4Address | IPv6Address]:
        """Every address on every interface of the host (FRR keeps VIPs on macvlans)."""
        return _parse_addresses(self.netns.ip_json("addr", "show"))

    def link_local(self) -> IPv6Address:
        """The fe80:: address of the lab interface (VRRPv3 over IPv6 is sent from it)."""
        for addr in self.addresses():
            if isinstance(addr, IPv6Address) and addr.is_link_local:
                return addr
        raise LabError(f"{self.name}: no IPv6 link-local address on {self.ifname}")

    def mac(self) -> str:
        """The lab interface's MAC address, lower case."""
        links = self.netns.ip_json("link", "show", "dev", self.ifname)
        if not links or "address" not in links[0]:
            raise LabError(f"{self.name}: cannot read the MAC address of {self.ifname}")
        return str(links[0]["address"]).lower()

    def ping(self, target: IPv4Address | IPv6Address | str, *, count: int = 1, wait_s: float = 1.0) -> bool:
        """One ping (or `count`) from this host; True if a reply came back."""
        proc = self.netns.run(
            ["ping", "-n", "-q", "-c", str(count), "-W", f"{wait_s:g}", str(target)],
            check=False,
            timeout_s=count * wait_s + 5.0,
        )
        return proc.returncode == 0


class Lan:
    """A bridge in its own namespace ({prefix}-sw, bridge br0) and hosts attached by veth pairs (host side named eth0).

    Hosts get IPv6 with duplicate address detection off (both `nodad` on the
    global address and `accept_dad=0` so link-local is usable at once): VRRPv3
    over IPv6 sends from the link-local address, and a tentative one would
    only add a second of startup noise to every test.
    """

    def __init__(self, prefix: str, *, ipv4_net: str = "192.0.2.0/24", ipv6_net: str = "2001:db8::/64") -> None:
        if len(prefix) > 40:
            raise LabError(f"prefix {prefix!r} too long")
        self.prefix = prefix
        self.ipv4_net = ipaddress.IPv4Network(ipv4_net)
        self.ipv6_net = ipaddress.IPv6Network(ipv6_net)
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[Netns] = []
        self.switch = Netns(f"{prefix}-sw")
        self._closed = False
        try:
            self._make(self.switch)
            sw = self.switch
            # The switch is L2 only: no IPv6 of its own (no MLD/RS noise on the segment).
            sw.sysctl("net.ipv6.conf.all.disable_ipv6", "1")
            sw.sysctl("net.ipv6.conf.default.disable_ipv6", "1")
            # No STP (ports forward at once), no multicast snooping (VRRP multicast is
            # flooded whether or not anyone sent an MLD/IGMP report).
            sw.ip(
                "link", "add", "br0", "type", "bridge",
                "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0",
            )  # fmt: skip
            sw.ip("link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def _make(self, ns: Netns) -> Netns:
        ns.create()  # raises if the name is taken: never adopt (and later delete) a stranger's
        self._namespaces.append(ns)
        return ns

    def add_host(self, role: str, host_number: int) -> Host:
        """A new namespace `{prefix}-{role}` whose eth0 is plugged into the switch.

        Addresses are `.host_number` in the IPv4 net and `::host_number` in the IPv6
        net, written with the same digits (host 11: 192.0.2.11 and 2001:db8::11).
        """
        if self._closed:
            raise LabError("Lan is closed")
        if role in self.hosts:
            raise LabError(f"host {role!r} already exists")
        port = f"p-{role}"
        if len(port) > IFNAMSIZ or not role.replace("-", "").replace("_", "").isalnum():
            raise LabError(f"role {role!r} must be alphanumeric and at most {IFNAMSIZ - 2} characters")
        if host_number < 1:
            raise LabError(f"host number must be positive, not {host_number}")
        try:
            ipv4 = IPv4Interface(f"{self.ipv4_net.network_address + host_number}/{self.ipv4_net.prefixlen}")
            # ::11 for .11: the decimal digits read as hex, so both addresses look alike.
            v6_host = int(str(host_number), 16)
            ipv6 = IPv6Interface(f"{self.ipv6_net.network_address + v6_host}/{self.ipv6_net.prefixlen}")
        except (ValueError, ipaddress.AddressValueError) as exc:
            raise LabError(f"host number {host_number} does not fit the lab networks: {exc}") from exc
        if ipv4.ip not in self.ipv4_net or ipv6.ip not in self.ipv6_net:
            raise LabError(f"host number {host_number} does not fit {self.ipv4_net} / {self.ipv6_net}")

        ns = self._make(Netns(f"{self.prefix}-{role}"))
        # Before the interface exists, so that its link-local address is never tentative.
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0")
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0")
        # FRR's zebra sends router advertisements for an IPv6 VRRP master; hosts must not
        # pick up SLAAC addresses and default routes from them mid-test.
        ns.sysctl("net.ipv6.conf.all.accept_ra", "0")
        ns.sysctl("net.ipv6.conf.default.accept_ra", "0")
        return self._plug(ns, role, "eth0", port, ipv4, ipv6)

    def _plug(self, ns: Netns, role: str, ifname: str, port: str, ipv4: IPv4Interface,
              ipv6: IPv6Interface) -> Host:
        # Create the pair inside the switch namespace with the host end moved straight
        # into the host: the machine's own namespace never sees either name.
        self.switch.ip("link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns.name)
        self.switch.ip("link", "set", port, "master", "br0")
        self.switch.ip("link", "set", port, "up")
        ns.ip("addr", "add", str(ipv4), "dev", ifname)
        ns.ip("addr", "add", str(ipv6), "dev", ifname, "nodad")
        ns.ip("link", "set", ifname, "up")
        host = Host(name=role, netns=ns, ifname=ifname, ipv4=ipv4, ipv6=ipv6, port=port)
        self.hosts[role] = host
        return host

    def attach(self, other: Host, ifname: str, host_number: int) -> Host:
        """Give a host of another Lan a second interface on this one (a router on two networks).

        Returns a Host for that interface (same namespace); cut/heal/set_link on this
        Lan take it.
        """
        if self._closed:
            raise LabError("Lan is closed")
        if other.name in self.hosts:
            raise LabError(f"host {other.name!r} already on {self!r}")
        ipv4 = IPv4Interface(f"{self.ipv4_net.network_address + host_number}/{self.ipv4_net.prefixlen}")
        ipv6 = IPv6Interface(f"{self.ipv6_net.network_address + int(str(host_number), 16)}/"
                             f"{self.ipv6_net.prefixlen}")
        return self._plug(other.netns, other.name, ifname, f"p-{other.name}", ipv4, ipv6)

    def _host_port(self, host: Host) -> str:
        if self.hosts.get(host.name) is not host:
            raise LabError(f"host {host.name} is not on this Lan")
        return host.port

    def cut(self, host: Host) -> None:
        """Unplug the host from the switch while its own eth0 keeps carrier.

        The switch port is taken out of the bridge rather than set down: a veth
        whose peer is down loses carrier, which VRRP daemons see as a link
        failure (FAULT). Detaching keeps both ends up, so the host simply stops
        hearing the segment - a partition, the case that causes split brain.
        """
        self.switch.ip("link", "set", self._host_port(host), "nomaster")

    def heal(self, host: Host) -> None:
        """Plug the host back into the switch (undo `cut`)."""
        port = self._host_port(host)
        self.switch.ip("link", "set", port, "master", "br0")
        self.switch.ip("link", "set", port, "up")

    def set_link(self, host: Host, up: bool) -> None:
        """Set the host's own eth0 down or up: a local link failure (VRRP goes to FAULT)."""
        self._host_port(host)
        host.netns.ip("link", "set", host.ifname, "up" if up else "down")

    def close(self) -> None:
        """Delete every namespace this Lan made (killing what runs inside); safe to call twice.

        Hosts go first, then the switch; every deletion is attempted even if an
        earlier one fails, and the first failure is raised at the end.
        """
        self._closed = True
        first: LabError | None = None
        for ns in reversed(self._namespaces):
            try:
                ns.delete()
            except LabError as exc:
                first = first or exc
        self._namespaces = [ns for ns in self._namespaces if ns.exists()]
        if first is not None:
            raise first

    def __enter__(self) -> Lan:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Lan({self.prefix!r}, hosts={sorted(self.hosts)})"
