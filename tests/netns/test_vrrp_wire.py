"""What pykeepalived puts on the wire, and what it does with hostile input.

- tshark (Wireshark's dissector, an independent decoder) reads our captured
  adverts as valid VRRP: version, type, VRID, priority, addresses, TTL or hop
  limit 255, checksum good; and sees the gratuitous ARP / unsolicited NA.
- Crafted packets sent at a running instance (wrong TTL, checksum, length,
  password, auth type, VRID, version, interval, type, and a few hundred random
  mutations of a valid higher-priority advert) change neither its state nor who
  holds the VIP, never crash it, and show up in its counters.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import PyKeepalivedPeer, VrrpSettings, wait_until
from pykeepalived.lab.topology import Host

from .vrrp_helpers import VIP4, VIP6, Lab, lab_fixture, needs_root, wait_sole_holder

pytestmark = [pytest.mark.netns, needs_root]
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None or shutil.which("tcpdump") is None,
                                  reason="tshark and tcpdump needed")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "vw")


def _capture(host: Host, pcap: Path, bpf: str) -> subprocess.Popen[bytes]:
    proc = host.netns.popen(["tcpdump", "-i", "eth0", "-U", "-n", "-w", str(pcap), bpf])
    wait_until(lambda: pcap.exists() and pcap.stat().st_size > 0, 5.0, what="tcpdump started")
    return proc


def _tshark(pcap: Path, display_filter: str, fields: list[str]) -> list[list[str]]:
    argv = ["tshark", "-r", str(pcap), "-o", "vrrp.v3_checksum_as_in_v2:FALSE", "-Y", display_filter,
            "-T", "fields", "-E", "separator=|", *[x for f in fields for x in ("-e", f)]]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


@needs_tshark
@pytest.mark.parametrize(("version", "family"), [(2, 4), (3, 4), (3, 6)])
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
        time.sleep(2.2 if version == 2 else 0.5)
    finally:
        dump.terminate()
        dump.wait(5)
    addr_field = "vrrp.ip_addr" if family == 4 else "vrrp.ipv6_addr"
    ttl_field = "ip.ttl" if family == 4 else "ipv6.hlim"
    rows = _tshark(pcap, "vrrp", ["vrrp.version", "vrrp.type", "vrrp.virt_rtr_id", "vrrp.prio",
                                  "vrrp.checksum.status", ttl_field, addr_field, "vrrp.auth_type",
                                  "vrrp.adver_int", "vrrp.short_adver_int"])
    assert len(rows) >= 2, rows
    for ver, kind, vrid, prio, checksum, ttl, addresses, auth, adv_v2, adv_v3 in rows:
        assert (ver, kind, vrid, prio, ttl) == (str(version), "1", "71", "150", "255")
        assert checksum == "1"  # Wireshark's checksum status: 0 bad, 1 good, 2 unverified
        assert str(vip.ip) in addresses.split(",")
        if version == 2:
            assert (auth, adv_v2) == ("1", "1")
        else:
            assert adv_v3 == "10"
    if family == 4:
        garps = _tshark(pcap, f"arp.isgratuitous == 1 && arp.src.proto_ipv4 == {vip.ip}", ["arp.opcode"])
    else:
        garps = _tshark(pcap, f"icmpv6.type == 136 && icmpv6.nd.na.target_address == {vip.ip}",
                        ["icmpv6.nd.na.flag.o"])
    assert garps, "no gratuitous ARP / unsolicited NA for the VIP"


SENDER = textwrap.dedent(r"""
    import json, random, socket, struct, sys
    from ipaddress import ip_address
    from pykeepalived.vrrp.packet import Advert, encode_advert, internet_checksum

    src, dst_unicast, vip, vrid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    SRC, VIP = ip_address(src), ip_address(vip)
    GROUP = "224.0.0.18"

    def advert(**kw):
        base = dict(version=2, vrid=vrid, priority=254, advert_int_cs=100, addresses=(VIP,),
                    auth_type=1, auth_data=b"secret")
        base.update(kw)
        return encode_advert(Advert(**base), SRC, ip_address(GROUP))

    def ip_header(payload, dst, ttl=255, proto=112):
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0xc0, 20 + len(payload), 0, 0, ttl, proto, 0,
                          socket.inet_aton(src), socket.inet_aton(dst))
        csum = internet_checksum(hdr)
        return hdr[:10] + struct.pack("!H", csum) + hdr[12:]

    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # we write the IP header
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")

    def send(payload, ttl=255, dst=GROUP):
        s.sendto(ip_header(payload, dst, ttl) + payload, (dst, 0))

    good = advert()
    cases = {
        "ttl": (good, 64),
        "checksum": (good[:6] + bytes([good[6] ^ 0xFF]) + good[7:], 255),
        "truncated": (good[:5], 255),
        "password": (advert(auth_data=b"wrong"), 255),
        "auth_type": (advert(auth_type=0, auth_data=b""), 255),
        "vrid": (advert(vrid=vrid + 1 if vrid < 255 else 1), 255),
        "version": (encode_advert(Advert(version=3, vrid=vrid, priority=254, advert_int_cs=100, addresses=(VIP,)),
                                  SRC, ip_address(GROUP)), 255),
        "interval": (advert(advert_int_cs=300), 255),
    }
    bad_type = bytearray(good); bad_type[0] = 0x22; bad_type[6:8] = b"\0\0"
    bad_type[6:8] = struct.pack("!H", internet_checksum(bytes(bad_type)))
    cases["type"] = (bytes(bad_type), 255)
    for name, (payload, ttl) in cases.items():
        for dst in (GROUP, dst_unicast):
            for _ in range(3):
                send(payload, ttl, dst)
    rng = random.Random(20261125)
    # mutations that leave a packet invalid (a valid advert may rightly change the state):
    # changed bytes (the checksum then fails), cuts, and padding with a broken checksum
    for _ in range(400):
        p = bytearray(good)
        kind = rng.randrange(3)
        if kind == 0:
            p[rng.randrange(len(p))] ^= rng.randrange(1, 256)
        elif kind == 1:
            p = p[:rng.randrange(len(p))]
        else:
            p += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
            p[7] ^= rng.randrange(1, 256)
        send(bytes(p), rng.choice([255, 255, 1, 64]), rng.choice([GROUP, dst_unicast]))
    for _ in range(200):
        send(bytes(rng.randrange(256) for _ in range(rng.randint(0, 80))))
    print(json.dumps(sorted(cases)))
""")


@pytest.mark.parametrize("role", ["master", "backup"])
def test_hostile_packets_change_nothing_and_are_counted(lab: Lab, tmp_path: Path, role: str) -> None:
    ours_priority = 150 if role == "master" else 100
    ours = lab.peer("py", lab.r1, [VrrpSettings(vrid=72, priority=ours_priority, vips=[VIP4], version=2,
                                                auth_pass="secret")])
    assert isinstance(ours, PyKeepalivedPeer)
    other = None
    if role == "backup":  # a real master keeps ours in BACKUP
        other = lab.peer("py", lab.r2, [VrrpSettings(vrid=72, priority=200, vips=[VIP4], version=2,
                                                     auth_pass="secret")])
        other.start()
        wait_until(lambda: other.holds(VIP4.ip), 6.0, what="the other master")
    ours.start()
    if role == "master":
        wait_until(lambda: ours.holds(VIP4.ip), 6.0, what="our master")
    else:
        time.sleep(1.5)
    state_before = ours.snapshot()[0]["data"]["state"]
    assert state_before == (2 if role == "master" else 1)

    script = tmp_path / "sender.py"
    script.write_text(SENDER)
    sent = lab.c.netns.run([sys.executable, str(script), str(lab.c.ipv4.ip), str(lab.r1.ipv4.ip), str(VIP4.ip), "72"],
                           timeout_s=60)
    assert json.loads(sent.stdout)
    time.sleep(1.5)  # a dropped priority-254 advert must not have stopped our timers or adverts

    assert ours.running()
    snap = ours.snapshot()[0]
    assert snap["data"]["state"] == state_before
    if role == "master":
        wait_sole_holder(ours, [], VIP4, 0.1, 2.5)
    else:
        assert other is not None
        wait_sole_holder(other, [ours], VIP4, 0.1, 2.5)
    stats = snap["stats"]
    for counter in ("ip_ttl_err", "chksum_err", "packet_len_err", "auth_failure", "authtype_mismatch",
                    "version_mismatch", "advert_interval_err", "invalid_type_rcvd"):
        assert stats[counter] > 0, (counter, stats)
    assert "Traceback" not in ours.log()
    # packets for a VRID this router does not run are not the instance's: they are counted per socket
    stats_file = ours.dir / "state.stats"
    ours.signal(signal.SIGUSR2)
    wait_until(stats_file.exists, 3.0, what="stats file")
    assert "vrid_err" in stats_file.read_text().split("Socket", 1)[-1]
