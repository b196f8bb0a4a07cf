"""The Maglev table of a pool less a few servers, replayed from the full pool's history, is the table itself."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykeepalived.lvs import sched
from pykeepalived.lvs.maglev import MaglevRun, MaglevTable, RecentTables


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 45), st.sampled_from([251, 509, 1021, 4093]), st.data(), st.booleans(), st.text(max_size=4))
def test_a_pool_less_some_servers_gets_exactly_the_table_built_whole(
        n: int, size: int, data: st.DataObject, weighted: bool, salt: str) -> None:
    names = [f"{salt}[10.0.0.{i}]:80" for i in range(n)]
    weights = data.draw(st.lists(st.sampled_from([0, 1, 1, 2, 3, 5]), min_size=n, max_size=n)) if weighted \
        else [1] * n
    run = MaglevRun(names, weights, size)
    assert run.table == sched.maglev_table(names, weights, size)
    gone = data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=max(1, n // 10)))
    rest = [i for i in range(n) if i not in gone]
    table = run.without([names[i] for i in rest], [weights[i] for i in rest])
    if table is not None:  # None: the others' turns change (gcd or shift of the weights), built whole instead
        assert table == sched.maglev_table([names[i] for i in rest], [weights[i] for i in rest], size)


def test_what_is_not_this_pool_less_some_servers_is_left_to_a_whole_build() -> None:
    run = MaglevRun(["a", "b", "c", "d"], [1, 1, 1, 1], 251)
    assert run.without(["a", "b", "c", "d"], [1, 1, 1, 1]) == run.table
    assert run.without(["a", "c", "b"], [1, 1, 1]) is None  # another order
    assert run.without(["a", "b", "e"], [1, 1, 1]) is None  # a server it never had
    assert run.without(["a", "b", "c"], [1, 2, 1]) is None  # another weight
    assert MaglevRun(["a", "b", "c"], [2, 2, 1], 251).without(["a", "b"], [2, 2]) is None  # the gcd moves


def test_recent_tables_replay_big_tables_and_copy_the_rest() -> None:
    tables = RecentTables()
    names = [f"[10.0.0.{i}]:80" for i in range(50)]
    full = tables.maglev(names, [1] * 50, 8191)
    assert tables.maglev(names, [1] * 50, 8191) is full
    less = names[:7] + names[8:]
    assert list(tables.maglev(less, [1] * 49, 8191)) == sched.maglev_table(less, [1] * 49, 8191)
    assert tables.replays == 1
    tables.maglev(names[:3], [1] * 3, 509)
    assert tables.replays == 1  # small tables are built whole
    with pytest.raises(sched.SchedulerError):
        tables.maglev(names, [1] * 50, 8192)


def test_a_table_less_some_servers_writes_its_texts_from_the_full_tables_with_its_own_slots_patched() -> None:
    names = [f"[10.0.0.{i}]:80" for i in range(60)]
    texts = [f'"10.0.0.{i}"' for i in range(60)]
    run = MaglevRun(names, [1] * 60, 4093)
    full = run.without(names, [1] * 60)
    less = run.without(names[:9] + names[10:], [1] * 59)
    assert isinstance(full, MaglevTable) and isinstance(less, MaglevTable)
    data, base, patched = full.texts(texts)
    assert data is base and patched == () and list(data) == [texts[i] for i in run.table]
    kept = texts[:9] + texts[10:]
    data, again, patched = less.texts(kept)
    assert again is base  # the full table's texts, made once
    assert list(data) == [kept[i] for i in less.ints()] and list(less) == list(less.ints())
    assert sorted(patched) == [s for s in range(4093) if data[s] != base[s]]


def test_a_run_pushed_out_of_recent_tables_takes_its_tables_with_it() -> None:
    tables = RecentTables(max_run_slots=8191)
    first = [f"[10.0.0.{i}]:80" for i in range(50)]
    tables.maglev(first, [1] * 50, 8191)
    tables.maglev(first[1:], [1] * 49, 8191)
    tables.maglev([f"[10.0.1.{i}]:80" for i in range(50)], [1] * 50, 8191)  # a second run: the first goes
    held = [t for t in tables._tables.values() if isinstance(t, MaglevTable)]
    assert len(held) == 1 and all(t.run is held[0].run for t in held)
