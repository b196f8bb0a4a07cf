"""The load-based tables kept from one build to the next, and spread's grouped walk against nginx's loop."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykeepalived.lvs.sched import SchedulerError, spread, sticky_spread


def nginx_spread(counts: list[int]) -> list[int]:
    """Smooth weighted round robin written out step by step, as nginx does it: the reference."""
    total = sum(counts)
    live = [i for i, c in enumerate(counts) if c > 0]
    score = dict.fromkeys(live, 0)
    out = []
    for _ in range(total):
        for i in live:
            score[i] += counts[i]
        best = max(live, key=lambda i: (score[i], -i))
        score[best] -= total
        out.append(best)
    return out


@given(st.lists(st.one_of(st.integers(0, 40), st.sampled_from([4, 5])), max_size=14))
def test_spread_is_nginx_smooth_weighted_round_robin(counts: list[int]) -> None:
    assert spread(counts) == nginx_spread(counts)


def test_without_a_table_in_force_sticky_spread_is_spread() -> None:
    assert sticky_spread((), ["a", "b", "c"], [3, 2, 1]) == spread([3, 2, 1])


def test_a_server_that_leaves_frees_its_slots_and_nothing_else_moves() -> None:
    names = [f"s{i}" for i in range(10)]
    before = [names[i] for i in spread([4] * 10)]
    rest = names[:3] + names[4:]
    after = sticky_spread(before, rest, [4] * 8 + [8])  # 40 slots: the leaver's four go to the last server
    assert Counter(after) == Counter({i: 4 for i in range(8)} | {8: 8})
    moved = [slot for slot, (old, new) in enumerate(zip(before, after, strict=True)) if old != rest[new]]
    assert moved == [slot for slot, old in enumerate(before) if old == "s3"]


@given(st.lists(st.integers(0, 12), min_size=1, max_size=8), st.lists(st.integers(0, 12), min_size=1, max_size=8),
       st.integers(0, 7))
def test_sticky_spread_keeps_the_counts_and_every_slot_it_can(old: list[int], new: list[int], shift: int) -> None:
    old_names = [f"s{i}" for i in range(len(old))]
    new_names = [f"s{i + shift}" for i in range(len(new))]  # some servers stay, some go, some come
    before = [old_names[i] for i in spread(old)]
    after = sticky_spread(before, new_names, new)
    assert Counter(after) == Counter({i: c for i, c in enumerate(new) if c})
    kept = sum(1 for a, b in zip(before, after) if a == new_names[b])
    # a slot moves only if its server is gone, has fewer slots now, or the table got shorter
    wanted = {name: c for name, c in zip(new_names, new, strict=True)}
    held = Counter(before[:len(after)])
    assert kept == sum(min(held[name], wanted.get(name, 0)) for name in held)


def test_sticky_spread_rejects_bad_input() -> None:
    with pytest.raises(SchedulerError):
        sticky_spread(["a"], ["a"], [-1])
    with pytest.raises(SchedulerError):
        sticky_spread(["a"], ["a", "b"], [1])
