"""DNS_CHECK: the query keepalived sends, its verdict on replies, and the probe against loopback fakes."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import struct
import time
from collections.abc import Callable
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykeepalived.check.dns import DEFAULT_PORT, DnsProbe, make_probe
from pykeepalived.check.dns_wire import DnsQueryError, DnsVerdict, Ignored, build_query, check_reply
from pykeepalived.check.probe import Target
from pykeepalived.config.model import DnsCheck

# --- the query -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "qname"), [(".", "."), ("", "."), ("example.com", "example.com."),
                                             ("example.com.", "example.com.")])
def test_query_is_keepalived_s(name: str, qname: str) -> None:
    query = build_query(name, "soa")
    message = dns.message.from_wire(query.wire(0xBEEF))
    assert message.id == 0xBEEF
    assert message.flags == dns.flags.RD  # a query, recursion desired, nothing else
    assert message.edns < 0  # no OPT record
    assert [(q.name.to_text(), q.rdtype, q.rdclass) for q in message.question] == [
        (qname, dns.rdatatype.SOA, dns.rdataclass.IN)
    ]
    assert (query.name, query.query_type) == (qname, "SOA")


def test_each_attempt_gets_its_own_id() -> None:
    query = build_query("example.com", "A")
    assert query.wire(1)[:2] == b"\x00\x01" and query.wire(0xFFFF)[:2] == b"\xff\xff"
    assert query.wire(1)[2:] == query.wire(2)[2:]


@pytest.mark.parametrize(("name", "qtype"), [("a..b", "A"), ("x" * 64 + ".com", "A"), ("example.com", "BOGUS"),
                                             (".leading", "A")])
def test_unusable_names_and_types_are_config_errors(name: str, qtype: str) -> None:
    with pytest.raises(DnsQueryError, match="DNS_CHECK cannot query"):
        build_query(name, qtype)


# --- the verdict -----------------------------------------------------------------------------------------------


def reply(query_id: int, rcode: dns.rcode.Rcode = dns.rcode.NOERROR, answers: int = 1) -> bytes:
    query = dns.message.from_wire(build_query("www.example.test", "A").wire(query_id))
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    for i in range(answers):
        response.answer.append(dns.rrset.from_text("www.example.test.", 60, "IN", "A", f"192.0.2.{i + 1}"))
    return response.to_wire()


def test_noerror_is_healthy_with_or_without_answers() -> None:
    assert check_reply(7, reply(7)) == DnsVerdict(True)
    assert check_reply(7, reply(7, answers=0)) == DnsVerdict(True)  # keepalived does not look at ANCOUNT


@pytest.mark.parametrize(("rcode", "text"), [(dns.rcode.NXDOMAIN, "NXDOMAIN"), (dns.rcode.REFUSED, "REFUSED"),
                                             (dns.rcode.SERVFAIL, "SERVFAIL"), (dns.rcode.FORMERR, "FORMERR")])
def test_an_error_rcode_fails(rcode: dns.rcode.Rcode, text: str) -> None:
    verdict = DnsVerdict(False, f"server answered {text} (rcode {int(rcode)})")
    assert check_reply(9, reply(9, rcode, answers=0)) == verdict


def test_other_datagrams_are_ignored_as_keepalived_does() -> None:
    assert check_reply(1, b"\x00\x01\x80") == Ignored("3-byte datagram, too short for a DNS header")
    assert check_reply(1, reply(2)) == Ignored("reply id 2 is not the query's 1")
    assert check_reply(5, build_query("x", "A").wire(5)) == Ignored("a query, not a response")


def test_a_body_that_does_not_parse_fails() -> None:
    header_ok = struct.pack("!HHHHHH", 3, 0x8180, 1, 0, 0, 0)
    verdict = check_reply(3, header_ok + b"\x05ab")
    assert isinstance(verdict, DnsVerdict) and not verdict.ok and verdict.reason.startswith("malformed reply: ")
    verdict = check_reply(3, reply(3) + b"junk")
    assert isinstance(verdict, DnsVerdict) and not verdict.ok


@given(st.binary(max_size=600))
def test_no_datagram_makes_the_verdict_raise(body: bytes) -> None:
    data = struct.pack("!HH", 42, 0x8000) + body
    outcome = check_reply(42, data)
    assert isinstance(outcome, (DnsVerdict, Ignored))


def test_mangled_real_replies_never_raise() -> None:
    rng = random.Random(1)
    good = bytearray(reply(11, answers=3))
    for _ in range(2000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(4, len(data))] = rng.randrange(256)
        outcome = check_reply(11, bytes(data[: rng.randint(12, len(data))]))
        assert isinstance(outcome, (DnsVerdict, Ignored))


# --- the probe against loopback fakes --------------------------------------------------------------------------

Responder = Callable[[bytes], list[bytes]]


class FakeServer(asyncio.DatagramProtocol):
    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        for out in self.respond(data):
            self.transport.sendto(out, addr)


def answer_with(rcode: dns.rcode.Rcode) -> Responder:
    def respond(data: bytes) -> list[bytes]:
        response = dns.message.make_response(dns.message.from_wire(data))
        response.set_rcode(rcode)
        return [response.to_wire()]
    return respond


def unused_udp_port() -> int:
    """A port nothing listens on any more: the kernel answers a datagram to it with ICMP port unreachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def run_probe(port: int, timeout_s: float) -> tuple[bool, str, float]:
    probe = make_probe(DnsCheck(kind="DNS_CHECK", name="www.example.test", query_type="A"),
                       Target(ipaddress.ip_address("127.0.0.1"), port, timeout_s), None)
    start = time.monotonic()
    result = await probe.run()
    return result.ok, result.reason, time.monotonic() - start


async def probe_fake(respond: Responder, timeout_s: float) -> tuple[bool, str, float]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: FakeServer(respond), local_addr=("127.0.0.1", 0))
    try:
        return await run_probe(transport.get_extra_info("sockname")[1], timeout_s)
    finally:
        transport.close()


def test_probe_succeeds_on_noerror() -> None:
    ok, reason, _ = asyncio.run(probe_fake(answer_with(dns.rcode.NOERROR), 2.0))
    assert (ok, reason) == (True, "")


def test_probe_fails_on_nxdomain() -> None:
    ok, reason, _ = asyncio.run(probe_fake(answer_with(dns.rcode.NXDOMAIN), 2.0))
    assert (ok, reason) == (False, "server answered NXDOMAIN (rcode 3)")


def test_probe_skips_stray_datagrams_before_the_reply() -> None:
    def respond(data: bytes) -> list[bytes]:
        wrong_id = bytes([data[0] ^ 0xFF]) + data[1:]
        return [b"junk", wrong_id, *answer_with(dns.rcode.NOERROR)(data)]

    ok, reason, _ = asyncio.run(probe_fake(respond, 2.0))
    assert (ok, reason) == (True, "")


def test_probe_times_out_on_silence_and_says_what_it_ignored() -> None:
    ok, reason, elapsed = asyncio.run(probe_fake(lambda data: [b"xx"], 0.3))
    assert (ok, reason) == (False, "no reply within 0.3 s (ignored: 2-byte datagram, too short for a DNS header)")
    assert 0.3 <= elapsed < 0.8


def test_probe_fails_at_once_when_nothing_listens() -> None:
    ok, reason, elapsed = asyncio.run(run_probe(unused_udp_port(), 2.0))
    assert (ok, reason) == (False, "query failed: Connection refused")
    assert elapsed < 1.0


def test_make_probe_defaults_port_53() -> None:
    probe = make_probe(DnsCheck(kind="DNS_CHECK"), Target(ipaddress.ip_address("192.0.2.1"), None, 1.0), None)
    assert isinstance(probe, DnsProbe) and probe.target.port == DEFAULT_PORT
    assert (probe.query.name, probe.query.query_type) == (".", "SOA")

