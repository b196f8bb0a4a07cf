"""Traffic through the VIP in the guide's topology, forwarded by the nftables data plane.

Each kind of lab (NAT, DR or TUN) is built once and shared by the tests for
as long as each leaves it as `LvsLab.up()` did (`SharedLab`): the client's requests reach
every healthy real server in round robin, a dead real server stops getting new
connections within the checker's bound, the master's death moves traffic to
the backup, persistence keeps a client on one server, the fwmark service
carries ports 80 and 443 to the same server, and a request bigger than one
segment gets through (for TUN: past the IPIP device's smaller MTU). DR
services forward from the ingress hook (lvs/nft_forward.py): the flows of the
plain VIP land in the netdev table's flow sets, none in table ip's copy path;
TUN's rr service keeps the copy path (its flows land in table ip's sets only).
The TUN lab has one more service, stateless mh (`TunLab`), which TUN sends
from ingress: its packets never reach the router's IP stack but those too
long for the tunnel, which come back as ICMP "fragmentation needed" or, in
a bulk upload, are delivered by the copy path to the flow's own server.

TUN needs IPIP in the kernel; where it has none (this lab's host) the TUN
variants skip at once. tests/vm/test_tun_dataplane.py runs them in the qemu
guest, with PYKEEPALIVED_TIME_SCALE stretching the waits for its slow Python.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import LabError, unique_prefix, wait_until
from pykeepalived.lab.lvs_lab import HTTP_PORT, LabKind, LvsLab, _url_check
from tests.scripts import script

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root]

VIP = "203.0.113.10"
FWMARK_VIP = "203.0.113.11"
# Stretches every wait below (and the lab's own) where Python runs many times slower: set only by
# tests/vm/test_tun_dataplane.py for its qemu guest; 1 here, so the host's bounds stay as tight as written.
TIME_SCALE = float(os.environ.get("PYKEEPALIVED_TIME_SCALE", "1"))
# The lab's checkers: delay_loop 1, connect_timeout 1, retry 1, delay_before_retry 1 (the protocol's bound,
# never scaled); the slack covers our side: the checker noticing, the apply, a request already in flight.
CHECKER_BOUND_S = 1 + 1 * (1 + 1) + 1 * 1
APPLY_SLACK_S = 1.5 * TIME_SCALE
REQUEST_TIMEOUT_S = 2.0 * TIME_SCALE
CURL_COULDNT_CONNECT = 7
PROBE_TIMEOUT_S = 0.5 * TIME_SCALE  # a request sent while a server dies or a router fails over
BIG_HEADER_BYTES = 6000  # four full-size segments: more than the 1480 bytes an IPIP device carries in one
HASH_VIP = "203.0.113.20"  # TunLab's stateless mh service
TUNNEL_MTU = 1480  # the routers' IPIP devices behind a 1500-byte link
UPLOAD_BYTES = 900_000  # under nginx's client_max_body_size (1 MB): a POST that /whoami answers


def scaled(seconds: float) -> float:
    return seconds * TIME_SCALE


@functools.cache
def missing_ipip() -> str | None:
    """Why this kernel cannot carry TUN traffic (no IPIP device can be made), or None.

    Asked in a throwaway namespace (`unshare --net`, gone with the command),
    so that the TUN variants skip in a fraction of a second instead of
    building a whole lab whose tunnels could never be made.
    """
    argv = ["unshare", "--net", "ip", "link", "add", "pkprobe0", "type", "ipip", "remote", "192.0.2.1"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot probe for IPIP: {exc}"
    if proc.returncode != 0:
        return f"this kernel cannot make IPIP devices ({proc.stderr.strip()}); tests/vm/test_tun_dataplane.py " \
               "runs the TUN variants in a qemu guest that can"
    return None


class TunLab(LvsLab):
    """The TUN lab with a third service on both routers: HASH_VIP:80, `lb_algo mh`, `mh-port`,
    `pykeepalived_stateless`, the same real servers (which hold HASH_VIP on tunl0 too)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__("tun", **kw)
        self.services_count += 1

    def _configure_hosts(self) -> None:
        super()._configure_hosts()
        for rs in range(1, 4):
            self.hosts[f"rs{rs}"].netns.ip("addr", "add", f"{HASH_VIP}/32", "dev", self.rs_vip_device or "lo")

    def _configure_routers(self) -> None:
        super()._configure_routers()
        vip_line = f"{FWMARK_VIP}/32 dev eth0"
        service = [f"virtual_server {HASH_VIP} {HTTP_PORT} {{", "    delay_loop 1", "    lb_algo mh", "    mh-port",
                   "    lb_kind TUN", "    protocol TCP", "    pykeepalived_stateless"]
        for rs in (server.address for server in self.real_servers):
            service += [f"    real_server {rs} {HTTP_PORT} {{",
                        *(f"        {line}" for line in _url_check("HTTP_GET", None)), "    }"]
        service.append("}")
        for router in self.routers.values():
            text = router.conf_path.read_text()
            if vip_line not in text:
                raise LabError(f"no line {vip_line!r} in {router.conf_path} to add {HASH_VIP} after")
            text = text.replace(vip_line, f"{vip_line}\n        {HASH_VIP}/32 dev eth0", 1)
            router.conf_path.write_text(text + "\n".join(service) + "\n")


class SharedLab:
    """One lab of a kind, shared by the module's tests for as long as each leaves it as `up()` did.

    Building a lab is most of what these tests cost (a few seconds here, ~30 s in the qemu guest of
    tests/vm/test_tun_dataplane.py), and most tests only send traffic through it. A test that breaks
    it (kills a router) or fails half-way leaves a lab that is not ready again within READY_AGAIN_S:
    that one is closed at once and the next test gets a new one, so every test starts from what
    `LvsLab.up()` guarantees, exactly as with a lab of its own.
    """

    def __init__(self, kind: str, workdirs: pytest.TempPathFactory) -> None:
        self.kind = kind
        self.workdirs = workdirs
        self.current: LvsLab | None = None
        self.used = False  # a test has had the current lab (and sent traffic through it)

    def get(self, *, fresh: bool = False) -> LvsLab:
        """The current lab, or a new one; `fresh`: one no test has had yet (connection counts start at 0)."""
        if fresh and self.used:
            self.close()
        if self.current is None:
            args: dict[str, Any] = {"prefix": unique_prefix(f"dp{self.kind}"), "name": f"dp-{self.kind}",
                                    "workdir": self.workdirs.mktemp(f"lab-{self.kind}"), "timeout_scale": TIME_SCALE,
                                    "dataplane": "nftables"}  # in the qemu guest auto would pick IPVS
            lab = TunLab(**args) if self.kind == "tun" else LvsLab(self.kind, **args)
            lab.up()  # closes what it made if it fails
            if self.kind == "tun":  # the probe said yes, so the real servers must have decapsulating tunl0
                assert lab.rs_vip_device == "tunl0", lab.notes
            self.current, self.used = lab, False
        self.used = True
        return self.current

    def release(self) -> None:
        """After a test: keep the lab if it is ready again (a restarted real server's checks may lag), else close it."""
        lab = self.current
        if lab is None:
            return
        if not all(r.running() for r in lab.routers.values()) or not all(rs.nginx.running()
                                                                      for rs in lab.real_servers):
            self.close()  # a killed router or real server: it would never be ready again
            return
        try:
            wait_until(lab.is_ready, READY_AGAIN_S, interval_s=0.1, what="the lab to be as up() left it")
        except LabError:
            self.close()

    def close(self) -> None:
        lab, self.current = self.current, None
        if lab is not None:
            lab.close()


# A lab left ready within this is kept for the next test (router2's checker may still have to see a
# restarted real server); one that is not is replaced, which costs time but never a test.
READY_AGAIN_S = 15.0 * TIME_SCALE


@pytest.fixture(scope="module", params=["nat", "dr", "tun"])
def shared_lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedLab]:
    """Module scope, so pytest runs every test of one kind before the next kind: one lab alive at a time."""
    kind = str(request.param)
    if kind == "tun" and (reason := missing_ipip()) is not None:
        pytest.skip(reason)
    shared = SharedLab(kind, tmp_path_factory)
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture
def lab(shared_lab: SharedLab) -> Iterator[LvsLab]:
    """A lab as `up()` leaves it: the kind's shared one, or a new one if the previous test broke it."""
    lab = shared_lab.get()
    try:
        yield lab
    finally:
        shared_lab.release()


@pytest.fixture
def fresh_lab(shared_lab: SharedLab) -> Iterator[LvsLab]:
    """A lab no test has had yet: for connection counts, which earlier tests' connections would change
    (in DR and TUN the routers see only the client's half of each connection, so its entry outlives it)."""
    lab = shared_lab.get(fresh=True)
    try:
        yield lab
    finally:
        shared_lab.release()


def served_by(lab: LvsLab, url: str, timeout_s: float = REQUEST_TIMEOUT_S) -> str:
    return lab.client_get(url, timeout_s).split()[0]


def decapsulated(lab: LvsLab) -> dict[str, int]:
    """Real server -> packets its tunl0 has taken out of IPIP so far (TUN labs only).

    An answer from every real server alone would not prove TUN: a real server
    accepts a packet for a VIP on any interface, so plainly routed (DR-like)
    packets would be served too.
    """
    counts: dict[str, int] = {}
    for rs in lab.real_servers:
        link = rs.host.netns.ip_json("-s", "link", "show", "tunl0")[0]
        counts[rs.name] = int(link["stats64"]["rx"]["packets"])
    return counts


def flow_sets(lab: LvsLab) -> dict[tuple[str, str], int]:
    """(nftables family, set) -> flows in each `*-flows` set of the master's tables (DR and TUN keep them)."""
    router = lab.router(lab.wait_for_master())
    counts: dict[tuple[str, str], int] = {}
    for family in ("ip", "netdev"):
        out = router.netns.run(["nft", "-j", "list", "table", family, "pykeepalived_lvs"], check=False)
        if out.returncode != 0:
            continue  # no such table: nothing of this family is forwarded there
        for item in json.loads(out.stdout)["nftables"]:
            listed = item.get("set")
            if listed is not None and listed["name"].endswith("-flows"):
                counts[(family, listed["name"])] = len(listed.get("elem", []))
    return counts


def grown(before: dict[tuple[str, str], int], after: dict[tuple[str, str], int]) -> set[str]:
    """The families whose flow sets gained flows between two `flow_sets`."""
    return {family for (family, name), n in after.items() if n > before.get((family, name), 0)}


# First, so that it gets the lab its kind builds anyway (it needs one nobody has sent traffic through).
def test_status_counts_the_connections_of_each_real_server(fresh_lab: LvsLab) -> None:
    lab = fresh_lab
    holder = lab.client.netns.popen(["python3", script("tcp_holder.py"), VIP, "80", "3", f"{scaled(20):g}"])
    try:
        deadline = time.monotonic() + scaled(10)
        while True:
            text = lab.status_text("router1")
            rows = [line.split() for line in text.splitlines() if line.strip().startswith("->")
                    and ":80 " in line and "10.11.12." in line]
            active = [int(r[4]) for r in rows[:3]]
            if sum(active) >= 3:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.5)
        assert active == [1, 1, 1], text
    finally:
        holder.kill()
        holder.wait(timeout=5)


def test_requests_reach_every_real_server_in_round_robin(lab: LvsLab) -> None:
    tunnelled_before = decapsulated(lab) if lab.kind is LabKind.TUN else {}
    flows_before = flow_sets(lab) if lab.kind is not LabKind.NAT else {}
    names = [served_by(lab, f"http://{VIP}/whoami") for _ in range(9)]
    assert sorted(names) == ["rs1"] * 3 + ["rs2"] * 3 + ["rs3"] * 3
    assert names[:3] == names[3:6] == names[6:]  # the same order every round
    if lab.kind is not LabKind.NAT:  # DR: sent once from ingress (`fwd`); TUN's rr: the prerouting copy path
        flows_after = flow_sets(lab)
        assert grown(flows_before, flows_after) == {"netdev" if lab.kind is LabKind.DR else "ip"}, \
            (flows_before, flows_after)
    if lab.kind is LabKind.TUN:  # each connection's packets (at least SYN, ACK, request, FIN) came through IPIP
        tunnelled = {name: n - tunnelled_before[name] for name, n in decapsulated(lab).items()}
        assert all(n >= 3 * 4 for n in tunnelled.values()), tunnelled


def test_a_dead_real_server_stops_getting_new_connections_within_the_checker_bound(lab: LvsLab) -> None:
    lab.stop_real_server("rs2")
    died = time.monotonic()
    clean_since: float | None = None
    while time.monotonic() - died < CHECKER_BOUND_S + APPLY_SLACK_S + scaled(3.0):
        try:
            name = served_by(lab, f"http://{VIP}/whoami", timeout_s=PROBE_TIMEOUT_S)
        except LabError:
            name = "failed"
        if name == "failed":
            clean_since = None
        elif clean_since is None:
            clean_since = time.monotonic()
        if clean_since is not None and time.monotonic() - clean_since > scaled(1.0):
            break
        time.sleep(0.05)
    assert clean_since is not None, "requests kept failing"
    assert clean_since - died <= CHECKER_BOUND_S + APPLY_SLACK_S
    assert {served_by(lab, f"http://{VIP}/whoami") for _ in range(6)} == {"rs1", "rs3"}
    lab.start_real_server("rs2")
    deadline = time.monotonic() + scaled(10)
    while "rs2" not in {served_by(lab, f"http://{VIP}/whoami") for _ in range(3)}:
        assert time.monotonic() < deadline, "rs2 did not come back"
        time.sleep(0.3)


def test_persistence_keeps_the_client_on_one_server_across_http_and_https(lab: LvsLab) -> None:
    first = served_by(lab, f"http://{FWMARK_VIP}/whoami")
    got = {served_by(lab, f"{scheme}://{FWMARK_VIP}/whoami") for scheme in ("http", "https") * 4}
    assert got == {first}
    # The plain service on the other VIP is not persistent: the same client is spread.
    assert len({served_by(lab, f"http://{VIP}/whoami") for _ in range(3)}) == 3


def test_a_request_bigger_than_one_segment_gets_through(lab: LvsLab) -> None:
    """Full-size segments from the client: TUN's IPIP device takes 20 bytes less, so the router must say so.

    The router answers a too-big segment with ICMP "fragmentation needed" (as
    IPVS does), the client lowers its path MTU to the VIP and resends; a
    lost ICMP would hang the request instead.
    """
    pad = "x" * BIG_HEADER_BYTES
    argv = ["curl", "-sS", "-k", "--fail-with-body", "--max-time", f"{REQUEST_TIMEOUT_S:g}",
            "-H", f"X-Pad: {pad}"]
    for url in (f"http://{VIP}/whoami", f"https://{FWMARK_VIP}/whoami"):
        for _ in range(3):
            proc = lab.client.netns.run([*argv, url], check=False, timeout_s=REQUEST_TIMEOUT_S + 5.0)
            # curl's 7 (refused) is a service without servers at that moment, not a lost ICMP (that times out,
            # 28): in the emulated guest every SSL_GET of a router can time out at once and empty the fwmark
            # service for a few seconds (seen in CI, both routers alike); wait for the checks to bring them back
            if proc.returncode != CURL_COULDNT_CONNECT:
                break
            time.sleep(scaled(3.0))
        assert proc.returncode == 0, f"{url}: {proc.stderr.strip()}"
        assert proc.stdout.split()[0] in {"rs1", "rs2", "rs3"}


def stack_counter(lab: LvsLab, table: str) -> int:
    """Packets for HASH_VIP:80 that reached the master's IP stack (prerouting) since `table` was made."""
    router = lab.router(lab.wait_for_master())
    listed = json.loads(router.netns.run(["nft", "-j", "list", "table", "ip", table]).stdout)["nftables"]
    for item in listed:
        for stmt in item.get("rule", {}).get("expr", []):
            if "counter" in stmt:
                return int(stmt["counter"]["packets"])
    raise AssertionError(f"no counter in table ip {table}: {listed}")


def received_bytes(lab: LvsLab) -> dict[str, int]:
    """Real server -> bytes its tunl0 has taken out of IPIP so far."""
    return {rs.name: int(rs.host.netns.ip_json("-s", "link", "show", "tunl0")[0]["stats64"]["rx"]["bytes"])
            for rs in lab.real_servers}


@pytest.fixture
def hash_lab(shared_lab: SharedLab) -> Iterator[LvsLab]:
    """The TUN kind's shared TunLab (the other kinds skip without touching their lab)."""
    if shared_lab.kind != "tun":
        pytest.skip("TunLab's stateless mh service is the TUN lab's")
    lab = shared_lab.get()
    try:
        yield lab
    finally:
        shared_lab.release()


# Named without "tun": tests/vm/test_tun_dataplane.py selects the TUN kind's tests with `-k tun`.
def test_a_stateless_hash_service_goes_from_ingress_and_its_too_long_packets_are_answered_or_delivered_alike(
        hash_lab: LvsLab, tmp_path: Path) -> None:
    """TunLab's mh service: sent from ingress; what is too long for the tunnel takes the copy path, which
    answers "fragmentation needed" (PMTU) or, for the client's TSO super-packets, delivers them to the
    flow's own server (nft_forward: the two paths share the pick rule)."""
    lab = hash_lab
    router = lab.router(lab.wait_for_master()).netns
    probe = f"probe{os.getpid()}"  # counts what reaches prerouting, before our copy path (mangle + 1)
    rule = f"ip daddr {HASH_VIP} tcp dport {HTTP_PORT} counter"
    router.run(["nft", "-f", "-"], input=f"table ip {probe} {{\n chain pre {{\n"
                                         f"  type filter hook prerouting priority raw;\n  {rule}\n }}\n}}\n")
    client = lab.client.netns
    try:
        tunnelled_before = decapsulated(lab)
        served = [served_by(lab, f"http://{HASH_VIP}/whoami") for _ in range(9)]  # mh-port: spread by port
        assert set(served) <= {"rs1", "rs2", "rs3"} and len(set(served)) >= 2, served
        assert stack_counter(lab, probe) == 0  # every packet of theirs went out from ingress
        tunnelled = {name: n - tunnelled_before[name] for name, n in decapsulated(lab).items()}
        assert sum(tunnelled.values()) >= 9 * 4, tunnelled  # through IPIP (SYN, ACK, request, FIN at least)
        # too long for the tunnel, with DF: the copy path's IPIP device answers, the client learns the MTU
        pad = ["-H", f"X-Pad: {'x' * BIG_HEADER_BYTES}"]
        proc = client.run(["curl", "-sS", "--fail-with-body", "--max-time", f"{REQUEST_TIMEOUT_S:g}", *pad,
                           f"http://{HASH_VIP}/whoami"], check=False, timeout_s=REQUEST_TIMEOUT_S + 5.0)
        assert proc.returncode == 0, proc.stderr
        route = client.ip("-4", "route", "get", HASH_VIP)
        assert f"mtu {TUNNEL_MTU}" in route, route
        too_long = stack_counter(lab, probe)
        assert too_long > 0  # those packets went to the IP stack, the rest from ingress
        # a bulk upload: the client's TSO packets cross the veth whole, longer than the tunnel's MTU, and the
        # copy path delivers them, segmented, to the server ingress sends the flow's small packets to
        body = tmp_path / "upload"
        body.write_bytes(b"u" * UPLOAD_BYTES)
        before = received_bytes(lab)
        proc = client.run(["curl", "-sS", "--fail-with-body", "--max-time", f"{REQUEST_TIMEOUT_S * 4:g}",
                           "-H", "Expect:", "--data-binary", f"@{body}", f"http://{HASH_VIP}/whoami"],
                          check=False, timeout_s=REQUEST_TIMEOUT_S * 4 + 5.0)
        assert proc.returncode == 0, proc.stderr
        server = proc.stdout.split()[0]
        got = {name: n - before[name] for name, n in received_bytes(lab).items()}
        bulk = stack_counter(lab, probe) - too_long
        print(f"mh TUN: 9 requests {served}, {sum(tunnelled.values())} packets through IPIP, none via the IP stack; "
              f"{BIG_HEADER_BYTES}-byte header: {too_long} packets via the IP stack, client route: {route.strip()}; "
              f"{UPLOAD_BYTES}-byte upload to {server}: {bulk} packets via the IP stack, tunl0 bytes {got}")
        assert bulk > 0  # the upload's TSO packets took the copy path
        assert got[server] >= UPLOAD_BYTES // 2, got  # and reached the server that answered
        assert all(n < UPLOAD_BYTES // 20 for name, n in got.items() if name != server), got  # and no other
    finally:
        router.run(["nft", "delete", "table", "ip", probe], check=False)
        client.ip("-4", "route", "flush", "cache")


# Last, because it breaks the lab (the next test would have to build a new one): order only saves time here.
def test_the_master_routers_death_moves_traffic_to_the_backup(lab: LvsLab) -> None:
    assert served_by(lab, f"http://{VIP}/whoami") in {"rs1", "rs2", "rs3"}
    lab.kill_router("router1")
    killed = time.monotonic()
    while True:
        try:
            served_by(lab, f"http://{VIP}/whoami", timeout_s=PROBE_TIMEOUT_S)
            break
        except LabError:
            assert time.monotonic() - killed < scaled(10), "no traffic through the backup"
            time.sleep(0.05)
    assert lab.which_router_is_master() == "router2"
    names = [served_by(lab, f"http://{VIP}/whoami") for _ in range(6)]
    assert sorted(names) == ["rs1", "rs1", "rs2", "rs2", "rs3", "rs3"]
