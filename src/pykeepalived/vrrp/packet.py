"""The VRRP advertisement codec (RFC 3768 for v2, RFC 5798 / RFC 9568 for v3), without I/O.

Why a module of its own, and a pure one: every byte rule of the protocol lives
here and nowhere else, so it can be tested exhaustively (known answers taken
from real keepalived packets, round trips and fuzzing) without sockets, root
or a clock. The socket layer hands us bytes plus the addresses the kernel saw;
we hand back an `Advert` or a `VrrpPacketError` whose `reason` names the
per-instance counter to bump, exactly as keepalived's `vrrp_check_packet`
would. Semantic checks that need the instance's configuration (VRID, TTL,
authentication, interval mismatch) belong to the state machine, not here.

Wire layout (both versions share the first four bytes and the checksum slot)::

    byte 0     version << 4 | type            (type 1 = ADVERTISEMENT)
    byte 1     Virtual Router ID
    byte 2     priority
    byte 3     count of addresses (naddr)
    bytes 4-5  v2: auth type (u8), advert interval in seconds (u8)
               v3: 4 reserved bits, 12-bit Max Advert Interval in centiseconds
    bytes 6-7  checksum
    then       naddr addresses (4 bytes each for IPv4, 16 for IPv6)
    then       v2 only: 8 bytes of authentication data

Checksums, and why there are several:

* v2: the Internet checksum over the PDU (header, addresses, auth data), no
  pseudo-header (RFC 3768 5.3.8).
* v3 over IPv6: with the IPv6 pseudo-header (RFC 8200 8.1), as every
  implementation does.
* v3 over IPv4: RFC 5798 asks for the IPv4 pseudo-header and keepalived sends
  it by default; Cisco, Juniper and RFC 9568 omit it (keepalived's
  `v3_checksum_as_v2`). keepalived before 1.3.6 put the multicast group, not
  the real unicast destination, in the pseudo-header. A receiver that wants to
  interoperate has to accept all of them, so `decode_advert` does.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from ..errors import PyKeepalivedError

IPAddress = IPv4Address | IPv6Address

VRRP_PROTOCOL = 112
"""IP protocol number of VRRP (IPv4 protocol / IPv6 next header)."""

VRRP_TTL = 255
"""TTL / hop limit every multicast advert is sent with and must arrive with (RFC 5798 5.1.1.3)."""

VRRP_MCAST_V4 = IPv4Address("224.0.0.18")
VRRP_MCAST_V6 = IPv6Address("ff02::12")

MAX_ADDRESSES = 255
"""The address count is one byte on the wire."""

VRRP_TYPE_ADVERTISEMENT = 1
"""The only VRRP packet type ever defined."""

HEADER_LEN = 8
AUTH_DATA_LEN = 8
V2_MAX_ADVERT_INT_S = 255
V3_MAX_ADVERT_INT_CS = 4095
IPV4_MIN_HEADER_LEN = 20

_HEADER = struct.Struct("!BBBBBBH")
"""vers/type, vrid, priority, naddr, byte 4, byte 5, checksum: bytes 4-5 differ between v2 and v3."""

_CHECKSUM_OFFSET = 6


class AuthType(enum.IntEnum):
    """VRRPv2 authentication types (RFC 2338; RFC 3768 removed all but NONE, keepalived keeps them)."""

    NONE = 0
    PASS = 1
    AH = 2


class DropReason(enum.Enum):
    """Why a received packet was dropped; value = the name of the per-instance counter.

    The values match keepalived's statistics names where keepalived has one,
    so that our stats dump reads like theirs. The decoder raises the first
    five; the state machine uses the rest, because they depend on the
    instance's configuration.
    """

    TRUNCATED = "packet_len_err"
    """Shorter than the header, address list or auth data says."""
    BAD_IP_HEADER = "ip_header_err"
    """IPv4 header malformed (IHL, version, tot_len larger than the data)."""
    BAD_VERSION = "version_err"
    """VRRP version neither 2 nor 3, or v2 over IPv6."""
    BAD_TYPE = "invalid_type_rcvd"
    """Type other than 1 (ADVERTISEMENT)."""
    BAD_CHECKSUM = "chksum_err"
    """The checksum verifies under no accepted convention."""
    BAD_TTL = "ip_ttl_err"
    WRONG_VRID = "vrid_err"
    BAD_ADVERT_INTERVAL = "advert_interval_err"
    AUTH_TYPE_MISMATCH = "authtype_mismatch"
    AUTH_FAILURE = "auth_failure"
    INVALID_AUTH_TYPE = "invalid_authtype"
    ADDRESS_LIST_MISMATCH = "addr_list_err"
    """Counted but, like keepalived, not a reason to drop."""
    WRONG_VERSION = "version_mismatch"
    """A valid packet, but not the version our instance runs."""


class VrrpPacketError(PyKeepalivedError):
    """A received packet that must be dropped, with the counter to bump and a line for the log.

    Received bytes are untrusted input: decoding them raises this and nothing
    else, so the receive loop needs exactly one `except`.
    """

    def __init__(self, reason: DropReason, detail: str) -> None:
        # Passing both to Exception keeps the error picklable and its repr useful.
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = " ".join(detail.split())

    def __str__(self) -> str:
        return f"{self.detail} ({self.reason.value})"


@dataclass(frozen=True)
class Advert:
    """One VRRP advertisement, version-neutral.

    `advert_int_cs` is always in centiseconds so that the state machine does
    one kind of arithmetic: v2 carries whole seconds on the wire (1..255,
    stored here times 100), v3 carries 12-bit centiseconds (1..4095).
    `auth_type`/`auth_data` exist only in v2; `auth_data` is 8 bytes on the
    wire, NUL padded or truncated when encoding, and returned by the decoder
    with the trailing NUL padding removed (it is a C string password).
    The decoder does not judge field values (VRID 0, interval 0, unknown auth
    type): those are for the state machine, which counts them.
    """

    version: int
    vrid: int
    priority: int
    advert_int_cs: int
    addresses: tuple[IPv4Address, ...] | tuple[IPv6Address, ...]
    auth_type: int = 0
    auth_data: bytes = b""


@dataclass(frozen=True)
class IPv4Datagram:
    """The parts of a received IPv4 datagram that VRRP checks (source, TTL, protocol) plus its payload."""

    src: IPv4Address
    dst: IPv4Address
    ttl: int
    protocol: int
    payload: bytes


def _ones_complement_sum(data: bytes) -> int:
    """The folded 16-bit one's complement sum of `data` (RFC 1071), odd length padded with a zero byte."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internet_checksum(data: bytes) -> int:
    """The Internet checksum of `data` (RFC 1071): the one's complement of its one's complement sum.

    Over data that already contains a correct checksum the result is 0, which
    is how received packets are verified.
    """
    return ~_ones_complement_sum(bytes(data)) & 0xFFFF


def _pseudo_header(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    """The IPv4 (RFC 768 style) or IPv6 (RFC 8200 8.1) pseudo-header for a VRRP PDU of `length` bytes."""
    if isinstance(src, IPv4Address):
        return src.packed + dst.packed + struct.pack("!BBH", 0, VRRP_PROTOCOL, length)
    return src.packed + dst.packed + struct.pack("!I3xB", length, VRRP_PROTOCOL)


def _family(src: IPAddress, dst: IPAddress) -> int:
    """4 or 6; a source and destination of different families is a caller bug, hence ValueError."""
    if isinstance(src, IPv4Address) and isinstance(dst, IPv4Address):
        return 4
    if isinstance(src, IPv6Address) and isinstance(dst, IPv6Address):
        return 6
    raise ValueError(f"source {src!r} and destination {dst!r} must both be IPv4Address or both IPv6Address")


def _is_byte(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFF


def _check_encodable(advert: Advert, family: int) -> None:
    """Refuse, with ValueError, any Advert that has no faithful wire form: a bug in the caller, not a packet."""
    if advert.version not in (2, 3):
        raise ValueError(f"VRRP version must be 2 or 3, not {advert.version!r}")
    if not (_is_byte(advert.vrid) and advert.vrid >= 1):
        raise ValueError(f"VRID must be 1..255, not {advert.vrid!r}")
    if not _is_byte(advert.priority):
        raise ValueError(f"priority must be 0..255, not {advert.priority!r}")
    if len(advert.addresses) > MAX_ADDRESSES:
        raise ValueError(f"at most {MAX_ADDRESSES} addresses fit in an advert, not {len(advert.addresses)}")
    want = IPv4Address if family == 4 else IPv6Address
    for address in advert.addresses:
        if not isinstance(address, want):
            raise ValueError(f"address {address!r} is not an IPv{family} address like the source")
    interval = advert.advert_int_cs
    if not isinstance(interval, int) or isinstance(interval, bool):
        raise ValueError(f"advert interval must be an int number of centiseconds, not {interval!r}")
    if advert.version == 2:
        if family != 4:
            raise ValueError("VRRP version 2 is IPv4 only")
        if interval % 100 or not 1 <= interval // 100 <= V2_MAX_ADVERT_INT_S:
            raise ValueError(f"a v2 advert interval must be a whole number of seconds 1..255, not {interval} cs")
        if not _is_byte(advert.auth_type):
            raise ValueError(f"auth type must be 0..255, not {advert.auth_type!r}")
        if not isinstance(advert.auth_data, bytes):
            raise ValueError(f"auth data must be bytes, not {advert.auth_data!r}")
    else:
        if not 1 <= interval <= V3_MAX_ADVERT_INT_CS:
            raise ValueError(f"a v3 advert interval must be 1..4095 cs, not {interval}")
        if advert.auth_type or advert.auth_data:
            raise ValueError("VRRP version 3 has no authentication fields")


def encode_advert(advert: Advert, src: IPAddress, dst: IPAddress, *, v3_pseudo_header: bool = True) -> bytes:
    """The VRRP PDU (no IP header) for `advert` sent from `src` to `dst`, checksum filled in.

    v2: checksum over the PDU including the 8 auth bytes, no pseudo-header.
    v3 over IPv6: always with the IPv6 pseudo-header. v3 over IPv4: with the
    IPv4 pseudo-header unless `v3_pseudo_header` is False (keepalived's
    `v3_checksum_as_v2`, the RFC 9568 way). `src` and `dst` must be the
    addresses the IP header will carry, since the pseudo-header covers them.

    Raises ValueError for an Advert that cannot be encoded: field out of range,
    addresses of another family than `src`, v2 over IPv6, more than 255
    addresses, a v2 interval that is not a whole second in 1..255 s, a v3
    interval outside 1..4095 cs, v3 with authentication.
    """
    family = _family(src, dst)
    _check_encodable(advert, family)
    if advert.version == 2:
        byte4, byte5 = advert.auth_type, advert.advert_int_cs // 100
        trailer = advert.auth_data[:AUTH_DATA_LEN].ljust(AUTH_DATA_LEN, b"\0")
    else:
        byte4, byte5 = advert.advert_int_cs >> 8, advert.advert_int_cs & 0xFF
        trailer = b""
    vers_type = advert.version << 4 | VRRP_TYPE_ADVERTISEMENT
    header = _HEADER.pack(vers_type, advert.vrid, advert.priority, len(advert.addresses), byte4, byte5, 0)
    pdu = header + b"".join(a.packed for a in advert.addresses) + trailer
    prefix = b""
    if advert.version == 3 and (family == 6 or v3_pseudo_header):
        prefix = _pseudo_header(src, dst, len(pdu))
    checksum = internet_checksum(prefix + pdu)
    return pdu[:_CHECKSUM_OFFSET] + struct.pack("!H", checksum) + pdu[_CHECKSUM_OFFSET + 2:]


def _checksum_prefixes(version: int, src: IPAddress, dst: IPAddress, length: int, *,
                       v3_pseudo_header: bool, accept_old_unicast: bool) -> list[bytes]:
    """The pseudo-headers a received PDU may have been checksummed with, our own convention first.

    v2 has none. v3 IPv6 has exactly one. v3 IPv4 peers differ (see the
    module docstring), so we accept: with the pseudo-header, without it, and
    for a unicast destination the pre-1.3.6 keepalived pseudo-header with the
    multicast group in place of the destination.
    """
    if version == 2:
        return [b""]
    with_pseudo = _pseudo_header(src, dst, length)
    if isinstance(src, IPv6Address):
        return [with_pseudo]
    prefixes = [with_pseudo, b""] if v3_pseudo_header else [b"", with_pseudo]
    if accept_old_unicast and not dst.is_multicast:
        prefixes.append(_pseudo_header(src, VRRP_MCAST_V4, length))
    return prefixes


def decode_advert(pdu: bytes, src: IPAddress, dst: IPAddress, *, v3_pseudo_header: bool = True,
                  accept_old_unicast: bool = True) -> Advert:
    """Parse and check a received VRRP PDU (no IP header) that came from `src` to `dst`.

    Checks, in keepalived's order: the length (the header, then naddr
    addresses and v2's auth data must fit; trailing bytes beyond that, such as
    Ethernet minimum-frame padding, are ignored and not checksummed), the
    version (2 or 3; v2 from an IPv6 source is BAD_VERSION), the type (1), the
    checksum. The address family of the addresses is that of `src`.

    For v3 over IPv4 a checksum valid under any convention is accepted (with
    or without pseudo-header, and if `accept_old_unicast` the pre-1.3.6
    keepalived unicast one), as keepalived auto-detects such peers;
    `v3_pseudo_header` only says which convention the error message quotes.

    Raises VrrpPacketError, and for any content of `pdu` nothing else.
    ValueError only if `src` and `dst` are of different families (a caller bug).
    """
    family = _family(src, dst)
    data = bytes(pdu)
    if len(data) < HEADER_LEN:
        raise VrrpPacketError(DropReason.TRUNCATED, f"VRRP packet of {len(data)} bytes is shorter than its header")
    vers_type, vrid, priority, naddr, byte4, byte5, checksum = _HEADER.unpack_from(data)
    version, kind = vers_type >> 4, vers_type & 0x0F
    if version not in (2, 3):
        raise VrrpPacketError(DropReason.BAD_VERSION, f"VRRP version {version} is neither 2 nor 3")
    if version == 2 and family == 6:
        raise VrrpPacketError(DropReason.BAD_VERSION, "VRRP version 2 over IPv6")
    address_len = 4 if family == 4 else 16
    expected = HEADER_LEN + naddr * address_len + (AUTH_DATA_LEN if version == 2 else 0)
    if len(data) < expected:
        raise VrrpPacketError(DropReason.TRUNCATED,
                              f"VRRP v{version} packet with {naddr} IPv{family} addresses needs {expected} bytes,"
                              f" got {len(data)}")
    if kind != VRRP_TYPE_ADVERTISEMENT:
        raise VrrpPacketError(DropReason.BAD_TYPE, f"VRRP packet type {kind}, expected {VRRP_TYPE_ADVERTISEMENT}")
    data = data[:expected]
    prefixes = _checksum_prefixes(version, src, dst, expected, v3_pseudo_header=v3_pseudo_header,
                                  accept_old_unicast=accept_old_unicast)
    if not any(_ones_complement_sum(prefix + data) == 0xFFFF for prefix in prefixes):
        zeroed = data[:_CHECKSUM_OFFSET] + b"\0\0" + data[_CHECKSUM_OFFSET + 2:]
        wanted = internet_checksum(prefixes[0] + zeroed)
        raise VrrpPacketError(DropReason.BAD_CHECKSUM,
                              f"invalid VRRP v{version} checksum 0x{checksum:04x}, expected 0x{wanted:04x}")
    body = data[HEADER_LEN:HEADER_LEN + naddr * address_len]
    addresses: tuple[IPv4Address, ...] | tuple[IPv6Address, ...]
    if family == 4:
        addresses = tuple(IPv4Address(body[i:i + 4]) for i in range(0, len(body), 4))
    else:
        addresses = tuple(IPv6Address(body[i:i + 16]) for i in range(0, len(body), 16))
    if version == 2:
        return Advert(version=2, vrid=vrid, priority=priority, advert_int_cs=byte5 * 100, addresses=addresses,
                      auth_type=byte4, auth_data=data[expected - AUTH_DATA_LEN:].rstrip(b"\0"))
    # RFC 5798 5.2.5: the 4 reserved bits are ignored on receipt.
    return Advert(version=3, vrid=vrid, priority=priority, advert_int_cs=(byte4 & 0x0F) << 8 | byte5,
                  addresses=addresses)


def parse_ipv4(datagram: bytes) -> IPv4Datagram:
    """Split what a raw IPv4 socket hands us (header + payload) into the fields VRRP checks and the payload.

    Checks version 4, IHL >= 5 and a total length that neither exceeds the
    data nor cuts into the header; the payload is data[IHL*4:tot_len], so
    link-layer padding after tot_len is dropped here. The header checksum is
    not verified: the kernel already did. Raises VrrpPacketError (TRUNCATED
    or BAD_IP_HEADER) and nothing else for any input.
    """
    data = bytes(datagram)
    if len(data) < IPV4_MIN_HEADER_LEN:
        raise VrrpPacketError(DropReason.TRUNCATED, f"IPv4 datagram of {len(data)} bytes is shorter than a header")
    version, ihl = data[0] >> 4, data[0] & 0x0F
    if version != 4:
        raise VrrpPacketError(DropReason.BAD_IP_HEADER, f"IP version {version} on an IPv4 socket")
    if ihl < 5:
        raise VrrpPacketError(DropReason.BAD_IP_HEADER, f"IPv4 header length {ihl * 4} bytes is below 20")
    (tot_len,) = struct.unpack_from("!H", data, 2)
    if tot_len > len(data):
        raise VrrpPacketError(DropReason.BAD_IP_HEADER,
                              f"IPv4 total length {tot_len} exceeds the {len(data)} bytes received")
    if ihl * 4 > tot_len:
        raise VrrpPacketError(DropReason.BAD_IP_HEADER,
                              f"IPv4 header length {ihl * 4} exceeds the total length {tot_len}")
    return IPv4Datagram(src=IPv4Address(data[12:16]), dst=IPv4Address(data[16:20]), ttl=data[8],
                        protocol=data[9], payload=data[ihl * 4:tot_len])


def decode_unicast_advert(pdu: bytes, src: IPAddress, dst: IPAddress, *, old_checksum: str,
                          old_group: IPAddress) -> tuple[Advert, bool]:
    """A received advert under old_unicast_checksum's rules; also says whether it had the old checksum.

    keepalived 2.2.7 before 1.3.6 checksummed unicast VRRPv3/IPv4 adverts with
    the multicast group (vrrp_mcast_group4) as the pseudo-header's destination.
    old_checksum "auto" (no keyword): the new checksum, else the old one (the
    caller then sends the old one too, as keepalived switches); "never": only
    the new one; "old" (the bare keyword): only the old one.
    """
    unicast_v4 = dst.version == 4 and not dst.is_multicast
    if old_checksum == "old" and unicast_v4:
        return decode_advert(pdu, src, old_group, accept_old_unicast=False), True
    try:
        return decode_advert(pdu, src, dst, accept_old_unicast=False), False
    except VrrpPacketError as exc:
        if exc.reason is not DropReason.BAD_CHECKSUM or old_checksum != "auto" or not unicast_v4:
            raise
        advert = decode_advert(pdu, src, old_group, accept_old_unicast=False)
        if advert.version != 3:
            raise
        return advert, True
