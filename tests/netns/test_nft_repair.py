"""The nftables backend puts back a table someone else removed or replaced (issue 12, item 9), in a namespace.

`nft flush ruleset` (Debian's nftables.conf, on every restart of the nftables
service) removes our table; `repair_now` notices by the table's absence, or
by a new handle when someone deleted and re-created it, and builds it again
whole from what was applied. An apply that meets a missing table (a diff
would fail with "No such file or directory") rebuilds it instead of failing.
"""

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
    netns = Netns(unique_prefix("nftr"))
    netns.create()
    try:
        yield netns
    finally:
        netns.delete()


def test_a_flushed_or_replaced_table_is_rebuilt_and_later_changes_work(ns: Netns) -> None:
    proc = subprocess.run(ns.argv([sys.executable, script("nft_repair.py")]), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["nothing_to_do"] is None
    assert "table ip pykeepalived_lvs was removed by someone else; rebuilt it whole" in got["after_flush"]
    assert got["same_rules_after_flush"] and got["then_nothing"] is None
    assert "table ip pykeepalived_lvs was replaced" in got["after_replace"]
    assert got["same_rules_after_replace"]
    assert got["change_after_flush"] and got["then_nothing_again"] is None
