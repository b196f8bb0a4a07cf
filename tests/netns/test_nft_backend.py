"""The nftables backend against the real kernel, in a namespace of its own: apply, diff, fail safely."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from pykeepalived.lab import Netns, unique_prefix
from tests.scripts import script

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]


@pytest.fixture
def ns() -> Iterator[Netns]:
    netns = Netns(unique_prefix("nft"))
    netns.create()
    try:
        yield netns
    finally:
        netns.delete()


def _rules(listing: dict[str, object]) -> list[str]:
    items = listing["nftables"]  # type: ignore[index]
    return [json.dumps(i["rule"]["expr"]) for i in items if "rule" in i]  # type: ignore[union-attr,index]


def test_apply_change_and_a_failed_apply_keeps_the_previous_rules(ns: Netns) -> None:
    proc = subprocess.run(ns.argv([sys.executable, script("nft_apply.py")]), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    before, changed, after = (_rules(got[k]) for k in ("before", "after_change", "after_failure"))
    assert any("10.11.12.2" in r for r in before)
    assert not any("10.11.12.2" in r for r in changed) and any("10.11.12.3" in r for r in changed)
    assert got["failed"] and "nftables refused the change" in got["failed"]
    assert after == changed  # the failed transaction changed nothing
    assert "pykeepalived_lvs" not in got["tables_after_close"]


def test_counts_read_both_families_and_uthreshold_stops_new_connections(ns: Netns) -> None:
    for address in ("203.0.113.10/32", "10.11.12.1/32", "10.11.12.2/32", "2001:db8::10/128", "2001:db8:1::1/128"):
        ns.ip("addr", "add", address, "dev", "lo")
    proc = subprocess.run(ns.argv([sys.executable, script("nft_counts.py")]), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["first"] == ["10.11.12.1", "10.11.12.2"] * 2
    assert got["ipv6"] == "2001:db8:1::1"
    assert got["counts"]["web"] == {"[10.11.12.1]:80": [2, 0], "[10.11.12.2]:80": [2, 0]}
    assert got["counts"]["web6"] == {"[2001:db8:1::1]:80": [1, 0]}
    assert got["overloaded"] == [["web", "[10.11.12.1]:80"]]
    assert got["later"] == ["10.11.12.2"] * 4  # rs1 reached its uthreshold: no new connections


def test_persistence_keeps_a_client_until_the_timeout_passes(ns: Netns) -> None:
    for address in ("203.0.113.10/32", "10.11.12.1/32", "10.11.12.2/32"):
        ns.ip("addr", "add", address, "dev", "lo")
    proc = subprocess.run(ns.argv([sys.executable, script("nft_persistence.py")]), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["within"] == ["10.11.12.1"] * 4  # 2 s of persistence, renewed by every connection
    assert got["after"] == "10.11.12.2"  # expired: scheduled anew, and rr moves on
