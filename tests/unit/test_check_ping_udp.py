"""PING_CHECK's ICMP packets and matching, UDP_CHECK's reply patterns and error reports - no sockets."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykeepalived.check import icmp, ping, udp
from pykeepalived.check.icmp import (
    EchoVerdict,
    ErrorReport,
    checksum,
    echo_request,
    error_reports,
    judge_echo,
    strip_ipv4_header,
)
from pykeepalived.check.outcomes import DEFAULT_UDP_PAYLOAD, ReplyPattern, parse_reply_pattern, udp_reply_matches
from pykeepalived.check.probe import Target
from pykeepalived.check.context import ProbeContext, UnsupportedChecker
from pykeepalived.config.model import RealServer, UdpCheck, VirtualServer


# --------------------------------------------------------------------------- ICMP packets
def test_checksum_of_rfc1071_example() -> None:
    # RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2 (one's complement 220d)
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


@settings(deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=200))
def test_ipv4_echo_request_checksums_to_zero(ident: int, seq: int, payload: bytes) -> None:
    packet = echo_request(ident, seq, payload, v6=False)
    assert packet[0] == icmp.ICMP_ECHO_REQUEST and checksum(packet) == 0
    assert struct.unpack("!HH", packet[4:8]) == (ident, seq) and packet[8:] == payload


def test_ipv6_echo_request_leaves_checksum_to_the_kernel() -> None:
    packet = echo_request(0x1234, 7, b"abc", v6=True)
    assert packet == bytes([128, 0, 0, 0, 0x12, 0x34, 0, 7]) + b"abc"


def test_echo_payload_is_keepalived_filler() -> None:
    assert len(ping.ECHO_PAYLOAD) == 128 and ping.ECHO_PAYLOAD.startswith(b"keepalived check - keepalived")
    assert DEFAULT_UDP_PAYLOAD == b"keepalived check - keepalived ch"


def _reply(ident: int, seq: int, *, v6: bool = False, kind: int | None = None) -> bytes:
    kind = kind if kind is not None else (icmp.ICMP6_ECHO_REPLY if v6 else icmp.ICMP_ECHO_REPLY)
    return struct.pack("!BBHHH", kind, 0, 0, ident, seq) + b"data"


def _ipv4(payload: bytes, proto: int = 1, ihl: int = 5) -> bytes:
    header = bytes([0x40 | ihl, 0]) + struct.pack("!H", 20 + len(payload)) + bytes(5) + bytes([proto]) + bytes(10)
    return header + bytes(4 * (ihl - 5)) + payload


def _ipv6(payload: bytes, next_header: int = 58) -> bytes:
    return bytes([0x60, 0, 0, 0]) + struct.pack("!H", len(payload)) + bytes([next_header, 64]) + bytes(32) + payload


def test_reply_must_carry_our_identifier_and_sequence() -> None:
    assert judge_echo(_reply(5, 9), 5, 9, v6=False) == EchoVerdict(True, "echo reply")
    assert judge_echo(_reply(5, 8), 5, 9, v6=False) is None
    assert judge_echo(_reply(6, 9), 5, 9, v6=False) is None
    assert judge_echo(_reply(5, 9, v6=True), 5, 9, v6=True) == EchoVerdict(True, "echo reply")
    assert judge_echo(_reply(5, 9, v6=True), 5, 9, v6=False) is None  # type 129 means nothing in ICMPv4
    assert judge_echo(_reply(5, 9, kind=icmp.ICMP_ECHO_REQUEST), 5, 9, v6=False) is None  # a request seen on lo
    assert judge_echo(b"\0\0\0", 5, 9, v6=False) is None


def test_raw_ipv4_header_is_stripped_by_its_length() -> None:
    assert strip_ipv4_header(_ipv4(b"icmp")) == b"icmp"
    assert strip_ipv4_header(_ipv4(b"icmp", ihl=6)) == b"icmp"
    with pytest.raises(icmp.IcmpError):
        strip_ipv4_header(b"\x60" + bytes(40))
    with pytest.raises(icmp.IcmpError):
        strip_ipv4_header(b"\x45")


def test_unreachable_quoting_our_echo_ends_the_wait() -> None:
    request = echo_request(5, 9, b"x" * 16, v6=False)
    error = struct.pack("!BBHI", icmp.ICMP_DEST_UNREACH, 13, 0, 0) + _ipv4(request)[:28]
    verdict = judge_echo(error, 5, 9, v6=False)
    assert verdict is not None and not verdict.ok and "administratively filtered" in verdict.reason
    assert judge_echo(error, 5, 10, v6=False) is None  # about another echo
    other_proto = struct.pack("!BBHI", icmp.ICMP_DEST_UNREACH, 1, 0, 0) + _ipv4(request, proto=17)[:28]
    assert judge_echo(other_proto, 5, 9, v6=False) is None


def test_ipv6_unreachable_quoting_our_echo_ends_the_wait() -> None:
    request = echo_request(5, 9, b"x" * 16, v6=True)
    error = struct.pack("!BBHI", icmp.ICMP6_DEST_UNREACH, 3, 0, 0) + _ipv6(request)
    verdict = judge_echo(error, 5, 9, v6=True)
    assert verdict == EchoVerdict(False, "address unreachable (ICMPv6 type 1 code 3)")
    assert judge_echo(struct.pack("!BBHI", 1, 3, 0, 0) + _ipv6(request, next_header=17), 5, 9, v6=True) is None
    exceeded = struct.pack("!BBHI", icmp.ICMP6_TIME_EXCEEDED, 0, 0, 0) + _ipv6(request)
    assert judge_echo(exceeded, 5, 9, v6=True) == EchoVerdict(False, "time exceeded (ICMPv6 type 3 code 0)")


def test_raw_socket_filters_pass_only_replies_and_errors() -> None:
    (mask,) = struct.unpack("=I", ping.icmp_filter((0, 3, 11)))
    assert [t for t in range(32) if not mask & (1 << t)] == [0, 3, 11]
    words = struct.unpack("=8I", ping.icmp6_filter((1, 3, 129)))
    assert [t for t in range(256) if not words[t >> 5] & (1 << (t & 31))] == [1, 3, 129]


# --------------------------------------------------------------------------- UDP error reports
def _extended_err(errno_: int, origin: int, kind: int, code: int) -> bytes:
    return struct.pack("=IBBBBII", errno_, origin, kind, code, 0, 0, 0) + bytes(16)  # + the offender's address


def test_error_reports_from_ip_recverr_ancillary_data() -> None:
    ancillary = [
        (icmp.SOL_IP, icmp.IP_RECVERR, _extended_err(111, icmp.SO_EE_ORIGIN_ICMP, 3, 3)),
        (icmp.SOL_IPV6, icmp.IPV6_RECVERR, _extended_err(113, icmp.SO_EE_ORIGIN_ICMP6, 3, 0)),
        (1, 29, b"\0" * 16),  # something else (a timestamp)
        (icmp.SOL_IP, icmp.IP_RECVERR, b"short"),
    ]
    reports = error_reports(ancillary)
    assert reports == [ErrorReport(111, 2, 3, 3), ErrorReport(113, 3, 3, 0)]
    assert reports[0].is_unreachable and reports[0].describe() == "port unreachable (ICMP type 3 code 3)"
    assert not reports[1].is_unreachable  # time exceeded: keepalived lets it pass
    assert ErrorReport(113, icmp.SO_EE_ORIGIN_ICMP6, 1, 4).is_unreachable
    assert not ErrorReport(90, 1, 0, 0).is_unreachable  # local origin
    assert ErrorReport(90, 1, 0, 0).describe() == "local error (errno 90)"


# --------------------------------------------------------------------------- UDP reply patterns
@pytest.mark.parametrize(
    ("text", "data", "ignore"),
    [
        ("Ab12f 3 456 546443123", "ab120f0345065464431203", "0000000000000000000000"),  # the man page's example
        ("68656c6c6f", "68656c6c6f", "0000000000"),
        ("  68\t65 ", "6865", "0000"),
        ("4X x5 X", "40 05 00", "0f f0 0f"),
    ],
)
def test_reply_pattern_is_keepalived_free_form_hex(text: str, data: str, ignore: str) -> None:
    assert parse_reply_pattern(text) == ReplyPattern(bytes.fromhex(data), bytes.fromhex(ignore))


@pytest.mark.parametrize("text", ["", "   ", "6g", "zz", "6\t8"])  # a tab right after a digit is no separator
def test_invalid_reply_pattern_checks_no_content(text: str) -> None:
    assert parse_reply_pattern(text) is None


@pytest.mark.parametrize(
    ("reply", "pattern", "min_len", "max_len", "ok"),
    [
        (b"hello", "68656c", 0, 255, True),  # prefix
        (b"he", "68656c6c6f", 0, 255, True),  # compared over the shorter length only
        (b"help", "68656c6c6f", 0, 255, False),
        (b"hello", "6X 6X", 0, 255, True),
        (b"hello", "7X", 0, 255, False),
        (b"hello", "68", 6, 255, False),
        (b"hello", "68", 0, 4, False),
        (b"", "68", 0, 255, True),  # an empty reply matches any pattern (keepalived compares 0 bytes)
        (b"x" * 300, None, 0, 255, True),  # without a pattern keepalived checks no length either
        (b"", None, 5, 255, True),
    ],
)
def test_reply_matching(reply: bytes, pattern: str | None, min_len: int, max_len: int, ok: bool) -> None:
    parsed = parse_reply_pattern(pattern) if pattern is not None else None
    assert udp_reply_matches(reply, parsed, min_len, max_len) is ok


def test_udp_probe_from_config() -> None:
    target = Target(ipaddress.ip_address("2001:db8::2"), 53, 2.0)
    ctx = ProbeContext(VirtualServer(kind="address"), RealServer(ipaddress.ip_address("2001:db8::2"), 53))
    probe = udp.make_probe(UdpCheck(kind="UDP_CHECK", require_reply=True, reply_pattern="0a X"), target, ctx)
    assert (probe.payload, probe.require_reply, probe.pattern) == (
        DEFAULT_UDP_PAYLOAD, True, ReplyPattern(b"\x0a\x00", b"\x00\x0f"))
    probe = udp.make_probe(UdpCheck(kind="UDP_CHECK", payload=b"hi", min_reply_length=3, max_reply_length=9),
                           target, ctx)
    assert (probe.payload, probe.require_reply, probe.pattern, probe.min_length, probe.max_length) == (
        b"hi", False, None, 3, 9)
    with pytest.raises(UnsupportedChecker, match="needs a port"):
        udp.make_probe(UdpCheck(kind="UDP_CHECK"), Target(target.address, None, 2.0), ctx)
