"""The ctnetlink dump parser on hand-made messages: tuples, states, the end of a dump, a refusal, bad bytes."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from pykeepalived.lvs import ctdump
from pykeepalived.lvs.ctdump import ConntrackDumpError, DumpDone, Entry, Tuple, parse

NESTED = 0x8000


def nla(kind: int, payload: bytes, nested: bool = False) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind | (NESTED if nested else 0)) + payload
    return raw + b"\0" * (-len(raw) % 4)


def tuple_attr(kind: int, proto: int, src: str, dst: str, sport: int, dport: int) -> bytes:
    v6 = ":" in src
    ip = (nla(3 if v6 else 1, ipaddress.ip_address(src).packed) + nla(4 if v6 else 2, ipaddress.ip_address(dst).packed))
    ports = nla(1, bytes([proto])) + nla(2, sport.to_bytes(2, "big")) + nla(3, dport.to_bytes(2, "big"))
    return nla(kind, nla(1, ip, True) + nla(2, ports, True), True)


def message(body: bytes, kind: int = (1 << 8) | 0) -> bytes:
    payload = struct.pack("=BBH", socket.AF_INET, 0, 0) + body
    return struct.pack("=IHHII", 16 + len(payload), kind, 2, 1, 0) + payload


def entry(client: str, vip: str, server: str, sport: int, state: int | None, proto: int = 6,
          info_kind: int = 1) -> bytes:
    body = tuple_attr(1, proto, client, vip, sport, 80) + tuple_attr(2, proto, server, client, 80, sport)
    body += nla(3, struct.pack(">I", 0x1A8))  # status, ignored
    if state is not None:
        body += nla(4, nla(info_kind, nla(1, bytes([state])), True), True)
    return message(body)


DONE = struct.pack("=IHHII", 20, 3, 2, 1, 0) + b"\0" * 4


def test_entries_carry_both_tuples_and_the_established_state() -> None:
    buf = entry("203.0.113.100", "203.0.113.10", "10.11.12.1", 40000, 3) + entry(
        "203.0.113.100", "203.0.113.10", "10.11.12.2", 40001, 7)
    got = list(parse(buf))
    assert got == [
        Entry(Tuple(6, "203.0.113.100", "203.0.113.10", 40000, 80), Tuple(6, "10.11.12.1", "203.0.113.100", 80, 40000),
              True),
        Entry(Tuple(6, "203.0.113.100", "203.0.113.10", 40001, 80), Tuple(6, "10.11.12.2", "203.0.113.100", 80, 40001),
              False),
    ]


def test_sctp_established_counts_udp_never_does_and_ipv6_reads() -> None:
    sctp = entry("203.0.113.100", "203.0.113.10", "10.11.12.1", 5, 3, proto=132, info_kind=3)
    udp = entry("203.0.113.100", "203.0.113.10", "10.11.12.1", 6, None, proto=17)
    v6 = entry("2001:db8::100", "2001:db8::10", "2001:db8:10::1", 7, 3)
    got = list(parse(sctp + udp + v6))
    assert [e.established for e in got] == [True, False, True]
    assert got[2].reply.saddr == "2001:db8:10::1"


def test_the_dump_ends_at_done_and_an_error_is_raised() -> None:
    parsed = parse(entry("203.0.113.100", "203.0.113.10", "10.11.12.1", 1, 3) + DONE)
    assert next(parsed).reply.saddr == "10.11.12.1"
    with pytest.raises(DumpDone):
        next(parsed)
    refusal = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -1) + b"\0" * 16
    with pytest.raises(ConntrackDumpError, match="not permitted"):
        list(parse(refusal))


@pytest.mark.parametrize("cut", [3, 17, 40, 90])
def test_truncated_or_garbled_buffers_end_quietly(cut: int) -> None:
    buf = entry("203.0.113.100", "203.0.113.10", "10.11.12.1", 1, 3)
    assert list(parse(buf[:cut])) == []
    assert len(list(parse(buf[:cut] + b"\xff" * 8))) <= 1


def test_the_request_asks_for_dnat_entries_only() -> None:
    req = ctdump.dump_request(socket.AF_INET6)
    length, kind, flags = struct.unpack_from("=IHH", req)
    assert (length, kind, flags) == (len(req), 0x101, 0x301)
    assert req[16] == socket.AF_INET6
    assert struct.pack(">I", 0x20) in req[20:]


def test_random_bytes_never_raise_anything_else() -> None:
    import random

    rng = random.Random(7)
    good = entry("203.0.113.100", "203.0.113.10", "10.11.12.1", 1, 3)
    for _ in range(2000):
        buf = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        try:
            list(parse(bytes(buf)))
        except (DumpDone, ConntrackDumpError):
            pass
