"""promote_secondaries: the interface's sysctl while the instance runs, as keepalived 2.2.7 sets and resets it.

With it, the kernel keeps the other addresses of a subnet when the primary
one goes (a VIP in the interface's subnet is a secondary address): the
interface's address survives the VIP's removal and the reverse.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpPeer, VrrpSettings, wait_until
from pykeepalived.lab.topology import Host

from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "ps")


def _promote(host: Host) -> str:
    return host.netns.run(["cat", f"/proc/sys/net/ipv4/conf/{host.ifname}/promote_secondaries"]).stdout.strip()


def _run(lab: Lab, kind: str, host: Host) -> list[str]:
    """promote_secondaries before, while master, after a clean stop."""
    seen = [_promote(host)]
    peer: VrrpPeer = lab.peer(kind, host, [VrrpSettings(vrid=81, priority=150, vips=[VIP4], version=3,
                                                         advert_int_s=0.2, extra=["promote_secondaries"])])
    peer.start()
    wait_until(lambda: peer.holds(VIP4.ip), 5.0, what=f"{peer!r} master")
    seen.append(_promote(host))
    if kind == "py":
        # the kernel acts on it: deleting the primary address keeps the VIP (a secondary of the subnet)
        host.netns.ip("addr", "del", str(host.ipv4), "dev", host.ifname)
        assert VIP4.ip in host.addresses(), "the VIP went with the primary address"
        host.netns.ip("addr", "add", str(host.ipv4), "dev", host.ifname)
    peer.stop()
    seen.append(_promote(host))
    return seen


def test_promote_secondaries_as_keepalived(lab: Lab) -> None:
    keepalived = _run(lab, "ka", lab.r2)
    ours = _run(lab, "py", lab.r1)
    assert keepalived == ["0", "1", "0"]
    assert ours == keepalived
