"""default_interface: where a static address without `dev` goes (keepalived 2.2.7: eth0 without the keyword).

In keepalived 2.2.7 default_interface serves only static_ipaddress entries
without dev (vrrp_ipaddress.c); instances and their VIPs do not use it. Both
daemons run each configuration in the same kind of namespace (eth0 and eth1).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .tracking_box import Box, make_box, vi_1, wait_for
from .vrrp_helpers import needs_root, skip_unless_available

pytestmark = [pytest.mark.netns, needs_root]

CONF = """global_defs {
  router_id di
%s}
static_ipaddress {
  198.51.100.7/24
}
""" + vi_1("BACKUP")


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pkdi")


@pytest.mark.parametrize("kind", ["py", "ka"])
@pytest.mark.parametrize("dev", ["eth0", "eth1"])
def test_static_address_without_dev(box: Box, kind: str, dev: str) -> None:
    skip_unless_available(kind)
    conf = box.conf(CONF % ("" if dev == "eth0" else f"  default_interface {dev}\n"))
    with box.running(kind, conf, "-P") as log:
        assert wait_for(lambda: "198.51.100.7/24" in box.ip("addr", "show", dev), 10) is not None, log()
        other = "eth1" if dev == "eth0" else "eth0"
        assert "198.51.100.7/" not in box.ip("addr", "show", other)
