"""The GARP pacer (vrrp/garp_pacing.py): keepalived 2.2.7's collapse and order, with the time passed in."""

from __future__ import annotations

from ipaddress import ip_address

from pykeepalived.config.model import GarpGroup, GlobalDefs
from pykeepalived.vrrp.garp_pacing import GarpItem, GarpPacer, garp_intervals


def _item(last: int, place: int, instance: str = "VI_1") -> GarpItem:
    return GarpItem(instance, "eth0", "eth0", ip_address(f"192.0.2.{last}"), (0, place))


def _burst(pacer: GarpPacer, items: list[GarpItem], repeat: int, now: float) -> list[GarpItem]:
    return [item for _ in range(repeat) for item in items if pacer.request(item, now)]


def test_no_interval_sends_every_request() -> None:
    pacer = GarpPacer()
    items = [_item(100, 0), _item(101, 1)]
    assert _burst(pacer, items, 3, 0.0) == items * 3
    assert pacer.next_wake() is None


def test_a_burst_collapses_and_goes_one_per_interval_in_address_order() -> None:
    """Two VIPs, repeat 5, interval 0.3: VIP1 at 0, VIP1 at 0.3, VIP2 at 0.6 (keepalived's capture)."""
    pacer = GarpPacer(default=(0.3, 0.0))
    vip1, vip2 = _item(100, 0), _item(101, 1)
    sent = [(0.0, i) for i in _burst(pacer, [vip1, vip2], 5, 0.0)]
    while (wake := pacer.next_wake()) is not None:
        due, _ = pacer.due(wake, lambda _name: True)
        sent += [(wake, i) for i in due]
    assert sent == [(0.0, vip1), (0.3, vip1), (0.6, vip2)]


def test_pending_announcements_of_an_instance_that_left_master_are_dropped() -> None:
    pacer = GarpPacer(default=(0.3, 0.0))
    _burst(pacer, [_item(100, 0), _item(101, 1)], 1, 0.0)
    assert pacer.due(0.3, lambda _name: False) == ([], None)


def test_garp_group_interfaces_take_the_group_values_only() -> None:
    g = GlobalDefs()
    g.vrrp_garp_interval_s, g.vrrp_gna_interval_s = 0.5, 0.5
    pacer = garp_intervals(g, [GarpGroup(garp_interval_s=0.2, interfaces=["eth1"])])
    assert (pacer.interval("eth1", 4), pacer.interval("eth1", 6)) == (0.2, 0.0)
    assert (pacer.interval("eth0", 4), pacer.interval("eth0", 6)) == (0.5, 0.5)
