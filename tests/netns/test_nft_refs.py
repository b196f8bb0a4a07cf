"""A set re-made under rules that name it, against the real kernel: the diff's references must be complete.

A persistence timeout change re-makes each real server's client set; the
rules naming those sets must be flushed first in the same batch, or nftables
refuses it with EBUSY. The service's group name holds a letter that JSON
escapes, which the text search of references used to miss.
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
    import json
    from pykeepalived.lvs.model import DataPlaneError, DesiredTable, Destination, GroupEntry, VirtualService
    from pykeepalived.lvs.nft import NftablesBackend

    def grouped(timeout_s):
        dests = tuple(Destination(f"10.11.12.{i}", 80, 1) for i in (1, 2))
        return VirtualService("[grüppe]:80", "group", group="grüppe", port=80, protocol="TCP", scheduler="rr",
                              group_entries=(GroupEntry("address", "203.0.113.20", port=80),),
                              persistence_timeout_s=timeout_s, destinations=dests)

    b = NftablesBackend()
    result = {}
    try:
        b.apply_now(DesiredTable((grouped(30),)))
        try:
            b.apply_now(DesiredTable((grouped(60),)))
            result["error"] = None
        except DataPlaneError as exc:
            result["error"] = str(exc)
        listing = b.nft.run([{"list": {"table": {"family": "ip", "name": "pykeepalived_lvs"}}}])
        result["timeouts"] = sorted(i["set"].get("timeout") for i in listing["nftables"] if "set" in i
                                    and i["set"]["name"].endswith("-clients"))
    finally:
        b.close_now()
    print(json.dumps(result))
''')


@pytest.fixture
def ns() -> Iterator[Netns]:
    netns = Netns(unique_prefix("nref"))
    netns.create()
    try:
        yield netns
    finally:
        netns.delete()


def test_persistence_change_on_a_group_with_a_non_ascii_name_applies(ns: Netns) -> None:
    proc = subprocess.run(ns.argv([sys.executable, "-c", SCRIPT]), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["error"] is None
    assert got["timeouts"] == [60, 60]
