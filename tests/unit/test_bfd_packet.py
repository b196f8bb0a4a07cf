"""The BFD control packet codec: round trips, keepalived's bytes, and every discard rule."""

from __future__ import annotations

import pytest

from pykeepalived.bfd.packet import BfdPacketError, ControlPacket, Diag, State, decode


def test_round_trip_keeps_every_field() -> None:
    pkt = ControlPacket(State.UP, 0x11223344, 0x55667788, 100_000, 200_000, 5, Diag.EXPIRED, poll=True)
    assert decode(pkt.encode()) == pkt
    assert len(pkt.encode()) == 24


def test_bytes_as_keepalived_sends_them() -> None:
    # version 1, diag 0; state Down, no flags; mult 5; length 24; discriminators; 1 s idle tx; 10 ms rx
    data = bytes.fromhex("20 40 05 18 0000abcd 00000000 000f4240 00002710 00000000")
    pkt = decode(data)
    assert (pkt.state, pkt.my_discr, pkt.your_discr, pkt.desired_min_tx_us, pkt.required_min_rx_us,
            pkt.detect_mult) == (State.DOWN, 0xABCD, 0, 1_000_000, 10_000, 5)
    assert pkt.encode() == data


def _bad(**changes: int) -> bytes:
    fields = {"b0": 0x20, "b1": 0xC0, "mult": 5, "length": 24, "my": 1, "your": 2}
    fields.update(changes)
    return (bytes([fields["b0"], fields["b1"], fields["mult"], fields["length"]])
            + fields["my"].to_bytes(4, "big") + fields["your"].to_bytes(4, "big") + bytes(12))


@pytest.mark.parametrize(("data", "why"), [
    (_bad()[:20], "too small"),
    (_bad(length=30), "length field"),
    (_bad(b0=0x40), "version"),
    (_bad(b1=0xC4), "authentication"),
    (_bad(mult=0), "multiplier"),
    (_bad(b1=0xC1), "multipoint"),
    (_bad(my=0), "my discriminator"),
    (_bad(your=0), "your discriminator is zero"),
    (_bad(b1=0xF0), "poll and final"),
    (_bad(b0=0x29), "diagnostic"),
])
def test_discards(data: bytes, why: str) -> None:
    with pytest.raises(BfdPacketError, match=why):
        decode(data)


def test_your_discriminator_may_be_zero_while_down() -> None:
    assert decode(_bad(b1=0x40, your=0)).state is State.DOWN
