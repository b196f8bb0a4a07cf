"""Maglev tables after a few backends leave, from the history of the full table: the same table, fewer steps.

`sched.maglev_table` fills a table of M slots by letting backends take
turns, each claiming the first free slot of its own permutation; in Python
that costs about M ln M probes (65,521 slots: tens of milliseconds). When
one server of a pool goes down the data plane needs the table without it,
which must be exactly what `maglev_table` gives for the smaller pool (every
router computes it from names and weights alone). `MaglevRun` builds the
table once more slowly, keeping who claimed what and when and who passed over
each slot; `without()` then replays only what the leavers change.

Why the replay is exact. Number the claims of the full run by time. The run
without backends J makes the same turns minus J's. At any aligned time the
slots it has filled are a subset of the full run's; the difference, "holes",
are slots the full run has filled but the new run has not. A backend never
passes over a hole (when it passes a slot in the full run, that slot was
already claimed there, so not a hole-to-be), so at its turn a backend takes
the hole that comes first in its permutation among the holes it passes this
turn or passed before and did not take, or else its claim in the full run.
Holes appear where J claimed, and where a backend that took a hole would
have claimed; the full run's record of who passed which slot when says who
meets a hole next. Once the full run's claims end, the holes left are taken
turn by turn, each by the first in the claimer's permutation.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Iterator, Sequence
from operator import itemgetter
from typing import cast, overload

from . import sched

DERIVED_MAX = 4  # RecentTables.derived: a service's table now, and the few it had before a flap
TEXTS_KEPT = 4  # MaglevRun.texts_of: the kinds of texts a run's table is written in, kept (512 KiB each at 65,521)
HISTORY_MIN_SLOTS = 4093
"""Smaller tables are built whole: their history would cost more than it saves."""

TableKey = tuple[tuple[str, ...], tuple[int, ...], int]


class RecentTables:
    """The Maglev tables last asked for, by (names, weights, size), each built once; big ones with their history.

    A rebuild after one change asks again for every other service's table,
    a server that comes back asks for the table it had, and many services on
    one pool share a table: those are copies. A table of HISTORY_MIN_SLOTS
    slots or more is built as a MaglevRun, whose history gives the table of
    the same pool less a few servers (one goes down) in a replay of the few
    claims that change: 65,521 slots of 1,000 servers in milliseconds rather
    than tens of them. Owned by the caller (the data plane's build context),
    so nothing here is global. Bounds: `max_slots` table slots (2 Mi, about
    16 MiB) and `max_run_slots` slots of history (2 x 65,521: about 12 MiB
    each for a pool of 1,000 servers, most of it who passed over each slot).
    """

    def __init__(self, max_slots: int = 1 << 21, max_run_slots: int = 2 * 65521) -> None:
        self.max_slots = max_slots
        self.max_run_slots = max_run_slots
        self._tables: OrderedDict[TableKey, Sequence[int]] = OrderedDict()
        self._runs: OrderedDict[TableKey, MaglevRun] = OrderedDict()
        self.replays = 0  # tables made from a run's history (tests and benches read it)
        # tables derived from these (stable_table's, by its inputs): one apply asks for a stateless NAT service's
        # twice (its ingress and table-ip chains)
        self._derived: OrderedDict[Hashable, Sequence[int]] = OrderedDict()

    def derived(self, key: Hashable, make: Callable[[], Sequence[int]]) -> Sequence[int]:
        """`make()`, kept by `key` among the last DERIVED_MAX (the caller must not change the table it gets)."""
        table = self._derived.get(key)
        if table is None:
            table = self._derived[key] = make()
            while len(self._derived) > DERIVED_MAX:
                self._derived.popitem(last=False)
        self._derived.move_to_end(key)
        return table

    def maglev(self, names: Sequence[str], weights: Sequence[int], size: int) -> Sequence[int]:
        key = (tuple(names), tuple(weights), size)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = self._make(key)
            slots = sum(len(t) for t in self._tables.values())  # a MaglevTable counts as the slots it stands for
            while slots > self.max_slots and len(self._tables) > 1:
                slots -= len(self._tables.popitem(last=False)[1])
        self._tables.move_to_end(key)
        return table

    def _make(self, key: TableKey) -> Sequence[int]:
        names, weights, size = key
        if size < HISTORY_MIN_SLOTS:
            return tuple(sched.maglev_table(names, weights, size))
        for run_key in reversed(self._runs):
            run = self._runs[run_key]
            if run.size == size and (table := run.without(names, weights)) is not None:
                self._runs.move_to_end(run_key)
                self.replays += 1
                return table
        sched.maglev_table([], [], size)  # the checks on size, before a long build
        run = self._runs[key] = MaglevRun(names, weights, size)
        while sum(r.size for r in self._runs.values()) > self.max_run_slots and len(self._runs) > 1:
            _, dropped = self._runs.popitem(last=False)
            # its tables would keep its history alive: they go with it (asked for again, they are built anew)
            for table_key in [k for k, t in self._tables.items() if isinstance(t, MaglevTable) and t.run is dropped]:
                del self._tables[table_key]
        return MaglevTable(run, None, {})


class MaglevTable(Sequence[int]):
    """A run's table with some backends gone: the full table, renumbered, and the slots whose owner changed.

    Held this way rather than as its M slots because what the data plane
    makes of it is the same: a slot map's data is the full table's with
    those few slots rewritten (`texts`), and two tables of one run differ
    only in the slots either rewrote (`patched`), so the diff compares a few
    hundred slots, not 65,521, and nothing copies the renumbered table (a
    server of 1,000 down: `without` was 1.5 ms of renumbering and copying).
    The slots as integers are made only if asked for (`ints`).
    """

    __slots__ = ("run", "mapping", "owners", "_ints")

    def __init__(self, run: MaglevRun, mapping: tuple[int, ...] | None, owners: dict[int, int]) -> None:
        self.run = run
        self.mapping = mapping  # the run's backend index -> this table's (-1: gone); None: the same
        self.owners = owners  # slot -> this table's backend index, where it differs from the run's table
        self._ints: tuple[int, ...] | None = None

    def ints(self) -> tuple[int, ...]:
        if self._ints is None:
            run, mapping = self.run, self.mapping
            table = list(run.table) if mapping is None else [mapping[i] for i in run.table]
            for slot, index in self.owners.items():
                table[slot] = index
            self._ints = tuple(table)
        return self._ints

    def __len__(self) -> int:
        return len(self.run.table)

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[int]: ...

    def __getitem__(self, index: int | slice) -> int | Sequence[int]:
        return self.ints()[index]

    def __iter__(self) -> Iterator[int]:
        return iter(self.ints())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MaglevTable):
            other = other.ints()
        return isinstance(other, Sequence) and tuple(self.ints()) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def slots_of(self, backends: set[int]) -> list[int]:
        """The slots whose backend is one of `backends` (this table's indices), from the run's record of claims.

        In the run's claims, not a scan of every slot: stable_table asks it
        for the few servers down (a server of 1,000 holds about 65 slots).
        """
        run, mapping, owners = self.run, self.mapping, self.owners
        runs = backends if mapping is None else {r for r, index in enumerate(mapping) if index in backends}
        claim_slot, claims, position = run.claim_slot, run.claims, run.position
        slots = [slot for r in runs if r in position for t in claims[position[r]]
                 if (slot := claim_slot[t]) not in owners]
        slots.extend(slot for slot, index in owners.items() if index in backends)
        return slots

    def renumbered(self, index_of: Sequence[int], owners: dict[int, int]) -> MaglevTable:
        """This table with backend i written as index_of[i] (-1: none), and `owners` patched over it.

        `owners` must name every slot whose backend maps to -1: a table's
        slot never holds -1. The run and its texts stay shared, so a map made
        from the result still compares with the run's others slot by slot
        in the patched slots alone (SlotMap.base).
        """
        run, mapping = self.run, self.mapping
        composed = tuple(index_of) if mapping is None else tuple(index_of[i] if i >= 0 else -1 for i in mapping)
        patched = {slot: index_of[index] for slot, index in self.owners.items()}
        patched.update(owners)
        return MaglevTable(run, composed, patched)

    def texts(self, texts: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...]]:
        """(slot -> texts[its backend], the run's full table in texts, the slots that differ from it).

        `texts` are indexed by this table's backends. The full table in texts
        is the run's (`MaglevRun.texts_of`): the same object for every table
        of the run while the backends' texts stay the same objects.
        """
        run, mapping = self.run, self.mapping
        by_run: list[str | None] = list(texts) if mapping is None else [texts[i] if i >= 0 else None for i in mapping]
        base = run.texts_of(by_run)
        if not self.owners:
            return base, base, ()
        data = list(base)
        for slot, index in self.owners.items():
            data[slot] = texts[index]
        return tuple(data), base, tuple(self.owners)


class MaglevRun:
    """One Maglev table with the history `without()` replays (see the module docstring)."""

    def __init__(self, names: Sequence[str], weights: Sequence[int], size: int) -> None:
        if len(names) != len(weights):
            raise sched.SchedulerError(f"{len(names)} names but {len(weights)} weights")
        sched.maglev_table([], [], size)  # the size must be prime
        sched._check_weights(weights)
        self.names = tuple(names)
        self.weights = tuple(weights)
        self.size = size
        turns = sched._maglev_turns(weights)
        self.live = [(i, t) for i, t in enumerate(turns) if t > 0]
        self.position = {index: k for k, (index, _) in enumerate(self.live)}  # backend index -> live position
        self.turns = turns
        perms = [sched._maglev_permutation(names[i], size) for i, _ in self.live]
        self.offsets = [offset for offset, _ in perms]
        self.inverses = [pow(skip, size - 2, size) for _, skip in perms]
        if len(self.live) > size:
            raise sched.SchedulerError(f"{len(self.live)} live backends do not fit a table of {size} slots")
        self._fill([skip for _, skip in perms])

    def _fill(self, skips: list[int]) -> None:
        """sched.maglev_table's loop, also writing down every claim and every slot passed over."""
        size = self.size
        table = [-1] * size
        claim_slot = array("i")  # time -> slot claimed
        claim_by = array("i")  # time -> live position of the claimer
        passed = [array("i") for _ in range(size)]  # slot -> times it was passed over, claimed already
        claims = [array("i") for _ in self.live]  # live position -> times of its claims
        nexts = list(self.offsets)
        left = size if self.live else 0
        t = 0
        self.last_turn = (0, 0)
        while left:
            for k, (index, n_turns) in enumerate(self.live):
                c, skip = nexts[k], skips[k]
                mine = claims[k]
                for turn in range(n_turns):
                    while table[c] >= 0:
                        passed[c].append(t)
                        c += skip
                        if c >= size:
                            c -= size
                    table[c] = index
                    claim_slot.append(c)
                    claim_by.append(k)
                    mine.append(t)
                    t += 1
                    left -= 1
                    if not left:
                        self.last_turn = (k, turn)
                        break
                nexts[k] = c
                if not left:
                    break
        self.table = table if self.live else []
        self._texts: list[tuple[tuple[str | None, ...], tuple[str, ...]]] = []  # (by backend, by slot): texts_of
        self.claim_slot = claim_slot
        self.claim_by = claim_by
        self.passed = passed
        self.claims = claims
        claimed_at = array("i", bytes(4 * size))  # slot -> when it was claimed
        for when, slot in enumerate(claim_slot):
            claimed_at[slot] = when
        self.claimed_at = claimed_at
        first_other = array("i", [-1]) * t  # time -> when another backend than its claimer first passes the slot
        turn_of = array("i", bytes(4 * t))  # time -> which of its claimer's claims it is
        for mine in claims:
            for m, when in enumerate(mine):
                turn_of[when] = m
        self.turn_of = turn_of
        # live position -> the claims m whose slot another backend passes before the claimer's next turn (after
        # its last, at all): where a backend that lags by one claim must be followed turn by turn (_replay)
        exposed: list[list[int]] = [[] for _ in self.live]
        for when in range(t):
            k, m = claim_by[when], turn_of[when]
            mine = claims[k]
            limit = mine[m + 1] if m + 1 < len(mine) else t + 1
            for other in passed[claim_slot[when]]:
                if claim_by[other] != k:
                    first_other[when] = other
                    if other < limit:
                        exposed[k].append(m)
                    break
        self.exposed = exposed
        self.first_other = first_other

    def without(self, names: Sequence[str], weights: Sequence[int]) -> MaglevTable | None:
        """The table `sched.maglev_table(names, weights, size)` if it is this one less some backends, else None.

        None when `names`/`weights` are not this run's with some backends
        left out, or when leaving them out changes the others' turns (a gcd
        or shift of the weights that moves), or when too many leave for the
        replay to pay: the caller builds the table whole.
        """
        found = self._removed(names, weights)
        if found is None:
            return None
        removed, kept = found
        if not removed:
            return MaglevTable(self, None, {})
        if not self.table:
            return None
        position = self.position
        gone = {position[i] for i in removed if i in position}
        if len(gone) * 10 > len(self.live) or len(gone) == len(self.live):
            return None
        owners = self._replay(gone)
        mapping = [-1] * len(self.names)  # old index -> new index
        for new, old in enumerate(kept):
            mapping[old] = new
        live, table = self.live, self.table
        # the replay also names slots that a backend takes back after following a hole: left out, they are the same
        return MaglevTable(self, tuple(mapping), {slot: new for slot, k in owners.items()
                                                  if (new := mapping[live[k][0]]) != mapping[table[slot]]})

    def texts_of(self, by_backend: list[str | None]) -> tuple[str, ...]:
        """This run's full table with each slot's backend written as `by_backend[backend]`; kept for the next call.

        A table without some backends passes None for them (its own texts
        rewrite all their slots): they are read from a kept call's, so the
        full table's texts, made when the pool was whole, serve every table
        of a server or two less at no cost. Compared by identity first: the
        data plane's texts are one object per server (BuildContext.nat_target).
        The last TEXTS_KEPT kinds are kept: a stateless NAT service writes
        one run's table four ways (its conntrack targets, its addresses,
        two kinds of chains), and making each again at every apply also
        made the maps' diff compare every slot (SlotMap.base).
        """
        kept = self._texts
        for at, (key, texts) in enumerate(kept):
            if len(key) != len(by_backend):
                continue
            filled = [key[i] if text is None else text for i, text in enumerate(by_backend)]
            if tuple(filled) == key:
                if at:
                    kept.insert(0, kept.pop(at))
                return texts
        if kept and len(kept[0][0]) == len(by_backend):
            key = kept[0][0]
            by_backend = [key[i] if text is None else text for i, text in enumerate(by_backend)]
        texts = cast(tuple[str, ...], itemgetter(*self.table)(by_backend)) if len(self.table) > 1 \
            else tuple(cast(str, by_backend[i]) for i in self.table)
        kept.insert(0, (tuple(by_backend), texts))
        del kept[TEXTS_KEPT:]
        return texts

    def _removed(self, names: Sequence[str], weights: Sequence[int]) -> tuple[set[int], list[int]] | None:
        """(indices of this run's backends missing from `names`, those kept), or None if `names` is not this
        run's backends less some, in their order, with their weights and turns."""
        if len(names) != len(weights) or len(names) > len(self.names):
            return None
        present = set(names)
        mine = self.names
        removed = {i for i, name in enumerate(mine) if name not in present}
        kept = [i for i in range(len(mine)) if i not in removed] if removed else list(range(len(mine)))
        if [mine[i] for i in kept] != list(names) or [self.weights[i] for i in kept] != list(weights):
            return None  # another order, a server it never had, another weight (or a name twice)
        turns = self.turns
        if [turns[i] for i in kept] != sched._maglev_turns(weights):
            return None  # the turns change: not the same run less some backends
        return removed, kept

    def _replay(self, gone: set[int]) -> dict[int, int]:
        """Slot -> live position of its new owner, for the slots whose owner changes."""
        claim_slot, claim_by, passed, claims = self.claim_slot, self.claim_by, self.passed, self.claims
        offsets, inverses, size, table = self.offsets, self.inverses, self.size, self.table
        claimed_at, first_other = self.claimed_at, self.first_other
        push, pop = heapq.heappush, heapq.heappop

        def rank(k: int, slot: int) -> int:
            return (slot - offsets[k]) * inverses[k] % size
        holes: set[int] = set()
        owners: dict[int, int] = {}
        # live position -> (rank, hole) passed; by need, as a replay touches a few hundred of a thousand
        waiting: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
        events: list[tuple[int, int, int]] = []  # (time, kind, slot): kind 0 a leaver's claim, 1 a pass, 2 a turn

        position = self.position

        def next_pass(hole: int, after: int) -> int:
            """When a backend that stays next passes over `hole` after time `after` (-1: never).

            Not its claimer in the full run, which passes it again at its next turn (it starts from there):
            that one either left or lags and has the hole among those it waits on.
            """
            if after == claimed_at[hole]:  # a hole made as the full run claims it: mostly known at once
                first = first_other[after]
                if first < 0 or claim_by[first] not in gone:
                    return first
            times = passed[hole]
            at = bisect_right(times, after)
            claimer = position[table[hole]]
            while at < len(times) and (claim_by[times[at]] in gone or claim_by[times[at]] == claimer):
                at += 1
            return times[at] if at < len(times) else -1

        def watch(hole: int, after: int) -> None:
            if after == claimed_at[hole]:  # next_pass's first case, written out: the most common
                first = first_other[after]
                if first < 0:
                    return
                if claim_by[first] not in gone:
                    push(events, (first, 1, hole))
                    return
            when = next_pass(hole, after)
            if when >= 0:
                push(events, (when, 1, hole))

        # a lagging backend's hole that nobody passes before its next turn waits for that turn (mostly it takes
        # it back then): live position -> (hole, when it is next passed)
        deferred: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)

        for k in gone:
            for t in claims[k]:
                push(events, (t, 0, claim_slot[t]))
        lagging: set[int] = set()
        # A backend that lags by one claim, and whose hole nobody else meets before its next turn, takes that
        # hole back at the turn and leaves the next: nothing changes in the table. Such a backend is left
        # alone ("asleep", with the turn from which this holds) until the first turn whose hole someone
        # else may meet (self.exposed), or until it meets a hole itself; its hole is then made real again.
        asleep: dict[int, int] = {}
        exposed, turn_of = self.exposed, self.turn_of

        def wake(k: int, t: int) -> None:
            hole = claim_slot[claims[k][turn_of[t] - 1]]
            holes.add(hole)
            waiting[k] = [(rank(k, hole), hole)]
            lagging.add(k)
            del asleep[k]

        while events:
            t = events[0][0]
            k = claim_by[t]
            met: list[int] = []
            while events and events[0][0] == t:
                _, kind, slot = pop(events)
                if kind == 0:
                    holes.add(slot)
                    watch(slot, t)
                elif kind == 1 and slot in holes:
                    met.append(slot)
            if asleep and k in asleep and (met or asleep[k] <= turn_of[t]):
                wake(k, t)
            if k in gone or (not met and k not in lagging):
                continue
            # rank() written out from here on: this loop runs once per claim the replay follows
            offset, inverse = offsets[k], inverses[k]
            own = claim_slot[t]
            best, best_rank = own, (own - offset) * inverse % size
            own_rank = best_rank
            queue = waiting[k]
            while queue and queue[0][1] not in holes:
                pop(queue)
            if queue and queue[0][0] < best_rank:
                best_rank, best = queue[0]
            if met:
                ranked = [((slot - offset) * inverse % size, slot) for slot in met]
                for r, slot in ranked:
                    if r < best_rank:
                        best, best_rank = slot, r
                for entry in ranked:
                    if entry[1] != best:
                        push(queue, entry)
                        watch(entry[1], t)
            late = deferred.pop(k, None)
            if late:
                for slot, when in late:
                    if slot != best and slot in holes:
                        push(events, (when, 1, slot))
            if best == own:
                lagging.discard(k)
                continue
            holes.discard(best)
            owners[best] = k
            holes.add(own)  # the full run claims it now; this one does not
            mine = claims[k]
            nxt = turn_of[t] + 1
            when = next_pass(own, t)
            while queue and queue[0][1] not in holes:
                pop(queue)
            if nxt < len(mine) and not queue and not 0 <= when < mine[nxt]:
                # lags by one and nobody meets its hole before its next turn: asleep until a turn that may matter
                holes.discard(own)
                lagging.discard(k)
                at = bisect_left(exposed[k], nxt)
                wake_turn = exposed[k][at] if at < len(exposed[k]) else len(mine)
                asleep[k] = wake_turn
                if wake_turn < len(mine):
                    push(events, (mine[wake_turn], 2, -1))
                continue
            push(queue, (own_rank, own))
            if nxt < len(mine):
                if 0 <= when < mine[nxt]:
                    push(events, (when, 1, own))
                elif when >= 0:
                    deferred[k].append((own, when))
                push(events, (mine[nxt], 2, -1))
            elif when >= 0:
                push(events, (when, 1, own))
            lagging.add(k)
        for k in list(asleep):  # asleep to the end: its last claim is a hole
            holes.add(claim_slot[claims[k][-1]])
        # the full run's claims are over: the holes left go turn by turn, each to its claimer's first
        k, turn = self.last_turn
        while holes:
            turn += 1
            if turn >= self.live[k][1]:
                k, turn = (k + 1) % len(self.live), 0
            if k in gone:
                continue
            offset, inverse = offsets[k], inverses[k]  # rank() written out: this loop is quadratic in the holes
            best = min([((slot - offset) * inverse % size, slot) for slot in holes])[1]
            holes.discard(best)
            owners[best] = k
        return owners
