"""The nftables backend against the real kernel, in a namespace of its own: apply, diff, fail safely."""

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
    import json, sys
    from pykeepalived.lvs.model import DataPlaneError, DesiredTable, Destination, VirtualService
    from pykeepalived.lvs.nft import NftablesBackend

    def web(*alive):
        dests = tuple(Destination(f"10.11.12.{i}", 80, 1, alive=i in alive) for i in (1, 2, 3))
        return VirtualService("web", "address", "203.0.113.10", 80, "TCP", scheduler="rr", destinations=dests)

    def dr():
        dests = (Destination("10.11.12.5", 80, 1, method="DR"),)
        return VirtualService("dr", "address", "203.0.113.11", 80, "TCP", method="DR", destinations=dests)

    def listing(b):
        return b.nft.run([{"list": {"table": {"family": "ip", "name": "pykeepalived_lvs"}}}])

    b = NftablesBackend()
    b.ctx.device_for = lambda address: "lo"
    b.apply_now(DesiredTable((web(1, 2, 3),)))
    before = listing(b)
    b.apply_now(DesiredTable((web(1, 3),)))
    after_change = listing(b)
    b.ctx.device_for = lambda address: "no-such-dev"
    try:
        b.apply_now(DesiredTable((web(1, 2, 3), dr())))
        failed = None
    except DataPlaneError as exc:
        failed = str(exc)
    after_failure = listing(b)
    b.close_now()
    gone = b.nft._nft.cmd("list tables")[1]
    print(json.dumps({"before": before, "after_change": after_change, "failed": failed,
                      "after_failure": after_failure, "tables_after_close": gone}))
''')


@pytest.fixture
def ns() -> Iterator[Netns]:
    netns = Netns(unique_prefix("nft"))
    netns.create()
    try:
        yield netns
    finally:
        netns.delete()


def _rules(listing: dict[str, object]) -> list[str]:
    items = listing["nftables"]  # type: ignore[index]
    return [json.dumps(i["rule"]["expr"]) for i in items if "rule" in i]  # type: ignore[union-attr,index]


def test_apply_change_and_a_failed_apply_keeps_the_previous_rules(ns: Netns) -> None:
    proc = subprocess.run(ns.argv([sys.executable, "-c", SCRIPT]), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    before, changed, after = (_rules(got[k]) for k in ("before", "after_change", "after_failure"))
    assert any("10.11.12.2" in r for r in before)
    assert not any("10.11.12.2" in r for r in changed) and any("10.11.12.3" in r for r in changed)
    assert got["failed"] and "nftables refused the change" in got["failed"]
    assert after == changed  # the failed transaction changed nothing
    assert "pykeepalived_lvs" not in got["tables_after_close"]


# Real servers for the scripts below, in their own process's threads: each answers its address and
# closes, or (hold) keeps the connection open so that it stays established.
SERVERS = textwrap.dedent('''
    import socket, threading
    held = []
    def listen(address, *, hold):
        srv = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((address, 80))
        srv.listen(64)
        def loop():
            while True:
                conn, _ = srv.accept()
                conn.sendall(address.encode() + b"\\n")
                held.append(conn) if hold else conn.close()
        threading.Thread(target=loop, daemon=True).start()
''')

COUNTS_SCRIPT = SERVERS + textwrap.dedent('''
    import asyncio, json
    from pykeepalived.lvs.model import DesiredTable, Destination, VirtualService
    from pykeepalived.lvs.nft import NftablesBackend

    for address in ("10.11.12.1", "10.11.12.2", "2001:db8:1::1"):
        listen(address, hold=True)

    clients = []
    def connect(family, vip):
        c = socket.create_connection((vip, 80), timeout=5)
        clients.append(c)
        return c.recv(100).decode().strip()

    v4 = VirtualService("web", "address", "203.0.113.10", 80, "TCP", scheduler="rr", destinations=(
        Destination("10.11.12.1", 80, 1, uthreshold=2), Destination("10.11.12.2", 80, 1)))
    v6 = VirtualService("web6", "address", "2001:db8::10", 80, "TCP", scheduler="rr", destinations=(
        Destination("2001:db8:1::1", 80, 1),))
    b = NftablesBackend()
    table = DesiredTable((v4, v6))
    b.apply_now(table)
    first = [connect(socket.AF_INET, "203.0.113.10") for _ in range(4)]
    ipv6 = connect(socket.AF_INET6, "2001:db8::10")
    counts = b.counts_now()
    asyncio.run(b.rebalance(counts))
    overloaded = sorted(map(list, b.ctx.overloaded))
    later = [connect(socket.AF_INET, "203.0.113.10") for _ in range(4)]
    b.close_now()
    print(json.dumps({"first": first, "later": later, "ipv6": ipv6, "counts": counts, "overloaded": overloaded}))
''')


def test_counts_read_both_families_and_uthreshold_stops_new_connections(ns: Netns) -> None:
    for address in ("203.0.113.10/32", "10.11.12.1/32", "10.11.12.2/32", "2001:db8::10/128", "2001:db8:1::1/128"):
        ns.ip("addr", "add", address, "dev", "lo")
    proc = subprocess.run(ns.argv([sys.executable, "-c", COUNTS_SCRIPT]), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["first"] == ["10.11.12.1", "10.11.12.2"] * 2
    assert got["ipv6"] == "2001:db8:1::1"
    assert got["counts"]["web"] == {"[10.11.12.1]:80": [2, 0], "[10.11.12.2]:80": [2, 0]}
    assert got["counts"]["web6"] == {"[2001:db8:1::1]:80": [1, 0]}
    assert got["overloaded"] == [["web", "[10.11.12.1]:80"]]
    assert got["later"] == ["10.11.12.2"] * 4  # rs1 reached its uthreshold: no new connections


PERSIST_SCRIPT = SERVERS + textwrap.dedent('''
    import json, time
    from pykeepalived.lvs.model import DesiredTable, Destination, VirtualService
    from pykeepalived.lvs.nft import NftablesBackend

    for address in ("10.11.12.1", "10.11.12.2"):
        listen(address, hold=False)

    def ask():
        with socket.create_connection(("203.0.113.10", 80), timeout=5) as c:
            return c.recv(100).decode().strip()

    svc = VirtualService("p", "address", "203.0.113.10", 80, "TCP", scheduler="rr", persistence_timeout_s=2,
                         destinations=(Destination("10.11.12.1", 80, 1), Destination("10.11.12.2", 80, 1)))
    b = NftablesBackend()
    b.apply_now(DesiredTable((svc,)))
    within = []
    for _ in range(4):
        within.append(ask())
        time.sleep(0.5)  # each new connection refreshes the client's entry
    time.sleep(3.0)  # past the timeout since the last one
    after = ask()
    b.close_now()
    print(json.dumps({"within": within, "after": after}))
''')


def test_persistence_keeps_a_client_until_the_timeout_passes(ns: Netns) -> None:
    for address in ("203.0.113.10/32", "10.11.12.1/32", "10.11.12.2/32"):
        ns.ip("addr", "add", address, "dev", "lo")
    proc = subprocess.run(ns.argv([sys.executable, "-c", PERSIST_SCRIPT]), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["within"] == ["10.11.12.1"] * 4  # 2 s of persistence, renewed by every connection
    assert got["after"] == "10.11.12.2"  # expired: scheduled anew, and rr moves on
