"""The net adapters against a real kernel, each test in network namespaces of its own.

The adapter code runs inside the namespace in a helper process
(`ip netns exec NS python script.py`, printing JSON); the assertions look at
what the kernel shows from outside (`ip -j ...`) or what a peer namespace
received on the wire. Namespaces are deleted even when a test fails.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .vrrp_helpers import needs_root

pytestmark = [
    pytest.mark.netns,
    needs_root,
]

TIMEOUT_S = 30
PRELUDE = """\
import asyncio
import json
import select
import socket
import struct
import subprocess
import sys
import time
from ipaddress import ip_address, ip_interface
from pykeepalived.config.model import IpAddressSpec, NextHop, RouteSpec, RuleSpec
from pykeepalived.net import NetError
from pykeepalived.net.addresses import AddressManager
from pykeepalived.net.announce import AnnounceSender, gratuitous_arp_frame, unsolicited_na_frame
from pykeepalived.net.links import LinkMonitor
from pykeepalived.net.vrrp_socket import VrrpSocket

def sh(*args):
    subprocess.run(args, check=True, timeout=30)

def ip_json(*args):
    return json.loads(subprocess.run(["ip", "-j", *args], check=True, capture_output=True, text=True).stdout or "[]")

def ready():
    print("READY", flush=True)

def wait_readable(fileno, seconds):
    return bool(select.select([fileno], [], [], seconds)[0])

"""
EPILOGUE = """
_result = main()
if asyncio.iscoroutine(_result):
    _result = asyncio.run(_result)
print(json.dumps(_result), flush=True)
"""


# --------------------------------------------------------------------------- plumbing
def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=TIMEOUT_S).stdout


def ip_json(ns: str, *args: str) -> Any:
    return json.loads(ip("-n", ns, "-j", *args) or "[]")


def _script(tmp_path: Path, parts: tuple[str, ...]) -> Path:
    path = tmp_path / f"helper_{uuid.uuid4().hex[:8]}.py"
    path.write_text(PRELUDE + "\n".join(textwrap.dedent(part) for part in parts) + EPILOGUE)
    return path


def _command(ns: str, script: Path) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable, "-W", "error", str(script)]


def _result(stdout: str) -> Any:
    return json.loads(stdout.strip().splitlines()[-1])


def run_in(ns: str, tmp_path: Path, *parts: str) -> Any:
    """Run `main()` of the code in `parts` inside `ns`; return what it returned (via JSON)."""
    done = subprocess.run(_command(ns, _script(tmp_path, parts)), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    return _result(done.stdout)


def start_in(ns: str, tmp_path: Path, *parts: str) -> subprocess.Popen[str]:
    """Start the code in `parts` inside `ns` and wait until it calls ready()."""
    proc = subprocess.Popen(
        _command(ns, _script(tmp_path, parts)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], TIMEOUT_S)[0]:
        proc.kill()
        pytest.fail("helper did not become ready")
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        pytest.fail(f"helper failed: {line}{proc.communicate()[1]}")
    return proc


def finish(proc: subprocess.Popen[str]) -> Any:
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, err
    return _result(out)


def _new_namespace(prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=TIMEOUT_S)
    return name


def _sysctl(ns: str, *settings: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *settings], check=True, timeout=TIMEOUT_S)


@pytest.fixture
def router() -> Iterator[str]:
    """One namespace, eth0 and eth1 a veth pair (both up, so eth0 has carrier), DAD as the kernel default."""
    ns = _new_namespace("pkn")
    try:
        ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        for dev in ("lo", "eth0", "eth1"):
            ip("-n", ns, "link", "set", dev, "up")
        for dev in ("eth0", "eth1"):
            wait_settled(ns, dev)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, timeout=TIMEOUT_S)


@pytest.fixture
def lan() -> Iterator[tuple[str, str]]:
    """Two namespaces A and B joined by a veth pair, eth0 in each: 10.0.0.1-2/24, 2001:db8::1-2/64.

    DAD is off so that link-local addresses are usable at once.
    """
    names: list[str] = []
    try:
        for _ in range(2):
            names.append(_new_namespace("pkn"))
            _sysctl(names[-1], "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        a, b = names
        ip("-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
        for n, ns in enumerate(names, start=1):
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "add", f"10.0.0.{n}/24", "dev", "eth0")
            ip("-n", ns, "addr", "add", f"2001:db8::{n}/64", "dev", "eth0", "nodad")
            ip("-n", ns, "link", "set", "eth0", "up")
        for ns in names:
            wait_settled(ns, "eth0")
        yield a, b
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=TIMEOUT_S)


def wait_settled(ns: str, dev: str) -> None:
    """Wait until the kernel has processed the carrier change (operstate UP) and IPv6 is configured.

    Until linkwatch runs, a freshly-up veth transmits through the noop qdisc,
    i.e. drops packets; a test must not race that.
    """
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        link = ip_json(ns, "addr", "show", "dev", dev)[0]
        if link["operstate"] == "UP" and any(
            a["family"] == "inet6" and a["scope"] == "link" for a in link["addr_info"]
        ):
            return
        time.sleep(0.05)
    pytest.fail(f"{dev} in {ns} did not come up")


def addr_infos(ns: str, dev: str) -> list[dict[str, Any]]:
    infos: list[dict[str, Any]] = ip_json(ns, "addr", "show", "dev", dev)[0]["addr_info"]
    return infos


def link_local(ns: str, dev: str) -> str:
    return next(a["local"] for a in addr_infos(ns, dev) if a["family"] == "inet6" and a["scope"] == "link")


def ifindex(ns: str, dev: str) -> int:
    index: int = ip_json(ns, "link", "show", "dev", dev)[0]["ifindex"]
    return index


# --------------------------------------------------------------------------- addresses
def test_ipv4_vip_with_label_and_broadcast_is_added_and_removed_and_both_repeat_safely(
    router: str, tmp_path: Path
) -> None:
    specs = """
    SPECS = [
        IpAddressSpec(ip_interface("10.0.0.100/24"), broadcast="+", label="eth0:vip"),
        IpAddressSpec(ip_interface("10.0.0.101/32"), broadcast="10.0.0.200", device="eth1", scope="link"),
        IpAddressSpec(ip_interface("10.0.0.102/32"), broadcast="-"),
    ]
    """
    ip("-n", router, "addr", "add", "10.0.0.1/24", "dev", "eth0")
    added = run_in(
        router,
        tmp_path,
        specs,
        """
    async def main():
        async with AddressManager() as am:
            for spec in SPECS * 2:
                await am.add_address(spec, "eth0")
            return [await am.has_address(d, ip_address(a))
                    for d, a in (("eth0", "10.0.0.100"), ("eth1", "10.0.0.101"), ("eth0", "10.0.0.102"))]
    """,
    )
    assert added == [True, True, True]
    eth0 = {a["local"]: a for a in addr_infos(router, "eth0")}
    assert eth0["10.0.0.100"]["prefixlen"] == 24
    assert eth0["10.0.0.100"]["label"] == "eth0:vip"
    assert eth0["10.0.0.100"]["broadcast"] == "10.0.0.255"
    assert eth0["10.0.0.100"]["scope"] == "global"
    assert eth0["10.0.0.100"].get("secondary") is True
    assert eth0["10.0.0.102"]["prefixlen"] == 32 and eth0["10.0.0.102"]["broadcast"] == "10.0.0.102"
    eth1 = {a["local"]: a for a in addr_infos(router, "eth1")}
    assert eth1["10.0.0.101"]["prefixlen"] == 32
    assert eth1["10.0.0.101"]["broadcast"] == "10.0.0.200"
    assert eth1["10.0.0.101"]["scope"] == "link"

    removed = run_in(
        router,
        tmp_path,
        specs,
        """
    async def main():
        async with AddressManager() as am:
            for spec in SPECS * 2:
                await am.remove_address(spec, "eth0")
            return [await am.has_address("eth0", ip_address("10.0.0.100")),
                    await am.has_address("eth0", ip_address("10.0.0.1"))]
    """,
    )
    assert removed == [False, True]
    remaining = {a["local"] for dev in ("eth0", "eth1") for a in addr_infos(router, dev) if a["family"] == "inet"}
    assert remaining == {"10.0.0.1"}


def test_ipv6_vip_is_usable_at_once_because_it_skips_dad(router: str, tmp_path: Path) -> None:
    result = run_in(
        router,
        tmp_path,
        """
    async def main():
        async with AddressManager() as am:
            await am.add_address(IpAddressSpec(ip_interface("2001:db8::100/64")), "eth0")
            await am.add_address(IpAddressSpec(ip_interface("2001:db8::100/64")), "eth0")
            sh("ip", "addr", "add", "2001:db8::200/64", "dev", "eth0")  # control: DAD is on here
            return ip_json("addr", "show", "dev", "eth0")[0]["addr_info"]
    """,
    )
    by_address = {a["local"]: a for a in result}
    assert by_address["2001:db8::100"].get("nodad") is True
    assert "tentative" not in by_address["2001:db8::100"]
    assert by_address["2001:db8::200"].get("tentative") is True

    run_in(
        router,
        tmp_path,
        """
    async def main():
        async with AddressManager() as am:
            for _ in range(2):
                await am.remove_address(IpAddressSpec(ip_interface("2001:db8::100/64")), "eth0")
    """,
    )
    assert "2001:db8::100" not in {a["local"] for a in addr_infos(router, "eth0")}


def test_address_on_a_missing_interface_is_a_clear_error_but_removing_it_is_not(router: str, tmp_path: Path) -> None:
    result = run_in(
        router,
        tmp_path,
        """
    async def main():
        async with AddressManager() as am:
            await am.remove_address(IpAddressSpec(ip_interface("10.9.9.9/32"), device="nosuch"), "eth0")
            try:
                await am.add_address(IpAddressSpec(ip_interface("10.9.9.9/32")), "nosuch")
            except NetError as exc:
                return str(exc)
    """,
    )
    assert result == "cannot add address 10.9.9.9/32 to nosuch: no interface 'nosuch'"


def test_interface_facts_primary_addresses_mac_and_index(router: str, tmp_path: Path) -> None:
    ip("-n", router, "addr", "add", "10.0.0.1/24", "dev", "eth0")
    ip("-n", router, "addr", "add", "10.0.0.2/24", "dev", "eth0")  # secondary
    ip("-n", router, "addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad")
    result = run_in(
        router,
        tmp_path,
        """
    async def main():
        async with AddressManager() as am:
            return {
                "v4": str(await am.primary_address("eth0", 4)),
                "v6": str(await am.primary_address("eth0", 6)),
                "eth1_v4": await am.primary_address("eth1", 4),
                "missing": await am.primary_address("nosuch", 4),
                "mac": (await am.mac_address("eth0")).hex(),
                "index": await am.ifindex("eth0"),
                "no_index": await am.ifindex("nosuch"),
                "has_missing": await am.has_address("nosuch", ip_address("10.0.0.1")),
            }
    """,
    )
    link = ip_json(router, "link", "show", "dev", "eth0")[0]
    assert result == {
        "v4": "10.0.0.1",
        "v6": link_local(router, "eth0"),
        "eth1_v4": None,
        "missing": None,
        "mac": link["address"].replace(":", ""),
        "index": link["ifindex"],
        "no_index": None,
        "has_missing": False,
    }


# --------------------------------------------------------------------------- routes and rules
ROUTES = """
ROUTES = [
    RouteSpec("10.20.0.0/16", via=ip_address("10.0.0.2"), device="eth0"),
    RouteSpec("10.30.0.0/16", device="eth0", source=ip_address("10.0.0.1"), scope="link", protocol="bird", metric=7),
    RouteSpec("default", via=ip_address("10.0.0.254"), table="1000"),
    RouteSpec("10.40.0.0/16", route_type="blackhole", table="default", metric=5),
    RouteSpec("10.41.0.0/16", route_type="unreachable"),
    RouteSpec("10.42.0.0/16", route_type="prohibit", table="100"),
    RouteSpec("2001:db8:5::/48", family=6, via=ip_address("2001:db8::2"), metric=300),
    RouteSpec("default", family=6, via=ip_address("2001:db8::fe"), device="eth0", table="200"),
]
"""


def our_routes(ns: str) -> set[tuple[Any, ...]]:
    """(type, dst, gateway, dev, table, protocol, scope, prefsrc, metric) of the routes tests add."""
    return {
        (
            r.get("type", "unicast"),
            r["dst"],
            r.get("gateway"),
            r.get("dev") if r.get("type", "unicast") == "unicast" else None,
            r.get("table", "main"),
            r["protocol"],
            r.get("scope", "global"),
            r.get("prefsrc"),
            r.get("metric"),
        )
        for r in ip_json(ns, "route", "show", "table", "all")
        if r.get("protocol") in ("keepalived", "bird")
    }


def test_routes_are_added_as_keepalived_would_and_removed_and_both_repeat_safely(router: str, tmp_path: Path) -> None:
    ip("-n", router, "addr", "add", "10.0.0.1/24", "dev", "eth0")
    ip("-n", router, "addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad")
    run_in(
        router,
        tmp_path,
        ROUTES,
        """
    async def main():
        async with AddressManager() as am:
            for route in ROUTES * 2:
                await am.add_route(route)
    """,
    )
    assert our_routes(router) == {
        ("unicast", "10.20.0.0/16", "10.0.0.2", "eth0", "main", "keepalived", "global", None, None),
        ("unicast", "10.30.0.0/16", None, "eth0", "main", "bird", "link", "10.0.0.1", 7),
        ("unicast", "default", "10.0.0.254", "eth0", "1000", "keepalived", "global", None, None),
        ("blackhole", "10.40.0.0/16", None, None, "default", "keepalived", "global", None, 5),
        ("unreachable", "10.41.0.0/16", None, None, "main", "keepalived", "global", None, None),
        ("prohibit", "10.42.0.0/16", None, None, "100", "keepalived", "global", None, None),
        ("unicast", "2001:db8:5::/48", "2001:db8::2", "eth0", "main", "keepalived", "global", None, 300),
        ("unicast", "default", "2001:db8::fe", "eth0", "200", "keepalived", "global", None, 1024),
    }
    run_in(
        router,
        tmp_path,
        ROUTES,
        """
    async def main():
        async with AddressManager() as am:
            for route in ROUTES * 2:
                await am.remove_route(route)
    """,
    )
    assert our_routes(router) == set()


def test_route_removal_leaves_a_hand_made_twin_alone(router: str, tmp_path: Path) -> None:
    ip("-n", router, "addr", "add", "10.0.0.1/24", "dev", "eth0")
    ip("-n", router, "route", "add", "10.20.0.0/16", "via", "10.0.0.2", "proto", "static")
    run_in(
        router,
        tmp_path,
        """
    async def main():
        async with AddressManager() as am:
            await am.remove_route(RouteSpec("10.20.0.0/16", via=ip_address("10.0.0.2")))
    """,
    )
    assert [r["dst"] for r in ip_json(router, "route", "show", "proto", "static")] == ["10.20.0.0/16"]


def test_routes_we_cannot_express_are_refused_by_name(router: str, tmp_path: Path) -> None:
    ip("-n", router, "addr", "add", "10.0.0.1/24", "dev", "eth0")
    errors = run_in(
        router,
        tmp_path,
        """
    async def main():
        bad = [
            RouteSpec("10.50.0.0/16", nexthops=[NextHop(via=ip_address("10.0.0.2"))], attributes={"mtu": "1400"}),
            RouteSpec("10.50.0.0/16", route_type="local", device="eth0"),
            RouteSpec("10.50.0.0/16", via=ip_address("10.0.0.2"), table="nosuch"),
            RouteSpec("10.50.0.0/16", via=ip_address("10.0.0.2"), device="nosuch"),
            RouteSpec("10.20.0.0/16", via=ip_address("10.0.0.3")),  # a different route is in the way
        ]
        out = []
        async with AddressManager() as am:
            await am.add_route(RouteSpec("10.20.0.0/16", via=ip_address("10.0.0.2")))
            for spec in bad:
                try:
                    await am.add_route(spec)
                    out.append(None)
                except NetError as exc:
                    out.append(str(exc))
            await am.remove_route(RouteSpec("10.20.0.0/16", via=ip_address("10.0.0.2")))
        return out
    """,
    )
    assert errors == [
        "route 10.50.0.0/16: not supported: nexthop, mtu",
        "route local 10.50.0.0/16 dev eth0: not supported: type local",
        "route 10.50.0.0/16 via 10.0.0.2 table nosuch: unknown routing table 'nosuch'"
        " (neither a number nor a name in /etc/iproute2/rt_tables)",
        "cannot add route 10.50.0.0/16 via 10.0.0.2 dev nosuch: no interface 'nosuch'",
        "cannot add route 10.20.0.0/16 via 10.0.0.3: a different route to 10.20.0.0/16 is in the way",
    ]


RULES = """
RULES = [
    RuleSpec(from_prefix="10.5.0.0/16", table="100", preference=100),
    RuleSpec(to_prefix="10.6.0.0/16", invert=True, fwmark="0x10/0xff", iif="eth0", table="main", preference=101),
    RuleSpec(from_prefix="all", oif="eth1", table="1000", preference=102),
    RuleSpec(family=6, from_prefix="2001:db8::/32", table="100", preference=103),
    RuleSpec(from_prefix="10.8.0.0/16", action="blackhole", preference=104),
    RuleSpec(from_prefix="10.7.0.0/16", table="100"),  # no preference: the kernel picks one
]
"""


def our_rules(ns: str) -> list[dict[str, Any]]:
    rules = ip_json(ns, "rule", "show") + ip_json(ns, "-6", "rule", "show")
    return sorted((r for r in rules if r.get("protocol") == "keepalived"), key=lambda r: (r["priority"], str(r)))


def test_rules_are_added_and_removed_and_both_repeat_safely(router: str, tmp_path: Path) -> None:
    run_in(
        router,
        tmp_path,
        RULES,
        """
    async def main():
        async with AddressManager() as am:
            for rule in RULES * 2:
                await am.add_rule(rule)
    """,
    )
    rules = our_rules(router)
    fixed = [r for r in rules if r["priority"] >= 100]
    assert fixed == [
        {"priority": 100, "src": "10.5.0.0", "srclen": 16, "table": "100", "protocol": "keepalived"},
        {
            "priority": 101,
            "not": None,
            "src": "all",
            "dst": "10.6.0.0",
            "dstlen": 16,
            "fwmark": "0x10",
            "fwmask": "0xff",
            "iif": "eth0",
            "table": "main",
            "protocol": "keepalived",
        },
        {"priority": 102, "src": "all", "oif": "eth1", "table": "1000", "protocol": "keepalived"},
        {"priority": 103, "src": "2001:db8::", "srclen": 32, "table": "100", "protocol": "keepalived"},
        {"priority": 104, "src": "10.8.0.0", "srclen": 16, "action": "blackhole", "protocol": "keepalived"},
    ]
    unpinned = [r for r in rules if r["priority"] < 100]
    assert [(r["src"], r["table"]) for r in unpinned] == [("10.7.0.0", "100")]  # added once, not twice

    run_in(
        router,
        tmp_path,
        RULES,
        """
    async def main():
        async with AddressManager() as am:
            for rule in RULES * 2:
                await am.remove_rule(rule)
    """,
    )
    assert our_rules(router) == []
    assert [r["priority"] for r in ip_json(router, "rule", "show")] == [0, 32766, 32767]


# --------------------------------------------------------------------------- links
def test_link_monitor_reports_down_and_up_within_a_second(router: str, tmp_path: Path) -> None:
    result = run_in(
        router,
        tmp_path,
        """
    async def main():
        seen = []
        async with LinkMonitor() as mon:
            before = [await mon.state("eth0"), await mon.state("eth1"), await mon.state("nosuch")]
            async def follow():
                async for event in mon.events():
                    seen.append((time.monotonic(), event))
            task = asyncio.create_task(follow())

            async def change(*args):
                start = time.monotonic()
                proc = await asyncio.create_subprocess_exec("ip", *args)
                await proc.wait()
                await asyncio.sleep(1.0)
                return start
            await change("link", "add", "br-x", "type", "bridge")  # unrelated noise
            t_down = await change("link", "set", "eth0", "down")
            during = [await mon.state("eth0"), await mon.state("eth1")]
            t_up = await change("link", "set", "eth0", "up")
            await change("link", "del", "br-x")
        await asyncio.wait_for(task, 5)  # close() ends the stream

        def first(name, up, after):
            return min((t - after for t, e in seen if e.ifname == name and e.up is up and t >= after), default=None)
        return {
            "before": before,
            "during": during,
            "eth0_down_s": first("eth0", False, t_down),
            "eth1_carrier_lost_s": first("eth1", False, t_down),
            "eth0_up_s": first("eth0", True, t_up),
            "eth1_up_s": first("eth1", True, t_up),
            "bridge_seen": any(e.ifname == "br-x" for _, e in seen),
        }
    """,
    )
    assert result["before"] == [True, True, None]
    assert result["during"] == [False, False]  # eth1 is admin up but lost carrier
    for key in ("eth0_down_s", "eth1_carrier_lost_s", "eth0_up_s", "eth1_up_s"):
        assert result[key] is not None and result[key] < 1.0, key
    assert result["bridge_seen"] is True


def test_link_monitor_recovers_when_the_kernel_drops_events(router: str, tmp_path: Path) -> None:
    batch = tmp_path / "bridges.batch"
    batch.write_text("".join(f"link add brx{i} type bridge\n" for i in range(40)))
    result = run_in(
        router,
        tmp_path,
        f"""
    async def main():
        seen = []
        async with LinkMonitor(rcvbuf_bytes=4096) as mon:
            async def follow():
                async for event in mon.events():
                    seen.append(event)
            task = asyncio.create_task(follow())
            await asyncio.sleep(0.2)
            subprocess.run(["ip", "-batch", {str(batch)!r}], check=True)  # blocks the loop: the socket overflows
            await asyncio.sleep(1.0)
            marker = len(seen)
            sh("ip", "link", "set", "eth0", "down")
            await asyncio.sleep(1.0)
            resyncs = mon.resyncs
        await asyncio.wait_for(task, 5)
        return {{
            "resyncs": resyncs,
            "bridges_reported": len({{e.ifname for e in seen if e.ifname.startswith("brx")}}),
            "after": [(e.ifname, e.up) for e in seen[marker:]],
        }}
    """,
    )
    assert result["resyncs"] >= 1
    assert result["bridges_reported"] == 40  # the resync reported every link as it is
    assert ["eth0", False] in result["after"]


# --------------------------------------------------------------------------- VRRP sockets
RECEIVER = """
def main():
    family, group, count = {family}, ip_address({group!r}), {count}
    sock = VrrpSocket.open(family, "eth0", source=None, group=group)
    sniffer = None
    if family == 6:  # to see the IPv6 header the raw socket does not hand over
        sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86DD))
        sniffer.bind(("eth0", 0))
    ready()
    packets, deadline = [], time.monotonic() + 10
    while len(packets) < count and time.monotonic() < deadline:
        if wait_readable(sock.fileno(), 0.2):
            while (packet := sock.receive()) is not None:
                packets.append({{"data": packet.data.hex(), "family": packet.family, "src": str(packet.src),
                                "dst": str(packet.dst), "hop_limit": packet.hop_limit, "ifindex": packet.ifindex}})
    headers = []
    while sniffer is not None and wait_readable(sniffer.fileno(), 0):
        frame = sniffer.recv(65535)
        if frame[14 + 6] == 112:
            headers.append({{"tclass": (int.from_bytes(frame[14:16], "big") >> 4) & 0xFF, "hop_limit": frame[14 + 7]}})
    sock.close()
    return {{"packets": packets, "headers": headers}}
"""


def test_vrrp_socket_ipv4_multicast_and_unicast_between_two_routers(lan: tuple[str, str], tmp_path: Path) -> None:
    a, b = lan
    ip("-n", a, "addr", "add", "10.0.0.11/24", "dev", "eth0")  # a secondary, to prove the source is ours to pick
    receiver = start_in(b, tmp_path, RECEIVER.format(family=4, group="224.0.0.18", count=2))
    sent = run_in(
        a,
        tmp_path,
        """
    def main():
        with VrrpSocket.open(4, "eth0", source=ip_address("10.0.0.11"), group=ip_address("224.0.0.18")) as sock:
            sock.send(b"advert-multicast-v4", ip_address("224.0.0.18"))
            sock.send(b"advert-unicast-v4", ip_address("10.0.0.2"))
            time.sleep(0.3)
            return sock.receive() is None  # multicast loop is off: we do not hear ourselves
    """,
    )
    assert sent is True
    got = finish(receiver)["packets"]
    assert [p["dst"] for p in got] == ["224.0.0.18", "10.0.0.2"]
    for packet, payload in zip(got, (b"advert-multicast-v4", b"advert-unicast-v4"), strict=True):
        data = bytes.fromhex(packet["data"])
        assert packet["family"] == 4 and packet["src"] == "10.0.0.11"
        assert packet["hop_limit"] is None and packet["ifindex"] == ifindex(b, "eth0")
        assert data[0] == 0x45 and data[20:] == payload
        assert data[1] == 0xC0  # TOS: IPTOS_PREC_INTERNETCONTROL
        assert data[8] == 255  # TTL
        assert data[9] == 112  # protocol VRRP
        assert data[6] & 0x40 == 0  # DF clear, as keepalived sends
        assert data[12:16] == bytes([10, 0, 0, 11]) and packet["dst"] == ".".join(map(str, data[16:20]))


def test_vrrp_socket_ipv6_multicast_and_unicast_between_two_routers(lan: tuple[str, str], tmp_path: Path) -> None:
    a, b = lan
    source = link_local(a, "eth0")
    receiver = start_in(b, tmp_path, RECEIVER.format(family=6, group="ff02::12", count=2))
    sent = run_in(
        a,
        tmp_path,
        f"""
    def main():
        with VrrpSocket.open(6, "eth0", source=ip_address({source!r}), group=ip_address("ff02::12")) as sock:
            sock.send(b"advert-multicast-v6", ip_address("ff02::12"))
            sock.send(b"advert-unicast-v6", ip_address("2001:db8::2"))
            time.sleep(0.3)
            return sock.receive() is None
    """,
    )
    assert sent is True
    result = finish(receiver)
    got = result["packets"]
    assert [(p["dst"], bytes.fromhex(p["data"])) for p in got] == [
        ("ff02::12", b"advert-multicast-v6"),
        ("2001:db8::2", b"advert-unicast-v6"),
    ]
    for packet in got:
        assert packet["family"] == 6 and packet["src"] == source
        assert packet["hop_limit"] == 255 and packet["ifindex"] == ifindex(b, "eth0")
    assert result["headers"] == [{"tclass": 0xC0, "hop_limit": 255}] * 2


def test_vrrp_socket_without_group_hears_unicast_only(lan: tuple[str, str], tmp_path: Path) -> None:
    a, b = lan
    receiver = start_in(
        b,
        tmp_path,
        """
    def main():
        with VrrpSocket.open(4, "eth0", source=None, group=None) as sock:
            ready()
            got, deadline = [], time.monotonic() + 1.5
            while time.monotonic() < deadline and len(got) < 2:
                if wait_readable(sock.fileno(), 0.2):
                    while (packet := sock.receive()) is not None:
                        got.append(str(packet.dst))
            return got
    """,
    )
    run_in(
        a,
        tmp_path,
        """
    def main():
        with VrrpSocket.open(4, "eth0", source=None, group=ip_address("224.0.0.18")) as sock:
            sock.send(b"m", ip_address("224.0.0.18"))
            sock.send(b"u", ip_address("10.0.0.2"))
    """,
    )
    assert finish(receiver) == ["10.0.0.2"]


def test_vrrp_socket_refuses_what_cannot_work(lan: tuple[str, str], tmp_path: Path) -> None:
    a, _ = lan
    errors = run_in(
        a,
        tmp_path,
        """
    def main():
        out = []
        for family, ifname, source, group in (
            (4, "nosuch", None, "224.0.0.18"),
            (4, "eth0", None, "10.0.0.9"),
            (6, "eth0", "10.0.0.1", "ff02::12"),
        ):
            try:
                VrrpSocket.open(family, ifname, source=source and ip_address(source), group=ip_address(group))
            except NetError as exc:
                out.append(str(exc))
        with VrrpSocket.open(4, "eth0", source=None, group=None) as sock:
            try:
                sock.send(b"x", ip_address("2001:db8::2"))
            except NetError as exc:
                out.append(str(exc))
        return out
    """,
    )
    assert errors == [
        "cannot open a VRRP IPv4 socket on nosuch: no such interface",
        "cannot open a VRRP IPv4 socket on eth0: group 10.0.0.9 is not a multicast address",
        "cannot open a VRRP IPv6 socket on eth0: source 10.0.0.1 is not IPv6",
        "cannot send a VRRP packet to 2001:db8::2 on an IPv4 socket",
    ]


# --------------------------------------------------------------------------- announcements
def test_announce_sender_puts_garp_and_na_on_the_wire(lan: tuple[str, str], tmp_path: Path) -> None:
    a, b = lan
    sniffer = start_in(
        b,
        tmp_path,
        """
    def main():
        sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL
        sniffer.bind(("eth0", 0))
        ready()
        frames, deadline = [], time.monotonic() + 10
        while len(frames) < 2 and time.monotonic() < deadline:
            if wait_readable(sniffer.fileno(), 0.2):
                frame = sniffer.recv(65535)
                is_garp = frame[12:14] == b"\\x08\\x06" and frame[28:32] == bytes([10, 0, 0, 100])
                is_na = frame[12:14] == b"\\x86\\xdd" and frame[20] == 58 and frame[54] == 136
                if is_garp or is_na:
                    frames.append(frame.hex())
        return frames
    """,
    )
    sent = run_in(
        a,
        tmp_path,
        """
    async def main():
        async with AddressManager() as am:
            mac = await am.mac_address("eth0")
        vip6 = ip_address("2001:db8::100")
        frames = [gratuitous_arp_frame(mac, ip_address("10.0.0.100")), unsolicited_na_frame(mac, vip6, vip6)]
        with AnnounceSender() as sender:
            for frame in frames:
                sender.send("eth0", frame)
            try:
                sender.send("nosuch", frames[0])
                error = None
            except NetError as exc:
                error = str(exc)
        return {"mac": mac.hex(), "frames": [f.hex() for f in frames], "error": error}
    """,
    )
    assert sent["mac"] == ip_json(a, "link", "show", "dev", "eth0")[0]["address"].replace(":", "")
    assert finish(sniffer) == sent["frames"]
    assert sent["error"] == "cannot send an announcement on nosuch: no such interface"
