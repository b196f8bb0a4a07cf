"""Crafted VRRPv2 packets from the client, with the IP header ours (IPPROTO_RAW = IP_HDRINCL).

argv: phase src r1 vip vrid [seconds]; prints what it sent as JSON (tests/netns/test_vrrp_wire.py).
"""

import json
import random
import socket
import struct
import sys
import time
from collections import Counter
from ipaddress import ip_address
from pykeepalived.vrrp.packet import Advert, encode_advert, internet_checksum

phase, src, r1, vip, vrid = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
SRC, VIP = ip_address(src), ip_address(vip)
GROUP = "224.0.0.18"
DESTS = (GROUP, r1)
PASSWORD = b"secret"

def advert(dst, **kw):
    base = dict(version=2, vrid=vrid, priority=254, advert_int_cs=100, addresses=(VIP,),
                auth_type=1, auth_data=PASSWORD)
    base.update(kw)
    if base["version"] == 3:
        base.pop("auth_type")
        base.pop("auth_data")
    return encode_advert(Advert(**base), SRC, ip_address(dst))

def patched(dst, **bytes_at):
    # a valid v2 advert with some bytes overwritten, checksum recomputed: one fault, right checksum
    p = bytearray(advert(dst))
    for offset, value in bytes_at.items():
        p[int(offset[1:])] = value
    p[6:8] = b"\0\0"
    p[6:8] = struct.pack("!H", internet_checksum(bytes(p)))
    return bytes(p)

def ip_header(payload, dst, ttl):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0xc0, 20 + len(payload), 0, 0, ttl, 112, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    return hdr[:10] + struct.pack("!H", internet_checksum(hdr)) + hdr[12:]

s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")

def send(payload, ttl, dst):
    s.sendto(ip_header(payload, dst, ttl) + payload, (dst, 0))

def would_be_accepted(p, ttl):
    # an oracle of its own (not the daemon's decoder): would a v2 instance with VRID `vrid`, PASS
    # "secret" and 1 s take this as a valid advert? Such a packet may rightly change the state.
    if ttl != 255 or len(p) < 8 or p[0] != 0x21 or p[1] != vrid:
        return False
    end = 8 + 4 * p[3] + 8
    if len(p) < end or p[4] != 1 or p[5] != 1 or p[end - 8:end] != PASSWORD.ljust(8, b"\0"):
        return False
    words = sum(struct.unpack(f"!{end // 2}H", p[:end]))
    while words >> 16:
        words = (words & 0xFFFF) + (words >> 16)
    return words == 0xFFFF

def flip(p):  # a wrong checksum: its first byte inverted
    return p[:6] + bytes([p[6] ^ 0xFF]) + p[7:]

# name -> (counter, where it is counted, payload for a destination, TTL)
CASES = {
    "ttl64": ("ip_ttl_err", "instance", lambda d: advert(d), 64),
    "ttl254": ("ip_ttl_err", "instance", lambda d: advert(d), 254),
    "ttl1": ("ip_ttl_err", "instance", lambda d: advert(d), 1),
    "checksum": ("chksum_err", "instance", lambda d: flip(advert(d)), 255),
    "checksum0": ("chksum_err", "instance", lambda d: advert(d)[:6] + b"\0\0" + advert(d)[8:], 255),
    "naddr5": ("packet_len_err", "instance", lambda d: patched(d, b3=5), 255),
    "password": ("auth_failure", "instance", lambda d: advert(d, auth_data=b"wrong"), 255),
    "password_prefix": ("auth_failure", "instance", lambda d: advert(d, auth_data=b"secre"), 255),
    "password_longer": ("auth_failure", "instance", lambda d: advert(d, auth_data=b"secretXY"), 255),
    "auth_none": ("authtype_mismatch", "instance", lambda d: advert(d, auth_type=0, auth_data=b""), 255),
    "auth_ah": ("authtype_mismatch", "instance", lambda d: advert(d, auth_type=2), 255),
    "auth_type3": ("invalid_authtype", "instance", lambda d: advert(d, auth_type=3), 255),
    "auth_type255": ("invalid_authtype", "instance", lambda d: advert(d, auth_type=255), 255),
    "v3": ("version_mismatch", "instance", lambda d: advert(d, version=3), 255),
    "version0": ("version_err", "instance", lambda d: patched(d, b0=0x01), 255),
    "version1": ("version_err", "instance", lambda d: patched(d, b0=0x11), 255),
    "version4": ("version_err", "instance", lambda d: patched(d, b0=0x41), 255),
    "version15": ("version_err", "instance", lambda d: patched(d, b0=0xF1), 255),
    "interval3": ("advert_interval_err", "instance", lambda d: advert(d, advert_int_cs=300), 255),
    "interval255": ("advert_interval_err", "instance", lambda d: advert(d, advert_int_cs=25500), 255),
    "interval0": ("advert_interval_err", "instance", lambda d: patched(d, b5=0), 255),
    "type0": ("invalid_type_rcvd", "instance", lambda d: patched(d, b0=0x20), 255),
    "type2": ("invalid_type_rcvd", "instance", lambda d: patched(d, b0=0x22), 255),
    "type15": ("invalid_type_rcvd", "instance", lambda d: patched(d, b0=0x2F), 255),
    "vrid_other": ("vrid_err", "socket", lambda d: advert(d, vrid=vrid % 255 + 1), 255),
    "vrid0": ("vrid_err", "socket", lambda d: patched(d, b1=0), 255),
    "empty": ("packet_len_err", "socket", lambda d: b"", 255),
    "one_byte": ("packet_len_err", "socket", lambda d: advert(d)[:1], 255),
}
for n in range(2, 20):  # the VRID is there (so it is the instance's), the rest is cut short
    CASES[f"cut{n}"] = ("packet_len_err", "instance", lambda d, n=n: advert(d)[:n], 255)
for d in DESTS:
    assert would_be_accepted(advert(d), 255)  # the oracle knows a good packet
    for name, (_, _, build, ttl) in CASES.items():
        assert not would_be_accepted(build(d), ttl), name

REPEAT = 2
if phase == "cases":
    expected = Counter()
    for name, (counter, where, build, ttl) in CASES.items():
        for d in DESTS:
            for _ in range(REPEAT):
                send(build(d), ttl, d)
                expected[f"{where}:{counter}"] += 1
    print(json.dumps({"expected": expected, "cases": sorted(CASES)}))
elif phase == "fuzz":
    rng = random.Random(20261125)
    sent = Counter()
    while sum(sent.values()) < 500:
        d = rng.choice(DESTS)
        ttl = rng.choice([255, 255, 255, 1, 64])
        kind = rng.choice(["flip", "flip", "cut", "extend", "random"])
        p = bytearray(advert(d, priority=rng.choice([254, 255, 200, 1, 0])))
        if kind == "flip":
            for _ in range(rng.randint(1, 3)):
                p[rng.randrange(len(p))] ^= rng.randrange(1, 256)
        elif kind == "cut":
            p = p[:rng.randrange(len(p))]
        elif kind == "extend":
            p += bytes(rng.randrange(256) for _ in range(rng.randint(1, 60)))
            p[rng.randrange(len(p))] ^= rng.randrange(1, 256)
        else:
            p = bytearray(rng.randrange(256) for _ in range(rng.randint(0, 80)))
        if would_be_accepted(bytes(p), ttl):
            continue  # a valid advert may rightly change the state: not hostile input
        send(bytes(p), ttl, d)
        sent[kind] += 1
    print(json.dumps({"sent": sent}))
elif phase == "flood":
    # every priority-254 fault with a right checksum, over and over: none may reset a backup's timer
    seconds = float(sys.argv[6])
    flood = [n for n in CASES if not n.startswith(("cut", "empty", "one_byte", "naddr"))]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for name in flood:
            _, _, build, ttl = CASES[name]
            for d in DESTS:
                send(build(d), ttl, d)
        time.sleep(0.05)
