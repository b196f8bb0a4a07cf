"""The main table flattened into disjoint spans (lvs/route_spans.py): longest match, holes, refusals."""

from __future__ import annotations

import ipaddress

import pytest

from pykeepalived.lvs.route_spans import MAX_ROUTES, Route, RoutesRefused, Span, flatten


def route(network: str, gateway: str | None = None, device: str = "eth0", ifindex: int = 2, metric: int = 0,
          forwards: bool = True, multipath: bool = False) -> Route:
    return Route(network, metric, forwards, gateway, ifindex, device, multipath)


def test_a_default_route_and_a_connected_network_leave_the_holes_out() -> None:
    spans = flatten([route("0.0.0.0/0", "192.0.2.1"), route("192.0.2.0/24")], 4)
    assert spans == (
        Span("1.0.0.0", "126.255.255.255", "192.0.2.1", 2, "eth0"),
        Span("128.0.0.0", "192.0.1.255", "192.0.2.1", 2, "eth0"),
        Span("192.0.2.0", "192.0.2.255", None, 2, "eth0"),  # on the link: the destination is the next hop
        Span("192.0.3.0", "223.255.255.255", "192.0.2.1", 2, "eth0"))


def test_the_more_specific_route_wins_and_the_lower_metric_among_equals() -> None:
    spans = flatten([route("10.0.0.0/8", "192.0.2.1"), route("10.1.0.0/16", "192.0.2.9", metric=5),
                     route("10.1.0.0/16", "192.0.2.8", metric=1), route("192.0.2.0/24")], 4)
    assert [s for s in spans if s.first.startswith("10.")] == [
        Span("10.0.0.0", "10.0.255.255", "192.0.2.1", 2, "eth0"),
        Span("10.1.0.0", "10.1.255.255", "192.0.2.8", 2, "eth0"),
        Span("10.2.0.0", "10.255.255.255", "192.0.2.1", 2, "eth0")]


def test_routes_that_do_not_forward_are_holes_even_under_a_wider_route() -> None:
    """A blackhole (or a route through a device we do not send on) inside the default: to the IP stack."""
    spans = flatten([route("0.0.0.0/0", "192.0.2.1"), route("198.51.100.0/24", forwards=False),
                     route("192.0.2.0/24")], 4)
    assert not any(s.first <= "198.51.100.7" <= s.last and s.first.startswith("198.51.100") for s in spans)
    assert Span("198.51.101.0", "223.255.255.255", "192.0.2.1", 2, "eth0") in spans


def test_ipv6_leaves_link_local_and_multicast_out_even_with_routes_on_every_interface() -> None:
    spans = flatten([route("::/0", "fe80::1"), route("2001:db8:203::/64"),
                     route("fe80::/64", device="eth0", ifindex=2, metric=256),
                     route("fe80::/64", device="eth1", ifindex=3, metric=256)], 6)
    assert Span("2001:db8:203::", "2001:db8:203:0:ffff:ffff:ffff:ffff", None, 2, "eth0") in spans
    lows = {ipaddress.ip_address(s.first): ipaddress.ip_address(s.last) for s in spans}
    for address in ("fe80::1", "febf::1", "ff02::1", "::1"):
        assert not any(low <= ipaddress.ip_address(address) <= high for low, high in lows.items()), address
    assert spans[0].first == "::2" and spans[-1].first == "fec0::"  # site-local (deprecated) is routed


@pytest.mark.parametrize(("routes", "why"), [
    ([route("0.0.0.0/0", "192.0.2.1", multipath=True)], "several next hops"),
    ([route("0.0.0.0/0", "192.0.2.1"), route("0.0.0.0/0", "192.0.2.2")], "same metric"),
    ([route(f"10.{i}.0.0/16", "192.0.2.1") for i in range(MAX_ROUTES + 1)], "more than"),
])
def test_what_interval_maps_cannot_say_is_refused(routes: list[Route], why: str) -> None:
    with pytest.raises(RoutesRefused, match=why):
        flatten(routes, 4)


def test_the_same_route_twice_is_no_conflict_and_the_other_family_is_ignored() -> None:
    assert flatten([route("192.0.2.0/24"), route("192.0.2.0/24"), route("2001:db8::/64")], 4) == (
        Span("192.0.2.0", "192.0.2.255", None, 2, "eth0"),)
