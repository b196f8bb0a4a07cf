"""no_accept survives someone else's `nft flush ruleset` (issue 12, a flushed table).

Debian's nftables service flushes the whole ruleset on every restart. The
no_accept table must come back, with the VIPs blocked now, within a second:
otherwise a non-owner master silently starts accepting traffic for its VIPs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpSettings, wait_until

from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "af")


def test_no_accept_table_comes_back_after_a_ruleset_flush(lab: Lab) -> None:
    settings = [VrrpSettings(vrid=67, priority=150, vips=[VIP4], version=3, advert_int_s=0.1, extra=["no_accept"])]
    r1 = lab.peer("py", lab.r1, settings)
    r1.start()
    wait_until(lambda: r1.holds(VIP4.ip), 3.0, what="master")
    assert not lab.c.ping(VIP4.ip, wait_s=0.5)

    lab.r1.netns.run(["nft", "flush", "ruleset"])
    assert "pykeepalived" not in lab.r1.netns.run(["nft", "list", "tables"]).stdout

    def blocked_again() -> bool:
        listed = lab.r1.netns.run(["nft", "list", "table", "inet", "pykeepalived"], check=False)
        return listed.returncode == 0 and str(VIP4.ip) in listed.stdout

    wait_until(blocked_again, 1.5, what="the no_accept table put back with the VIP in its set")
    assert not lab.c.ping(VIP4.ip, wait_s=0.5)
    assert "no_accept) was removed or replaced by someone else" in r1.log()
