"""Per-service fragments: a rebuild after a change to one service builds that service alone."""

from __future__ import annotations

from dataclasses import replace

from pykeepalived.lvs.model import Destination, VirtualService
from pykeepalived.lvs.nft_diff import diff
from pykeepalived.lvs.nft_rules import BuildContext, build


def vs(i: int, scheduler: str = "rr", method: str = "NAT", alive: bool = True) -> VirtualService:
    dests = tuple(Destination(f"10.11.{i}.{n}", 80, 1, method=method, alive=alive or n != 1)  # type: ignore[arg-type]
                  for n in (1, 2, 3))
    return VirtualService(f"vs{i}", "address", f"203.0.113.{i}", 80, "TCP", scheduler=scheduler, method=method,
                          destinations=dests)


def test_only_the_changed_service_is_built_again_and_the_diff_touches_only_it() -> None:
    devices = {"eth1"}
    ctx = BuildContext(device_for=lambda a: next(iter(devices)))
    services = [vs(1), vs(2, "wlc"), vs(3, "mh"), vs(4, "sh", "DR")]
    before = build(services, ctx)["ip"]
    kept = dict(ctx.fragments)
    services[2] = vs(3, "mh", alive=False)
    after = build(services, ctx)["ip"]
    assert [name for name in kept if ctx.fragments[name] is not kept[name]] == ["vs3"]
    touched = {cmd[verb][kind].get("chain") or cmd[verb][kind].get("name")
               for cmd in diff(before, after) for verb in cmd for kind in cmd[verb]}
    assert touched == {"vs-vs3", "vs-vs3-slots"}  # 2 servers: a smaller Maglev table, so a new modulus too
    devices.clear()
    devices.add("eth2")  # the DR servers are reached through another interface now
    build(services, ctx)
    assert [name for name in kept if ctx.fragments[name] is not kept[name]] == ["vs3", "vs4"]


def test_a_rebuilt_load_based_table_is_kept_while_its_counts_hold() -> None:
    ctx = BuildContext()
    first = build([vs(2, "wlc")], ctx)["ip"]
    ctx.slot_tables = dict(first.slot_tables)  # what the backend hands over once it is applied
    fragment = ctx.fragments["vs2"]
    assert diff(first, build([vs(2, "wlc")], ctx)["ip"]) == []
    assert ctx.fragments["vs2"] is fragment
    ctx.loads = {"vs2": {"[10.11.2.1]:80": (40, 0)}}
    ctx.expected_new = {"vs2": 64}
    assert build([vs(2, "wlc")], ctx)["ip"].slot_maps != first.slot_maps


def test_forgotten_services_leave_no_fragment_behind() -> None:
    ctx = BuildContext()
    build([vs(1), vs(2)], ctx)
    build([replace(vs(2), scheduler="wrr")], ctx)
    assert set(ctx.fragments) == {"vs2"}
