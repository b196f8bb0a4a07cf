"""Which slot-map elements go over nfnetlink before libnftables' batch, and how they are written, without a kernel.

nft_diff hands over (`early`) only the elements that are safe to apply
before the rest of the change; nft_elements encodes them as libnftables
would (the kernel's side: tests/netns/test_nft_elements.py).
"""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest

from pykeepalived.lvs.nft import Change
from pykeepalived.lvs.nft_diff import SlotData, SlotWrite, diff, fresh_table
from pykeepalived.lvs.nft_elements import Batch, ElementChange, ElementError, encode_data, parse_acks
from pykeepalived.lvs.model import VirtualService
from pykeepalived.lvs.nft_rules import IPV4, SLOT_KEY_TYPEOF, TABLE, BuildContext, Ruleset, build

from .test_nft_slot_maps import ctx, elements, kinds, rebuild, vs


def test_a_maglev_change_goes_early_whole_and_knows_how_to_undo_itself() -> None:
    c = ctx()
    before = build_ip([vs("web", 40)], c)
    after = rebuild(before, [vs("web", 40, down=7)], c)
    early: list[SlotWrite] = []
    assert diff(before, after, early) == []  # nothing left for libnftables
    (write,) = early
    old, new = before.slot_maps["vs-web-slots"].data, after.slot_maps["vs-web-slots"].data
    moved = [slot for slot, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert (write.name, write.kept) == ("vs-web-slots", True)
    assert list(write.delete) == moved and [slot for slot, _ in write.add] == moved
    assert all(new[slot] == text for slot, text in write.add)
    assert all(old[slot] == text for slot, text in write.restore) and len(write.restore) == len(moved)


def test_a_new_maps_write_reads_its_slots_from_the_map_as_pairs() -> None:
    # every slot of a new map goes early; its pairs are made as the writer reads them (SlotData), not kept twice
    new = build_ip([vs("web", 200, scheduler="rr")], ctx())
    early: list[SlotWrite] = []
    fresh_table(new, early)
    (write,) = early
    data = new.slot_maps["vs-web-slots"].data
    assert isinstance(write.add, SlotData) and write.add.slots == range(len(data)) and write.delete == ()
    assert list(write.add) == list(enumerate(data)) and len(write.add) == len(data)
    assert write.add[3] == (3, data[3]) and write.add[-1] == (len(data) - 1, data[-1])
    assert list(write.add[2:5]) == [(2, data[2]), (3, data[3]), (4, data[4])]
    assert list(SlotData(data, [7, 2])) == [(7, data[7]), (2, data[2])]


def test_a_shorter_rr_cycle_deletes_its_last_slot_with_the_rule_that_stops_reading_it() -> None:
    c = ctx()
    before = build_ip([vs("web", 200, scheduler="rr")], c)
    after = rebuild(before, [vs("web", 200, scheduler="rr", down=7)], c)
    early: list[SlotWrite] = []
    cmds = diff(before, after, early)
    assert elements(cmds, "delete") == [199]  # past the new end: in the batch that rewrites `mod 199`
    assert ("add", "rule") in kinds(cmds) and elements(cmds, "add") == []
    (write,) = early
    assert list(write.delete) == [7] and [slot for slot, _ in write.add] == [7]  # slot 7 switches at once
    longer = rebuild(after, [vs("web", 200, scheduler="rr")], c)
    early = []
    cmds = diff(after, longer, early)
    assert [slot for slot, _ in early[0].add] == [199] and early[0].restore == ()  # unread until the rule says 200
    assert ("add", "rule") in kinds(cmds)


def test_a_verdict_map_that_goes_to_a_new_chain_stays_in_libnftables() -> None:
    c = ctx()
    before = build_ip([vs("per", 4, persistence_timeout_s=60)], c)
    grown = rebuild(before, [vs("per", 5, persistence_timeout_s=60)], c)
    early: list[SlotWrite] = []
    cmds = diff(before, grown, early)
    assert early == []  # its new server's chain is made by the libnftables batch
    assert any(cmd["add"]["element"]["name"] == "vs-per-picks" for cmd in cmds
               if "add" in cmd and "element" in cmd["add"])
    shrunk = rebuild(before, [vs("per", 4, persistence_timeout_s=60, down=1)], c)
    early = []
    cmds = diff(before, shrunk, early)
    assert [w.name for w in early] == ["vs-per-picks"]  # goes only to chains that stay: before the batch
    assert any('"vs-per-2"' in text for text in before.slot_maps["vs-per-picks"].data)  # the leaver's chain
    assert not any('"vs-per-2"' in text for _, text in early[0].add)
    assert ("delete", "element") not in kinds(cmds)


def test_a_fresh_table_fills_its_new_maps_early_and_the_change_undoes_only_kept_maps() -> None:
    ruleset = build_ip([vs("web", 3), vs("other", 4, address="203.0.113.11", port=81, scheduler="sh")], ctx())
    early: list[SlotWrite] = []
    cmds = fresh_table(ruleset, early)
    filled = {cmd["add"]["element"]["name"] for cmd in cmds if "add" in cmd and "element" in cmd["add"]}
    assert filled == {"nat_ports"}  # the dispatch map's static elements stay with the rules they lead to
    sizes = {name: len(slot_map.data) for name, slot_map in ruleset.slot_maps.items()}
    assert {w.name: (w.kept, len(w.add)) for w in early} == {"vs-web-slots": (False, sizes["vs-web-slots"]),
                                                              "vs-other-slots": (False, sizes["vs-other-slots"])}
    change = Change()
    change.add(IPV4, fresh=ruleset)
    assert [e.name for e in change.elements] == ["vs-web-slots", "vs-other-slots"] and change.undo == []
    c = ctx()
    before = build_ip([vs("web", 40)], c)
    change = Change()
    change.add(IPV4, old=before, new=rebuild(before, [vs("web", 40, down=2)], c))
    (undo,) = change.undo
    (forward,) = change.elements
    assert sorted(undo.delete) == sorted(slot for slot, _ in forward.add)
    assert {slot for slot, _ in undo.add} == set(forward.delete)
    assert (undo.family, undo.table, undo.key_type) == ("ip", TABLE, SLOT_KEY_TYPEOF)


def test_only_maglev_maps_keep_their_encodings_from_batch_to_batch() -> None:
    # a Maglev change rewrites hundreds of slots of hundreds of servers: their encodings are worth keeping; an rr
    # cycle's change writes a few slots, and keeping every server's encoding cost 0.9 MiB at 6,000 (bench/checks.py)
    c = ctx()
    rr = build_ip([vs("web", 200, scheduler="rr"), vs("hash", 60, address="203.0.113.11", port=81, scheduler="mh")], c)
    change = Change()
    change.add(IPV4, fresh=rr)
    assert {e.name: e.keep_encoded for e in change.elements} == {"vs-web-slots": False, "vs-hash-slots": True}
    kept: dict[tuple[str, str], bytes] = {}
    batch = Batch(1, kept)
    for element_change in change.elements:
        batch.add(element_change)
    assert len(kept) == 60 and {data_type for data_type, _ in kept} == {"ip daddr . tcp dport"}
    assert all(text in rr.slot_maps["vs-hash-slots"].data for _, text in kept)


def build_ip(services: list[VirtualService], c: BuildContext) -> Ruleset:
    return build(services, c)["ip"]


# --------------------------------------------------------------------------- the encoding
def test_data_is_encoded_as_the_kernel_keeps_it() -> None:
    # NFTA_SET_ELEM_DATA (nested) > NFTA_DATA_VALUE: address, then the port in network order padded to 32 bits
    assert encode_data("ip daddr . tcp dport", '{"concat": ["10.1.2.3", 80]}') == \
        struct.pack("=HHHH", 16, 0x8002, 12, 1) + bytes([10, 1, 2, 3, 0, 80, 0, 0])
    assert encode_data("ip6 daddr", '"2001:db8::1"')[8:] == bytes.fromhex("20010db8000000000000000000000001")
    verdict = encode_data("verdict", '{"goto": {"target": "vs-web-1"}}')
    assert verdict[4:8] == struct.pack("=HH", len(verdict) - 4, 0x8002)  # NFTA_DATA_VERDICT, nested
    assert struct.unpack("!i", verdict[12:16]) == (-4,)  # NFT_GOTO
    assert verdict[20:29] == b"vs-web-1\0"
    with pytest.raises(ValueError, match="not an IPv4 address"):
        encode_data("ip daddr", '"2001:db8::1"')
    with pytest.raises(ValueError, match="not one this writer knows"):
        encode_data("ether saddr", '"00:11:22:33:44:55"')


def test_nft_rules_spelling_is_read_quickly_and_any_other_json_the_same_way() -> None:
    # nft_rules writes '{"concat": ["A", P]}' and '"A"'; other spellings of the same JSON go through json.loads
    for data_type, quick, other in (
            ("ip daddr . tcp dport", '{"concat": ["10.1.2.3", 8080]}', '{"concat":["10.1.2.3",8080]}'),
            ("ip6 daddr . udp dport", '{"concat": ["2001:db8::7", 53]}', '{ "concat": [ "2001:db8::7", 53 ] }'),
            ("ip daddr", '"10.1.2.3"', '"\\u0031\\u0030.1.2.3"')):
        assert encode_data(data_type, quick) == encode_data(data_type, other)
    for bad in ('{"concat": ["10.1.2.3", 70000]}', '{"concat": ["10.1.2.300", 80]}', '{"concat": ["1.2.3", 80]}',
                '{"concat": ["2001:db8::1", 80]}', '{"concat": [5, 80]}'):
        with pytest.raises(ValueError):
            encode_data("ip daddr . tcp dport", bad)
    for bad in ('"010.1.2.3"', '"10.1.2"', '5', '"10.1.2.3/32"'):
        with pytest.raises(ValueError):
            encode_data("ip daddr", bad)


def test_a_datum_is_encoded_once_per_batch_whichever_map_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1,000 services of the same three real servers (bench/schedulers.py): three encodings, not 3,000
    from pykeepalived.lvs import nft_elements
    made: list[str] = []
    real = nft_elements.encode_data
    monkeypatch.setattr(nft_elements, "encode_data", lambda data_type, text: made.append(text) or real(data_type, text))
    batch = Batch(1)
    for i in range(100):
        batch.add(ElementChange("ip", "t", f"m{i}", SLOT_KEY_TYPEOF, "ip daddr . tcp dport",
                                add=[(slot, f'{{"concat": ["10.0.0.{slot + 1}", 80]}}') for slot in range(3)]))
    assert len(made) == 3 and len(batch.names) == 100


def test_a_change_that_cannot_be_written_leaves_the_batch_as_it_was() -> None:
    # elements go into the batch as they are encoded: one that fails takes its change's messages out again
    batch = Batch(1)
    good = ElementChange("ip", "t", "m", SLOT_KEY_TYPEOF, "ip daddr", delete=[1], add=[(1, '"10.0.0.1"')])
    batch.add(good)
    before = (bytes(batch.data), dict(batch.names), batch.seq)
    bad = ElementChange("ip", "t", "n", SLOT_KEY_TYPEOF, "ip daddr", delete=range(3000),
                        add=[(slot, '"10.0.0.2"') for slot in range(2000)] + [(2000, '"2001:db8::1"')])
    with pytest.raises(ElementError, match="map ip t n: cannot write its elements"):
        batch.add(bad)
    assert (bytes(batch.data), dict(batch.names), batch.seq) == before
    alone = Batch(1)
    alone.add(good)
    assert batch.finish() == alone.finish()


def test_a_batch_splits_long_element_lists_and_names_each_message_by_its_set() -> None:
    batch = Batch(100)
    change = ElementChange("ip6", "t", "m", SLOT_KEY_TYPEOF, "ip6 daddr . udp dport", delete=range(5000),
                           add=[(slot, '{"concat": ["2001:db8::1", 53]}') for slot in range(5000)])
    batch.add(change)
    data = batch.finish()
    sizes = []
    offset = 0
    while offset < len(data):
        length, kind, flags, seq = struct.unpack_from("=IHHI", data, offset)
        sizes.append((kind, length))
        offset += length
    assert sizes[0] == (0x10, 20) and sizes[-1] == (0x11, 20)  # batch begin and end
    assert all(length < 65_536 for _, length in sizes)
    assert {kind for kind, _ in sizes[1:-1]} == {10 << 8 | 14, 10 << 8 | 12}  # DELSETELEM, then NEWSETELEM
    assert set(batch.names.values()) == {"the elements of map ip6 t m"} and len(batch.names) == len(sizes) - 2


def test_keys_and_families_the_writer_does_not_know_are_refused_before_sending() -> None:
    with pytest.raises(ElementError, match="keys of type 'ipv4_addr'"):
        Batch(1).add(ElementChange("ip", "t", "m", "ipv4_addr", "verdict", delete=[1]))
    with pytest.raises(ElementError, match="no nftables family 'ipx'"):
        Batch(1).add(ElementChange("ipx", "t", "m", SLOT_KEY_TYPEOF, "verdict", delete=[1]))
    with pytest.raises(ElementError, match="map ip t m: cannot write its elements"):
        Batch(1).add(replace(ElementChange("ip", "t", "m", SLOT_KEY_TYPEOF, "ip daddr"), delete=[1 << 32]))


def test_acks_and_errors_are_read_with_the_kernels_reason() -> None:
    ack = struct.pack("=IHHIIi", 36, 2, 0x100, 7, 0, 0) + bytes(16)
    reason = b"set not found\0"
    tlv = struct.pack("=HH", 4 + len(reason), 1) + reason + b"\0" * (-len(reason) & 3)
    error = struct.pack("=IHHIIi", 36 + len(tlv), 2, 0x300, 8, 0, -2) + bytes(16) + tlv
    assert list(parse_acks(ack + error)) == [(7, 0, ""), (8, 2, "set not found")]
