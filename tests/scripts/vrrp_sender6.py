"""Crafted VRRPv3 packets over IPv6 from the client's link-local address, one fault each.

argv: src r1_link_local vip vrid; prints {"instance:counter"|"socket:counter": count}
(tests/netns/test_vrrp_wire.py).
"""

import json
import socket
import struct
import sys
from collections import Counter
from ipaddress import ip_address
from pykeepalived.vrrp.packet import Advert, encode_advert, internet_checksum

src, r1, vip, vrid = ip_address(sys.argv[1]), sys.argv[2], ip_address(sys.argv[3]), int(sys.argv[4])
GROUP = "ff02::12"
ifindex = socket.if_nametoindex("eth0")

def advert(dst, **kw):
    base = dict(version=3, vrid=vrid, priority=254, advert_int_cs=10, addresses=(vip,))
    base.update(kw)
    return encode_advert(Advert(**base), src, ip_address(dst))

def pseudo(dst, length):
    return src.packed + ip_address(dst).packed + struct.pack("!I3xB", length, 112)

def patched(dst, prefix=True, checksum_dst=None, **bytes_at):
    p = bytearray(advert(dst))
    for offset, value in bytes_at.items():
        p[int(offset[1:])] = value
    p[6:8] = b"\0\0"
    head = pseudo(checksum_dst or dst, len(p)) if prefix else b""
    p[6:8] = struct.pack("!H", internet_checksum(head + bytes(p)))
    return bytes(p)

other_dst = {GROUP: r1, r1: GROUP}
CASES = {
    "hop64": ("ip_ttl_err", "instance", lambda d: advert(d), 64),
    "hop1": ("ip_ttl_err", "instance", lambda d: advert(d), 1),
    "checksum": ("chksum_err", "instance", lambda d: advert(d)[:6] + bytes([advert(d)[6] ^ 0xFF]) + advert(d)[7:],
                 255),
    "checksum_no_pseudo_header": ("chksum_err", "instance", lambda d: patched(d, prefix=False), 255),
    "checksum_other_dst": ("chksum_err", "instance", lambda d: patched(d, checksum_dst=other_dst[d]), 255),
    "v2_over_ipv6": ("version_err", "instance", lambda d: patched(d, b0=0x21), 255),
    "version4": ("version_err", "instance", lambda d: patched(d, b0=0x41), 255),
    "type2": ("invalid_type_rcvd", "instance", lambda d: patched(d, b0=0x32), 255),
    "interval0": ("advert_interval_err", "instance", lambda d: patched(d, b4=0, b5=0), 255),
    "vrid_other": ("vrid_err", "socket", lambda d: advert(d, vrid=vrid % 255 + 1), 255),
    "one_byte": ("packet_len_err", "socket", lambda d: advert(d)[:1], 255),
}
for n in range(2, 24):  # a v3 IPv6 advert with one address is 24 bytes
    CASES[f"cut{n}"] = ("packet_len_err", "instance", lambda d, n=n: advert(d)[:n], 255)

s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
s.bind((str(src), 0, 0, ifindex))
expected = Counter()
for name, (counter, where, build, hops) in CASES.items():
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, hops)
    for d in (GROUP, r1):
        for _ in range(2):
            s.sendto(build(d), (d, 0, 0, ifindex))
            expected[f"{where}:{counter}"] += 1
print(json.dumps(expected))
