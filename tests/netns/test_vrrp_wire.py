"""What pykeepalived puts on the wire, and what it does with hostile input.

- tshark (Wireshark's dissector, an independent decoder) reads our captured
  adverts as valid VRRP: version, type, VRID, priority, address list, source
  and destination, TTL or hop limit 255, DSCP CS6, checksum good, v2 interval
  and PASS authentication; and it sees the gratuitous ARP / unsolicited NA for
  the VIP once we are master.
- Crafted packets sent at a running instance, master or backup (wrong TTL,
  checksum, length, password, auth type, VRID, version, interval, type, then a
  few hundred random mutations of a valid higher-priority advert) change
  neither its state nor who holds the VIP, never crash it, and each class is
  counted exactly where it belongs: in the instance's counters (JSON dump), or
  for a VRID we do not run (or a packet too short to carry one) in the
  per-socket counters of the stats file. A backup flooded with such
  priority-254 packets still takes over in time when its real master dies.
- With unicast_peer/unicast_src_ip against keepalived 2.2.7: the higher
  priority wins, a kill hands over, and every advert on the wire goes to the
  peer's unicast address (never 224.0.0.18), ours with a good checksum.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import PyKeepalivedPeer, VrrpPeer, VrrpSettings, wait_until
from pykeepalived.lab.topology import Host
from tests.scripts import script as script_path

from .vrrp_capture import needs_tshark, stop_tcpdump
from .vrrp_helpers import VIP4, VIP6, Lab, down_interval, lab_fixture, needs_root, wait_sole_holder

pytestmark = [pytest.mark.netns, needs_root]

STATE_BACKUP, STATE_MASTER = 1, 2
DSCP_CS6 = "48"  # TOS 0xc0, as keepalived sends


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "vw")


# ------------------------------------------------------------------------------ capture helpers
def _capture(host: Host, pcap: Path, bpf: str) -> subprocess.Popen[bytes]:
    # --immediate-mode: without it the kernel hands packets over in blocks (up to 1 s late) and the
    # last block is lost when tcpdump stops
    proc = host.netns.popen(["tcpdump", "-i", host.ifname, "--immediate-mode", "-U", "-n", "-w", str(pcap), bpf])
    try:
        wait_until(lambda: pcap.exists() and pcap.stat().st_size > 0, 5.0, what="tcpdump started")
    except Exception:
        stop_tcpdump(proc)
        raise
    return proc


def _tshark(pcap: Path, display_filter: str, fields: list[str]) -> list[list[str]]:
    argv = ["tshark", "-n", "-r", str(pcap), "-o", "vrrp.v3_checksum_as_in_v2:FALSE", "-Y", display_filter,
            "-T", "fields", "-E", "separator=|", *[x for f in fields for x in ("-e", f)]]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def _tshark_verbose(pcap: Path, display_filter: str) -> str:
    argv = ["tshark", "-n", "-r", str(pcap), "-o", "vrrp.v3_checksum_as_in_v2:FALSE", "-Y", display_filter, "-V"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout


# ------------------------------------------------------------------------------ 1. tshark
@needs_tshark
@pytest.mark.parametrize(("version", "family"), [(2, 4), (3, 4), (3, 6)], ids=["v2-ipv4", "v3-ipv4", "v3-ipv6"])
def test_tshark_decodes_our_adverts_and_announcements(lab: Lab, tmp_path: Path, version: int, family: int) -> None:
    vip = VIP4 if family == 4 else VIP6
    pcap = tmp_path / "vrrp.pcap"
    dump = _capture(lab.c, pcap, "ip proto 112 or ip6 proto 112 or arp or icmp6")
    try:
        settings = [VrrpSettings(vrid=71, priority=150, vips=[vip], version=version,
                                 advert_int_s=1.0 if version == 2 else 0.1,
                                 auth_pass="secret" if version == 2 else None)]
        r1 = lab.peer("py", lab.r1, settings)
        r1.start()
        wait_until(lambda: r1.holds(vip.ip), 6.0, what="master")
        time.sleep(2.2 if version == 2 else 0.5)  # v2: 3 adverts; v3: 5 or more
    finally:
        stop_tcpdump(dump)
    if family == 4:
        src, dst, addr_f = str(lab.r1.ipv4.ip), "224.0.0.18", "vrrp.ip_addr"
        ip_fields = ["ip.src", "ip.dst", "ip.ttl", "ip.dsfield.dscp"]
    else:
        src, dst, addr_f = str(lab.r1.link_local()), "ff02::12", "vrrp.ipv6_addr"  # RFC 5798: from the link-local
        ip_fields = ["ipv6.src", "ipv6.dst", "ipv6.hlim", "ipv6.tclass.dscp"]
    rows = _tshark(pcap, "vrrp", ["frame.time_epoch", *ip_fields, "vrrp.version", "vrrp.type", "vrrp.virt_rtr_id",
                                  "vrrp.prio", "vrrp.addr_count", "vrrp.checksum.status", addr_f, "vrrp.auth_type",
                                  "vrrp.auth_string", "vrrp.adver_int", "vrrp.short_adver_int"])
    assert len(rows) >= 3, rows
    gaps = sorted(float(b[0]) - float(a[0]) for a, b in zip(rows, rows[1:]))
    interval = 1.0 if version == 2 else 0.1
    assert abs(gaps[len(gaps) // 2] - interval) < 0.1 * interval, gaps  # median gap: the advert interval
    for (_, ip_src, ip_dst, ttl, dscp, ver, kind, vrid, prio, naddr, checksum, addresses, auth, auth_string,
         adv_v2, adv_v3) in rows:
        assert (ip_src, ip_dst, ttl, dscp) == (src, dst, "255", DSCP_CS6)
        assert (ver, kind, vrid, prio, naddr) == (str(version), "1", "71", "150", "1")
        assert checksum == "1", rows  # Wireshark's checksum status: 0 bad, 1 good, 2 unverified
        assert addresses.split(",") == [str(vip.ip)]
        if version == 2:
            assert (auth, auth_string, adv_v2) == ("1", "secret", "1")  # Simple Text Authentication, 1 s
        else:
            assert adv_v3 == "10"  # centiseconds
    text = _tshark_verbose(pcap, "vrrp")
    assert "Virtual Router Redundancy Protocol" in text and "Malformed" not in text
    assert "[Checksum Status: Good]" in text and "Bad" not in text
    assert "Advertisement" in text

    # keepalived's order: the first advert, then the VIP, then the announcements for it (5 by default)
    mac = lab.r1.mac()
    if family == 4:
        garps = _tshark(pcap, f"arp.isgratuitous == 1 && arp.src.proto_ipv4 == {vip.ip}",
                        ["frame.time_epoch", "arp.opcode", "arp.src.hw_mac", "eth.dst"])
        for _, opcode, sender_mac, eth_dst in garps:
            assert (opcode, sender_mac, eth_dst) == ("1", mac, "ff:ff:ff:ff:ff:ff")  # a request, as keepalived's
    else:
        garps = _tshark(pcap, f"icmpv6.type == 136 && icmpv6.nd.na.target_address == {vip.ip}",
                        ["frame.time_epoch", "ipv6.dst", "ipv6.hlim", "icmpv6.nd.na.flag.s", "icmpv6.nd.na.flag.o",
                         "icmpv6.opt.linkaddr", "icmpv6.checksum.status"])
        for _, na_dst, hlim, solicited, override, linkaddr, checksum in garps:
            assert (na_dst, hlim, solicited, override, linkaddr, checksum) == ("ff02::1", "255", "0", "1", mac, "1")
    assert len(garps) >= 5, f"no burst of gratuitous ARP / unsolicited NA for the VIP: {garps}"
    first_advert = float(rows[0][0])
    assert all(0 <= float(g[0]) - first_advert < 0.5 for g in garps[:5]), (first_advert, garps)


INSTANCE_COUNTERS = ("ip_ttl_err", "chksum_err", "packet_len_err", "auth_failure", "authtype_mismatch",
                     "invalid_authtype", "version_mismatch", "version_err", "advert_interval_err",
                     "invalid_type_rcvd")


def _send(lab: Lab, script: Path, phase: str, *extra: str) -> dict[str, Any]:
    argv = [sys.executable, str(script), phase, str(lab.c.ipv4.ip), str(lab.r1.ipv4.ip), str(VIP4.ip), "72", *extra]
    out: dict[str, Any] = json.loads(lab.c.netns.run(argv, timeout_s=60).stdout)
    return out


def _socket_counters(peer: PyKeepalivedPeer) -> dict[str, int]:
    """The per-socket drop counters of our extended JSON dump (SIGRTMIN+2), summed over sockets."""
    counters: dict[str, int] = {}
    for errors in peer.extended_dump()["sockets"].values():
        for name, value in errors.items():
            counters[name] = counters.get(name, 0) + int(value)
    return counters


def _check_unchanged(ours: PyKeepalivedPeer, other: VrrpPeer | None, state: int, master_ip: str,
                     vip: IPv4Interface | IPv6Interface = VIP4) -> dict[str, Any]:
    assert ours.running(), ours.log()[-3000:]
    snap: dict[str, Any] = ours.snapshot()[0]
    assert snap["data"]["state"] == state, snap
    assert snap["data"]["master_ip"] == master_ip, snap  # an accepted 254 advert would name the client
    assert snap["stats"]["become_master"] == (1 if state == STATE_MASTER else 0), snap
    assert snap["stats"]["release_master"] == 0, snap
    if other is None:
        assert snap["stats"]["advert_rcvd"] == 0, snap  # alone on the LAN: nothing was valid
        wait_sole_holder(ours, [], vip, 0.1, 0.3)
    else:
        wait_sole_holder(other, [ours], vip, 0.1, 0.3)
    assert "Traceback" not in ours.log()
    return snap


def _check_counts(expected: dict[str, int], before: dict[str, int], after: dict[str, int],
                  sockets_before: dict[str, int], sockets_after: dict[str, int]) -> None:
    """Each counter grew by exactly what was sent: "instance:X" in the JSON dump, "socket:X" in the stats file."""
    for key, count in expected.items():
        where, counter = key.split(":")
        if where == "instance":
            assert after[counter] - before[counter] == count, (counter, count, after)
        else:
            assert sockets_after.get(counter, 0) - sockets_before.get(counter, 0) == count, \
                (counter, count, sockets_after)


@pytest.mark.parametrize("role", ["master", "backup"])
def test_hostile_packets_change_nothing_and_are_counted(lab: Lab, tmp_path: Path, role: str) -> None:
    def settings(priority: int) -> list[VrrpSettings]:
        return [VrrpSettings(vrid=72, priority=priority, vips=[VIP4], version=2, advert_int_s=1.0,
                             auth_pass="secret")]

    ours = lab.peer("py", lab.r1, settings(150 if role == "master" else 100))
    assert isinstance(ours, PyKeepalivedPeer)
    other: VrrpPeer | None = None
    if role == "backup":  # a real master (pykeepalived at 200 on r2) keeps ours in BACKUP
        other = lab.peer("py", lab.r2, settings(200))
        other.start()
    ours.start()
    if other is None:
        state, master_ip = STATE_MASTER, str(lab.r1.ipv4.ip)
        wait_until(lambda: ours.holds(VIP4.ip), down_interval(2, 150) + 2, what="our master")
    else:
        state, master_ip = STATE_BACKUP, str(lab.r2.ipv4.ip)
        wait_until(lambda: other.holds(VIP4.ip), down_interval(2, 200) + 2, what="the other master")
        wait_until(lambda: ours.snapshot()[0]["data"]["master_ip"] == master_ip, 2.0, what="ours heard r2")
    before = _check_unchanged(ours, other, state, master_ip)["stats"]
    assert all(before[c] == 0 for c in INSTANCE_COUNTERS), before
    sockets_before = _socket_counters(ours)

    script = Path(script_path("vrrp_sender4.py"))
    # one fault per packet, each twice to the group and twice to r1's address: exact counts
    expected: dict[str, int] = _send(lab, script, "cases")["expected"]
    time.sleep(0.3)
    snap = _check_unchanged(ours, other, state, master_ip)
    stats = snap["stats"]
    _check_counts(expected, before, stats, sockets_before, _socket_counters(ours))
    assert set(INSTANCE_COUNTERS) <= {k.split(":")[1] for k in expected if k.startswith("instance:")}

    # a few hundred random mutations of a valid priority-254 advert (fixed seed), none of them valid
    fuzzed = _send(lab, script, "fuzz")["sent"]
    assert sum(fuzzed.values()) == 500
    time.sleep(0.3)
    after = _check_unchanged(ours, other, state, master_ip)["stats"]
    assert sum(after[c] for c in INSTANCE_COUNTERS) > sum(stats[c] for c in INSTANCE_COUNTERS)

    if other is not None:
        # the real master dies while the client floods priority-254 faults: ours must still take over in time
        flood = lab.c.netns.popen([sys.executable, str(script), "flood", str(lab.c.ipv4.ip), str(lab.r1.ipv4.ip),
                                   str(VIP4.ip), "72", "30"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(0.5)
            other.kill()
            other.remove_vips()
            took = wait_sole_holder(ours, [other], VIP4, down_interval(2, 100) + 1.0, 1.0)
            print(f"takeover under flood: {took:.2f} s")
            assert flood.poll() is None, flood.communicate()[1]  # it flooded all along
        finally:
            flood.kill()
            flood.communicate(timeout=5)
        snap = ours.snapshot()[0]
        assert snap["data"]["state"] == STATE_MASTER and snap["stats"]["release_master"] == 0, snap
        assert ours.holds(VIP4.ip)
    assert ours.running()
    assert "Traceback" not in ours.log()


def test_hostile_ipv6_packets_change_nothing_and_are_counted(lab: Lab, tmp_path: Path) -> None:
    """VRRPv3 over IPv6, master alone: hop limit, checksum (IPv6 pseudo-header only), length, version, type,
    interval 0 and VRID faults from the client's link-local address, to ff02::12 and to r1's link-local."""
    ours = lab.peer("py", lab.r1, [VrrpSettings(vrid=74, priority=150, vips=[VIP6], version=3, advert_int_s=0.1)])
    assert isinstance(ours, PyKeepalivedPeer)
    ours.start()
    wait_until(lambda: ours.holds(VIP6.ip), down_interval(3, 150) + 2, what="our master")
    r1_ll = str(lab.r1.link_local())
    before = _check_unchanged(ours, None, STATE_MASTER, r1_ll, VIP6)["stats"]
    sockets_before = _socket_counters(ours)
    argv = [sys.executable, script_path("vrrp_sender6.py"), str(lab.c.link_local()), r1_ll, str(VIP6.ip), "74"]
    expected: dict[str, int] = json.loads(lab.c.netns.run(argv, timeout_s=60).stdout)
    time.sleep(0.3)
    after = _check_unchanged(ours, None, STATE_MASTER, r1_ll, VIP6)["stats"]
    _check_counts(expected, before, after, sockets_before, _socket_counters(ours))


# ------------------------------------------------------------------------------ 3. unicast
@needs_tshark
@pytest.mark.keepalived
@pytest.mark.parametrize("ours_role", ["high", "low"])
def test_unicast_peers_elect_fail_over_and_stay_unicast_on_the_wire(lab: Lab, tmp_path: Path,
                                                                     ours_role: str) -> None:
    def unicast(me: str, peer: str) -> list[str]:
        return [f"unicast_src_ip {me}", "unicast_peer {", f"    {peer}", "}"]

    a, b = str(lab.r1.ipv4.ip), str(lab.r2.ipv4.ip)
    ours_prio, theirs_prio = (150, 100) if ours_role == "high" else (100, 150)
    pcap = tmp_path / "unicast.pcap"
    dump = _capture(lab.r1, pcap, "ip proto 112")
    try:
        ours = lab.peer("py", lab.r1, [VrrpSettings(vrid=73, priority=ours_prio, vips=[VIP4], version=3,
                                                    advert_int_s=0.1, extra=unicast(a, b))])
        theirs = lab.peer("ka", lab.r2, [VrrpSettings(vrid=73, priority=theirs_prio, vips=[VIP4], version=3,
                                                      advert_int_s=0.1, extra=unicast(b, a))])
        high, low = (ours, theirs) if ours_role == "high" else (theirs, ours)
        low.start()
        high.start()
        wait_sole_holder(high, [low], VIP4, 3.0, 0.5)
        high.kill()
        high.remove_vips()
        took = wait_sole_holder(low, [high], VIP4, down_interval(3, 100) + 1.0, 0.5)
        print(f"unicast takeover after kill: {took:.2f} s")
    finally:
        stop_tcpdump(dump)
    rows = _tshark(pcap, "vrrp", ["ip.src", "ip.dst", "ip.ttl", "vrrp.version", "vrrp.virt_rtr_id", "vrrp.prio",
                                  "vrrp.checksum.status"])
    assert rows
    assert all(dst != "224.0.0.18" for _, dst, *_ in rows), "multicast advert in unicast mode"
    pairs = {(src, dst) for src, dst, *_ in rows}
    assert pairs == {(a, b), (b, a)}, pairs
    for src, _, ttl, ver, vrid, prio, checksum in rows:
        assert (ver, vrid) == ("3", "73")
        if src == a:  # ours
            assert (ttl, checksum) == ("255", "1"), rows
            assert prio in (str(ours_prio), "0")
    assert sum(1 for src, *_ in rows if src == a) >= 3
