"""Which nftables tables exist, with their handles: one netlink dump of the tables alone.

The nftables backend checks every half second that its table is still the
one it made (nft.py, `repair`). libnftables 1.0.6 answers `list tables` from
a full cache, fetching every rule and set element first: 0.6-1 s once a
Maglev map holds 65,521 slots, paid again after every change. The kernel
itself answers NFT_MSG_GETTABLE with a few hundred bytes whatever the rules,
so the backend asks it directly: this module is the codec (`request`,
`parse`; pure, unit-tested on bytes), nft.py's `table_handles` the socket.

It also holds the nfnetlink pieces the other codecs share (nft_modulus'
rule dump, nft_elements' batches): the families' numbers, an attribute
written and walked, a dump asked for and split into its messages.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

NETLINK_NETFILTER = 12
NFT_MSG_NEWTABLE = 10 << 8  # NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE: how the dump answers
NFT_MSG_GETTABLE = NFT_MSG_NEWTABLE | 1
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NFTA_TABLE_NAME, NFTA_TABLE_HANDLE = 1, 4
NFPROTO = {"inet": 1, "ip": 2, "arp": 3, "netdev": 5, "bridge": 7, "ip6": 10}  # nftables family -> NFPROTO_*
FAMILIES = {number: name for name, number in NFPROTO.items()}
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
_NFGEN = struct.Struct("=BBH")  # nfgenmsg: family, version, resource id
NFGEN_SIZE = _NFGEN.size  # what a message's attributes follow, after its nlmsghdr
_ATTR = struct.Struct("=HH")  # nlattr: length, type
NLA_TYPE_MASK = 0x3FFF  # an attribute's type without its NESTED and BYTEORDER flags
NLA_F_NESTED = 0x8000


class NetlinkDumpError(OSError):
    """The kernel refused or broke off the dump (its errno, when it said one)."""


def nla(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    size = _ATTR.size + len(payload)
    return _ATTR.pack(size, kind) + payload + b"\0" * (-size & 3)


def attributes(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type with its flags, offset of the value in `data`, value) of each attribute; NetlinkDumpError if one
    overruns `data`."""
    at = 0
    while at + _ATTR.size <= len(data):
        size, attr = _ATTR.unpack_from(data, at)
        if size < _ATTR.size or at + size > len(data):
            raise NetlinkDumpError(f"netlink attribute of {size} bytes at offset {at} does not fit")
        yield attr, at + _ATTR.size, data[at + _ATTR.size:at + size]
        at += (size + 3) & ~3


def dump_request(message: int, sequence: int, family: int = 0, body: bytes = b"") -> bytes:
    """A dump request of type `message` (subsystem included) for `family` (0: all), `body` its attributes."""
    payload = _NFGEN.pack(family, 0, 0) + body
    return _HEADER.pack(_HEADER.size + len(payload), message, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0) + payload


def request(sequence: int) -> bytes:
    """A dump request for the tables of every family."""
    return dump_request(NFT_MSG_GETTABLE, sequence)


def dump_messages(data: bytes, what: str) -> tuple[list[tuple[int, bytes]], bool]:
    """(type, body after the nlmsghdr) of each message in one datagram of a dump, and whether the dump ended.

    Raises NetlinkDumpError on an error message or a message that does not
    fit (`what` names the dump: "table", "rule").
    """
    messages: list[tuple[int, bytes]] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _, _, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            raise NetlinkDumpError(f"netlink message of {length} bytes at offset {offset} does not fit")
        if kind == NLMSG_DONE:
            return messages, True
        if kind == NLMSG_ERROR:
            errno = -struct.unpack_from("=i", data, offset + _HEADER.size)[0]
            if errno:
                raise NetlinkDumpError(errno, f"the kernel refused the {what} dump: {errno}")
        else:
            messages.append((kind, data[offset + _HEADER.size:offset + length]))
        offset += (length + 3) & ~3
    return messages, False


def parse(data: bytes) -> tuple[list[tuple[str, str, int]], bool]:
    """(family, name, handle) of each table in one datagram of the dump, and whether the dump ended.

    Raises NetlinkDumpError on an error message or a message that does not fit.
    """
    tables: list[tuple[str, str, int]] = []
    messages, done = dump_messages(data, "table")
    for kind, body in messages:
        if kind != NFT_MSG_NEWTABLE or len(body) < _NFGEN.size:
            continue
        family = _NFGEN.unpack_from(body)[0]
        name, handle = None, None
        for attr, _, value in attributes(body[_NFGEN.size:]):
            if attr & NLA_TYPE_MASK == NFTA_TABLE_NAME:
                name = value.split(b"\0", 1)[0].decode("utf-8", "replace")
            elif attr & NLA_TYPE_MASK == NFTA_TABLE_HANDLE and len(value) == 8:
                handle = struct.unpack(">Q", value)[0]
        if name is not None and handle is not None and family in FAMILIES:
            tables.append((FAMILIES[family], name, handle))
    return tables, done
