"""IPVS services someone else deleted are added again (issue 12, item 9): the pure half of IpvsBackend.repair().

The shell dumps the kernel's service keys; `without_missing` forgets what the
kernel lost, and `changes` from there re-adds each lost service with every
one of its destinations, touching nothing that is still there. (The kernel
half needs IPVS, which this machine's kernel lacks; see the report.)
"""

from __future__ import annotations

from pykeepalived.lvs.ipvs_rules import Change, changes, ipvs_table, without_missing
from pykeepalived.lvs.model import Destination, VirtualService


def web(address: str, *servers: int) -> VirtualService:
    dests = tuple(Destination(f"10.11.12.{i}", 80, 1) for i in servers)
    return VirtualService(f"web {address}", "address", address, 80, "TCP", scheduler="rr", destinations=dests)


def fwmark() -> VirtualService:
    return VirtualService("fwm 80", "fwmark", fwmark=80, scheduler="rr", persistence_timeout_s=30,
                          destinations=(Destination("10.11.12.1", None, 1),))


TABLE = ipvs_table([web("203.0.113.10", 1, 2, 3), web("203.0.113.12", 4), fwmark()])


def test_nothing_missing_nothing_to_do() -> None:
    kept, missing = without_missing(TABLE, set(TABLE))
    assert missing == [] and kept == TABLE
    assert changes(kept, TABLE) == []


def test_a_deleted_service_comes_back_with_all_its_real_servers() -> None:
    gone = next(k for k in TABLE if k.address == "203.0.113.10")
    kept, missing = without_missing(TABLE, set(TABLE) - {gone})
    assert missing == [gone]
    assert gone not in kept and len(kept) == 2
    edits = changes(kept, TABLE)
    assert edits[0] == Change("add", TABLE[gone].spec)
    assert [e.dest.key.address for e in edits[1:] if e.dest is not None] == ["10.11.12.1", "10.11.12.2", "10.11.12.3"]
    assert all(e.op == "add" and e.service.key == gone for e in edits)  # the other services are left alone


def test_ipvsadm_clear_brings_everything_back() -> None:
    kept, missing = without_missing(TABLE, set())
    assert sorted(missing) == sorted(TABLE) and kept == {}
    edits = changes(kept, TABLE)
    assert sorted(e.service.key for e in edits if e.dest is None) == sorted(TABLE)
    assert sum(1 for e in edits if e.dest is not None) == 5


def test_services_of_others_in_the_kernel_do_not_matter() -> None:
    others = {next(iter(ipvs_table([web("192.0.2.1", 9)])))}
    kept, missing = without_missing(TABLE, set(TABLE) | others)
    assert missing == [] and kept == TABLE
