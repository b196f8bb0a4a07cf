"""Whether conntrackd runs and with what: `lvs_sync_daemon` and our keywords read into one `CtSyncSpec` (pure).

The parent (which runs conntrackd) and the VRRP process (which sends it
commands) both call `spec_for` on the same configuration and flags, so they
agree on the paths without talking to each other: everything conntrackd
keeps (config, lock file, control socket) lives in a directory named after
the parent's pid file, unique per daemon and per network namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_network, summarize_address_range

from ..config.model import KeepalivedConfig, VirtualServer
from ..config.vocabulary import DataPlaneChoice

DEFAULT_GROUP = IPv4Address("225.0.0.50")  # conntrackd's documented multicast group
DEFAULT_PORT = 3780  # its documented "Group" (the UDP port)
DEFAULT_BINARY = "conntrackd"  # looked up in PATH (Debian: /usr/sbin/conntrackd)
UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with the final NUL
SHORT_SOCKET_DIR = "/run/pykeepalived"  # where the control socket goes when the run dir's path is too long


@dataclass(frozen=True)
class CtSyncPaths:
    """Files of one daemon's conntrackd: all beside the parent's pid file, never a system conntrackd's."""

    directory: str
    config: str
    lock: str
    socket: str
    log: str


@dataclass(frozen=True)
class CtSyncSpec:
    """What conntrackd gets: the sync link, the addresses whose flows are synced, the VRRP side it follows."""

    binary: str
    interface: str
    instance: str | None
    members: frozenset[str]  # the instance and the rest of its sync group: the first to add VIPs commits
    group: IPv4Address
    port: int
    peer: IPv4Address | None
    addresses: tuple[str, ...]  # VIPs and real servers, addresses or CIDR networks (see filter_addresses)
    guarded: tuple[str, ...]  # the NAT services' VIPs and real servers (see nat_addresses)
    tcp: bool
    udp: bool
    sctp: bool
    paths: CtSyncPaths


def paths_for(pid_file: str, digest: str) -> CtSyncPaths:
    """`<pid dir>/<stem>.conntrackd/`; `digest` (a hash of that directory) names a short socket when needed."""
    pid_file = pid_file if pid_file.startswith("/") else "/" + pid_file
    head, _, name = pid_file.rpartition("/")
    stem = name[:-4] if name.endswith(".pid") else name
    directory = f"{head}/{stem}.conntrackd"
    socket = f"{directory}/ctl"
    if len(socket) > UNIX_PATH_MAX:
        socket = f"{SHORT_SOCKET_DIR}/conntrackd-{digest[:16]}.ctl"
    return CtSyncPaths(directory, f"{directory}/conntrackd.conf", f"{directory}/lock", socket,
                       f"{directory}/conntrackd.log")


def wanted(config: KeepalivedConfig, dataplane: DataPlaneChoice, ipvs_present: bool) -> str | None:
    """Why conntrackd does not run, or None when it should: lvs_sync_daemon on the nftables data plane."""
    g = config.global_defs
    if g.lvs_sync_daemon is None:
        return "no lvs_sync_daemon"
    if g.pykeepalived_conntrackd == "off":
        return "pykeepalived_conntrackd off"
    if dataplane == "ipvs" or dataplane == "none" or (dataplane == "auto" and ipvs_present):
        return f"the data plane is {'IPVS' if dataplane != 'none' else 'none'} (the kernel's IPVS sync daemon syncs)"
    if not config.virtual_servers:
        return "no virtual_server: no NAT state to sync"
    return None


def spec_for(config: KeepalivedConfig, pid_file: str, digest: str) -> CtSyncSpec:
    """The spec for a config `wanted` accepted (lvs_sync_daemon set)."""
    g = config.global_defs
    syncd = g.lvs_sync_daemon
    assert syncd is not None
    instance = syncd.instance if syncd.instance in config.vrrp_instances else None
    members = {instance} if instance else set()
    for group in config.sync_groups.values():
        names = {ref.name for ref in group.members}
        if instance is not None and instance in names:
            members.update(names)
    protocols = {vs.protocol or "TCP" for vs in config.virtual_servers}
    group_addr = syncd.group if isinstance(syncd.group, IPv4Address) else DEFAULT_GROUP
    return CtSyncSpec(
        binary=DEFAULT_BINARY if g.pykeepalived_conntrackd == "auto" else g.pykeepalived_conntrackd,
        interface=syncd.interface, instance=instance, members=frozenset(members), group=group_addr,
        port=syncd.port or DEFAULT_PORT,
        peer=g.pykeepalived_conntrackd_peer if isinstance(g.pykeepalived_conntrackd_peer, IPv4Address) else None,
        addresses=filter_addresses(config), guarded=nat_addresses(config),
        tcp="TCP" in protocols or any(vs.fwmark for vs in config.virtual_servers),
        udp="UDP" in protocols, sctp="SCTP" in protocols, paths=paths_for(pid_file, digest))


Net = IPv4Network | IPv6Network


def _vips(config: KeepalivedConfig, vs: VirtualServer) -> set[Net]:
    """A virtual server's addresses as networks: its address, its group's addresses, ranges and networks, and
    for fwmark services (whose VIPs the firewall marks) every VRRP VIP."""
    found: set[Net] = set()
    fwmark = vs.fwmark is not None
    if vs.address is not None:
        found.add(ip_network(vs.address))
    if vs.group is not None and vs.group in config.virtual_server_groups:
        for entry in config.virtual_server_groups[vs.group].entries:
            if entry.fwmark is not None:
                fwmark = True
            elif entry.address is not None and entry.prefix_len is not None:
                found.add(ip_network(f"{entry.address}/{entry.prefix_len}", strict=False))
            elif entry.address is not None and entry.last_address is not None:
                if type(entry.last_address) is type(entry.address):
                    found.update(summarize_address_range(entry.address, entry.last_address))
            elif entry.address is not None:
                found.add(ip_network(entry.address))
    if fwmark:
        for inst in config.vrrp_instances.values():
            for spec in inst.virtual_ipaddresses:
                found.add(ip_network(spec.address.ip))
    return found


def _words(nets: set[Net]) -> tuple[str, ...]:
    """Sorted, IPv4 first, single addresses written without /32 or /128."""
    ordered = sorted(nets, key=lambda n: (n.version, n.prefixlen != n.max_prefixlen, int(n.network_address),
                                          n.prefixlen))
    return tuple(str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in ordered)


def filter_addresses(config: KeepalivedConfig) -> tuple[str, ...]:
    """The addresses conntrackd's Address Accept filter keeps, sorted and unique.

    conntrackd matches a flow when its original source or its reply source
    is in the list. A client's flow to a DR/TUN VIP has the VIP as reply
    source; after NAT's DNAT the reply source is the real server. So the
    list is the virtual servers' addresses (a group's ranges and networks as
    CIDR; for fwmark services every VRRP VIP), their real servers and sorry
    servers.
    """
    found: set[Net] = set()
    for vs in config.virtual_servers:
        found |= _vips(config, vs)
        found.update(ip_network(rs.address) for rs in vs.real_servers)
        if vs.sorry_server is not None:
            found.add(ip_network(vs.sorry_server.address))
    return _words(found)


def nat_addresses(config: KeepalivedConfig) -> tuple[str, ...]:
    """What the guard (guard.py) protects: NAT services' VIPs and NAT real servers, never a DR/TUN VIP.

    DR and TUN forward without conntrack (a director sees one direction, which
    conntrack calls invalid), so dropping invalid packets to their VIPs would
    drop their traffic; a VIP that also has a DR/TUN service is left out.
    """
    nat: set[Net] = set()
    direct: set[Net] = set()
    servers: set[Net] = set()
    for vs in config.virtual_servers:
        methods = {rs.lvs_method or vs.lvs_method or "NAT" for rs in vs.real_servers} or {vs.lvs_method or "NAT"}
        vips = _vips(config, vs)
        for method in methods:
            (nat if method == "NAT" else direct).update(vips)
        servers.update(ip_network(rs.address) for rs in vs.real_servers if (rs.lvs_method or vs.lvs_method or "NAT")
                       == "NAT")
        if vs.sorry_server is not None and (vs.sorry_server_lvs_method or vs.lvs_method or "NAT") == "NAT":
            servers.add(ip_network(vs.sorry_server.address))
    return _words({n for n in nat if not any(n.overlaps(d) for d in direct)} | servers)
