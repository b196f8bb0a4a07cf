"""From the ruleset in force to the wanted one: the fewest libnftables JSON commands, in a safe order.

The backend sends the whole list as one transaction, so the kernel switches
from old to new atomically or not at all. Order matters inside the batch:
references must go before what they point at is deleted (map elements and
rules that jump to a chain, rules that name a set), and new chains and sets
must exist before anything refers to them.

The slot maps' elements are most of a change's bulk, and the backend can
write them over nfnetlink itself (nft_elements.py, 4x cheaper than
libnftables). That is a second batch, sent BEFORE the libnftables one, so
`diff(..., early=[])` hands over only what is safe to apply first
(`SlotWrite`): the elements of a map that no rule of the batch re-makes
(a map whose type changes stays whole in libnftables) and whose new data
names only chains that exist before and after the libnftables batch (a
verdict slot that goes to a chain the batch makes, or re-makes, stays in
it). A kept map then switches its changed slots atomically while the old
rules still read it, and a new map is full before the rule that reads it
arrives. Slots past the new table's end are deleted in the libnftables
batch, together with the rule that stops using them (its modulus).

In place: a chain whose rules differ from the ones in force only in a
selector's modulus (`numgen ... mod N`, `jhash ... mod N`: an rr pool's
server down or back) is not flushed and filled again; `diff(..., in_place=
InPlace())` hands its rules over as nft_modulus.RuleSwap, with the slots
past their maps' new ends, and the backend replaces those rules in the
element batch, then deletes those slots there (nft.py, Change.send). The
same as libnftables commands waits in `InPlace.commands` for a change that
cannot go that way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import ne
from typing import Any, overload

from .nft_modulus import RuleSwap, rule_swaps
from .nft_rules import SLOT_KEY_TYPEOF, TABLE, Family, Json, Ruleset, SlotMap


class SlotData(Sequence[tuple[int, str]]):
    """(slot, data text) for each of `slots` of a slot map's `data` (a tuple: it does not change), made as read.

    A new map's write names every slot: as a tuple of pairs, with the list of
    its slots, a map of 6,000 slots was 0.6 MiB of the first apply's peak
    (bench/checks.py's checker, tracemalloc), for pairs read once, in order,
    by the element writer.
    """

    __slots__ = ("data", "slots")

    def __init__(self, data: tuple[str, ...], slots: Sequence[int]) -> None:
        self.data = data
        self.slots = slots

    def __len__(self) -> int:
        return len(self.slots)

    @overload
    def __getitem__(self, index: int) -> tuple[int, str]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[int, str]]: ...

    def __getitem__(self, index: int | slice) -> tuple[int, str] | Sequence[tuple[int, str]]:
        if isinstance(index, slice):
            return SlotData(self.data, self.slots[index])
        slot = self.slots[index]
        return slot, self.data[slot]

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return zip(self.slots, map(self.data.__getitem__, self.slots))

    def __repr__(self) -> str:
        return f"SlotData({list(self)!r})"


@dataclass(frozen=True)
class SlotWrite:
    """One slot map's elements, written before the libnftables batch (module docstring).

    `add` gives each slot's data as the slot map's JSON text; `restore`
    undoes the write if the libnftables batch that follows fails: the old
    data of the slots that changed (every added slot is deleted first);
    `kept` says the map was there before (a new one is simply deleted);
    `maglev` that the map is a Maglev table's (SlotMap.base), whose data's
    encodings the element writer keeps (nft_elements: keep_encoded).
    """

    name: str
    data_type: str
    delete: tuple[int, ...]
    add: Sequence[tuple[int, str]]  # SlotData
    restore: tuple[tuple[int, str], ...]
    kept: bool
    maglev: bool = False


@dataclass
class InPlace:
    """What diff leaves out of libnftables' commands for the element batch (module docstring: "In place").

    `rules` are the pick rules whose modulus alone changes (nft_modulus),
    `tails` the slots past a slot map's new end, deleted after them: (map,
    its data type, slots). `commands` is the same change as libnftables
    commands, sent instead when the kernel's rules are not as expected or
    the change has other commands (the chains flushed and filled again, the
    tails deleted; safe after everything else in one transaction: the chains
    stay and name nothing that goes).
    """

    rules: list[RuleSwap] = field(default_factory=list)
    tails: list[tuple[str, str, Sequence[int]]] = field(default_factory=list)
    commands: list[Json] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rules or self.tails)


def _obj(family: Family, **fields: Any) -> Json:
    return {"family": family.name, "table": TABLE, **fields}


def _set_obj(family: Family, name: str, spec: Json) -> tuple[str, Json]:
    body = {k: v for k, v in spec.items() if k != "_kind"}
    return spec["_kind"], _obj(family, name=name, **body)


def _delete_set(family: Family, name: str, spec: Json) -> Json:
    kind, obj = _set_obj(family, name, spec)
    return {"delete": {kind: {k: obj[k] for k in ("family", "table", "name")}}}


def _refers(refs: frozenset[str] | None, names: set[str]) -> bool:
    """Whether a chain's rules or an element's data (their recorded references) name one of `names`."""
    return refs is not None and not refs.isdisjoint(names)


def fresh_table(new: Ruleset, early: list[SlotWrite] | None = None) -> list[Json]:
    """Replace whatever table of ours is there (a crashed run's) with `new`, in one batch (`early`: see diff)."""
    fam = new.family
    table = {"family": fam.name, "name": TABLE}
    return [{"add": {"table": table}}, {"delete": {"table": table}}, {"add": {"table": table}},
            *diff(Ruleset(fam), new, early)]


def drop_table(family: Family) -> list[Json]:
    table = {"family": family.name, "name": TABLE}
    return [{"add": {"table": table}}, {"delete": {"table": table}}]


def typeof_map(family: Family, name: str, slot_map: SlotMap) -> Json:
    """The command that makes a slot map: libnftables 1.0.6's JSON has no `typeof`, so the backend sends it as text.

    The `typeof` field is ours (nft.py turns the command into `add map ...
    { typeof numgen inc mod 1 : <data> ; }`); libnftables' JSON would refuse it.
    """
    return {"add": {"map": _obj(family, name=name, typeof=f"{SLOT_KEY_TYPEOF} : {slot_map.data_type}")}}


SLOT_BLOCK = 32
"""Slots compared at once by _slot_changes (16 to 64 measure alike; 256 loses what blocks gain)."""


def _slot_changes(old: SlotMap | None, new: SlotMap | None,
                  stale: frozenset[str]) -> tuple[Sequence[int], Sequence[int]]:
    """(slots to delete, slots to add) that turn map `old` into `new`; `stale` data texts are rewritten anyway.

    A slot whose data changed is deleted and added again in the same batch.
    Slots are compared as the string objects the builder made (one per
    target), at C speed, a block of SLOT_BLOCK at a time: a tuple compare
    stops at the first difference and mostly meets the same objects, so
    only blocks that differ are compared slot by slot. One server of 1,000
    gone from a Maglev table changes ~430 of its 65,521 slots: 1.1 ms
    rather than 1.7 slot by slot (bench/schedulers.py --apply-only). Two
    maps made from one Maglev run (SlotMap.base) compare only the slots
    either patched. Slots past the shorter map's end alone come back as a
    `range` (a new map's 6,000 slots as a list were 0.2 MiB).
    """
    before = old.data if old is not None else ()
    after = new.data if new is not None else ()
    common = min(len(before), len(after))
    changed: list[int] = []
    if old is not None and new is not None and old.base is not None and old.base is new.base:
        # both are one Maglev run's full table with a few slots patched (SlotMap.base): only those can differ
        changed = [slot for slot in sorted({*old.patched, *new.patched}) if before[slot] != after[slot]]
    else:
        for low in range(0, common, SLOT_BLOCK):
            high = min(low + SLOT_BLOCK, common)
            mine, theirs = before[low:high], after[low:high]
            if mine != theirs:
                changed.extend(compress(range(low, high), map(ne, mine, theirs)))
    if stale:
        again = {i for i in range(common) if before[i] in stale}
        changed = sorted(set(changed) | again)
    if not changed:
        return range(common, len(before)), range(common, len(after))
    return changed + list(range(common, len(before))), changed + list(range(common, len(after)))


def _slot_elements(slot_map: SlotMap, slots: Sequence[int]) -> list[list[Any]]:
    parsed: dict[str, Any] = {}
    out = []
    for slot in slots:
        text = slot_map.data[slot]
        data = parsed.get(text)
        if data is None:
            data = parsed[text] = json.loads(text)
        out.append([slot, data])
    return out


def _read_in_place(name: str, old: Ruleset, new: Ruleset, swapped: set[str], rewritten: set[str]) -> bool:
    """Whether slot map `name` is read by a chain whose rules change in place, and by none that libnftables re-makes."""
    readers = {chain for rules in (old, new) for chain, refs in rules.refs.items() if name in refs}
    return bool(readers & swapped) and readers.isdisjoint(rewritten)


def _only_live(refs: dict[str, frozenset[str]] | None, live: set[str]) -> bool:
    """Whether a slot map's data names only chains in `live` (its refs, recorded per data text)."""
    return refs is None or all(names <= live for names in refs.values())


def _early_write(name: str, kept: SlotMap | None, new: SlotMap, deleted: Sequence[int],
                 added: Sequence[int]) -> SlotWrite:
    """The part of a slot map's change that goes before the batch: all but the slots past its new end."""
    size = len(new.data)
    restore = tuple((slot, kept.data[slot]) for slot in deleted if slot < size) if kept is not None else ()
    return SlotWrite(name, new.data_type, tuple(slot for slot in deleted if slot < size),
                     SlotData(new.data, added), restore, kept is not None, new.base is not None)


def diff(old: Ruleset, new: Ruleset, early: list[SlotWrite] | None = None,
         in_place: InPlace | None = None) -> list[Json]:
    """Commands that turn table `old` into table `new` (same family).

    With a list as `early`, the slot-map elements that may be written
    before these commands are appended to it instead (module docstring).
    With `in_place` as well, the pick rules whose modulus alone changes, and
    the slots past their maps' new ends, go there instead of into the
    commands.
    """
    fam = new.family
    cmds: list[Json] = []
    # each first compared whole, at C speed (their values are mostly the same objects from build to build)
    gone_chains = set() if old.chains == new.chains else {
        c for c in old.chains if c not in new.chains or old.chains[c] != new.chains[c]}
    gone_sets = set() if old.sets == new.sets else {
        s for s in old.sets if s not in new.sets or old.sets[s] != new.sets[s]}
    added_chains = [c for c in new.chains if c not in old.chains or c in gone_chains]
    added_sets = [s for s in new.sets if s not in old.sets or s in gone_sets]
    gone_maps = {m for m, spec in old.slot_maps.items()
                 if m not in new.slot_maps or new.slot_maps[m].data_type != spec.data_type}
    added_maps = [m for m in new.slot_maps if m not in old.slot_maps or m in gone_maps]
    gone_names = gone_sets | gone_chains | gone_maps
    rewritten = set() if not gone_names and old.rules == new.rules else {
        c for c in new.chains
        if c in gone_chains or old.rules.get(c) != new.rules.get(c)
        or (gone_names and _refers(new.refs.get(c), gone_names))
    }
    swapped: set[str] = set()
    if in_place is not None and early is not None:
        for chain in sorted(rewritten):
            if chain in gone_chains or chain not in old.chains or _refers(new.refs.get(chain), gone_names):
                continue
            swaps = rule_swaps(chain, old.rules.get(chain, ()), new.rules.get(chain, ()))
            if swaps is not None:
                in_place.rules += swaps
                in_place.commands.append({"flush": {"chain": _obj(fam, name=chain)}})
                in_place.commands += [{"add": {"rule": _obj(fam, chain=chain, expr=json.loads(rule))}}
                                      for rule in new.rules[chain]]
                swapped.add(chain)
        rewritten -= swapped
    flushed = {c for c in old.chains if c in gone_chains or c in rewritten}

    # 1. drop references: static elements that go or change, rules of chains that change or go
    for name, old_elems in old.elements.items():
        new_elems = new.elements.get(name, {})
        if not gone_chains and old_elems == new_elems:  # mostly: compared at C speed, the texts mostly the same objects
            continue
        old_refs = old.element_refs.get(name, {})
        keys = [json.loads(k) for k, v in old_elems.items()
                if new_elems.get(k) != v or _refers(old_refs.get(k), gone_chains)]
        if keys and name not in gone_sets:
            cmds.append({"delete": {"element": _obj(fam, name=name, elem=keys)}})
    slot_changes: dict[str, tuple[Sequence[int], Sequence[int]]] = {}
    live = {c for c in old.chains if c not in gone_chains}  # chains there before and after the batch
    for name, slot_map in new.slot_maps.items():
        kept = old.slot_maps.get(name) if name not in gone_maps else None
        stale = frozenset(text for text, refs in new.slot_refs.get(name, {}).items() if _refers(refs, gone_chains))
        slot_changes[name] = _slot_changes(kept, slot_map, stale)
        written_early = early is not None and name not in gone_maps and _only_live(new.slot_refs.get(name), live)
        if written_early:
            assert early is not None
            write = _early_write(name, kept, slot_map, *slot_changes[name])
            if write.delete or write.add:
                early.append(write)
            slot_changes[name] = ([s for s in slot_changes[name][0] if s >= len(slot_map.data)], [])
        deleted = slot_changes[name][0]
        if kept is not None and deleted:
            command = {"delete": {"element": _obj(fam, name=name, elem=list(deleted))}}
            # past the new end only (written early): deleted after the rules that stop reading them, in place or not
            if written_early and in_place is not None and _read_in_place(name, old, new, swapped, rewritten):
                in_place.tails.append((name, slot_map.data_type, deleted))
                in_place.commands.append(command)
            else:
                cmds.append(command)
    for chain in sorted(flushed):
        if old.rules.get(chain):
            cmds.append({"flush": {"chain": _obj(fam, name=chain)}})
    # 2. delete what is no longer wanted (or must be re-made with a new spec); slot maps first: a verdict slot
    #    map's elements go to chains, which the kernel does not delete while a map refers to them (EBUSY)
    for name in sorted(gone_maps):
        cmds.append({"delete": {"map": _obj(fam, name=name)}})
    # so do other verdict maps (an address map of entry chains, nft_rules.entries_map), whose elements step 1
    # left in place when the whole map goes; the rules that named any gone set were flushed in step 1
    verdict_sets = sorted(name for name in gone_sets if old.sets[name].get("map") == "verdict")
    for name in verdict_sets:
        cmds.append(_delete_set(fam, name, old.sets[name]))
    for chain in sorted(gone_chains):
        cmds.append({"delete": {"chain": _obj(fam, name=chain)}})
    for name in sorted(gone_sets.difference(verdict_sets)):
        cmds.append(_delete_set(fam, name, old.sets[name]))
    # 3. make what is new, then fill it
    for chain in added_chains:
        cmds.append({"add": {"chain": _obj(fam, name=chain, **new.chains[chain])}})
    for name in added_sets:
        kind, obj = _set_obj(fam, name, new.sets[name])
        cmds.append({"add": {kind: obj}})
    for name in added_maps:
        cmds.append(typeof_map(fam, name, new.slot_maps[name]))
    for chain in new.chains:
        if chain in rewritten or chain in added_chains:
            for rule in new.rules.get(chain, ()):
                cmds.append({"add": {"rule": _obj(fam, chain=chain, expr=json.loads(rule))}})
    for name, new_elems in new.elements.items():
        old_elems = {} if name in gone_sets else old.elements.get(name, {})
        if not gone_chains and old_elems == new_elems:
            continue
        new_refs = new.element_refs.get(name, {})
        pairs = [[json.loads(k), json.loads(v)] for k, v in new_elems.items()
                 if old_elems.get(k) != v or _refers(new_refs.get(k), gone_chains)]
        if pairs:
            cmds.append({"add": {"element": _obj(fam, name=name, elem=pairs)}})
    for name, slot_map in new.slot_maps.items():
        added = slot_changes[name][1]
        if added:
            cmds.append({"add": {"element": _obj(fam, name=name, elem=_slot_elements(slot_map, added))}})
    return cmds
