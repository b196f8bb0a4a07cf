"""The services nftables cannot build are left out of every table, and only those (lvs/skip.py, lvs/choose.py)."""

from __future__ import annotations

import asyncio

from pykeepalived.config import read_config_text
from pykeepalived.lvs.choose import dataplane_problems, limit_warning, skip_unbuildable
from pykeepalived.lvs.model import DesiredTable, VirtualService
from pykeepalived.lvs.null import TableOnly
from pykeepalived.lvs.skip import SkipServices

CONF = """\
virtual_server 192.0.2.10 80 {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 10.0.0.1 80 {
  }
}
virtual_server 192.0.2.11 53 {
  lb_algo rr
  lb_kind NAT
  protocol UDP
  ops
  real_server 10.0.0.1 53 {
  }
}
virtual_server 192.0.2.12 80 {
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server 10.0.0.1 80 {
  }
  real_server 10.0.0.2 80 {
    lvs_method TUN
  }
}
"""


def test_each_unbuildable_service_is_named_once_with_its_line() -> None:
    config = read_config_text(CONF).config
    problems = dataplane_problems(config, "nftables")
    assert [p.split(": ", 1)[0] for p in problems] == ["keepalived.conf:8", "keepalived.conf:16"]
    assert "one-packet" in problems[0] and "mix forwarding methods" in problems[1]
    assert dataplane_problems(config, "ipvs") == []
    assert limit_warning(problems[0]).startswith("keepalived.conf:8: warning: virtual server [192.0.2.11]:udp:53")


def test_the_backend_gets_every_table_without_the_skipped_services() -> None:
    inner = TableOnly()
    plane = skip_unbuildable(inner, read_config_text(CONF).config)
    assert isinstance(plane, SkipServices)
    assert set(plane.skipped) == {"[192.0.2.11]:udp:53", "[192.0.2.12]:tcp:80"}
    services = tuple(VirtualService(name=name, kind="address") for name in
                     ("[192.0.2.10]:tcp:80", "[192.0.2.11]:udp:53", "[192.0.2.12]:tcp:80"))
    asyncio.run(plane.apply(DesiredTable(services)))
    assert [svc.name for svc in inner.table.services] == ["[192.0.2.10]:tcp:80"]
    assert plane.name == inner.name and plane.error is None


def test_a_config_nftables_builds_whole_gets_the_backend_itself() -> None:
    inner = TableOnly()
    assert skip_unbuildable(inner, read_config_text(CONF.split("virtual_server 192.0.2.11")[0]).config) is inner
