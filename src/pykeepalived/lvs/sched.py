"""Slot tables that let nftables stand in for the IPVS schedulers.

The nftables data plane cannot run a scheduler per connection: a new flow
picks a slot with `numgen inc|random mod S` or `jhash ... mod M`, and a map
turns the slot into a real server. So every scheduler becomes a table, and
this module computes those tables. It is pure (no I/O, clock or unseeded
randomness) so that the same inputs give the same table on every node, which
keeps peers and reloads from reshuffling traffic, and so tests can pin it.

What is exact and what is approximate, and why:

- rr and wrr are exact: `numgen inc` walking one IPVS cycle hands out new
  connections in the kernel's order (wrr is scaled down when its cycle would
  make a huge map; see `wrr_sequence`).
- mh is Maglev as ip_vs_mh.c builds it, but our hash of a backend's name
  replaces the kernel's siphash of its address, so the same backends map the
  same way between our nodes, not to the same slots as a kernel table.
- lc, wlc, sed, nq, twos, fo and ovf read connection counts at the moment of
  each choice. nftables has no such feedback, and we refresh the map only now
  and then, so we simulate what IPVS would do with the next `expected_new`
  connections and give backends slots in that proportion (`load_slots`).

Backends are always identified by their index in the lists passed in.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import deque
from collections.abc import Sequence

from ..config.vocabulary import LOAD_SCHEDULERS

MAGLEV_SIZES = (251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521)
"""The prime table sizes ip_vs_mh.c offers (bar 131071), smallest first."""


_MAGLEV_KEY = b"pykeepalived/maglev/v1"
"""Fixed key for the backend hash: changing it moves every flow, so don't."""

_MH_TAB_BITS = 6
"""IP_VS_MH_TAB_BITS for the kernel's default table: per-turn weights keep at most this many bits."""

_OVERHEAD_ACTIVE = 256
"""ip_vs_dest_conn_overhead counts an active connection as 256 inactive ones."""


class SchedulerError(ValueError):
    """The caller asked for a table that cannot be built (bad scheduler, size or inputs)."""


def _check_weights(weights: Sequence[int]) -> None:
    if any(w < 0 for w in weights):
        raise SchedulerError(f"weights must be >= 0, got {list(weights)}")


def rr_sequence(weights: Sequence[int]) -> list[int]:
    """IPVS rr over one cycle: every backend with weight > 0 once, in list order."""
    _check_weights(weights)
    return [i for i, w in enumerate(weights) if w > 0]


def _scale_down(weights: Sequence[int], max_sum: int) -> list[int]:
    """Shrink weights so they sum to at most `max_sum`, keeping every positive one >= 1."""
    total = sum(weights)
    budget = max_sum
    while True:
        scaled = [max(1, w * budget // total) if w > 0 else 0 for w in weights]
        excess = sum(scaled) - max_sum
        if excess <= 0 or budget <= 0:
            return scaled
        budget -= excess


def wrr_sequence(weights: Sequence[int], max_slots: int = 1024) -> list[int]:
    """The order in which IPVS wrr hands out new connections over one full cycle.

    ip_vs_wrr.c keeps a current weight cw that starts at the maximum weight
    and walks the list picking every dest with weight >= cw; each time the
    walk wraps, cw drops by the gcd of the weights, back to the maximum when
    it falls below 1 (older kernels start cw at 0, which comes to the same).
    One cycle is therefore sum(w)/gcd picks: the map for `numgen inc`.

    A cycle longer than `max_slots` would make a huge map, so the weights are
    then scaled down in proportion (rounded down, never below 1): shares are
    right to about one slot per backend and the order is that of the scaled
    weights, an approximation we accept for large coprime weights. Every
    live backend appears, so the table is never shorter than their number.
    """
    _check_weights(weights)
    if max_slots < 1:
        raise SchedulerError(f"max_slots must be >= 1, got {max_slots}")
    if not any(w > 0 for w in weights):
        return []
    step = math.gcd(*weights)
    if sum(weights) // step > max_slots:
        weights = _scale_down(weights, max_slots)
        step = math.gcd(*weights)
    live = [(i, w) for i, w in enumerate(weights) if w > 0]
    sequence: list[int] = []
    for cw in range(max(weights), 0, -step):
        sequence.extend(i for i, w in live if w >= cw)
    return sequence


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


def maglev_size_for(n_backends: int) -> int:
    """The smallest size in MAGLEV_SIZES with at least 100 slots per backend, capped at 65521.

    The Maglev paper (NSDI 2016, §3.4) picks size > 100 * backends to keep
    shares within about 1%; larger tables only cost map memory.
    """
    return next((s for s in MAGLEV_SIZES if s >= 100 * n_backends), MAGLEV_SIZES[-1])


def _maglev_permutation(name: str, size: int) -> tuple[int, int]:
    """(offset, skip) for one backend, from a keyed hash that is the same on every machine and run."""
    digest = hashlib.blake2b(name.encode("utf-8"), key=_MAGLEV_KEY, digest_size=16).digest()
    offset = int.from_bytes(digest[:8], "big") % size
    skip = int.from_bytes(digest[8:], "big") % (size - 1) + 1
    return offset, skip


def _maglev_turns(weights: Sequence[int]) -> list[int]:
    """Slots per round for each backend, as ip_vs_mh_permutate computes them.

    Each backend fills weight/gcd slots in a row per round; when the largest
    needs more than _MH_TAB_BITS bits all are shifted right, so a round stays
    short and the table, which ends mid-round, stays near the weights. A
    positive weight keeps at least one turn.
    """
    live = [w for w in weights if w > 0]
    if not live:
        return [0] * len(weights)
    step = math.gcd(*live)
    shift = max(0, (max(live) // step).bit_length() - _MH_TAB_BITS)
    return [((w // step) >> shift) or (1 if w > 0 else 0) for w in weights]


def maglev_table(names: Sequence[str], weights: Sequence[int], size: int = 4093) -> list[int]:
    """A Maglev lookup table of `size` slots holding backend indices, for `jhash ... mod size`.

    Maglev (Eisenbud et al., NSDI 2016, §3.4) gives each backend its own
    permutation of the slots (offset + k*skip mod size); backends take turns
    claiming their next free preferred slot, so removing one moves few flows
    besides its own. Weights work as in ip_vs_mh.c (`_maglev_turns`); weight
    0 claims nothing. The permutation comes from the backend's name (use a
    stable one such as "[addr]:port"): the table depends only on the names,
    weights and order given (so `maglev.RecentTables` may keep it).
    """
    if len(names) != len(weights):
        raise SchedulerError(f"{len(names)} names but {len(weights)} weights")
    _check_weights(weights)
    if not _is_prime(size):
        raise SchedulerError(f"Maglev table size must be prime, got {size}; try one of {MAGLEV_SIZES}")
    turns = _maglev_turns(weights)
    live = [(i, t) for i, t in enumerate(turns) if t > 0]
    if not live:
        return []
    if len(live) > size:
        raise SchedulerError(f"{len(live)} live backends do not fit a table of {size} slots")
    perms = [_maglev_permutation(names[i], size) for i, _ in live]
    nexts = [offset for offset, _ in perms]
    skips = [skip for _, skip in perms]
    table = [-1] * size
    left = size
    while True:
        for k, (index, n_turns) in enumerate(live):
            c, skip = nexts[k], skips[k]
            for _ in range(n_turns):
                while table[c] >= 0:
                    c += skip
                    if c >= size:
                        c -= size
                table[c] = index
                left -= 1
                if not left:
                    return table
            nexts[k] = c


def _largest_remainder(counts: Sequence[int], slots: int) -> list[int]:
    """Apportion `slots` in proportion to `counts`, giving every positive count at least one slot.

    Hamilton's method, then each backend left at 0 takes a slot from the one
    most over its exact quota. If there are more positive counts than slots,
    the largest counts (first in list order on ties) get one slot each.
    """
    total = sum(counts)
    positive = [i for i, c in enumerate(counts) if c > 0]
    if len(positive) > slots:
        chosen = sorted(positive, key=lambda i: (-counts[i], i))[:slots]
        return [1 if i in chosen else 0 for i in range(len(counts))]
    alloc = [c * slots // total for c in counts]
    by_remainder = sorted(range(len(counts)), key=lambda i: (-(counts[i] * slots % total), i))
    for i in by_remainder[: slots - sum(alloc)]:
        alloc[i] += 1
    for i in positive:
        if alloc[i] == 0:
            # alloc[j]*total - counts[j]*slots is total * (how far j is over its quota)
            donor = max((j for j in positive if alloc[j] > 1), key=lambda j: (alloc[j] * total - counts[j] * slots, -j))
            alloc[donor] -= 1
            alloc[i] = 1
    return alloc


def _water_fill(
    scheduler: str, weights: Sequence[int], active: Sequence[int], inactive: Sequence[int], expected_new: int
) -> list[int]:
    """How many of `expected_new` connections IPVS would give each backend, one choice at a time.

    Each pick goes to the backend with the least metric, first in list order
    on ties (the kernel replaces its candidate only on a strict improvement).
    Metrics are compared as exact integers scaled by the lcm of the weights.
    """
    live = [i for i, w in enumerate(weights) if w > 0]
    received = [0] * len(weights)
    if scheduler != "nq" and len({(weights[i], active[i], inactive[i]) for i in live}) == 1:
        # alike backends take one connection each in list order, round after round (what the heap below does)
        rounds, first = divmod(max(1, expected_new), len(live))
        for n, i in enumerate(live):
            received[i] = rounds + (n < first)
        return received
    scale = math.lcm(*(weights[i] for i in live))
    heap: list[tuple[int, int, int]] = []
    step = [0] * len(weights)
    for i in live:
        per_weight = 1 if scheduler == "lc" else scale // weights[i]
        if scheduler == "sed" or scheduler == "nq":  # ip_vs_sed/nq_dest_overhead: active + 1, inactive ignored
            step[i] = per_weight
            idle_first = scheduler == "nq" and active[i] == 0
            heap.append((0, 0, i) if idle_first else (1, (active[i] + 1) * per_weight, i))
        else:
            step[i] = _OVERHEAD_ACTIVE * per_weight
            heap.append((1, (active[i] * _OVERHEAD_ACTIVE + inactive[i]) * per_weight, i))
    heapq.heapify(heap)
    for _ in range(max(1, expected_new)):
        tier, key, i = heap[0]
        received[i] += 1
        # nq takes an idle server at once; with one connection it competes as in sed
        heapq.heapreplace(heap, (1, key + step[i] if tier else 2 * step[i], i))
    return received


def load_slots(
    scheduler: str,
    weights: Sequence[int],
    active: Sequence[int],
    inactive: Sequence[int],
    expected_new: int,
    slots: int = 256,
) -> list[int]:
    """How many of `slots` map slots each backend gets to mimic a load-based IPVS scheduler.

    lc (least overhead, active*256 + inactive), wlc (least overhead/weight),
    sed (least (active+1)/weight) and nq (an idle server first, else as sed)
    are water-filled: we hand out `expected_new` connections (at least 1) as
    IPVS would, each raising its backend's active count, and share the slots
    in proportion to what each backend received (largest remainder; a backend
    that received any gets at least one slot). Pass the number of new
    connections expected before the next refresh: with 1 the table copies
    IPVS's next choice, with many it spreads as IPVS would over that time.
    twos (power of two random choices) is treated as wlc, the choice it
    approximates without the randomness.

    fo gives every slot to the first backend of highest weight. ovf does too,
    but only among backends whose active count does not exceed their weight
    (ip_vs_ovf.c skips `activeconns > weight`); when none qualifies IPVS
    would refuse the connection, and we keep the highest-weight backend
    instead because an empty map would drop it just the same but silently.

    Weight 0 never gets slots; with no positive weight all counts are 0.
    """
    if scheduler not in LOAD_SCHEDULERS:
        raise SchedulerError(f"unknown load-based scheduler {scheduler!r}; expected one of {sorted(LOAD_SCHEDULERS)}")
    if not len(weights) == len(active) == len(inactive):
        raise SchedulerError(f"{len(weights)} weights, {len(active)} active and {len(inactive)} inactive counts")
    if slots < 1:
        raise SchedulerError(f"slots must be >= 1, got {slots}")
    for what, values in (("weights", weights), ("active counts", active), ("inactive counts", inactive)):
        if any(v < 0 for v in values):
            raise SchedulerError(f"{what} must be >= 0, got {list(values)}")
    result = [0] * len(weights)
    live = [i for i, w in enumerate(weights) if w > 0]
    if not live:
        return result
    if scheduler == "fo" or scheduler == "ovf":
        candidates = live
        if scheduler == "ovf":
            candidates = [i for i in live if active[i] <= weights[i]] or live
        best = max(candidates, key=lambda i: (weights[i], -i))
        result[best] = slots
        return result
    received = _water_fill(scheduler, weights, active, inactive, expected_new)
    return _largest_remainder(received, slots)


def spread(counts: Sequence[int]) -> list[int]:
    """Turn slot counts into a slot list with each backend's slots spread out evenly.

    Smooth weighted round robin as in nginx: each step every backend adds its
    count to its score, the highest (first on ties) takes the slot and gives
    back the total. Runs stay short, so any stretch of the map has the right
    mix.

    Backends with the same count keep the same order among themselves (the
    one taken least, first on ties, leads), so each step compares one
    candidate per distinct count: O(sum(counts) * distinct counts), which is
    a few operations per slot for the near-equal counts load tables have.
    """
    if any(c < 0 for c in counts):
        raise SchedulerError(f"counts must be >= 0, got {list(counts)}")
    total = sum(counts)
    groups: dict[int, deque[int]] = {}
    for i, c in enumerate(counts):
        if c > 0:
            groups.setdefault(c, deque()).append(i)
    # score of backend i before step t's pick: (t + 1) * counts[i] - total * taken[i]
    queues = list(groups.items())
    taken = [0] * len(counts)
    out: list[int] = []
    for t in range(1, total + 1):
        best_key: tuple[int, int] | None = None
        best_queue: deque[int] | None = None
        for count, queue in queues:
            lead = queue[0]
            key = (t * count - total * taken[lead], -lead)
            if best_key is None or key > best_key:
                best_key, best_queue = key, queue
        assert best_queue is not None  # total > 0 means some queue
        best = best_queue.popleft()
        best_queue.append(best)
        taken[best] += 1
        out.append(best)
    return out


def sticky_spread(before: Sequence[str | None], names: Sequence[str], counts: Sequence[int]) -> list[int]:
    """Slot list with `counts[i]` slots for backend `names[i]`, moving as few slots as it can from `before`.

    For tables read by `numgen random` only the counts matter, so a new
    table may keep every slot whose backend (named in `before`, slot by
    slot) still has slots to fill, and hand the others out as `spread` would
    to what is left. One server of a thousand that leaves then changes the
    few slots it had (and those past a shorter table's end), not all of
    them: the data plane rewrites those map elements alone. Without `before`
    this is `spread(counts)`.
    """
    if any(c < 0 for c in counts):
        raise SchedulerError(f"counts must be >= 0, got {list(counts)}")
    if len(names) != len(counts):
        raise SchedulerError(f"{len(names)} names but {len(counts)} counts")
    if not before:
        return spread(counts)
    total = sum(counts)
    index = {name: i for i, name in enumerate(names)}
    left = list(counts)
    out = [-1] * total
    for slot, name in enumerate(before[:total]):
        i = index.get(name) if name is not None else None
        if i is not None and left[i] > 0:
            out[slot] = i
            left[i] -= 1
    rest = iter(spread(left))
    return [i if i >= 0 else next(rest) for i in out]
