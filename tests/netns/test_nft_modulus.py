"""A pick rule's new modulus written in place (nft_modulus), in a namespace of its own, against libnftables' result.

One real server of an rr pool of 100 (a slot map, CYCLE_SLOT_MAP_MIN) going
down shortens the pool's cycle: the rule `numgen inc mod 100` becomes `mod
99` and slot 99 goes. The backend replaces that rule in the element batch
by the kernel's own encoding of it with the new number, without
libnftables. What the kernel then holds must be what libnftables makes of
the same change (the backend's direct_elements=False); when the kernel's
chain is not as expected, or the change has other commands, libnftables
makes the change as before. And connections through the VIP follow the new
modulus: client, router and real servers in namespaces of their own, rr's
whole cycles give each live server one connection per turn.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pykeepalived.lab import Netns, unique_prefix

from .vrrp_helpers import needs_root, script_in_fresh_namespace

pytestmark = [pytest.mark.netns, needs_root]

SCRIPT = r"""
import json
import subprocess
from dataclasses import replace

from pykeepalived.lvs.model import DesiredTable, Destination, VirtualService
from pykeepalived.lvs.nft import NftablesBackend

subprocess.run(["ip", "-batch", "-"], check=True, text=True,
               input="link add pkmod0 type veth peer name pkmod1\nlink set pkmod0 up\nlink set pkmod1 up\n"
                     "addr add 10.20.255.254/16 dev pkmod0\n")


def service(name, vip, method, scheduler="rr", servers=100):
    address = "2001:db8:20::{}" if ":" in vip else "10.20.0.{}"
    dests = tuple(Destination(address.format(i + 1), 80, 1, method=method) for i in range(servers))
    return VirtualService(name, "address", vip, 80, "TCP", scheduler=scheduler, method=method, destinations=dests)


def down(svc, index):
    dests = list(svc.destinations)
    dests[index] = replace(dests[index], alive=False)
    return replace(svc, destinations=tuple(dests))


def listing():
    # every table of ours, as JSON without handles, set elements sorted (their order is the kernel's hash order)
    out = subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True, text=True, check=True).stdout
    items = []
    for item in json.loads(out)["nftables"]:
        (kind, body), = item.items()
        if kind == "metainfo":
            continue
        body = {k: v for k, v in body.items() if k != "handle"}
        if "elem" in body:
            body["elem"] = sorted(body["elem"], key=json.dumps)
        items.append({kind: body})
    return sorted(items, key=json.dumps)


def by_libnftables(start, table):
    # what libnftables alone makes of the same change (every element and rule through it), then our table goes
    other = NftablesBackend(direct_elements=False)
    other.apply_now(start)
    other.apply_now(table)
    made = listing()
    other.close_now()
    return made


calls = []


def started(table):
    # a backend that has applied `table`, its libnftables commands counted from now on
    backend = NftablesBackend()
    backend.apply_now(table)
    real_cmd = backend.nft._nft.cmd
    backend.nft._nft.cmd = lambda text: (calls.append(text[:60]), real_cmd(text))[1]
    return backend


def step(backend, label, start, table):
    calls.clear()
    before = backend.nft.elements.rules_replaced
    backend.apply_now(table)
    now = listing()
    result[label] = {"libnftables": list(calls), "replaced": backend.nft.elements.rules_replaced - before,
                     "rules": [json.dumps(r) for r in now if "rule" in r and "numgen" in json.dumps(r)]}
    backend.close_now()
    result[label]["same_as_libnftables"] = now == by_libnftables(start, table)


result = {}
nat, dr = service("nat", "192.0.2.10", "NAT"), service("dr", "192.0.2.20", "DR")
up = DesiredTable((nat, dr))
one_down = DesiredTable((down(nat, 7), down(dr, 99)))
step(started(up), "down", up, one_down)
step(started(one_down), "back", one_down, up)

# the kernel's pick chain is not as the diff expects (a rule more): libnftables makes the whole change
backend = started(up)
subprocess.run(["nft", "insert", "rule", "netdev", "pykeepalived_lvs", "vs-dr-pick", "counter"], check=True)
step(backend, "unexpected", up, one_down)

# the same in table ip6
nat6 = service("nat6", "2001:db8::10", "NAT")
step(started(DesiredTable((nat6,))), "ip6", DesiredTable((nat6,)), DesiredTable((down(nat6, 99),)))

# a Maglev table of 41 servers has 8,191 slots, of 40 servers 4,093 (sched.maglev_size_for): jhash's modulus
mh = service("mh", "192.0.2.40", "NAT", scheduler="mh", servers=41)
step(started(DesiredTable((mh,))), "maglev_size", DesiredTable((mh,)), DesiredTable((down(mh, 7),)))

# a change with other commands (a service more) takes the moduli through libnftables too
step(started(one_down), "with_others", one_down, DesiredTable((nat, dr, service("more", "192.0.2.30", "NAT"))))
print(json.dumps(result))
"""


def test_new_moduli_replace_the_rules_in_place_as_libnftables_would_make_them() -> None:
    result = json.loads(script_in_fresh_namespace("nftmod", SCRIPT, timeout_s=120).splitlines()[-1])
    for label in ("down", "back"):  # both pools' rules in the element batch, libnftables not called
        assert result[label]["libnftables"] == [], result[label]
        assert result[label]["replaced"] == 2, result[label]
        assert result[label]["same_as_libnftables"], result[label]
    assert any("mod 99" in rule or '"mod": 99' in rule for rule in result["down"]["rules"]), result["down"]
    v6 = result["ip6"]
    assert v6["libnftables"] == [] and v6["replaced"] == 1 and v6["same_as_libnftables"], v6
    maglev = result["maglev_size"]
    assert maglev["libnftables"] == [] and maglev["replaced"] == 1 and maglev["same_as_libnftables"], maglev
    assert result["unexpected"]["replaced"] == 0, result["unexpected"]
    assert result["unexpected"]["libnftables"], result["unexpected"]
    assert result["unexpected"]["same_as_libnftables"], result["unexpected"]
    assert result["with_others"]["replaced"] == 0, result["with_others"]
    assert result["with_others"]["same_as_libnftables"], result["with_others"]


ROUTER = r"""
import sys
from dataclasses import replace

from pykeepalived.lvs.model import DesiredTable, Destination, VirtualService
from pykeepalived.lvs.nft import NftablesBackend

dests = tuple(Destination(f"10.20.0.{i + 1}", 8080, 1) for i in range(70))
service = VirtualService("web", "address", "192.0.2.10", 80, "TCP", scheduler="rr", destinations=dests)
backend = NftablesBackend()
for line in sys.stdin:  # "up", or the index of the real server to take down
    words = line.split()
    if not words:
        break
    table = service if words[0] == "up" else replace(service, destinations=tuple(
        replace(d, alive=False) if i == int(words[0]) else d for i, d in enumerate(dests)))
    backend.apply_now(DesiredTable((table,)))
    print(backend.nft.elements.rules_replaced, flush=True)
backend.close_now()
"""

SERVERS = r"""
import asyncio


async def answer(reader, writer):
    writer.write(writer.get_extra_info("sockname")[0].encode())  # which real server the connection reached
    await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(answer, "0.0.0.0", 8080, backlog=512)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""

CLIENT = r"""
import collections
import json
import socket
import sys

seen = collections.Counter()
for _ in range(int(sys.argv[1])):
    with socket.create_connection(("192.0.2.10", 80), timeout=5) as conn:
        seen[conn.recv(64).decode()] += 1
print(json.dumps(seen))
"""


def _connections(client: Netns, count: int) -> dict[str, int]:
    proc = subprocess.run(client.argv([sys.executable, "-c", CLIENT, str(count)]), capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen: dict[str, int] = json.loads(proc.stdout)
    return seen


def test_connections_follow_the_new_modulus_one_turn_each() -> None:
    """rr over 70 real servers (a slot map) through NAT: a whole cycle gives each live server one connection."""
    prefix = unique_prefix("nftmodt")
    client, router, servers = (Netns(f"{prefix}-{role}") for role in ("c", "r", "s"))
    procs: list[subprocess.Popen[str]] = []
    try:
        for ns in (client, router, servers):
            ns.create()
        router.ip("link", "add", "toc", "type", "veth", "peer", "name", "eth0", "netns", client.name)
        router.ip("link", "add", "tos", "type", "veth", "peer", "name", "eth0", "netns", servers.name)
        router.ip("addr", "add", "10.1.0.1/24", "dev", "toc")
        router.ip("addr", "add", "10.20.255.254/16", "dev", "tos")
        client.ip("addr", "add", "10.1.0.2/24", "dev", "eth0")
        for i in range(70):
            servers.ip("addr", "add", f"10.20.0.{i + 1}/16", "dev", "eth0")
        for ns, dev in ((router, "toc"), (router, "tos"), (client, "eth0"), (servers, "eth0")):
            ns.ip("link", "set", dev, "up")
        client.ip("route", "add", "default", "via", "10.1.0.1")
        servers.ip("route", "add", "default", "via", "10.20.255.254")
        router.sysctl("net.ipv4.ip_forward", "1")
        server_proc = subprocess.Popen(servers.argv([sys.executable, "-c", SERVERS]), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
        procs.append(server_proc)
        assert server_proc.stdout is not None and server_proc.stdout.readline().strip() == "listening"
        backend = subprocess.Popen(router.argv([sys.executable, "-c", ROUTER]), stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(backend)
        assert backend.stdin is not None and backend.stdout is not None

        def apply(step: str) -> int:
            backend.stdin.write(step + "\n")  # type: ignore[union-attr]
            backend.stdin.flush()  # type: ignore[union-attr]
            answer = backend.stdout.readline()  # type: ignore[union-attr]
            assert answer, backend.stderr.read()[-2000:] if backend.stderr else "the backend stopped"
            return int(answer)

        apply("up")
        assert set(_connections(client, 140).values()) == {2}  # rr: every server twice
        assert apply("7") == 1  # one rule replaced in the element batch: mod 70 -> 69
        down = _connections(client, 138)
        assert "10.20.0.8" not in down and len(down) == 69 and set(down.values()) == {2}, down
        assert apply("up") == 2  # and back: mod 69 -> 70
        back = _connections(client, 140)
        assert len(back) == 70 and set(back.values()) == {2}, back
        _, errors = backend.communicate("\n", timeout=30)  # an empty line: the table goes, the script ends
        assert backend.returncode == 0, errors[-2000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None and not stream.closed:
                    stream.close()
            proc.wait(timeout=10)
        for ns in (client, router, servers):
            ns.delete()
