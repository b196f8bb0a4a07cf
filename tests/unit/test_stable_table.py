"""The stable table (lvs/stable_table.py): a failed server's slots move and no others, the same on every router."""

from __future__ import annotations

from collections import Counter

import pytest

from pykeepalived.config import read_config_text
from pykeepalived.lvs import sched
from pykeepalived.lvs.maglev import MaglevTable, RecentTables
from pykeepalived.lvs.plan import configured_services
from pykeepalived.lvs.stable_table import stable_table


def pool(n: int, weight: int = 1) -> list[tuple[str, int]]:
    return [(f"[10.11.12.{i}]:80", weight) for i in range(1, n + 1)]


def owners(table: list[int], eligible: list[tuple[str, int]]) -> list[str]:
    return [eligible[i][0] for i in table]


def test_with_every_server_up_it_is_maglev() -> None:
    servers = pool(5)
    assert stable_table(servers, servers) == sched.maglev_table([n for n, _ in servers], [1] * 5, 509)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 40])
def test_a_servers_failure_moves_its_slots_only_and_spreads_them(n: int) -> None:
    servers = pool(n)
    before = owners(stable_table(servers, servers), servers)
    gone = servers[1][0]
    rest = [s for s in servers if s[0] != gone]
    after = owners(stable_table(servers, rest), rest)
    assert all(b == a for b, a in zip(before, after) if b != gone)
    assert gone not in after
    if n > 2:  # its slots are spread over the others, not handed to one (about 100 slots per server)
        taken = Counter(a for b, a in zip(before, after) if b == gone)
        assert len(taken) >= min(n - 1, 30)
    # it comes back: the table is what it was
    assert owners(stable_table(servers, servers), servers) == before


def test_a_weight_zero_server_is_left_out_like_a_failed_one() -> None:
    servers = pool(4)
    drained = [(name, 0 if i == 2 else w) for i, (name, w) in enumerate(servers)]
    before = owners(stable_table(servers, servers), servers)
    after = owners(stable_table(servers, drained), drained)
    assert servers[2][0] not in after
    assert all(b == a for b, a in zip(before, after) if b != servers[2][0])


def test_only_the_sorry_server_takes_everything() -> None:
    assert set(stable_table(pool(3), [("[10.9.9.9]:80", 1)])) == {0}
    assert stable_table(pool(3), []) == []


def test_the_order_of_the_eligible_list_does_not_change_who_gets_a_slot() -> None:
    servers = pool(6)
    rest = servers[:2] + servers[3:]
    assert owners(stable_table(servers, rest), rest) == owners(stable_table(servers, rest[::-1]), rest[::-1])


def test_the_plan_carries_the_configured_pool() -> None:
    text = ("virtual_server 203.0.113.10 80 {\n lb_algo mh\n weight 2\n real_server 10.11.12.1 80 {\n weight 5\n }\n"
            " real_server 10.11.12.2 8080 {\n }\n}\n")
    (_, svc), = configured_services(read_config_text(text).config)
    assert svc.pool == (("[10.11.12.1]:80", 5), ("[10.11.12.2]:8080", 2))
    assert [d.name for d in svc.destinations] == [name for name, _ in svc.pool]


def table_of(servers: list[tuple[str, int]], up: list[tuple[str, int]], tables: RecentTables | None) -> list[str]:
    return owners(list(stable_table(servers, up, tables)), up)


def test_a_table_built_with_a_history_is_the_same_table() -> None:
    servers = [(name, 1 + i % 3) for i, (name, _) in enumerate(pool(60))]  # 8,191 slots: a MaglevRun
    tables = RecentTables()
    for gone in ([], [7], [7, 30], [0, 59], [5, 6, 7, 8, 9, 10]):
        up = [s for i, s in enumerate(servers) if i not in gone]
        kept = stable_table(servers, up, tables)
        assert isinstance(kept, MaglevTable)
        assert list(kept) == list(stable_table(servers, up))


@pytest.mark.parametrize("history", [False, True])
def test_a_second_failure_moves_only_the_slots_the_second_server_held(history: bool) -> None:
    servers = [(name, 1 + i % 4) for i, (name, _) in enumerate(pool(60))]
    tables = RecentTables() if history else None
    one = [s for s in servers if s[0] != servers[3][0]]
    two = [s for s in one if s[0] != servers[40][0]]
    before, after = table_of(servers, one, tables), table_of(servers, two, tables)
    assert all(b == a for b, a in zip(before, after) if b != servers[40][0])
    assert servers[40][0] not in after
    assert table_of(servers, servers, tables) == table_of(servers, servers, None)


def test_a_failed_servers_slots_go_to_the_others_by_weight() -> None:
    servers = [(name, 1 if i % 2 else 4) for i, (name, _) in enumerate(pool(40))]
    full = table_of(servers, servers, None)
    down = {name for name, _ in servers[:10]}
    up = [s for s in servers if s[0] not in down]
    after = table_of(servers, up, None)
    taken = Counter(a for b, a in zip(full, after) if b in down)
    weight = dict(servers)
    by_weight = {w: sum(c for name, c in taken.items() if weight[name] == w) for w in (1, 4)}
    # 15 of each weight stay up: weight 4 should take 4/5 of the orphans (about 1,000 of them)
    share = by_weight[4] / sum(by_weight.values())
    assert 0.76 < share < 0.84, by_weight


def test_with_most_servers_down_the_rendezvous_decides_and_nothing_else_moves() -> None:
    servers = [(name, 100 if i < 38 else 1) for i, (name, _) in enumerate(pool(40))]  # draws almost always refused
    up = servers[38:]
    table = table_of(servers, up, None)
    assert set(table) == {servers[38][0], servers[39][0]}
    # the same with one of the two left down too: only its slots move
    last = table_of(servers, servers[39:], None)
    assert all(b == a for b, a in zip(table, last) if b != servers[38][0])
    assert 0.3 < Counter(table)[servers[38][0]] / len(table) < 0.7
