"""A read-only MIB view: sorted (OID -> typed value) rows, and Get, GetNext and GetBulk over them.

The MIB modules (mib_keepalived.py, mib_vrrpv3.py) turn a state document into
rows; this module only orders them and answers the three read requests the
way RFC 2741 section 7.2.3 says a subagent must: a Get names exactly one
object (noSuchObject outside the subtrees we serve, noSuchInstance inside),
a GetNext the first object after its start (or at it, with `include`) and
before its end, else endOfMibView. Tuples of ints compare like OIDs, so a
sorted list and bisect are all it takes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from .agentx import Oid, SearchRange, ValueType, VarBind


class MibView:
    """The rows of one snapshot, sorted; `roots` are the subtrees registered (a Get outside them: noSuchObject)."""

    def __init__(self, rows: Iterable[VarBind], roots: Sequence[Oid] = ()) -> None:
        by_name = {row.name: row for row in rows}
        self.names: list[Oid] = sorted(by_name)
        self.rows: list[VarBind] = [by_name[name] for name in self.names]
        self.roots = tuple(roots)

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, name: Oid) -> VarBind:
        i = bisect.bisect_left(self.names, name)
        if i < len(self.names) and self.names[i] == name:
            return self.rows[i]
        inside = any(name[:len(root)] == root for root in self.roots)
        return VarBind(ValueType.NO_SUCH_INSTANCE if inside else ValueType.NO_SUCH_OBJECT, name)

    def next(self, search: SearchRange) -> VarBind:
        if search.include:
            i = bisect.bisect_left(self.names, search.start)
        else:
            i = bisect.bisect_right(self.names, search.start)
        if i < len(self.names) and (not search.end or self.names[i] < search.end):
            return self.rows[i]
        return VarBind(ValueType.END_OF_MIB_VIEW, search.start)

    def bulk(self, non_repeaters: int, max_repetitions: int, ranges: Sequence[SearchRange]) -> list[VarBind]:
        """RFC 2741 7.2.3.3: the non-repeaters once, then up to max_repetitions rounds of the others, interleaved."""
        found = [self.next(r) for r in ranges[:non_repeaters]]
        repeaters = list(ranges[non_repeaters:])
        for _ in range(max_repetitions if repeaters else 0):
            row = [self.next(r) for r in repeaters]
            found.extend(row)
            if all(vb.type == ValueType.END_OF_MIB_VIEW for vb in row):
                break
            repeaters = [SearchRange(vb.name, r.end, False) for vb, r in zip(row, repeaters)]
        return found
