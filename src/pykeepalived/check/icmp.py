"""ICMP and ICMPv6 echo packets, and the kernel's ICMP error reports, as bytes in and values out.

Sans-IO so that PING_CHECK's matching (is this the reply to *our* echo, or an
error about it, or someone else's traffic?) and UDP_CHECK's reading of
IP_RECVERR reports are tested without sockets or privileges.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_ECHO_REQUEST = 8
ICMP_TIME_EXCEEDED = 11
ICMP6_DEST_UNREACH = 1
ICMP6_TIME_EXCEEDED = 3
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
IPPROTO_ICMP = 1
IPPROTO_ICMPV6 = 58

# linux/errqueue.h: where an IP_RECVERR report came from
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3
# cmsg levels and types of those reports (SOL_IP / IP_RECVERR, SOL_IPV6 / IPV6_RECVERR)
SOL_IP = 0
IP_RECVERR = 11
SOL_IPV6 = 41
IPV6_RECVERR = 25

_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err
IPV6_HEADER_LEN = 40

_UNREACH_NAMES = {
    False: {0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
            4: "fragmentation needed", 9: "network prohibited", 10: "host prohibited", 13: "administratively filtered"},
    True: {0: "no route to destination", 1: "administratively prohibited", 3: "address unreachable",
           4: "port unreachable", 5: "source address failed policy", 6: "reject route"},
}


class IcmpError(ValueError):
    """Bytes that are not the ICMP message they claim to be."""


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of data."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes, *, v6: bool) -> bytes:
    """An echo request. ICMPv4 carries its checksum; for ICMPv6 the kernel fills it in (it covers the IPv6 header)."""
    kind = ICMP6_ECHO_REQUEST if v6 else ICMP_ECHO_REQUEST
    unsummed = _HEADER.pack(kind, 0, 0, ident & 0xFFFF, seq & 0xFFFF) + payload
    if v6:
        return unsummed
    return _HEADER.pack(kind, 0, checksum(unsummed), ident & 0xFFFF, seq & 0xFFFF) + payload


@dataclass(frozen=True)
class EchoVerdict:
    """What a received packet says about our echo: answered, or an error that ends the wait."""

    ok: bool
    reason: str


def strip_ipv4_header(packet: bytes) -> bytes:
    """An IPv4 raw socket hands over the IP header too; the ICMP message starts after IHL words."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        raise IcmpError("not an IPv4 packet")
    start = (packet[0] & 0x0F) * 4
    if start < 20 or len(packet) < start:
        raise IcmpError("bad IPv4 header length")
    return packet[start:]


def judge_echo(message: bytes, ident: int, seq: int, *, v6: bool) -> EchoVerdict | None:
    """Our echo's fate from one ICMP message (IP header already removed); None when it is not about our echo.

    A reply must carry our identifier and sequence number. A destination
    unreachable or time exceeded counts only when it quotes our request
    (the original header it carries has our identifier and sequence).
    """
    if len(message) < _HEADER.size:
        return None
    kind, code, _, got_ident, got_seq = _HEADER.unpack_from(message)
    reply = ICMP6_ECHO_REPLY if v6 else ICMP_ECHO_REPLY
    if kind == reply:
        return EchoVerdict(True, "echo reply") if (got_ident, got_seq) == (ident & 0xFFFF, seq & 0xFFFF) else None
    if kind not in ((ICMP6_DEST_UNREACH, ICMP6_TIME_EXCEEDED) if v6 else (ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED)):
        return None
    quoted = _quoted_echo(message[_HEADER.size:], v6=v6)
    if quoted != (ident & 0xFFFF, seq & 0xFFFF):
        return None
    return EchoVerdict(False, describe_icmp_error(kind, code, v6=v6))


def _quoted_echo(original: bytes, *, v6: bool) -> tuple[int, int] | None:
    """(identifier, sequence) of the echo request an ICMP error quotes, if it quotes one."""
    try:
        if v6:
            if len(original) < IPV6_HEADER_LEN or original[6] != IPPROTO_ICMPV6:
                return None
            inner = original[IPV6_HEADER_LEN:]
            request = ICMP6_ECHO_REQUEST
        else:
            if len(original) < 20 or original[9] != IPPROTO_ICMP:
                return None
            inner = strip_ipv4_header(original)
            request = ICMP_ECHO_REQUEST
    except IcmpError:
        return None
    if len(inner) < _HEADER.size or inner[0] != request:
        return None
    _, _, _, ident, seq = _HEADER.unpack_from(inner)
    return ident, seq


def describe_icmp_error(kind: int, code: int, *, v6: bool) -> str:
    """A log-friendly name for an ICMP error type and code."""
    unreach = ICMP6_DEST_UNREACH if v6 else ICMP_DEST_UNREACH
    if kind == unreach:
        name = _UNREACH_NAMES[v6].get(code, "destination unreachable")
    elif kind == (ICMP6_TIME_EXCEEDED if v6 else ICMP_TIME_EXCEEDED):
        name = "time exceeded"
    else:
        name = "ICMP error"
    return f"{name} (ICMP{'v6' if v6 else ''} type {kind} code {code})"


@dataclass(frozen=True)
class ErrorReport:
    """One IP_RECVERR / IPV6_RECVERR report (struct sock_extended_err) from a socket's error queue."""

    errno: int
    origin: int
    kind: int
    code: int

    @property
    def v6(self) -> bool:
        return self.origin == SO_EE_ORIGIN_ICMP6

    @property
    def is_unreachable(self) -> bool:
        """What UDP_CHECK counts as failure: an ICMP(v6) destination unreachable, of any code."""
        if self.origin == SO_EE_ORIGIN_ICMP:
            return self.kind == ICMP_DEST_UNREACH
        return self.origin == SO_EE_ORIGIN_ICMP6 and self.kind == ICMP6_DEST_UNREACH

    def describe(self) -> str:
        if self.origin in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6):
            return describe_icmp_error(self.kind, self.code, v6=self.v6)
        return f"local error (errno {self.errno})"


def error_reports(ancillary: list[tuple[int, int, bytes]]) -> list[ErrorReport]:
    """The extended error reports among recvmsg(MSG_ERRQUEUE)'s ancillary data."""
    reports: list[ErrorReport] = []
    for level, kind, data in ancillary:
        if (level, kind) not in ((SOL_IP, IP_RECVERR), (SOL_IPV6, IPV6_RECVERR)) or len(data) < _EXTENDED_ERR.size:
            continue
        err, origin, icmp_type, icmp_code, _, _, _ = _EXTENDED_ERR.unpack_from(data)
        reports.append(ErrorReport(err, origin, icmp_type, icmp_code))
    return reports
