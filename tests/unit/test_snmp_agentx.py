"""The AgentX codec (snmp/agentx.py): RFC 2741's layouts byte by byte, round trips, malformed input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykeepalived.snmp.agentx import (AgentxError, Close, CloseReason, Flag, Framer, Get, GetBulk, GetNext, Notify,
                                      Open, Other, Packet, PduType, Ping, Register, Response, SearchRange,
                                      Unregister, ValueType, VarBind, decode, encode)


def header(pdu_type: int, flags: int, session: int, transaction: int, packet: int, length: int) -> bytes:
    return struct.pack("!BBBxIIII", 1, pdu_type, flags | 0x10, session, transaction, packet, length)


def test_open_pdu_bytes_follow_rfc_2741_6_2_1() -> None:
    raw = encode(Packet(Open(5, (1, 3, 6, 1, 4, 1, 9586), b"ka"), packet_id=7))
    oid = struct.pack("!BBBB", 2, 4, 0, 0) + struct.pack("!II", 1, 9586)  # prefix 4 stands for 1.3.6.1.4
    payload = struct.pack("!B3x", 5) + oid + struct.pack("!I", 2) + b"ka\0\0"
    assert raw == header(1, 0, 0, 0, 7, len(payload)) + payload
    assert decode(raw).body == Open(5, (1, 3, 6, 1, 4, 1, 9586), b"ka")


def test_a_getnext_from_the_master_in_little_endian_is_read() -> None:
    # master agents may send host byte order (NETWORK_BYTE_ORDER clear): read it as such
    start = struct.pack("<BBBB", 3, 2, 1, 0) + struct.pack("<III", 1, 207, 1)  # 1.3.6.1.2.1.207.1, include
    end = struct.pack("<BBBB", 0, 0, 0, 0)
    payload = start + end
    raw = struct.pack("<BBBxIIII", 1, 6, 0, 9, 10, 11, len(payload)) + payload
    packet = decode(raw)
    assert packet.body == GetNext((SearchRange((1, 3, 6, 1, 2, 1, 207, 1), (), True),))
    assert (packet.session_id, packet.transaction_id, packet.packet_id) == (9, 10, 11)


def test_response_varbinds_of_every_type() -> None:
    name = (1, 3, 6, 1, 4, 1, 9586, 100, 5, 2, 3, 1, 2, 1)
    varbinds = (VarBind(ValueType.INTEGER, name, -3), VarBind(ValueType.OCTET_STRING, name, b"VI_1\xff"),
                VarBind(ValueType.OBJECT_IDENTIFIER, name, (1, 3, 6, 1, 2, 1, 207)),
                VarBind(ValueType.IP_ADDRESS, name, b"\xc0\x00\x02\x0a"), VarBind(ValueType.COUNTER32, name, 2**32 - 1),
                VarBind(ValueType.GAUGE32, name, 7), VarBind(ValueType.TIME_TICKS, name, 100),
                VarBind(ValueType.COUNTER64, name, 2**64 - 1), VarBind(ValueType.NULL, name),
                VarBind(ValueType.NO_SUCH_OBJECT, name), VarBind(ValueType.NO_SUCH_INSTANCE, name),
                VarBind(ValueType.END_OF_MIB_VIEW, name))
    raw = encode(Packet(Response(12, 0, 0, varbinds), 1, 2, 3))
    assert decode(raw).body == Response(12, 0, 0, varbinds)
    # the first varbind by hand: type 2, reserved, OID with prefix 4, an Integer
    first = raw[20 + 8:20 + 8 + 4 + 4 + 4 * 9 + 4]
    assert first[:4] == struct.pack("!HH", 2, 0) and first[-4:] == struct.pack("!i", -3)


def test_octet_strings_are_padded_to_four_bytes() -> None:
    raw = encode(Packet(Notify((VarBind(ValueType.OCTET_STRING, (1, 3), b"abcde"),))))
    assert len(raw) % 4 == 0 and raw.endswith(b"abcde\0\0\0")


def test_context_sets_the_flag_and_comes_first() -> None:
    raw = encode(Packet(Ping(b"ctx")))
    assert raw[2] & Flag.NON_DEFAULT_CONTEXT and raw[20:] == struct.pack("!I", 3) + b"ctx\0"
    assert decode(raw).body == Ping(b"ctx")


def test_register_with_a_range() -> None:
    body = Register((1, 3, 6, 1, 2, 1, 2, 2, 1, 1), 5, 127, 10, 22)
    assert decode(encode(Packet(body))).body == body


def test_set_phases_are_kept_raw() -> None:
    raw = header(PduType.COMMIT_SET, 0, 1, 2, 3, 0)
    packet = decode(raw)
    assert packet.body == Other(b"") and packet.type == PduType.COMMIT_SET


@pytest.mark.parametrize("raw, why", [
    (b"\x01\x05", "header is 20 bytes"),
    (struct.pack("!BBBxIIII", 2, 5, 0x10, 0, 0, 0, 0), "version 2"),
    (struct.pack("!BBBxIIII", 1, 99, 0x10, 0, 0, 0, 0), "unknown PDU type 99"),
    (struct.pack("!BBBxIIII", 1, 5, 0x10, 0, 0, 0, 3), "multiple of 4"),
    (header(5, 0, 0, 0, 0, 4) + struct.pack("!BBBB", 5, 0, 0, 0), "ends 20 bytes early"),
    (header(5, 0, 0, 0, 0, 8) + struct.pack("!BBBB", 200, 0, 0, 0) + b"\0" * 4, "200 sub-identifiers"),
    (header(5, 0, 0, 0, 0, 4) + struct.pack("!BBBB", 0, 0, 2, 0), "include byte 2"),
    (header(12, 0, 0, 0, 0, 8) + struct.pack("!HH", 99, 0) + struct.pack("!BBBB", 0, 0, 0, 0), "unknown value type"),
    (header(12, 0, 0, 0, 0, 12) + struct.pack("!HH", 4, 0) + struct.pack("!BBBB", 0, 0, 0, 0)
     + struct.pack("!I", 99), "runs past"),
    (header(2, 0, 0, 0, 0, 4) + struct.pack("!B3x", 77), "close reason 77"),
    (header(13, 0, 0, 0, 0, 4) + b"\0" * 4, "left over"),
    (header(13, 0, 0, 0, 0, 8), "got 0"),
])
def test_malformed_pdus_raise_agentx_error(raw: bytes, why: str) -> None:
    with pytest.raises(AgentxError, match=why):
        decode(raw)


def test_framer_splits_a_stream_and_drops_malformed_ones() -> None:
    good = encode(Packet(Ping(), 1, 0, 1))
    bad = header(12, 0, 0, 0, 0, 8) + struct.pack("!HH", 99, 0) + struct.pack("!BBBB", 0, 0, 0, 0)
    framer = Framer()
    stream = good + bad + good
    packets = []
    for i in range(0, len(stream), 7):  # arbitrary cuts
        packets += framer.feed(stream[i:i + 7])
    assert [p.body for p in packets] == [Ping(), Ping()] and framer.malformed == 1
    assert "unknown value type" in framer.last_error and not framer.broken


def test_framer_gives_up_on_an_absurd_length() -> None:
    framer = Framer()
    assert framer.feed(struct.pack("!BBBxIIII", 1, 5, 0x10, 0, 0, 0, 2**31)) == []
    assert framer.broken and framer.malformed == 1


def test_values_out_of_range_are_refused_when_built() -> None:
    with pytest.raises(AgentxError):
        VarBind(ValueType.INTEGER, (1,), 2**31)
    with pytest.raises(AgentxError):
        VarBind(ValueType.IP_ADDRESS, (1,), b"\0")
    with pytest.raises(AgentxError):
        VarBind(ValueType.NULL, (1,), 1)


# ---------------------------------------------------------------- round trips
oids = st.lists(st.integers(0, 2**32 - 1), max_size=20).map(tuple)
internet_oids = st.tuples(st.integers(1, 255), oids).map(lambda t: (1, 3, 6, 1, t[0], *t[1]))
any_oid = st.one_of(oids, internet_oids)
varbinds = st.one_of(
    st.builds(VarBind, st.just(ValueType.INTEGER), any_oid, st.integers(-(2**31), 2**31 - 1)),
    st.builds(VarBind, st.sampled_from([ValueType.COUNTER32, ValueType.GAUGE32, ValueType.TIME_TICKS]), any_oid,
              st.integers(0, 2**32 - 1)),
    st.builds(VarBind, st.just(ValueType.COUNTER64), any_oid, st.integers(0, 2**64 - 1)),
    st.builds(VarBind, st.sampled_from([ValueType.OCTET_STRING, ValueType.OPAQUE]), any_oid, st.binary(max_size=40)),
    st.builds(VarBind, st.just(ValueType.IP_ADDRESS), any_oid, st.binary(min_size=4, max_size=4)),
    st.builds(VarBind, st.just(ValueType.OBJECT_IDENTIFIER), any_oid, any_oid),
    st.builds(VarBind, st.sampled_from([ValueType.NULL, ValueType.NO_SUCH_OBJECT, ValueType.NO_SUCH_INSTANCE,
                                        ValueType.END_OF_MIB_VIEW]), any_oid),
)
ranges = st.lists(st.builds(SearchRange, any_oid, any_oid, st.booleans()), max_size=5).map(tuple)
contexts = st.one_of(st.none(), st.binary(max_size=12))
bodies = st.one_of(
    st.builds(Open, st.integers(0, 255), any_oid, st.binary(max_size=30)),
    st.builds(Close, st.sampled_from(list(CloseReason))),
    st.builds(Register, any_oid, st.integers(0, 255), st.integers(0, 255), st.just(0), st.just(0), contexts),
    st.builds(Unregister, any_oid, st.integers(0, 255), st.just(0), st.just(0), contexts),
    st.builds(Get, ranges, contexts), st.builds(GetNext, ranges, contexts),
    st.builds(GetBulk, st.integers(0, 65535), st.integers(0, 65535), ranges, contexts),
    st.builds(Notify, st.lists(varbinds, max_size=6).map(tuple), contexts),
    st.builds(Ping, contexts),
    st.builds(Response, st.integers(0, 2**32 - 1), st.integers(0, 65535), st.integers(0, 65535),
              st.lists(varbinds, max_size=6).map(tuple)),
)
ids = st.integers(0, 2**32 - 1)


@given(bodies, ids, ids, ids, st.booleans())
def test_every_pdu_survives_a_round_trip_in_either_byte_order(body: object, session: int, transaction: int,
                                                              packet_id: int, network: bool) -> None:
    packet = Packet(body, session, transaction, packet_id)  # type: ignore[arg-type]
    assert decode(encode(packet, network_order=network)) == packet


@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_framer(data: bytes) -> None:
    framer = Framer()
    framer.feed(data)  # AgentxError or not, nothing escapes
