"""global_defs nftables_priority, nftables_counters and nftables_ifindex act on the no_accept table (issue 14).

keepalived 2.2.7 gives its no_accept chains the priority `nftables_priority`
(default -1), puts a counter in every rule with `nftables_counters`, and
matches a link-local IPv6 VIP together with the interface it came in on: by
index, or by name for an instance with `dont_track_primary` unless
`nftables_ifindex` is set. These tests start the daemon and read the table
from the kernel, and check that what it drops is counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from ipaddress import ip_interface
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import VrrpSettings, wait_until

from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root]

VIP_LL = ip_interface("fe80::1:100/64")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "nk")


def _table(lab: Lab) -> list[dict[str, Any]]:
    listed = lab.r1.netns.run(["nft", "-j", "list", "table", "inet", "pykeepalived"], check=False)
    if listed.returncode != 0:
        return []
    items: list[dict[str, Any]] = json.loads(listed.stdout)["nftables"]
    return items


def _set_elements(items: list[dict[str, Any]], name: str) -> list[Any]:
    for item in items:
        if "set" in item and item["set"]["name"] == name:
            elems: list[Any] = item["set"].get("elem", [])
            return elems
    return []


def _start(lab: Lab, extra_global: str, extra: list[str]) -> list[dict[str, Any]]:
    settings = [VrrpSettings(vrid=71, priority=150, vips=[VIP4, VIP_LL], version=3, advert_int_s=0.1,
                             extra=["no_accept", *extra])]
    r1 = lab.peer("py", lab.r1, settings, extra_global=extra_global)
    r1.start()
    wait_until(lambda: r1.holds(VIP4.ip) and r1.holds(VIP_LL.ip), 5.0, what="master with both VIPs")
    wait_until(lambda: bool(_set_elements(_table(lab), "vips4")), 2.0, what="the no_accept table")
    return _table(lab)


def test_priority_and_counters_and_link_local_by_index(lab: Lab) -> None:
    items = _start(lab, "nftables_priority -5\nnftables_counters", [])
    chains = [i["chain"] for i in items if "chain" in i]
    assert [c["prio"] for c in chains] == [-5]
    rules = [i["rule"] for i in items if "rule" in i]
    assert rules and all(any("counter" in e for e in r["expr"]) for r in rules)
    # a link-local VIP is keyed with its interface (by index: no dont_track_primary)
    assert _set_elements(items, "vips6_ll") == [{"concat": ["fe80::1:100", lab.r1.ifname]}]
    assert _set_elements(items, "vips6") == []
    assert not lab.c.ping(VIP4.ip, wait_s=0.5)  # dropped, and counted
    assert not lab.c.ping(f"{VIP_LL.ip}%{lab.c.ifname}", wait_s=0.5)

    def counted(set_name: str) -> int:
        for rule in (i["rule"] for i in _table(lab) if "rule" in i):
            if any(e.get("match", {}).get("right") == f"@{set_name}" for e in rule["expr"]):
                return sum(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
        return -1

    assert counted("vips4") >= 1
    assert counted("vips6_ll") >= 1


def test_default_priority_and_no_counters(lab: Lab) -> None:
    items = _start(lab, "", [])
    assert [i["chain"]["prio"] for i in items if "chain" in i] == [-1]
    assert not any("counter" in e for i in items if "rule" in i for e in i["rule"]["expr"])


def test_dont_track_primary_matches_link_local_by_name(lab: Lab) -> None:
    items = _start(lab, "", ["dont_track_primary"])
    assert _set_elements(items, "vips6_ll_name") == [{"concat": ["fe80::1:100", lab.r1.ifname]}]
    assert _set_elements(items, "vips6_ll") == []
    assert not lab.c.ping(f"{VIP_LL.ip}%{lab.c.ifname}", wait_s=0.5)


def test_nftables_ifindex_keeps_the_index_with_dont_track_primary(lab: Lab) -> None:
    items = _start(lab, "nftables_ifindex", ["dont_track_primary"])
    assert _set_elements(items, "vips6_ll") == [{"concat": ["fe80::1:100", lab.r1.ifname]}]
    assert _set_elements(items, "vips6_ll_name") == []


@pytest.mark.keepalived
@pytest.mark.parametrize(("extra", "ll_set"),
                         [([], "vips_link_local"), (["dont_track_primary"], "vips_link_local_name")])
def test_keepalived_does_the_same(lab: Lab, extra: list[str], ll_set: str) -> None:
    """keepalived 2.2.7 on the same keywords: its chains at -5, counters in every rule, the same link-local key."""
    settings = [VrrpSettings(vrid=72, priority=150, vips=[VIP4, VIP_LL], version=3, advert_int_s=0.1,
                             extra=["no_accept", *extra])]
    ka = lab.peer("ka", lab.r1, settings, extra_global="nftables\nnftables_priority -5\nnftables_counters")
    ka.start()
    wait_until(lambda: ka.holds(VIP4.ip) and ka.holds(VIP_LL.ip), 5.0, what="keepalived master")

    def listed() -> list[dict[str, Any]]:
        out = lab.r1.netns.run(["nft", "-j", "list", "table", "ip6", "keepalived"], check=False)
        if out.returncode != 0:
            return []
        found: list[dict[str, Any]] = json.loads(out.stdout)["nftables"]
        return found

    wait_until(lambda: bool(_set_elements(listed(), ll_set)), 3.0, what=f"keepalived's {ll_set}")
    items = listed()
    assert _set_elements(items, ll_set) == [{"concat": ["fe80::1:100", lab.r1.ifname]}]
    assert {i["chain"]["prio"] for i in items if "chain" in i and "hook" in i["chain"]} == {-5}
    assert all(any("counter" in e for e in i["rule"]["expr"]) for i in items if "rule" in i)
