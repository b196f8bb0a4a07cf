"""Slot-map elements over nfnetlink (lvs/nft_elements.py) against the kernel, in a namespace of its own.

The writer must leave exactly what libnftables' JSON leaves, for every kind
of slot map nft_rules makes; refuse a whole batch when one set is refused,
naming it; and, wired into the backend, keep every slot map equal to the
desired table through loads, removals and changes of the table's length, and
put the slots back when the libnftables part of a change fails after them.
One script, about a second (tests/scripts/nft_elements_check.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from pykeepalived.lab import Netns, unique_prefix
from tests.scripts import script

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]


@pytest.fixture(scope="module")
def checked() -> dict[str, Any]:
    ns = Netns(unique_prefix("nftel"))
    ns.create()
    try:
        proc = subprocess.run(ns.argv([sys.executable, script("nft_elements_check.py")]), capture_output=True,
                              text=True, timeout=120)
    finally:
        ns.delete()
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_the_writer_leaves_what_libnftables_leaves_for_every_slot_map_kind(checked: dict[str, Any]) -> None:
    assert set(checked["kinds"]) == {"ip ip daddr", "ip ip daddr . tcp dport", "ip ip daddr . udp dport",
                                     "ip6 ip6 daddr", "ip6 ip6 daddr . sctp dport", "ip verdict"}
    for kind, got in checked["kinds"].items():
        assert got["same"], (kind, got["differ"])
        assert got["count"] == 509


def test_a_refused_set_is_named_and_nothing_of_its_batch_applies(checked: dict[str, Any]) -> None:
    assert checked["refused"] == ("nftables refused the elements of map ip r no-such-map: "
                                  "No such file or directory")
    assert checked["refused_map_after"] == {"1": '"10.0.0.1"'}  # the first map's change went with the batch
    assert checked["bad_data"] == "map ip r m: cannot write its elements: 2001:db8::1 is not an IPv4 address"
    assert checked["after_bad_data"] == {"1": '"10.0.0.1"'}


def test_a_batch_to_hundreds_of_maps_reads_every_ack(checked: dict[str, Any]) -> None:
    assert checked["many_maps"] == 600  # one message (and ACK) per map, beyond a default receive buffer


def test_the_backend_keeps_every_slot_map_equal_to_the_desired_table(checked: dict[str, Any]) -> None:
    steps = checked["backend"]
    assert list(steps) == ["load", "one down, rr shorter", "back, rr longer, a server more", "two services fewer"]
    for step, got in steps.items():
        assert got["differ"] == {}, step
    # the slot maps went over nfnetlink (a persistent service's new chains keep its picks in libnftables)
    assert steps["load"]["written"] > 4000 and steps["one down, rr shorter"]["written"] > 0
    assert steps["two services fewer"]["written"] == 0  # maps that go are deleted whole, by libnftables


def test_a_change_whose_rules_fail_puts_its_slots_back(checked: dict[str, Any]) -> None:
    undone = checked["undone"]
    assert undone["failed"] and "Interface does not exist" in undone["failed"]
    assert undone["written"] > 0  # the slots were written, then put back
    assert undone["same"], undone["maps"]
