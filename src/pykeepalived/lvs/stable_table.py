"""A hash table of real servers in which a server's failure moves its own flows and no others.

Stateless paths (nft_stateless.py, nft_forward.py) keep no per-flow state:
the table alone decides where every packet of a flow goes, so a slot whose
server changes breaks the flows on it. Maglev (sched.maglev_table) moves a
few other slots whenever a server joins or leaves (removing one of five
servers moves about 3.5 % of the others' slots), which conntrack hides and a
stateless path does not. So the stable table is Maglev over the configured
pool, with each server that is configured but not eligible now (down, weight
0, overloaded) left in place, and only its slots handed, one by one, to the
eligible server that wins a weighted rendezvous hash for that slot: its
flows spread over the others, theirs stay. When it comes back its slots
return to it. Pure and keyed by names, so every router with the same config
and the same health builds the same table (failover keeps flows, as Maglev).

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
from .maglev import RecentTables
from .model import Destination, VirtualService

_KEY = b"pykeepalived/stable/v1"  # fixed: changing it moves every fallback slot
_MASK64 = (1 << 64) - 1


@lru_cache(maxsize=1 << 14)
def _name_key(name: str) -> int:
    """A server's rendezvous key, remembered: every apply with a server down asks for every live one's."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), key=_KEY, digest_size=8).digest(), "big")


def stable_table(pool: Sequence[tuple[str, int]], eligible: Sequence[tuple[str, int]],
                 tables: RecentTables | None = None) -> list[int]:
    """Slot -> index into `eligible` ((name, weight) pairs); `pool` is every configured server (name, weight).

    The base is Maglev over the pool, in its order, each eligible server
    with its current weight and the others with their configured one; a
    server eligible but not in the pool (a sorry server, one added at run
    time) joins the base at the end. Empty when nothing is eligible.
    `tables` (the data plane's) keeps the base from one apply to the next
    (a server going down leaves it as it is) and the result, asked for by
    both of a stateless NAT service's paths (the list is shared: read it only).
    """
    if tables is not None:
        return tables.derived(("stable", tuple(pool), tuple(eligible)), lambda: _stable_table(pool, eligible, tables))
    return _stable_table(pool, eligible, None)


def _stable_table(pool: Sequence[tuple[str, int]], eligible: Sequence[tuple[str, int]],
                  tables: RecentTables | None) -> list[int]:
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
    out = list(itemgetter(*base)(owner_index)) if len(base) > 1 else [owner_index[i] for i in base]
    if len(live) == len(names):
        return out
    keys = [(index[name], _name_key(name), weight) for name, weight in live]
    orphans = [slot for slot, mine in enumerate(out) if mine < 0]
    # weighted rendezvous: the largest weight / -ln(u) wins an orphaned slot, u in (0, 1) from splitmix64 of the
    # server's key and the slot (the top 53 bits, + 0.5, over 2^53; written out: 1,000 servers per slot). With one
    # weight the largest u wins, and u grows with x >> 11 (ties alike), so no logarithm is needed
    uniform = len({weight for _, _, weight in keys}) == 1
    log = math.log
    for slot in orphans:
        mix = slot * 0x9E3779B97F4A7C15
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


def service_table(svc: VirtualService, dests: Sequence[Destination], tables: RecentTables | None = None) -> list[int]:
    """Slot -> index into `dests` (the eligible servers) for a stateless service; its pool, or its servers."""
    pool = svc.pool or tuple((d.name, d.weight) for d in svc.destinations)
    return stable_table(pool, [(d.name, d.weight) for d in dests], tables)
