"""The table dump codec: which tables the kernel listed, read from netlink bytes."""

from __future__ import annotations

import struct

import pytest

from pykeepalived.lvs.nft_handles import NFT_MSG_GETTABLE, NFT_MSG_NEWTABLE, NetlinkDumpError, parse, request


def attr(kind: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind) + value
    return raw + b"\0" * (-len(raw) % 4)


def table(family: int, name: str, handle: int) -> bytes:
    body = struct.pack("=BBH", family, 0, 0) + attr(1, name.encode() + b"\0") + attr(3, struct.pack(">I", 0)) \
        + attr(4, struct.pack(">Q", handle))
    return struct.pack("=IHHII", 16 + len(body), NFT_MSG_NEWTABLE, 2, 1, 0) + body


DONE = struct.pack("=IHHII", 20, 3, 2, 1, 0) + struct.pack("=i", 0)


def test_request_asks_for_a_dump_of_every_family() -> None:
    length, kind, flags, sequence, _ = struct.unpack_from("=IHHII", request(7))
    assert (length, kind, flags & 0x300, sequence) == (20, NFT_MSG_GETTABLE, 0x300, 7)
    assert request(7)[16] == 0  # NFPROTO_UNSPEC


def test_tables_are_read_with_family_name_and_handle_until_done() -> None:
    tables, done = parse(table(2, "pykeepalived_lvs", 5) + table(10, "pykeepalived_lvs", 9))
    assert (tables, done) == ([("ip", "pykeepalived_lvs", 5), ("ip6", "pykeepalived_lvs", 9)], False)
    assert parse(table(1, "filter", 1) + DONE) == ([("inet", "filter", 1)], True)


def test_an_error_or_a_cut_message_is_a_clear_error() -> None:
    error = struct.pack("=IHHII", 20, 2, 0, 1, 0) + struct.pack("=i", -1)
    with pytest.raises(NetlinkDumpError, match="refused"):
        parse(error)
    with pytest.raises(NetlinkDumpError, match="does not fit"):
        parse(table(2, "t", 1)[:-8])
