"""bgpd.conf for a balancer: sessions and policy only, never a `network` line.

What is announced is decided at run time (announce.py) and sent over the vty
socket, so the file holds what must not change while the speaker runs. The
policy is the tier's: accept nothing from the upstream (a balancer routes
nothing it learns), send only our own announcements, with the configured
communities and MED. `no bgp network import-check` because bgpd runs without
zebra (-Z): there is no RIB to check the VIP against, and the checker, not a
local route, says whether the VIP is served.
"""

from __future__ import annotations

from ..config.model import BgpNeighbor, BgpSpeaker

IMPORT_POLICY = "PYKEEPALIVED-IN"
EXPORT_POLICY = "PYKEEPALIVED-OUT"


class BgpConfigError(ValueError):
    """The block lacks what bgpd needs (the config checks report it first; this guards a model built in code)."""


def render_bgpd_conf(bgp: BgpSpeaker, hostname: str = "pykeepalived") -> str:
    if bgp.local_as is None or bgp.router_id is None:
        raise BgpConfigError("pykeepalived_bgp needs local_as and a router_id")
    keepalive = bgp.keepalive_s if bgp.keepalive_s is not None else max(1, bgp.hold_time_s // 3)
    lines = [f"hostname {hostname}", "!", f"router bgp {bgp.local_as}", f" bgp router-id {bgp.router_id}",
             " no bgp ebgp-requires-policy", " no bgp network import-check", " no bgp default ipv4-unicast",
             f" timers bgp {keepalive} {bgp.hold_time_s}"]
    for n in bgp.neighbors:
        lines += _neighbor(n, keepalive, bgp)
    for family in (4, 6):
        members = [n for n in bgp.neighbors if n.address.version == family]
        if not members:
            continue
        lines.append(f" address-family ipv{family} unicast")
        for n in members:
            lines += [f"  neighbor {n.address} activate", f"  neighbor {n.address} route-map {IMPORT_POLICY} in",
                      f"  neighbor {n.address} route-map {EXPORT_POLICY} out"]
        lines.append(" exit-address-family")
    lines += ["exit", "!", f"route-map {IMPORT_POLICY} deny 10", "exit", "!", f"route-map {EXPORT_POLICY} permit 10"]
    if bgp.communities:
        lines.append(f" set community {' '.join(bgp.communities)}")
    if bgp.med is not None:
        lines.append(f" set metric {bgp.med}")
    lines += ["exit", "!", ""]
    return "\n".join(lines)


def _neighbor(n: BgpNeighbor, keepalive: int, bgp: BgpSpeaker) -> list[str]:
    a = n.address
    out = [f" neighbor {a} remote-as {n.remote_as}", f" neighbor {a} timers {keepalive} {bgp.hold_time_s}",
           f" neighbor {a} timers connect {bgp.connect_retry_s}", f" neighbor {a} advertisement-interval 0"]
    if n.source_ip is not None:
        out.append(f" neighbor {a} update-source {n.source_ip}")
    if n.password is not None:
        out.append(f" neighbor {a} password {n.password}")
    return out
