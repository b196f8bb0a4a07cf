"""The host checks of `doctor`: the Red Hat guide's router and real-server set-up, as rules over `HostFacts`.

Each rule reads the parsed config and the facts the shell gathered and
returns findings, one line each with its fix. Nothing here does I/O: the
route-back probe is planned here (`probe_targets`), run by the shell
(`route_probe.py`) and judged here again (`probe_findings`).
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address

from ..config.errors import Diagnostic, Severity as DiagSeverity
from ..config.model import KeepalivedConfig, VirtualServer
from ..lvs.plan import service_name
from .config_view import config_vips, family, method, nat_services, vrrp_devices, where
from .facts import Finding, HostFacts, IPAddress, IPInterface, ProbeResult, ProbeTarget
from .firewall import firewall_findings

GUIDE = "the RHEL load balancer guide"


# ------------------------------------------------------------------ the config's own verdict


def config_findings(diagnostics: Iterable[Diagnostic], config_file: str) -> list[Finding]:
    """`-t`'s errors and warnings, first: a config the daemon refuses makes every other check moot."""
    out = []
    for diag in diagnostics:
        error = diag.severity is DiagSeverity.ERROR
        where = (str(diag.location),) if diag.location else ()
        out.append(Finding("ERROR" if error else "WARNING", "config", diag.format(),
                           f"correct it; `pykeepalived -t -f {config_file}` must be clean" if error
                           else "see docs/configuration.md for this keyword", where))
    return out


# ------------------------------------------------------------------ sysctls


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def forwarding_findings(config: KeepalivedConfig, facts: HostFacts) -> list[Finding]:
    """NAT rewrites and forwards every packet both ways: the router must forward (guide 3.7)."""
    out = []
    services = nat_services(config)
    for version, key in ((4, "net.ipv4.ip_forward"), (6, "net.ipv6.conf.all.forwarding")):
        wanting = [vs for vs in services if family(vs) == version]
        if wanting and facts.sysctls.get(key) == "0":
            vs = wanting[0]
            out.append(Finding(
                "ERROR", "forwarding",
                f"{key} is 0 but virtual server {service_name(vs)} ({where(vs.location)}) forwards by NAT: "
                "no client request reaches a real server",
                f"sysctl -w {key}=1 and put `{key} = 1` in /etc/sysctl.d/", (where(vs.location),)))
    return out


def rp_filter_findings(config: KeepalivedConfig, facts: HostFacts) -> list[Finding]:
    """Strict reverse-path filtering (1) on a VIP interface drops what arrives on the 'wrong' side of the router.

    The kernel uses the larger of conf/all and conf/IFACE, so `all` = 1 makes
    every interface strict. In a pair, adverts, ARP-learned VIP traffic and
    replies of the real servers come in on interfaces that are not always
    the route back to their source.
    """
    out = []
    all_value = _int(facts.sysctls.get("net.ipv4.conf.all.rp_filter"))
    for device, location in sorted(vrrp_devices(config).items()):
        if device not in facts.interfaces:
            continue
        own = _int(facts.sysctls.get(f"net.ipv4.conf.{device}.rp_filter"))
        effective = max(v for v in (all_value, own, 0) if v is not None)
        if effective != 1:
            continue
        strict = [name for name, v in (("all", all_value), (device, own)) if v == 1]
        fix = " and ".join(f"sysctl -w net.ipv4.conf.{name}.rp_filter=2" for name in strict)
        out.append(Finding(
            "WARNING", "rp_filter",
            f"strict reverse-path filtering on {device} (used at {where(location)}): "
            f"net.ipv4.conf.all.rp_filter={all_value}, net.ipv4.conf.{device}.rp_filter={own}; packets that "
            "arrive where the route back does not lead (VRRP adverts, VIP traffic after a takeover) are dropped",
            f"{fix} (2 = loose; the kernel uses the larger of all and {device}), and in /etc/sysctl.d/",
            (where(location),)))
    return out


# ------------------------------------------------------------------ processes, NetworkManager


def process_findings(facts: HostFacts, config_path: str) -> list[Finding]:
    """Another VRRP speaker on the host fights ours for the VIPs and the table."""
    out = []
    for proc in facts.processes:
        command = " ".join(proc.argv)[:120]
        if proc.program == "pykeepalived" and proc.config == config_path:
            out.append(Finding("INFO", "processes", f"pykeepalived already runs with {config_path} (pid {proc.pid})"))
            continue
        out.append(Finding(
            "WARNING", "processes",
            f"another {proc.program} runs in this network namespace (pid {proc.pid}: {command}); two daemons "
            "here send adverts for each other's VRIDs and rewrite each other's VIPs and table",
            f"stop it (systemctl disable --now {proc.program}) before starting pykeepalived with {config_path}"))
    return out


def network_manager_findings(config: KeepalivedConfig, facts: HostFacts) -> list[Finding]:
    """The guide: NetworkManager is not compatible with the load balancer (it removes addresses it did not add)."""
    nm = facts.network_manager
    if nm is None:
        return []
    out = []
    for device, location in sorted(vrrp_devices(config).items()):
        if nm.managed is not None and device not in nm.managed:
            continue
        how = "manages" if nm.managed is not None else "runs here (pid %d) and may manage" % nm.pid
        out.append(Finding(
            "WARNING", "NetworkManager",
            f"NetworkManager {how} {device}, which carries VIPs ({where(location)}); {GUIDE} says it is not "
            "compatible with the load balancer (IPv6 VIPs fail with SLAAC; a reconnect can drop the VIPs)",
            f"nmcli device set {device} managed no (and `unmanaged-devices=interface-name:{device}` in "
            "/etc/NetworkManager/conf.d/), or configure the interface with the network service",
            (where(location),)))
    return out


# ------------------------------------------------------------------ the data plane


def dataplane_findings(config: KeepalivedConfig, facts: HostFacts) -> list[Finding]:
    """Can the wanted data plane be had here, and can it build every virtual server?"""
    if not config.virtual_servers:
        return []
    dp = facts.dataplane
    if dp.wanted == "none":
        return [Finding("INFO", "dataplane", "data plane `none`: the checkers keep the table, nothing forwards")]
    if dp.wanted == "ipvs" and not dp.ipvs:
        return [Finding("ERROR", "dataplane", "the IPVS data plane is asked for but this kernel has no IPVS "
                        "(/proc/net/ip_vs missing, no ip_vs module)",
                        "modprobe ip_vs (install the kernel's modules package), or use --dataplane nftables")]
    if dp.wanted == "ipvs" or (dp.wanted == "auto" and dp.ipvs):
        return [Finding("INFO", "dataplane", "IPVS will carry the virtual servers")]
    if not dp.nftables:
        return [Finding("ERROR", "dataplane",
                        f"no data plane: no IPVS and nftables is not usable ({dp.nftables_problem or 'unknown'})",
                        "install python3-nftables (and nftables), or load ip_vs")]
    out = [Finding("INFO", "dataplane", "nftables will carry the virtual servers (no IPVS here)")]
    for problem in dp.unbuildable:
        where, _, reason = problem.partition(": ")
        out.append(Finding("WARNING", "dataplane", f"{problem}: the nftables data plane leaves it out",
                           "use a kernel with IPVS for this service, or change it (docs/dataplane.md)",
                           (where,) if reason else ()))
    return out


# ------------------------------------------------------------------ NAT: the way back through the router


def _connected(facts: HostFacts, address: IPAddress) -> tuple[str, IPInterface] | None:
    """The interface (and its own address) whose network holds `address`; none for a routed address."""
    best: tuple[str, IPInterface] | None = None
    for iface in facts.interfaces.values():
        if iface.kind == "loopback":
            continue
        for own in iface.addresses:
            if own.version == address.version and address in own.network and own.network.prefixlen < own.max_prefixlen:
                if best is None or own.network.prefixlen > best[1].network.prefixlen:
                    best = (iface.name, own)
    return best


def _probe_port(vs: VirtualServer, rs_port: int | None, checkers: Iterable[int | None]) -> int | None:
    if rs_port:
        return rs_port
    for port in checkers:
        if port:
            return port
    return vs.port or None


def probe_targets(config: KeepalivedConfig, facts: HostFacts) -> tuple[list[ProbeTarget], list[Finding]]:
    """The route-back probes to run (one per NAT real server address and port), and what stops the others.

    Guide 3.1.2: a NAT real server's default gateway must be the router's
    floating VIP on the private network. The probe connects to the real
    server from a public-side address of this router, bound to the private
    interface: only if the server's reply comes back to that interface does
    the connection answer. It tells something only on the router that holds
    the private VIP now (the master); elsewhere it is skipped with a note.
    """
    targets: list[ProbeTarget] = []
    notes: list[Finding] = []
    vips = config_vips(config)
    seen: set[tuple[IPAddress, int]] = set()
    unplaced: set[IPAddress] = set()
    unplaced_devices: set[str] = set()
    for vs in nat_services(config):
        for rs in vs.real_servers:
            if method(vs, rs.lvs_method) != "NAT" or rs.address.version != 4:
                continue
            place = where(rs.location)
            port = _probe_port(vs, rs.port, (c.connect_port for c in rs.checkers))
            link = _connected(facts, rs.address)
            if link is None and rs.address in unplaced:
                continue
            if link is None:
                unplaced.add(rs.address)
                notes.append(Finding(
                    "WARNING", "nat-route", f"real server {rs.address} ({place}) is on no network of this router: "
                    "NAT needs it on the private LAN, its default gateway the router's VIP there",
                    "put the real server on a network the routers have an interface on", (place,)))
                continue
            device, own = link
            gateway = next((v for v in vips if v.device == device and v.address.version == 4), None)
            if gateway is None and device in unplaced_devices:
                continue
            if gateway is None:
                unplaced_devices.add(device)
                notes.append(Finding(
                    "ERROR", "nat-route",
                    f"no floating VIP on {device}, the interface that reaches real server {rs.address} ({place}): "
                    f"its replies must go back through a VIP that moves with the public one ({GUIDE}, 3.1.2)",
                    f"add a virtual_ipaddress on {device} (e.g. in an instance in the public one's "
                    "vrrp_sync_group) and make it the real servers' default gateway", (place,)))
                continue
            if port is None or (rs.address, port) in seen:
                continue
            seen.add((rs.address, port))
            gw = IPv4Address(int(gateway.address.ip))
            source = _probe_source(config, facts, device, vs)
            if not facts.holds(gw) or source is None:
                notes.append(Finding(
                    "INFO", "nat-route", f"real server {rs.address}:{port} not probed: this router does not hold "
                    f"{'the private VIP ' + str(gw) if not facts.holds(gw) else 'a public address'} now "
                    "(run doctor on the master)"))
                continue
            targets.append(ProbeTarget(rs.address, port, device, source, own.ip, gw, place))
    return targets, notes


def _probe_source(config: KeepalivedConfig, facts: HostFacts, device: str, vs: VirtualServer) -> IPAddress | None:
    """A public-side address of this router: the service's VIP if held, else a held VIP or own address elsewhere."""
    if vs.address is not None and vs.address.version == 4 and facts.holds(vs.address) and \
            facts.device_of(vs.address) != device:
        return vs.address
    for vip in config_vips(config):
        if vip.device != device and vip.address.version == 4 and facts.holds(vip.address.ip):
            return vip.address.ip
    for iface in facts.interfaces.values():
        if iface.name == device or iface.kind == "loopback":
            continue
        for own in iface.addresses:
            if own.version == 4 and not own.ip.is_link_local:
                return own.ip
    return None


def probe_findings(results: Iterable[ProbeResult]) -> list[Finding]:
    out = []
    for r in results:
        t = r.target
        name = f"real server {t.real_server}:{t.port} ({t.where})"
        if r.outcome == "answered":
            continue
        if r.outcome == "unreachable":
            out.append(Finding("ERROR", "nat-route", f"{name} is unreachable on {t.device}: {r.detail or 'no ARP'}",
                               f"check that it is up and on the network of {t.device}", (t.where,)))
        elif r.outcome == "timeout" and r.control == "answered":
            out.append(Finding(
                "ERROR", "nat-route",
                f"{name} answers on its LAN but its reply to {t.source} did not come back on {t.device}: its "
                f"default gateway is not this router's floating VIP {t.gateway_vip} ({GUIDE}, 3.1.2)",
                f"on the real server: ip route replace default via {t.gateway_vip} (and in its network config, "
                "on the interface that comes up first)", (t.where,)))
        elif r.outcome == "timeout":
            out.append(Finding(
                "WARNING", "nat-route", f"{name} did not answer on {t.device}, not even from {t.control} on its "
                "own LAN: the route back cannot be told", "start the service, or let the router reach its port",
                (t.where,)))
        else:
            out.append(Finding("WARNING", "nat-route", f"{name}: the probe failed: {r.detail}",
                               "run doctor as root in the router's network namespace", (t.where,)))
    return out


# ------------------------------------------------------------------ a DR real server


def real_server_vips(facts: HostFacts) -> list[tuple[str, IPInterface]]:
    """Addresses a DR real server holds without announcing them: on lo (not 127/8, ::1), dummy or tunnel devices."""
    out = []
    for iface in facts.interfaces.values():
        if iface.kind not in ("loopback", "dummy", "ipip", "tun", "gre", "sit") and not iface.name.startswith("tunl"):
            continue
        for a in iface.addresses:
            if not (a.ip.is_loopback or a.ip.is_link_local):
                out.append((iface.name, a))
    return out


def real_server_findings(facts: HostFacts) -> list[Finding]:
    """A DR real server holds the VIP and must neither answer ARP for it nor announce it (guide 3.2.4)."""
    vips = real_server_vips(facts)
    if not vips:
        return [Finding("ERROR", "real-server", "no VIP on lo or a dummy/tunnel device: a DR real server must hold "
                        "the VIP to accept the packets the router sends it",
                        "ip addr add VIP/32 dev lo (and in the network config)")]
    out = []
    all_ignore = _int(facts.sysctls.get("net.ipv4.conf.all.arp_ignore"))
    all_announce = _int(facts.sysctls.get("net.ipv4.conf.all.arp_announce"))
    held = ", ".join(f"{a.ip} on {dev}" for dev, a in vips)
    for iface in sorted(facts.interfaces.values(), key=lambda i: i.name):
        if iface.kind in ("loopback", "dummy") or iface.noarp or not iface.up or \
                not any(a.version == 4 for a in iface.addresses):
            continue
        ignore = max(v for v in (all_ignore, _int(facts.sysctls.get(f"net.ipv4.conf.{iface.name}.arp_ignore")), 0)
                     if v is not None)
        announce = max(v for v in (all_announce,
                                   _int(facts.sysctls.get(f"net.ipv4.conf.{iface.name}.arp_announce")), 0)
                       if v is not None)
        if ignore < 1:
            out.append(Finding(
                "ERROR", "real-server", f"{iface.name} answers ARP for the VIPs ({held}): arp_ignore is {ignore}; "
                "clients' ARP then finds this server instead of the router",
                f"sysctl -w net.ipv4.conf.{iface.name}.arp_ignore=1 (and net.ipv4.conf.all.arp_ignore=1), "
                "in /etc/sysctl.d/ too"))
        if announce < 2:
            out.append(Finding(
                "ERROR", "real-server", f"{iface.name} may announce the VIPs ({held}) as ARP source: arp_announce "
                f"is {announce}", f"sysctl -w net.ipv4.conf.{iface.name}.arp_announce=2 "
                "(and net.ipv4.conf.all.arp_announce=2), in /etc/sysctl.d/ too"))
    return out


def host_findings(config: KeepalivedConfig, facts: HostFacts, config_path: str) -> list[Finding]:
    """Every rule over the facts, in the order the report prints them (the probe's come later)."""
    return [*forwarding_findings(config, facts), *rp_filter_findings(config, facts),
            *network_manager_findings(config, facts), *process_findings(facts, config_path),
            *firewall_findings(config, facts), *dataplane_findings(config, facts)]
