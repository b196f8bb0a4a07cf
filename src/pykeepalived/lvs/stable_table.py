"""A hash table of real servers in which a server's failure moves its own flows and no others.

Stateless paths (nft_stateless.py, nft_forward.py) keep no per-flow state:
the table alone decides where every packet of a flow goes, so a slot whose
server changes breaks the flows on it. Maglev (sched.maglev_table) moves a
few other slots whenever a server joins or leaves (removing one of five
servers moves about 3.5 % of the others' slots), which conntrack hides and a
stateless path does not. So the stable table is Maglev over the configured
pool, with each server that is configured but not eligible now (down, weight
0, overloaded) left in place, and only its slots handed, one by one, to an
eligible server drawn for that slot: its flows spread over the others,
theirs stay. When it comes back its slots return to it. Pure and keyed by
the configuration, so every router with the same config and the same health
builds the same table (failover keeps flows, as Maglev).

The draw (`_fallback`): a fixed sequence of candidates per slot, each a
server of the base's list and a number in [0, 1) from a keyed hash of the
slot and the draw's rank; the first candidate that is eligible and whose
number is below its weight over the base's largest weight takes the slot.
So a slot goes to a server in proportion to its weight, every slot
independently, and a second server going down moves only the slots it held
(the draws before its own were refused and stay refused). Most slots are
taken at the first draw or two; a slot none of FALLBACK_DRAWS takes (most
servers down, or weights far apart) goes to the weighted rendezvous winner
over the eligible servers, which has the same properties at the cost of a
hash per eligible server. Before 2026-12-05 every slot went that way: about
65,000 hashes for one server of 1,000 down, 23 ms (docs/dataplane.md, apply
times); a pair of routers of which one runs the older rule and one the
newer hands a down server's slots to different servers while both run.

What still moves others' flows: a weight change of an eligible server or a
pool change in the config (Maglev's few), as documented in
docs/dataplane.md.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from functools import lru_cache
from operator import itemgetter

from . import sched
from .maglev import MaglevTable, RecentTables
from .model import Destination, VirtualService

_KEY = b"pykeepalived/stable/v1"  # fixed: changing it moves every rendezvous slot
_MASK64 = (1 << 64) - 1
_MASK32 = (1 << 32) - 1
_GOLDEN = 0x9E3779B97F4A7C15
FALLBACK_DRAWS = 32
"""Draws per orphaned slot before the rendezvous decides it (part of the rule: every router must use the same)."""
_DRAW_SEED = int.from_bytes(hashlib.blake2b(b"fallback draws", key=b"pykeepalived/stable/v2",
                                            digest_size=8).digest(), "big")


@lru_cache(maxsize=1 << 14)
def _name_key(name: str) -> int:
    """A server's rendezvous key, remembered: every rendezvous asks for every live one's."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), key=_KEY, digest_size=8).digest(), "big")


def stable_table(pool: Sequence[tuple[str, int]], eligible: Sequence[tuple[str, int]],
                 tables: RecentTables | None = None) -> Sequence[int]:
    """Slot -> index into `eligible` ((name, weight) pairs); `pool` is every configured server (name, weight).

    The base is Maglev over the pool, in its order, each eligible server
    with its current weight and the others with their configured one; a
    server eligible but not in the pool (a sorry server, one added at run
    time) joins the base at the end. Empty when nothing is eligible.
    `tables` (the data plane's) keeps the base from one apply to the next
    (a server going down leaves it as it is) and the result, asked for by
    both of a stateless NAT service's paths (shared: read it only). A base
    built with a history gives a `MaglevTable` (the run's table renumbered,
    the orphaned slots patched), which a slot map compares with the run's
    other tables in the patched slots alone.
    """
    if tables is not None:
        return tables.derived(("stable", tuple(pool), tuple(eligible)), lambda: _stable_table(pool, eligible, tables))
    return _stable_table(pool, eligible, None)


def _stable_table(pool: Sequence[tuple[str, int]], eligible: Sequence[tuple[str, int]],
                  tables: RecentTables | None) -> Sequence[int]:
    live = [(name, weight) for name, weight in eligible if weight > 0]
    if not live:
        return []
    current = dict(live)
    configured = dict(pool)
    names = [name for name, _ in pool] + [name for name, _ in live if name not in configured]
    weights = [current.get(name, configured.get(name, 0)) for name in names]
    size = sched.maglev_size_for(len(names))
    base = tables.maglev(names, weights, size) if tables is not None else sched.maglev_table(names, weights, size)
    index = {name: i for i, (name, _) in enumerate(eligible)}
    # base owner -> its index in `eligible`, or -1 where it is not live now (its slots are handed out below)
    owner_index = [index[name] if current.get(name, 0) > 0 else -1 for name in names]
    down = {i for i, mine in enumerate(owner_index) if mine < 0}
    if isinstance(base, MaglevTable):
        orphans = base.slots_of(down) if down else []
        return base.renumbered(owner_index, _fallback(orphans, names, weights, owner_index, live, index))
    out = list(itemgetter(*base)(owner_index)) if len(base) > 1 else [owner_index[i] for i in base]
    if down:
        orphans = [slot for slot, mine in enumerate(out) if mine < 0]
        for slot, mine in _fallback(orphans, names, weights, owner_index, live, index).items():
            out[slot] = mine
    return out


def _fallback(orphans: Sequence[int], names: Sequence[str], weights: Sequence[int], owner_index: Sequence[int],
              live: Sequence[tuple[str, int]], index: dict[str, int]) -> dict[int, int]:
    """Orphaned slot -> the eligible index that takes it (module docstring: the draw).

    Draw j of slot s: splitmix64 of a seed, s and j; its top 32 bits pick
    the candidate (names[(x >> 32) * n >> 32]), its low 32 bits over 2^32
    are the number compared with the candidate's weight over the largest.
    """
    n = len(names)
    top = max(weights)
    out: dict[int, int] = {}
    rest: list[int] = []
    for slot in orphans:
        state = (_DRAW_SEED + slot * FALLBACK_DRAWS * _GOLDEN) & _MASK64
        for _ in range(FALLBACK_DRAWS):
            state = (state + _GOLDEN) & _MASK64
            x = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
            x ^= x >> 31
            candidate = ((x >> 32) * n) >> 32
            mine = owner_index[candidate]
            if mine >= 0 and (x & _MASK32) * top < weights[candidate] << 32:
                out[slot] = mine
                break
        else:
            rest.append(slot)
    if rest:
        out.update(_rendezvous(rest, live, index))
    return out


def _rendezvous(orphans: Sequence[int], live: Sequence[tuple[str, int]], index: dict[str, int]) -> dict[int, int]:
    """Weighted rendezvous over the live servers: the largest weight / -ln(u) wins each slot.

    u in (0, 1) from splitmix64 of the server's key and the slot (the top
    53 bits, + 0.5, over 2^53; written out: a hash per live server per
    slot). With one weight the largest u wins, and u grows with x >> 11
    (ties alike), so no logarithm is needed.
    """
    keys = [(index[name], _name_key(name), weight) for name, weight in live]
    uniform = len({weight for _, _, weight in keys}) == 1
    log = math.log
    out: dict[int, int] = {}
    for slot in orphans:
        mix = slot * _GOLDEN
        best, best_score = -1, -1.0
        for mine, key, weight in keys:
            x = (key ^ mix) & _MASK64
            x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
            u = (x ^ (x >> 31)) >> 11
            score = u if uniform else weight / -log((u + 0.5) / _TWO_53)
            if score > best_score:
                best, best_score = mine, score
        out[slot] = best
    return out


_TWO_53 = float(1 << 53)


def service_table(svc: VirtualService, dests: Sequence[Destination],
                  tables: RecentTables | None = None) -> Sequence[int]:
    """Slot -> index into `dests` (the eligible servers) for a stateless service; its pool, or its servers."""
    pool = svc.pool or tuple([(d.name, d.weight) for d in svc.destinations])
    return stable_table(pool, [(d.name, d.weight) for d in dests], tables)
