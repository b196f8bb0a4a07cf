"""Stateless NAT's ICMP errors about a reply, through a real kernel: they reach the server that sent the reply.

A client's side hop that cannot pass a reply (VIP:80 -> client) sends "fragmentation
needed" (IPv6: "packet too big") to the VIP. Conntrack would translate it
for a NAT flow; a stateless one has no entry, so lvs/nft_stateless.py's
rules pick the server by the request's hash over the quoted client fields
and rewrite the error into one about that server's own reply (its address
and port inside, the checksum kept right). Three namespaces (client,
router, one holding the three real servers' addresses), the router's table
applied by NftablesBackend; the client sends a SYN and then such an error
for each of several client ports, and a packet socket on the servers' link
shows where each went. The lab tests (test_fast_paths.py) cover the errors
about a request; this covers the other direction, which no lab host sends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from pykeepalived.lab import unique_prefix
from pykeepalived.lab.netns import Netns

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

VIP4, VIP6 = "203.0.113.30", "2001:db8:30::30"
CLIENT4, CLIENT6 = "198.51.100.2", "2001:db8:51::2"
SERVERS4 = ("10.79.0.1", "10.79.0.2", "10.79.0.3")
SERVERS6 = ("fd00:79::1", "fd00:79::2", "fd00:79::3")
CLIENT_PORTS = tuple(range(40000, 40012))
VPORT, RPORT = 80, 8080  # the servers listen on another port: the inner source port is rewritten too

# in the router: one stateless mh-port service per family, left applied (no close: the table outlives the process)
APPLY = f"""
from pykeepalived.lvs.model import DesiredTable, Destination, VirtualService
from pykeepalived.lvs.nft import NftablesBackend
def service(name, vip, servers):
    return VirtualService(name, "address", vip, {VPORT}, "TCP", scheduler="mh", sched_flags=("mh-port",),
                          stateless=True, destinations=tuple(Destination(a, {RPORT}, 1) for a in servers))
NftablesBackend().apply_now(DesiredTable((service("v4", "{VIP4}", {SERVERS4!r}),
                                          service("v6", "{VIP6}", {SERVERS6!r}))))
"""

# on the servers' link: every TCP SYN and ICMP error that arrives, parsed, as JSON lines, for `seconds`
SNIFF = """
import ipaddress
import json
import socket
import struct
import sys
import time
def ones(data):
    data = data + b"\\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
sock.bind(("s0", 0))
sock.settimeout(0.2)
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    try:
        frame = sock.recv(4096)
    except TimeoutError:
        continue
    kind, pkt = struct.unpack("!H", frame[12:14])[0], frame[14:]
    if kind == 0x0800:
        hlen, proto, src, dst = (pkt[0] & 15) * 4, pkt[9], pkt[12:16], pkt[16:20]
        l4, alen, want, inner_at = pkt[hlen:], 4, (3, 4), 8
        summed = l4
    elif kind == 0x86DD:
        proto, src, dst, l4, alen, want, inner_at = pkt[6], pkt[8:24], pkt[24:40], pkt[40:], 16, (2, 0), 8
        summed = src + dst + struct.pack("!I3xB", len(l4), 58) + l4
    else:
        continue
    out = {"dst": str(ipaddress.ip_address(dst))}
    if proto == 6 and l4[13] & 0x12 == 0x02:
        out.update(kind="syn", sport=struct.unpack("!H", l4[0:2])[0], dport=struct.unpack("!H", l4[2:4])[0])
    elif proto in (1, 58) and (l4[0], l4[1]) == want:
        inner = l4[inner_at:]
        at = 12 if alen == 4 else 8
        ports = inner[(inner[0] & 15) * 4 if alen == 4 else 40:][:4]
        out.update(kind="error", sum_ok=ones(summed) == 0xFFFF,
                   inner_src=str(ipaddress.ip_address(inner[at:at + alen])),
                   inner_dst=str(ipaddress.ip_address(inner[at + alen:at + 2 * alen])),
                   inner_sport=struct.unpack("!H", ports[0:2])[0], inner_dport=struct.unpack("!H", ports[2:4])[0])
    else:
        continue
    print(json.dumps(out), flush=True)
"""

# in the client: per port, a SYN to the VIP (the request's hash picks a server), then an error about its reply
SEND = f"""
import ipaddress
import socket
import struct
import time
def ones(data):
    total = sum(struct.unpack(f"!{{len(data) // 2}}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total
def syn(family, client, vip, port):
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((client, port))
    try:
        sock.connect((vip, {VPORT}))
    except BlockingIOError:
        pass
    time.sleep(0.05)
    sock.close()
def reply_v4(client, vip, port):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 1500, 7, 0x4000, 60, 6, 0, ipaddress.ip_address(vip).packed,
                       ipaddress.ip_address(client).packed) + struct.pack("!HHI", {VPORT}, port, 1)
def reply_v6(client, vip, port):
    return struct.pack("!IHBB16s16s", 0x60000000, 1440, 6, 60, ipaddress.ip_address(vip).packed,
                       ipaddress.ip_address(client).packed) + struct.pack("!HHI", {VPORT}, port, 1)
icmp4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
icmp6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
for port in {CLIENT_PORTS!r}:
    syn(socket.AF_INET, "{CLIENT4}", "{VIP4}", port)
    message = bytearray(struct.pack("!BBHHH", 3, 4, 0, 0, 1400) + reply_v4("{CLIENT4}", "{VIP4}", port))
    struct.pack_into("!H", message, 2, ~ones(bytes(message)) & 0xFFFF)
    icmp4.sendto(bytes(message), ("{VIP4}", 0))
    syn(socket.AF_INET6, "{CLIENT6}", "{VIP6}", port)
    icmp6.sendto(struct.pack("!BBHI", 2, 0, 0, 1400) + reply_v6("{CLIENT6}", "{VIP6}", port), ("{VIP6}", 0))
    time.sleep(0.02)
"""


def _batch(ns: Netns, commands: str) -> None:
    subprocess.run(["ip", "-n", ns.name, "-batch", "-"], input=commands, text=True, check=True, timeout=30)


@pytest.fixture()
def hosts() -> Iterator[tuple[Netns, Netns, Netns]]:
    prefix = unique_prefix("sle")
    client, router, servers = (Netns(f"{prefix}-{role}") for role in ("c", "r", "s"))
    made: list[Netns] = []
    try:
        for ns in (client, router, servers):
            ns.create()
            made.append(ns)
        _batch(router, f"link set lo up\n"
                       f"link add r0 type veth peer name c0 netns {client.name}\n"
                       f"link add r1 type veth peer name s0 netns {servers.name}\n"
                       "link set r0 up\nlink set r1 up\n"
                       f"addr add 198.51.100.1/24 dev r0\naddr add {VIP4}/32 dev r0\naddr add 10.79.0.254/24 dev r1\n"
                       f"addr add 2001:db8:51::1/64 dev r0 nodad\naddr add {VIP6}/128 dev r0 nodad\n"
                       "addr add fd00:79::fe/64 dev r1 nodad\n")
        router.sysctl("net.ipv4.ip_forward", "1")
        router.sysctl("net.ipv6.conf.all.forwarding", "1")
        _batch(client, f"link set lo up\nlink set c0 up\naddr add {CLIENT4}/24 dev c0\n"
                       f"addr add {CLIENT6}/64 dev c0 nodad\nroute add default via 198.51.100.1\n"
                       "route add ::/0 via 2001:db8:51::1\n")
        _batch(servers, "link set lo up\nlink set s0 up\n"
                        + "".join(f"addr add {a}/24 dev s0\n" for a in SERVERS4)
                        + "".join(f"addr add {a}/64 dev s0 nodad\n" for a in SERVERS6)
                        + "route add default via 10.79.0.254\nroute add ::/0 via fd00:79::fe\n")
        yield client, router, servers
    finally:
        for ns in reversed(made):
            ns.delete()


def test_an_error_about_a_reply_reaches_the_server_of_its_flow_rewritten(hosts: tuple[Netns, Netns, Netns]) -> None:
    client, router, servers = hosts
    applied = subprocess.run(router.argv([sys.executable, "-c", APPLY]), capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    sniffer = subprocess.Popen(servers.argv([sys.executable, "-c", SNIFF, "6"]), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert sniffer.stdout is not None and sniffer.stdout.readline().strip() == "ready"
        sent = subprocess.run(client.argv([sys.executable, "-c", SEND]), capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        out, err = sniffer.communicate(timeout=30)
    finally:
        if sniffer.poll() is None:
            sniffer.kill()
            sniffer.wait()
    seen = [json.loads(line) for line in out.splitlines()]
    for client_addr, pool in ((CLIENT4, SERVERS4), (CLIENT6, SERVERS6)):
        syns = {p["sport"]: p["dst"] for p in seen if p["kind"] == "syn" and p["sport"] in CLIENT_PORTS
                and p["dport"] == RPORT and p["dst"] in pool}
        errors = [p for p in seen if p["kind"] == "error" and p["inner_dst"] == client_addr]
        assert set(syns) == set(CLIENT_PORTS), (client_addr, seen, err)
        assert len(set(syns.values())) > 1  # the ports spread over the servers: the pick is not a constant
        got = {e["inner_dport"]: e for e in errors}
        assert set(got) == set(CLIENT_PORTS), (client_addr, errors)
        for port, error in got.items():
            assert error["dst"] == syns[port], (port, error)  # the server the request went to
            assert error["inner_src"] == error["dst"] and error["inner_sport"] == RPORT  # its own reply inside
            assert error["sum_ok"], error
