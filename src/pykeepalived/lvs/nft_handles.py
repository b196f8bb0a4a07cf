"""Which nftables tables exist, with their handles: one netlink dump of the tables alone.

The nftables backend checks every half second that its table is still the
one it made (nft.py, `repair`). libnftables 1.0.6 answers `list tables` from
a full cache, fetching every rule and set element first: 0.6-1 s once a
Maglev map holds 65,521 slots, paid again after every change. The kernel
itself answers NFT_MSG_GETTABLE with a few hundred bytes whatever the rules,
so the backend asks it directly: this module is the codec (`request`,
`parse`; pure, unit-tested on bytes), nft.py's `table_handles` the socket.
"""

from __future__ import annotations

import struct

NETLINK_NETFILTER = 12
NFT_MSG_NEWTABLE = 10 << 8  # NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE: how the dump answers
NFT_MSG_GETTABLE = NFT_MSG_NEWTABLE | 1
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NFTA_TABLE_NAME, NFTA_TABLE_HANDLE = 1, 4
FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}  # NFPROTO_*
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
_NFGEN = struct.Struct("=BBH")  # nfgenmsg: family, version, resource id


class NetlinkDumpError(OSError):
    """The kernel refused or broke off the dump (its errno, when it said one)."""


def request(sequence: int) -> bytes:
    """A dump request for the tables of every family."""
    body = _NFGEN.pack(0, 0, 0)
    return _HEADER.pack(_HEADER.size + len(body), NFT_MSG_GETTABLE, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0) + body


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
        at = _NFGEN.size
        while at + 4 <= len(body):
            size, attr = struct.unpack_from("=HH", body, at)
            if size < 4 or at + size > len(body):
                raise NetlinkDumpError(f"netlink attribute of {size} bytes at offset {at} does not fit")
            value = body[at + 4:at + size]
            if attr & 0x3FFF == NFTA_TABLE_NAME:
                name = value.split(b"\0", 1)[0].decode("utf-8", "replace")
            elif attr & 0x3FFF == NFTA_TABLE_HANDLE and len(value) == 8:
                handle = struct.unpack(">Q", value)[0]
            at += (size + 3) & ~3
        if name is not None and handle is not None and family in FAMILIES:
            tables.append((FAMILIES[family], name, handle))
    return tables, done
