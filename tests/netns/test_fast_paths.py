"""The stateless paths of issue 18 in the guide's labs: stateless NAT and stateless DR (from ingress) with mh.

One lab per kind (NAT, DR), shared by the tests in order, the router's death
last. Each lab is LvsLab with two more services on both routers, `lb_algo
mh` + `mh-port` and `pykeepalived_stateless`: 203.0.113.20:80 (a VIP of the
VRRP master) and 2001:db8:203::20:80 (routed to router1 by the client). NAT
serves them from second addresses of the real servers (10.11.12.21-23, so
that no other NAT service shares their address), DR from the real servers
themselves, which hold both VIPs on `lo`. The tests show:

- every real server gets flows and the router keeps no state for them (no
  conntrack entry; DR: no flow set);
- IPv6 is served alike;
- ICMP "fragmentation needed" / "packet too big" reaches the client when the
  router's link to the real servers is narrower (NAT: the router's error,
  about the rewritten request, is rewritten back to the VIP; DR: the service
  leaves `fwd` for the copy path, which sends it), so a request bigger than
  that link gets through and the client's route to the VIP learns the MTU;
- a real server's removal breaks its own flows only: kept-alive connections
  on the others go on;
- the master's death keeps every established flow on its server, without
  connection sync (both routers build the same table).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import LabError, unique_prefix, wait_until
from pykeepalived.lab.lvs_lab import (CLIENT_HOST, HTTP_PORT, LabKind, LvsLab, _url_check)
from pykeepalived.lab.netns import Netns
from pykeepalived.lab.streams import Conn, through_event

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root]

VIP_SL = "203.0.113.20"
VIP6 = "2001:db8:203::20"
ROUTER1_PUBLIC6 = "2001:db8:203::2"
ROUTER1_PRIVATE6 = "2001:db8:10::8"
GATEWAY_PRIVATE6 = "2001:db8:10::254"
SERVICE = f"[{VIP_SL}]:tcp:80"
STREAMS = 18  # mh-port over three servers: some on each (all on two by chance: 3 * (2/3)**18, 0.2 %)
SETTLE_S = 20.0
NARROW_MTU = 1400
BIG_HEADER_BYTES = 6000


def second_address(i: int) -> str:
    return f"10.11.12.2{i}"


class FastLab(LvsLab):
    """LvsLab (NAT or DR, nftables) with the stateless mh services of the module docstring on both routers."""

    rs_listen = ("0.0.0.0", "::")  # the real servers answer on IPv6 too

    def __init__(self, kind: str, workdir: Path) -> None:
        super().__init__(kind, prefix=unique_prefix(f"fp{kind}"), name=f"fp-{kind}", workdir=workdir,
                         dataplane="nftables")
        self.services_count += 2

    def servers_of(self, family: int) -> list[tuple[str, int]]:
        if family == 6:
            return [(f"2001:db8:10::{i}", HTTP_PORT) for i in range(1, 4)]
        if self.kind is LabKind.NAT:
            return [(second_address(i), HTTP_PORT) for i in range(1, 4)]
        return [(f"10.11.12.{i}", HTTP_PORT) for i in range(1, 4)]

    def _configure_hosts(self) -> None:
        super()._configure_hosts()
        client = self.client.netns
        client.ip("-6", "route", "add", f"{VIP6}/128", "via", ROUTER1_PUBLIC6)
        for router in self.routers.values():
            router.netns.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])
        gw = self.gateway
        if gw is not None:
            gw.netns.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])
        for i in range(1, 4):
            ns = self.hosts[f"rs{i}"].netns
            if self.kind is LabKind.NAT:
                ns.ip("addr", "add", f"{second_address(i)}/24", "dev", "eth0")
                ns.ip("-6", "route", "add", "default", "via", ROUTER1_PRIVATE6)
            else:
                ns.ip("addr", "add", f"{VIP_SL}/32", "dev", "lo")
                ns.ip("addr", "add", f"{VIP6}/128", "dev", "lo", "nodad")
                ns.ip("-6", "route", "add", "default", "via", GATEWAY_PRIVATE6)

    def _configure_routers(self) -> None:
        super()._configure_routers()
        vip_line = "203.0.113.11/32 dev eth0"
        for router in self.routers.values():
            text = router.conf_path.read_text()
            if vip_line not in text:
                raise LabError(f"no line {vip_line!r} in {router.conf_path} to add {VIP_SL} after")
            text = text.replace(vip_line, f"{vip_line}\n        {VIP_SL}/32 dev eth0", 1)
            router.conf_path.write_text(text + self._services())
        router1 = self.router("router1")
        check = router1.netns.run([sys.executable, "-m", "pykeepalived", "-t", "-f", str(router1.conf_path)],
                                  check=False, timeout_s=30.0)
        if check.returncode != 0:
            raise LabError(f"pykeepalived -t refuses the fast-path config:\n{check.stderr}{check.stdout}")

    def _services(self) -> str:
        out = []
        for vip, family in ((VIP_SL, 4), (VIP6, 6)):
            out += [f"virtual_server {vip} {HTTP_PORT} {{", "    delay_loop 1", "    lb_algo mh", "    mh-port",
                    f"    lb_kind {self.kind.name}", "    protocol TCP", "    pykeepalived_stateless"]
            for address, port in self.servers_of(family):
                out += [f"    real_server {address} {port} {{",
                        *(f"        {line}" for line in _url_check("HTTP_GET", None)), "    }"]
            out.append("}")
        return "\n".join(out) + "\n"


@pytest.fixture(scope="module", params=["nat", "dr"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastLab]:
    made = FastLab(request.param, tmp_path_factory.mktemp(f"fast-{request.param}"))
    made.up()
    try:
        wait_until(lambda: made.alive_counts("router1").get(SERVICE) == 3, 10, what="the stateless service's servers")
        yield made
    finally:
        made.close()


def get(lab: LvsLab, url: str, *extra: str, timeout_s: float = 3.0) -> str:
    argv = ["curl", "-sS", "-g", "--fail-with-body", "--max-time", f"{timeout_s:g}", *extra, url]
    proc = lab.client.netns.run(argv, check=False, timeout_s=timeout_s + 5)
    if proc.returncode != 0:
        raise LabError(f"GET {url}: {proc.stderr.strip()}")
    return proc.stdout.split()[0]


def router_log(lab: LvsLab) -> str:
    return lab.router("router1").log()


def test_every_real_server_gets_flows_and_the_router_keeps_no_state(lab: FastLab) -> None:
    served = {get(lab, f"http://{VIP_SL}/whoami") for _ in range(30)}
    assert served == {"rs1", "rs2", "rs3"}
    assert "keeps per-flow state" not in router_log(lab), router_log(lab)
    router = lab.router("router1").netns
    if lab.kind is LabKind.NAT:
        requests = router.run(["conntrack", "-L", "-d", VIP_SL], check=False)  # a DNAT entry's original side
        assert VIP_SL not in requests.stdout, requests.stdout
        for i in range(1, 4):  # replies tracked as flows of their own
            replies = router.run(["conntrack", "-L", "-s", second_address(i)], check=False)
            assert second_address(i) not in replies.stdout, replies.stdout
        # the requests are rewritten and forwarded from ingress (every link 1500 bytes: nft_forward.takes)
        for family, vip in (("4", VIP_SL), ("6", VIP6)):
            listed = router.run(["nft", "-j", "list", "map", "netdev", "pykeepalived_lvs", f"fwd{family}_ports"])
            assert vip in listed.stdout, listed.stdout
    else:
        sets = json.loads(router.run(["nft", "-j", "list", "sets", "netdev"]).stdout)["nftables"]
        names = [item["set"]["name"] for item in sets if "set" in item]
        assert names and not [n for n in names if VIP_SL in n and n.endswith("-flows")], names
        assert any(n.endswith("-flows") for n in names)  # the rr service keeps its flow sets


def forwarded_by_stack(router: Netns) -> int:
    """The packets the router's IP stack forwarded so far, IPv4 and IPv6 (what `fwd` from ingress skips)."""
    ipv4 = router.run(["cat", "/proc/net/snmp"]).stdout.splitlines()
    names, values = [line.split() for line in ipv4 if line.startswith("Ip:")][:2]
    ipv6 = dict(line.split() for line in router.run(["cat", "/proc/net/snmp6"]).stdout.splitlines() if line.strip())
    return int(values[names.index("ForwDatagrams")]) + int(ipv6["Ip6OutForwDatagrams"])


def test_requests_and_replies_skip_the_routers_ip_stack(lab: FastLab) -> None:
    """NAT: both directions from ingress (the lab's routes copy into the maps: route_spans); DR: the requests."""
    router = lab.router("router1").netns
    if lab.kind is LabKind.NAT:
        for family, source in (("4", second_address(1)), ("6", "2001:db8:10::1")):
            listed = router.run(["nft", "-j", "list", "map", "netdev", "pykeepalived_lvs", f"back{family}"])
            assert source in listed.stdout, listed.stdout
            spans = router.run(["nft", "-j", "list", "map", "netdev", "pykeepalived_lvs", f"dev{family}"])
            assert '"elem"' in spans.stdout, spans.stdout
    before = forwarded_by_stack(router)
    for url in (f"http://{VIP_SL}/whoami", f"http://[{VIP6}]/whoami"):
        for _ in range(10):
            get(lab, url)
    forwarded = forwarded_by_stack(router) - before
    # 20 exchanges of about ten segments each; DR's replies do not cross the director (they go by the gateway)
    assert forwarded <= 4, f"the router's IP stack forwarded {forwarded} packets of 20 exchanges"


def test_the_replies_follow_a_route_added_and_removed(lab: FastLab) -> None:
    """The copied routes are followed by the repair check (half a second), not only at the next apply.

    The route added makes the client a gateway to 198.51.100.0/24, where it
    holds an address of its own: requests from that address get their
    replies through the `via4` span, sent to the gateway by `fwd` with no
    help from router1's IP stack.
    """
    if lab.kind is not LabKind.NAT:
        pytest.skip("DR's replies do not cross the director")
    router = lab.router("router1").netns
    behind = "198.51.100.5"

    def via_map() -> str:
        return router.run(["nft", "-j", "list", "map", "netdev", "pykeepalived_lvs", "via4"]).stdout

    lab.client.netns.ip("addr", "add", f"{behind}/32", "dev", "lo")
    router.ip("route", "add", "198.51.100.0/24", "via", f"203.0.113.{CLIENT_HOST}")
    try:
        wait_until(lambda: "198.51.100.0" in via_map(), 10, what="the new route in the via4 map")
        assert "and the routes they send replies by" in router_log(lab)
        before = forwarded_by_stack(router)
        served = {get(lab, f"http://{VIP_SL}/whoami", "--interface", behind) for _ in range(10)}
        assert served <= {"rs1", "rs2", "rs3"} and len(served) >= 2
        forwarded = forwarded_by_stack(router) - before
        assert forwarded <= 2, f"the router's IP stack forwarded {forwarded} packets of 10 exchanges"
    finally:
        router.ip("route", "del", "198.51.100.0/24")
        lab.client.netns.ip("addr", "del", f"{behind}/32", "dev", "lo")
    wait_until(lambda: "198.51.100.0" not in via_map(), 10, what="the route gone from the via4 map")
    assert get(lab, f"http://{VIP_SL}/whoami") in {"rs1", "rs2", "rs3"}

    def replies_taken() -> bool:
        listed = router.run(["nft", "-j", "list", "map", "netdev", "pykeepalived_lvs", "back4"]).stdout
        return second_address(1) in listed

    # a policy rule cannot be copied: the replies go back to the IP stack, and come back when it goes
    router.ip("rule", "add", "from", "198.51.100.0/24", "lookup", "100", "pref", "1000")
    try:
        wait_until(lambda: not replies_taken(), 10, what="the replies given back to the IP stack")
        assert "go through the IP stack, not from ingress: policy routing rule 1000" in router_log(lab)
        assert get(lab, f"http://{VIP_SL}/whoami") in {"rs1", "rs2", "rs3"}
    finally:
        router.ip("rule", "del", "pref", "1000")
    wait_until(replies_taken, 10, what="the replies from ingress again")


def test_ipv6_is_served_statelessly_too(lab: FastLab) -> None:
    served = {get(lab, f"http://[{VIP6}]/whoami") for _ in range(12)}
    assert served <= {"rs1", "rs2", "rs3"} and len(served) >= 2
    if lab.kind is LabKind.NAT:
        listed = lab.router("router1").netns.run(["conntrack", "-L", "-f", "ipv6", "-d", VIP6], check=False)
        assert VIP6 not in listed.stdout, listed.stdout


def test_frag_needed_and_packet_too_big_reach_the_client_through_the_vip(lab: FastLab) -> None:
    """router1's link to the real servers narrowed: a big request makes the router say so, the client adapts."""
    router = lab.router("router1").netns
    client = lab.client.netns
    router.ip("link", "set", "eth1", "mtu", str(NARROW_MTU))
    try:
        # the repair check moves the service off `fwd` from ingress, which sends no ICMP: DR to the copy path,
        # NAT to the IP stack's stateless chain; either has the router send it
        wait_until(lambda: "the paths from ingress follow the interfaces" in router_log(lab), 5,
                   what="the service leaving fwd from ingress")
        time.sleep(0.5)
        pad = ["-H", f"X-Pad: {'x' * BIG_HEADER_BYTES}"]
        for url, family in ((f"http://{VIP_SL}/whoami", "-4"), (f"http://[{VIP6}]/whoami", "-6")):
            assert get(lab, url, *pad, timeout_s=5) in {"rs1", "rs2", "rs3"}
            vip = VIP_SL if family == "-4" else VIP6
            route = client.ip(family, "route", "get", vip)
            assert f"mtu {NARROW_MTU}" in route, f"the client never learnt the path MTU to {vip}: {route}"
    finally:
        router.ip("link", "set", "eth1", "mtu", "1500")
        client.ip("-4", "route", "flush", "cache")
        client.ip("-6", "route", "flush", "cache")


def streams_through(lab: LvsLab, event: Callable[[], object]) -> list[Conn]:
    return through_event(lab.client.netns.name, VIP_SL, 80, STREAMS, event, settle_s=SETTLE_S)


def kept(conn: Conn) -> bool:
    return not conn.end_reason and conn.answers >= 3 and len(conn.servers) == 1


def _show(conns: list[Conn]) -> str:
    return json.dumps([{"servers": c.servers, "answers_after": c.answers, "ended": c.end_reason} for c in conns],
                      indent=1)


def test_a_real_servers_removal_breaks_its_own_flows_only(lab: FastLab) -> None:
    def remove_rs2() -> None:
        lab.stop_real_server("rs2")
        wait_until(lambda: lab.alive_counts("router1").get(SERVICE) == 2, 10, what="the checker taking rs2 out")
        time.sleep(1.0)  # the apply after the checker's verdict

    try:
        streams = streams_through(lab, remove_rs2)
    finally:
        lab.start_real_server("rs2")
    others = [c for c in streams if c.servers[:1] != ["rs2"]]
    on_rs2 = [c for c in streams if c.servers[:1] == ["rs2"]]
    assert others and on_rs2, _show(streams)
    assert all(kept(c) for c in others), _show(streams)
    assert all(c.end_reason for c in on_rs2), _show(on_rs2)
    wait_until(lambda: lab.alive_counts("router1").get(SERVICE) == 3, 10, what="rs2 back")


# Last, because it breaks the lab.
def test_the_masters_death_keeps_every_flow_on_its_server_without_sync(lab: FastLab) -> None:
    assert "lvs_sync_daemon" not in lab.router("router1").conf_path.read_text()

    def crash() -> None:
        lab.kill_router("router1")
        lab.wait_for_master(10, "router2")

    streams = streams_through(lab, crash)
    assert all(kept(c) for c in streams), _show(streams)
    assert len({c.servers[0] for c in streams}) > 1
