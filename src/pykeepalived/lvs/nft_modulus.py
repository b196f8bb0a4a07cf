"""A pick rule whose modulus alone changes, rewritten in the kernel's own encoding instead of re-made by libnftables.

When a real server of an rr or wrr pool (a cycle of 64 slots or more, in a
slot map) goes down or comes back, its slot table gets one slot shorter or
longer, so the rule that picks a slot (`numgen inc mod N`) changes in one
number; so does a Maglev table's (`jhash ... mod N`) when the pool crosses
one of its sizes, and a load-based table's when a reload changes how many
servers are configured. Through
libnftables that is a `flush chain` and an `add rule` whose cost is mostly
libnftables' cache: it fetches every chain and set of the table first,
about 5-7 ms beside a DR service of 1,000 real servers (its 1,000 flow sets
and 2,000 chains) for a rule of a few expressions.

The kernel already holds the rule in its netlink encoding. So nft_diff
hands over such a rule as a `RuleSwap` (which rule of which chain, the old
modulus and the new), this module asks the kernel for that chain's rules
(one small dump, `rules_request` and `parse_rules`), finds the one selector
expression carrying the old modulus, writes the new one in its place
(`patched`) and makes a NEWRULE message that replaces the rule by its
handle (`RuleReplace`), which nft_elements puts in the same nfnetlink batch
as the slot map's elements: the new slots, the new modulus and the slots
past the new end switch in one transaction. Nothing else of the rule is
re-encoded, so no nftables expression is written by hand here.

Anything unexpected (another number of rules in the chain, no selector
with the old modulus or more than one, a rule bound to an anonymous set,
which a replacement cannot take over) raises `SwapUnavailable` before
anything is sent, and the backend makes the change through libnftables as
before (nft.py, `Change.send`). Pure codec: the socket is nft.py's.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .nft_handles import (NFGEN_SIZE, NFPROTO, NLA_F_NESTED, NLA_TYPE_MASK, NetlinkDumpError, attributes,
                          dump_messages, dump_request, nla)

NFT_MSG_NEWRULE = 6
NFT_MSG_GETRULE = 7
NFNL_SUBSYS_NFTABLES = 10
NFTA_RULE_TABLE, NFTA_RULE_CHAIN, NFTA_RULE_HANDLE, NFTA_RULE_EXPRESSIONS, NFTA_RULE_USERDATA = 1, 2, 3, 4, 7
NFTA_EXPR_NAME, NFTA_EXPR_DATA = 1, 2
NFTA_NG_MODULUS = 2
NFTA_HASH_MODULUS = 4
SELECTORS = {"numgen": ("numgen", NFTA_NG_MODULUS), "jhash": ("hash", NFTA_HASH_MODULUS)}
"""libnftables' JSON key of a selector -> the kernel's expression name and its modulus attribute."""
SET_NAMES = {"lookup": 1, "dynset": 1, "objref": 3}
"""Expressions that name a set -> that attribute (NFTA_LOOKUP_SET, NFTA_DYNSET_SET_NAME, NFTA_OBJREF_SET_NAME)."""


class SwapUnavailable(Exception):
    """The rule in the kernel is not the one expected: the change goes through libnftables instead."""


RuleDumpError = NetlinkDumpError
"""The kernel refused or broke off a rule dump (its errno, when it said one): an OSError."""


@dataclass(frozen=True)
class ModulusChange:
    """A rule's one selector whose modulus changes: `kind` is its libnftables JSON key ("numgen", "jhash")."""

    kind: str
    old: int
    new: int


@dataclass(frozen=True)
class RuleSwap:
    """Rule number `index` (from 0) of `chain`, which holds `rules` rules, gets `change` (nft_diff finds them)."""

    chain: str
    index: int
    rules: int
    change: ModulusChange


@dataclass(frozen=True)
class KernelRule:
    """One rule as the kernel dumped it: its handle and its attributes' payloads, as they came."""

    handle: bytes  # 64 bits, network order, as it came
    expressions: bytes
    userdata: bytes | None


@dataclass(frozen=True)
class RuleReplace:
    """A NEWRULE that replaces the rule `handle` of `chain` with `expressions` (the kernel's, patched)."""

    family: str
    table: str
    chain: str
    handle: bytes
    expressions: bytes
    userdata: bytes | None

    @property
    def where(self) -> str:
        return f"rule {self.family} {self.table} {self.chain} handle {int.from_bytes(self.handle, 'big')}"

    def payload(self) -> bytes:
        """The message's attributes (after its nfgenmsg): table, chain, handle, expressions, user data."""
        out = (nla(NFTA_RULE_TABLE, self.table.encode() + b"\0") + nla(NFTA_RULE_CHAIN, self.chain.encode() + b"\0")
               + nla(NFTA_RULE_HANDLE, self.handle) + nla(NFTA_RULE_EXPRESSIONS | NLA_F_NESTED, self.expressions))
        if self.userdata is not None:
            out += nla(NFTA_RULE_USERDATA, self.userdata)
        return out


# ------------------------------------------------------------------ the JSON side (nft_diff)
def modulus_change(old_text: str, new_text: str) -> ModulusChange | None:
    """The one selector modulus that turns rule `old_text` into `new_text` (libnftables JSON), else None.

    None as well when anything else differs, or more than one modulus.
    """
    if old_text == new_text or '"mod"' not in new_text:
        return None
    found: list[ModulusChange] = []
    if not _alike(json.loads(old_text), json.loads(new_text), found) or len(found) != 1:
        return None
    return found[0]


def rule_swaps(chain: str, old_rules: Sequence[str], new_rules: Sequence[str]) -> list[RuleSwap] | None:
    """The swaps that turn `chain`'s rules from old to new, or None if any rule differs in more than a modulus."""
    if len(old_rules) != len(new_rules):
        return None
    swaps: list[RuleSwap] = []
    for index, (old, new) in enumerate(zip(old_rules, new_rules)):
        if old == new:
            continue
        change = modulus_change(old, new)
        if change is None:
            return None
        swaps.append(RuleSwap(chain, index, len(new_rules), change))
    return swaps or None


def _alike(old: Any, new: Any, found: list[ModulusChange]) -> bool:
    """Whether two JSON trees are equal but for selector moduli (each differing one appended to `found`)."""
    if type(old) is not type(new):
        return False
    if isinstance(old, dict):
        if old.keys() != new.keys():
            return False
        for key, before in old.items():
            after = new[key]
            if (key in SELECTORS and isinstance(before, dict) and isinstance(after, dict)
                    and before.keys() == after.keys() and "mod" in before):
                if any(before[field] != after[field] for field in before if field != "mod"):
                    return False
                if before["mod"] != after["mod"]:
                    if not (type(before["mod"]) is int and type(after["mod"]) is int and after["mod"] > 0):
                        return False
                    found.append(ModulusChange(key, before["mod"], after["mod"]))
            elif not _alike(before, after, found):
                return False
        return True
    if isinstance(old, list):
        return len(old) == len(new) and all(_alike(a, b, found) for a, b in zip(old, new))
    return bool(old == new)


# ------------------------------------------------------------------ the kernel side (nft.py's socket)
def rules_request(family: str, table: str, chain: str, sequence: int) -> bytes:
    """A dump request for the rules of one chain."""
    return dump_request(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETRULE, sequence, NFPROTO[family],
                        nla(NFTA_RULE_TABLE, table.encode() + b"\0") + nla(NFTA_RULE_CHAIN, chain.encode() + b"\0"))


def parse_rules(data: bytes) -> tuple[list[KernelRule], bool]:
    """The rules in one datagram of a rule dump, in the chain's order, and whether the dump ended.

    Raises RuleDumpError on an error message or a message that does not fit.
    """
    rules: list[KernelRule] = []
    messages, done = dump_messages(data, "rule")
    for kind, body in messages:
        if kind != NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE:
            continue
        fields = {attr & NLA_TYPE_MASK: value for attr, _, value in attributes(body[NFGEN_SIZE:])}
        handle, expressions = fields.get(NFTA_RULE_HANDLE), fields.get(NFTA_RULE_EXPRESSIONS)
        if handle is None or len(handle) != 8 or expressions is None:
            raise RuleDumpError(f"a dumped rule without {'a handle' if expressions is not None else 'expressions'}")
        rules.append(KernelRule(handle, expressions, fields.get(NFTA_RULE_USERDATA)))
    return rules, done


def patched(rule: KernelRule, change: ModulusChange) -> bytes:
    """`rule`'s expressions with `change.new` in place of the one selector modulus equal to `change.old`.

    Raises SwapUnavailable unless exactly one selector of the kind carries
    the old modulus, or if the rule names an anonymous set (bound to the
    rule: a replacement cannot bind it again).
    """
    name, modulus_attr = SELECTORS[change.kind]
    out = bytearray(rule.expressions)
    places: list[int] = []
    for _, start, element in attributes(rule.expressions):
        fields = {attr & NLA_TYPE_MASK: (at, value) for attr, at, value in attributes(element)}
        expr_name = fields.get(NFTA_EXPR_NAME, (0, b""))[1].split(b"\0", 1)[0].decode("ascii", "replace")
        if NFTA_EXPR_DATA not in fields:
            continue
        data_at, data = fields[NFTA_EXPR_DATA]
        inner = {attr & NLA_TYPE_MASK: (at, value) for attr, at, value in attributes(data)}
        set_attr = SET_NAMES.get(expr_name)
        if set_attr is not None and inner.get(set_attr, (0, b""))[1].startswith(b"__"):
            raise SwapUnavailable(f"the rule uses an anonymous set ({expr_name})")
        if expr_name == name and modulus_attr in inner:
            at, value = inner[modulus_attr]
            if len(value) == 4 and struct.unpack(">I", value)[0] == change.old:
                # element's offset + its data attribute's + the modulus attribute's value
                places.append(start + data_at + at)
    if len(places) != 1:
        raise SwapUnavailable(f"{len(places)} {name} expressions of modulus {change.old} in the rule (one expected)")
    struct.pack_into(">I", out, places[0], change.new)
    return bytes(out)
