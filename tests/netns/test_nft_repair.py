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
import textwrap
from collections.abc import Iterator

import pytest

from pykeepalived.lab import Netns, unique_prefix

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

SCRIPT = textwrap.dedent('''
    import json, subprocess
    from pykeepalived.lvs.model import DesiredTable, Destination, VirtualService
    from pykeepalived.lvs.nft import NftablesBackend

    def web(*alive):
        dests = tuple(Destination(f"10.11.12.{i}", 80, 1, alive=i in alive) for i in (1, 2, 3))
        return VirtualService("web", "address", "203.0.113.10", 80, "TCP", scheduler="rr", destinations=dests)

    def rules(b):
        listed = b.nft.run([{"list": {"table": {"family": "ip", "name": "pykeepalived_lvs"}}}])
        return sorted(json.dumps(i["rule"]["expr"]) for i in listed["nftables"] if "rule" in i)

    def nft(*words):
        subprocess.run(["nft", *words], check=True)

    out = {}
    b = NftablesBackend()
    b.apply_now(DesiredTable((web(1, 2, 3),)))
    before = rules(b)
    out["nothing_to_do"] = b.repair_now()

    nft("flush", "ruleset")
    out["after_flush"] = b.repair_now()
    out["same_rules_after_flush"] = rules(b) == before
    out["then_nothing"] = b.repair_now()

    nft("delete", "table", "ip", "pykeepalived_lvs")
    nft("add", "table", "ip", "pykeepalived_lvs")
    out["after_replace"] = b.repair_now()
    out["same_rules_after_replace"] = rules(b) == before

    nft("flush", "ruleset")  # and the next change comes before repair() looks
    b.apply_now(DesiredTable((web(1, 3),)))
    after = rules(b)
    out["change_after_flush"] = any("10.11.12.3" in r for r in after) and not any("10.11.12.2" in r for r in after)
    out["then_nothing_again"] = b.repair_now()
    b.close_now()
    print(json.dumps(out))
''')


@pytest.fixture
def ns() -> Iterator[Netns]:
    netns = Netns(unique_prefix("nftr"))
    netns.create()
    try:
        yield netns
    finally:
        netns.delete()


def test_a_flushed_or_replaced_table_is_rebuilt_and_later_changes_work(ns: Netns) -> None:
    proc = subprocess.run(ns.argv([sys.executable, "-c", SCRIPT]), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["nothing_to_do"] is None
    assert "table ip pykeepalived_lvs was removed by someone else; rebuilt it whole" in got["after_flush"]
    assert got["same_rules_after_flush"] and got["then_nothing"] is None
    assert "table ip pykeepalived_lvs was replaced" in got["after_replace"]
    assert got["same_rules_after_replace"]
    assert got["change_after_flush"] and got["then_nothing_again"] is None
