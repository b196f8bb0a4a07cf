"""Issue 19's active-active tier: N balancers announce the VIP over BGP to an upstream router doing ECMP.

```
client c ------------ upstream (FRR zebra+bgpd[+bfdd], AS 65000) ------ tier segment (a bridge), 10.19.0.0/24
198.51.100.2    eth1 198.51.100.1 | eth0 10.19.0.1                |-- lb1..lbN 10.19.0.11.. (pykeepalived, AS 65001)
                                                                  |-- rs1..rs3 10.19.0.101.. (nginx, VIP on lo)
```

- The upstream listens (`bgp listen range 10.19.0.0/24`), installs up to 16
  paths for the VIP and hashes each flow's 5-tuple (`UPSTREAM_HASH`: the lab
  has one client address, so an L3 hash would send it all one way). The bridge keeps the upstream's carrier when a
  balancer's link goes down, so a dead balancer is seen by BGP (hold time) or
  BFD, not by the upstream's own link.
- Each balancer runs pykeepalived with no vrrp_instance and one stateless DR
  service over mh (ecmp_conf.balancer_conf): every balancer builds the same
  Maglev table, so a flow the upstream moves to another balancer keeps its
  real server. The VIP sits on the balancer's `lo` (arp_ignore=1,
  arp_announce=2): the nftables DR path `fwd`s the packet from the ingress
  hook before the IP stack sees it, but whatever that path does not take (no
  server left) gets a reset from the balancer rather than being routed back
  to the upstream.
- The speaker announcing the VIP is pykeepalived's own `pykeepalived_bgp`
  (`Speaker.PYKEEPALIVED`, announced while the service is healthy) or, as a
  control, a `bgpd -Z -p 0` the lab runs beside pykeepalived
  (`Speaker.FRR`, announced from start to kill whatever the service does).
- Real servers hold the VIP on `lo` and answer the client straight through
  the upstream (DR).
- Each balancer also has a netdev table `ecmplab` (ecmp_conf.counter_table)
  that counts the service's SYNs and remembers every flow it saw, so a test
  can say which balancer carried which connection.

As the LVS lab, everything made is listed in a JSON state file before it is
made, `close()` removes it all (also after a failed `up()`), and
`destroy_tier()` (`pykeepalived lab down`) does so from another process.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pykeepalived

from . import ecmp_conf
from .ecmp_conf import TierPlan
from .frr import FrrInstance
from .lvs_lab import (
    DEFAULT_NAME,
    KEEPALIVE_REQUESTS,
    LabRecord,
    ProcessRecord,
    PykeepalivedFiles,
    _kill_group,
    _no_rp_filter,
    _sysctls,
    destroy,
    http_get,
    owned,
    refuse_if_running,
    state_path,
)
from .netns import FRR_TMP, LabError, Netns, pid_alive, signal_pid, wait_pids_gone
from .peers import wait_until
from .servers import NginxServer, stop_servers
from .streams import LineStreams
from .topology import Host, Lan, unique_prefix

KIND = "ecmp"
VIP = IPv4Address("203.0.113.50")
HTTP_PORT = 80
UPSTREAM_AS = 65000
BALANCER_AS = 65001
TIER_NET = "10.19.0.0/24"
TIER_NET6 = "2001:db8:19::/64"
CLIENT_NET = "198.51.100.0/24"
CLIENT_NET6 = "2001:db8:1c::/64"
UPSTREAM_HOST = 1
CLIENT_HOST = 2
BALANCER_BASE = 10  # lbN is .10+N
REAL_SERVER_BASE = 100  # rsN is .100+N
MAX_BALANCERS = ecmp_conf.MAX_PATHS
# The upstream hashes each flow's 5-tuple, as a hardware router does. Not policy 1 ("L4"): for a packet that
# already carries an L4 hash, Linux takes that hash, and a packet from the lab's client carries its socket's
# random sk_txhash across the veth. The upstream would then pick paths no `ip route get` predicts, and a flow
# would move to another balancer whenever the client's TCP re-rolls that hash (at a retransmission timeout, from
# the kernel's code). Measured: under policy 1, 17 of 60 flows went where `ip route get` said; under 3, 60 of 60.
# Policy 3 (custom fields) dissects the packet: source and destination address, protocol, both ports.
UPSTREAM_HASH = {"net.ipv4.fib_multipath_hash_policy": "3", "net.ipv4.fib_multipath_hash_fields": "0x0037"}
BALANCER_START_TIMEOUT_S = 20.0  # pykeepalived started -> its checker sees every real server, table applied
PATHS_TIMEOUT_S = 15.0  # speakers started -> every path on the upstream (connect retry 1 s: about 2 s)
STOP_TIMEOUT_S = 12.0
PHASE_BUILDING = "building"
PHASE_UP = "up"


class Speaker(enum.Enum):
    """Who announces the VIP from a balancer."""

    PYKEEPALIVED = "pykeepalived"  # pykeepalived_bgp: pykeepalived runs bgpd -Z itself, announces while healthy
    FRR = "frr"  # the lab runs bgpd -Z beside pykeepalived: announced from start to kill (a control)


def default_speaker() -> Speaker:
    """pykeepalived's own speaker where this tree has it (the `bgp` package), else the lab's control bgpd."""
    return Speaker.PYKEEPALIVED if (Path(pykeepalived.__file__).parent / "bgp").is_dir() else Speaker.FRR


@dataclass
class Balancer(PykeepalivedFiles):
    """One balancer of the tier: a host on the tier segment running pykeepalived (and maybe the control bgpd)."""

    number: int
    host: Host
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    control: FrrInstance | None = None  # Speaker.FRR's bgpd
    killed_pids: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return f"lb{self.number}"

    @property
    def address(self) -> IPv4Address:
        return self.host.ipv4.ip

    @property
    def netns(self) -> Netns:
        return self.host.netns

    def argv(self) -> list[str]:
        return [*self.base_argv(), "--dataplane", "nftables"]


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _nft_json(ns: Netns, *args: str) -> list[dict[str, Any]]:
    out = ns.run(["nft", "-j", *args], check=False)
    if out.returncode != 0:
        return []
    try:
        doc = json.loads(out.stdout)
    except ValueError:
        return []
    items: list[dict[str, Any]] = doc.get("nftables", []) if isinstance(doc, dict) else []
    return items


def _flow_elements(items: list[dict[str, Any]]) -> set[tuple[str, int]]:
    """(client address, client port) of each element of the counter table's flow set."""
    found: set[tuple[str, int]] = set()
    for item in items:
        for elem in item.get("set", {}).get("elem", []) or []:
            val = elem.get("elem", {}).get("val", elem) if isinstance(elem, dict) else elem
            concat = val.get("concat") if isinstance(val, dict) else None
            if isinstance(concat, list) and len(concat) == 2:
                found.add((str(concat[0]), int(concat[1])))
    return found


def _counter(ns: Netns, name: str) -> int:
    items = _nft_json(ns, "list", "counter", "netdev", ecmp_conf.COUNTER_TABLE, name)
    return sum(int(i["counter"].get("packets", 0)) for i in items if "counter" in i)


def slot_table(items: list[dict[str, Any]]) -> list[str]:
    """A stateless DR service's slot table from `nft -j list table netdev pykeepalived_lvs`: the server per slot.

    The service chain's vmap (a literal map, or a named slot map's elements)
    sends slot k to a real server's chain, whose rule ends in `fwd ... to
    ADDRESS`; with one service in the table there is one such vmap (the first
    one found is taken). A service whose servers share one interface has no
    vmap: its rule's `fwd` takes the address from a slot map of addresses
    (nft_forward.Direct), read as it is.
    """
    server_of: dict[str, str] = {}
    vmaps: list[list[Any]] = []
    named = {str(item["map"].get("name")): item["map"].get("elem", []) for item in items
             if isinstance(item.get("map"), dict)}  # the slot maps (nft_rules: slot maps) and their elements
    for item in items:
        rule = item.get("rule")
        if not isinstance(rule, dict):
            continue
        for expr in rule.get("expr", []):
            if "fwd" in expr:
                addr = expr["fwd"].get("addr")
                picked = addr.get("map") if isinstance(addr, dict) else None
                elems = named.get(str(picked.get("data", ""))[1:], []) if isinstance(picked, dict) else []
                if elems and all(isinstance(pair[0], int) for pair in elems):  # slot -> address (not routes)
                    return [str(address) for _, address in sorted(elems)]
                server_of[str(rule["chain"])] = str(addr)
            vmap = expr.get("vmap") if isinstance(expr, dict) else None
            data = vmap.get("data") if isinstance(vmap, dict) else None
            if isinstance(data, str) and data.startswith("@") and data[1:] in named:
                vmaps.append(named[data[1:]])
            elif isinstance(data, dict) and isinstance(data.get("set"), list):
                vmaps.append(data["set"])
    vmaps = [v for v in vmaps if v and all(isinstance(pair[0], int) for pair in v)]  # slots, not the dispatch
    if not vmaps:
        return []
    slots: list[tuple[int, str]] = []
    for slot, verdict in vmaps[0]:
        target = verdict.get("goto", verdict.get("jump", {})).get("target", "")
        slots.append((int(slot), server_of.get(str(target), str(target))))
    return [server for _, server in sorted(slots)]


class EcmpLab:
    """The tier of issue 19 with `balancers` balancers (1..16); `up()` returns once the upstream has a path to each.

    Balancers are named lb1, lb2, ... and methods take the number (1 for
    lb1) or the name. `workdir` gets configs, logs and `lab.json`; without
    one a temporary directory is used and removed by `close()`.
    `timeout_scale` multiplies the lab's waits.
    """

    def __init__(self, *, balancers: int = 3, bfd: bool = False, speaker: Speaker | str | None = None,
                 check: str = "TCP_CHECK", real_servers: int = 3, prefix: str | None = None,
                 name: str = DEFAULT_NAME, workdir: Path | str | None = None, timeout_scale: float = 1.0) -> None:
        if not 1 <= balancers <= MAX_BALANCERS:
            raise LabError(f"balancers must be 1..{MAX_BALANCERS} (the upstream's maximum-paths), not {balancers}")
        if not 1 <= real_servers <= 50:
            raise LabError(f"real_servers must be 1..50, not {real_servers}")
        if not (check == "TCP_CHECK" or check == "HTTP_GET"):
            raise LabError(f"check must be TCP_CHECK or HTTP_GET, not {check!r}")
        if timeout_scale <= 0:
            raise LabError(f"timeout_scale must be positive, not {timeout_scale}")
        try:
            self.speaker = default_speaker() if speaker is None else Speaker(speaker)
        except ValueError as exc:
            raise LabError(f"unknown speaker {speaker!r}: choose pykeepalived or frr") from exc
        self.initial_balancers = balancers
        self.bfd = bfd
        self.name = name
        self.prefix = prefix or unique_prefix(name)
        self.timeout_scale = timeout_scale
        self._own_dir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.gettempdir()) / f"ecmplab-{self.prefix}"
        self.state_path = state_path(self.workdir)
        tier = IPv4Network(TIER_NET)
        self.vip = VIP
        self.plan = TierPlan(
            vip=VIP, port=HTTP_PORT, tier_net=tier, upstream=tier.network_address + UPSTREAM_HOST,
            upstream_as=UPSTREAM_AS, balancer_as=BALANCER_AS,
            real_servers=tuple(tier.network_address + REAL_SERVER_BASE + i for i in range(1, real_servers + 1)),
            check=check, bfd=bfd)
        self.tier: Lan | None = None
        self.client_lan: Lan | None = None
        self.hosts: dict[str, Host] = {}
        self.balancers: dict[str, Balancer] = {}
        self.nginx: dict[str, NginxServer] = {}
        self.upstream_frr: FrrInstance | None = None
        self.notes: list[str] = []
        self._record: LabRecord | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"EcmpLab(prefix={self.prefix!r}, balancers={sorted(self.balancers)}, speaker={self.speaker.value})"

    # -- hosts -------------------------------------------------------------------------------

    @property
    def client(self) -> Host:
        return self.hosts["c"]

    @property
    def upstream(self) -> Host:
        return self.hosts["up"]

    @property
    def namespaces(self) -> list[str]:
        return list(self._record.namespaces) if self._record is not None else []

    def balancer(self, which: int | str) -> Balancer:
        key = f"lb{which}" if isinstance(which, int) else which
        try:
            return self.balancers[key]
        except KeyError:
            raise LabError(f"no balancer {which!r} (have {', '.join(self.balancers)})") from None

    def client_get(self, path: str = "/whoami", timeout_s: float = 2.0) -> str:
        """GET http://VIP{path} from the client: the body (nginx's /whoami names the real server)."""
        return http_get(self.client.netns, f"http://{self.vip}{path}", timeout_s)

    def streams(self, count: int, **kwargs: Any) -> LineStreams:
        """`count` long-lived HTTP connections from the client to the VIP (not started)."""
        return LineStreams(self.client.netns.name, str(self.vip), HTTP_PORT, count=count, **kwargs)

    # -- the upstream's view ------------------------------------------------------------------

    def upstream_paths(self, vip: IPv4Address | str | None = None) -> list[str]:
        """The nexthops the upstream's kernel holds for `vip` (`ip -j route show VIP`), sorted."""
        routes = self.upstream.netns.ip_json("route", "show", f"{vip or self.vip}/32")
        found: list[str] = []
        for route in routes:
            if "nexthops" in route:
                found += [str(nh["gateway"]) for nh in route["nexthops"] if "gateway" in nh]
            elif "gateway" in route:
                found.append(str(route["gateway"]))
        return sorted(found, key=IPv4Address)

    def wait_paths(self, vip: IPv4Address | str | None = None, n: int | None = None, timeout_s: float | None = None,
                   *, interval_s: float = 0.02) -> float:
        """Wait until the upstream holds exactly `n` paths (default: one per running balancer); seconds taken."""
        want = n if n is not None else sum(1 for b in self.balancers.values() if b.running())
        timeout = PATHS_TIMEOUT_S * self.timeout_scale if timeout_s is None else timeout_s
        try:
            return wait_until(lambda: len(self.upstream_paths(vip)) == want, timeout, interval_s=interval_s,
                              what=f"{want} paths to {vip or self.vip} on the upstream")
        except LabError as exc:
            raise LabError(f"{exc}; it has {self.upstream_paths(vip)}\n{self.upstream_bgp_summary()}") from exc

    def upstream_bgp_summary(self) -> str:
        if self.upstream_frr is None:
            return ""
        try:
            return self.upstream_frr.vtysh("bgpd", "show bgp summary")
        except LabError as exc:
            return str(exc)

    def bfd_peers_up(self) -> list[str]:
        """Balancer addresses whose BFD session on the upstream's bfdd is up (`show bfd peers json`)."""
        if self.upstream_frr is None or not self.upstream_frr.running("bfdd"):
            return []
        try:
            peers = json.loads(self.upstream_frr.vtysh("bfdd", "show bfd peers json") or "[]")
        except (LabError, ValueError):
            return []
        return sorted((str(p["peer"]) for p in peers if isinstance(p, dict) and p.get("status") == "up"),
                      key=IPv4Address)

    def wait_bfd(self, timeout_s: float | None = None) -> float:
        """Wait until the upstream has a BFD session up with every running balancer: before that, a balancer's
        crash is noticed by the hold time only."""
        want = sorted((str(b.address) for b in self.balancers.values() if b.running()), key=IPv4Address)
        timeout = PATHS_TIMEOUT_S * self.timeout_scale if timeout_s is None else timeout_s
        return wait_until(lambda: self.bfd_peers_up() == want, timeout, interval_s=0.05,
                          what=f"BFD sessions up with {want} (up: {self.bfd_peers_up()})")

    def route_choice(self, sport: int, dport: int = HTTP_PORT) -> str:
        """The nexthop the upstream's FIB picks for a TCP flow from the client's port `sport` (`ip route get`)."""
        out = self.upstream.netns.ip("route", "get", str(self.vip), "from", str(self.client.ipv4.ip), "iif", "eth1",
                                     "ipproto", "tcp", "sport", str(sport), "dport", str(dport))
        words = out.split()
        return words[words.index("via") + 1] if "via" in words else ""

    def balancer_by_address(self, address: str) -> str:
        for b in self.balancers.values():
            if str(b.address) == address:
                return b.name
        return address

    # -- counting flows ----------------------------------------------------------------------

    def flows_seen(self, which: int | str) -> set[tuple[str, int]]:
        """(client address, port) of every flow to the VIP that reached this balancer since the last reset."""
        return _flow_elements(_nft_json(self.balancer(which).netns, "list", "set", "netdev", ecmp_conf.COUNTER_TABLE,
                                        ecmp_conf.FLOW_SET))

    def flows_per_balancer(self) -> dict[str, int]:
        return {name: len(self.flows_seen(name)) for name in self.balancers}

    def syn_counts(self) -> dict[str, int]:
        """Balancer -> SYNs to the VIP it received (new connections) since the last reset."""
        return {name: _counter(b.netns, ecmp_conf.SYN_COUNTER) for name, b in self.balancers.items()}

    def packet_counts(self) -> dict[str, int]:
        """Balancer -> packets to the VIP's service it received since the last reset."""
        return {name: _counter(b.netns, ecmp_conf.PACKET_COUNTER) for name, b in self.balancers.items()}

    def balancers_of_flow(self, sport: int, saddr: str | None = None) -> list[str]:
        """The balancers whose counter table saw the client's flow from port `sport` (two if ECMP moved it)."""
        key = (saddr or str(self.client.ipv4.ip), sport)
        return [name for name in self.balancers if key in self.flows_seen(name)]

    def balancer_of_flow(self, sport: int, saddr: str | None = None) -> str | None:
        """The one balancer that carried the flow; None if none did; LabError if several did."""
        found = self.balancers_of_flow(sport, saddr)
        if len(found) > 1:
            raise LabError(f"flow from port {sport} was seen by {found}")
        return found[0] if found else None

    def reset_counters(self) -> None:
        for b in self.balancers.values():
            b.netns.run(["nft", "reset", "counters", "table", "netdev", ecmp_conf.COUNTER_TABLE], check=False)
            b.netns.run(["nft", "flush", "set", "netdev", ecmp_conf.COUNTER_TABLE, ecmp_conf.FLOW_SET], check=False)

    def maglev_table(self, which: int | str) -> list[str]:
        """The real server of each slot of the balancer's DR service table (its nftables ingress vmap)."""
        return slot_table(_nft_json(self.balancer(which).netns, "list", "table", "netdev", "pykeepalived_lvs"))

    # -- failures and growth -----------------------------------------------------------------

    def kill_balancer(self, which: int | str) -> float:
        """Crash a balancer: its link down first (nothing more leaves it), then SIGKILL pykeepalived and every
        bgpd in its namespace. The upstream is left to notice (hold time, or BFD). Returns the monotonic
        time the link went down."""
        b = self.balancer(which)
        bgpds = [pid for pid in b.netns.pids() if _comm(pid) == "bgpd"]  # before pykeepalived's death kills its own
        b.netns.ip("link", "set", b.host.ifname, "down")
        t_down = time.monotonic()
        killed: list[int] = []
        if b.proc is not None and b.proc.poll() is None:
            killed.append(b.proc.pid)
            _kill_group(b.proc.pid)
            b.proc.wait(STOP_TIMEOUT_S * self.timeout_scale)
        if b.control is not None:
            killed += b.control.kill()
        bgpds += [pid for pid in b.netns.pids() if _comm(pid) == "bgpd" and pid not in bgpds]
        for pid in bgpds:
            signal_pid(pid, signal.SIGKILL)
        wait_pids_gone(bgpds, 5.0)
        _remove_crash_dirs(bgpds)
        b.killed_pids = (*b.killed_pids, *killed, *bgpds)
        self._save()
        return t_down

    def start_balancer(self, which: int | str, *, wait: bool = True) -> Balancer:
        """(Re)start a balancer's pykeepalived (link up first) and, for Speaker.FRR, its bgpd once it serves."""
        b = self.balancer(which)
        if b.running():
            raise LabError(f"pykeepalived on {b.name} is already running")
        b.netns.ip("link", "set", b.host.ifname, "up")
        for path in (*b.pid_files, b.status_file):
            path.unlink(missing_ok=True)
        # $TMPDIR in the lab's directory: what pykeepalived makes there (its bgpd's directory, signal dumps)
        # outlives a SIGKILL, and must go with the lab, not stay in the machine's /tmp
        tmp = b.dir / f"{b.name}-tmp"
        tmp.mkdir(exist_ok=True)
        with open(b.log_path, "ab") as log:
            b.proc = b.netns.popen(b.argv(), stdout=log, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, TMPDIR=str(tmp)))
        self._save()
        if wait:
            self._wait_serving([b])
            self._start_control(b)
        return b

    def add_balancer(self, *, wait: bool = True) -> Balancer:
        """One more balancer on the tier segment (the upstream's listen range takes it without a change)."""
        if self.tier is None or self._record is None:
            raise LabError("the lab is not up")
        number = max((b.number for b in self.balancers.values()), default=0) + 1
        if number > MAX_BALANCERS:
            raise LabError(f"the upstream takes at most {MAX_BALANCERS} paths")
        b = self._make_balancer(number)
        self._configure_balancer(b)
        self.start_balancer(b.name, wait=wait)
        return b

    # -- building ----------------------------------------------------------------------------

    def up(self) -> Self:
        """Build and start everything; on any failure (or Ctrl-C) remove what was made, then raise."""
        if self._record is not None:
            raise LabError(f"{self!r} is already up (or was closed)")
        self._refuse_if_running()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._record = LabRecord(self.name, KIND, self.prefix, str(self.workdir), vips=[str(self.vip)])
        if self.speaker is Speaker.FRR:
            self.notes.append("the VIP is announced by a bgpd the lab runs beside pykeepalived (speaker frr): "
                              "it stays announced whatever the service's health")
        try:
            self._save()
            self._build()
            self._start_upstream()
            self._start_real_servers()
            for b in self.balancers.values():
                self._configure_balancer(b)
            self._check_config(next(iter(self.balancers.values())))
            for b in self.balancers.values():
                self.start_balancer(b.name, wait=False)
            self._wait_serving(list(self.balancers.values()))
            for b in self.balancers.values():
                self._start_control(b)
            self.wait_paths()
            if self.bfd:
                self.wait_bfd()
            self._record.phase = PHASE_UP
            self._save()
        except BaseException:
            self._close_after_failure()
            raise
        return self

    def _refuse_if_running(self) -> None:
        refuse_if_running(self.state_path, self.workdir)

    def _plan(self, *namespaces: str) -> None:
        assert self._record is not None
        self._record.namespaces += [n for n in namespaces if n not in self._record.namespaces]
        self._save()

    def _add_host(self, lan: Lan, role: str, number: int) -> Host:
        self._plan(f"{lan.prefix}-{role}")
        host = lan.add_host(role, number)
        self.hosts[role] = host
        return host

    def _build(self) -> None:
        self._plan(f"{self.prefix}-sw")
        self.tier = Lan(self.prefix, ipv4_net=TIER_NET, ipv6_net=TIER_NET6)
        self._plan(f"{self.prefix}-cl-sw")
        self.client_lan = Lan(f"{self.prefix}-cl", ipv4_net=CLIENT_NET, ipv6_net=CLIENT_NET6)
        up = self._add_host(self.tier, "up", UPSTREAM_HOST)
        self.client_lan.attach(up, "eth1", UPSTREAM_HOST)
        client = self._add_host(self.client_lan, "c", CLIENT_HOST)
        client.netns.ip("route", "add", "default", "via", str(self.client_lan.ipv4_net.network_address + UPSTREAM_HOST))
        _sysctls(up.netns, {"net.ipv4.ip_forward": "1", **UPSTREAM_HASH, **_no_rp_filter("eth0", "eth1")})
        for i in range(1, len(self.plan.real_servers) + 1):
            rs = self._add_host(self.tier, f"rs{i}", REAL_SERVER_BASE + i)
            self._configure_real_server(rs)
        for number in range(1, self.initial_balancers + 1):
            self._make_balancer(number)
        self._save()

    def _dr_host(self, host: Host) -> None:
        """The VIP on lo, never answered for by ARP; default route via the upstream."""
        arp = {f"net.ipv4.conf.{i}.{k}": v for i in ("all", host.ifname)
               for k, v in (("arp_ignore", "1"), ("arp_announce", "2"))}
        _sysctls(host.netns, {**arp, **_no_rp_filter(host.ifname, "lo")})
        host.netns.ip("addr", "add", f"{self.vip}/32", "dev", "lo")
        host.netns.ip("route", "add", "default", "via", str(self.plan.upstream))

    def _configure_real_server(self, rs: Host) -> None:
        self._dr_host(rs)

    def _make_balancer(self, number: int) -> Balancer:
        assert self.tier is not None
        host = self._add_host(self.tier, f"lb{number}", BALANCER_BASE + number)
        b = Balancer(number, host, self.workdir)
        self.balancers[b.name] = b
        self._dr_host(host)
        _sysctls(host.netns, {"net.ipv4.ip_forward": "1"})
        host.netns.run(["nft", "-f", "-"], input=ecmp_conf.counter_table(self.plan, host.ifname))
        self._save()
        return b

    def _configure_balancer(self, b: Balancer) -> None:
        b.conf_path.write_text(ecmp_conf.balancer_conf(self.plan, b.name, b.address,
                                                       bgp_block=self.speaker is Speaker.PYKEEPALIVED))
        for path in (b.log_path, b.status_file, *b.pid_files):
            path.unlink(missing_ok=True)

    def _check_config(self, b: Balancer) -> None:
        """`pykeepalived -t` on one balancer's config (the others differ only in addresses)."""
        test = b.netns.run([sys.executable, "-m", "pykeepalived", "-t", "-f", str(b.conf_path)], check=False,
                           timeout_s=30.0)
        if test.returncode != 0:
            raise LabError(f"pykeepalived -t refuses {b.conf_path}:\n{_tail(test.stderr + test.stdout)}")

    def _start_upstream(self) -> None:
        frr = FrrInstance(self.upstream, self.workdir / "upstream")
        self.upstream_frr = frr
        frr.start("zebra", "hostname upstream\n")
        self._save()
        if self.bfd:
            frr.start("bfdd", ecmp_conf.bfdd_conf(self.plan))
            self._save()
        frr.start("bgpd", ecmp_conf.upstream_bgpd_conf(self.plan))
        self._save()

    def _start_real_servers(self) -> None:
        for i in range(1, len(self.plan.real_servers) + 1):
            host = self.hosts[f"rs{i}"]
            nginx = NginxServer(host, self.workdir / host.name, addresses=["0.0.0.0"], ports=[HTTP_PORT],
                                name=host.name, extra_http=KEEPALIVE_REQUESTS)
            self.nginx[host.name] = nginx
            nginx.start()
            self._save()

    def serving(self, b: Balancer) -> bool:
        """The balancer's checker sees every real server alive and its data plane has applied the table."""
        if not b.running():
            code = b.proc.returncode if b.proc is not None else None
            raise LabError(f"pykeepalived on {b.name} exited with {code}:\n{_tail(b.log())}")
        try:
            status = b.checker_status()
            servers = [rs for svc in status["services"] for rs in svc["real_servers"]]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if status.get("dataplane_error") or status.get("applied") is False:
            return False
        return len(servers) == len(self.plan.real_servers) and all(rs["alive"] for rs in servers)

    def _wait_serving(self, balancers: list[Balancer]) -> None:
        try:
            wait_until(lambda: all(self.serving(b) for b in balancers),
                       BALANCER_START_TIMEOUT_S * self.timeout_scale, interval_s=0.1,
                       what=f"{', '.join(b.name for b in balancers)} serving")
        except LabError as exc:
            detail = "\n".join(f"--- {b.name}\n{_tail(b.log(), 15)}" for b in balancers)
            raise LabError(f"{exc}\n{detail}") from exc

    def _start_control(self, b: Balancer) -> None:
        if self.speaker is not Speaker.FRR:
            return
        b.control = FrrInstance(b.host, b.dir / f"{b.name}-bgpd")
        b.control.start("bgpd", ecmp_conf.control_bgpd_conf(self.plan, b.name, b.address), "-Z", "-p", "0")
        self._save()

    # -- the state file ----------------------------------------------------------------------

    def _save(self) -> None:
        record = self._record
        if record is None or self._closed:
            return
        record.notes = list(self.notes)
        record.hosts = {role: {"namespace": h.netns.name, **self._interfaces(role)} for role, h in self.hosts.items()}
        record.routers = {name: b.record() for name, b in self.balancers.items()}
        procs: dict[str, ProcessRecord] = {}
        for name, b in self.balancers.items():
            if b.pid is not None:
                procs[name] = ProcessRecord(b.netns.name, b.pid, str(b.conf_path))
            if b.control is not None:
                procs.update(_frr_records(f"frr {name}", b.control))
        if self.upstream_frr is not None:
            procs.update(_frr_records("frr upstream", self.upstream_frr))
        for name, nginx in self.nginx.items():
            if nginx.running():
                procs[f"nginx {name}"] = ProcessRecord(nginx.host.netns.name, nginx.pid, str(nginx.conf_path))
        record.processes = procs
        record.save(self.state_path)

    def _interfaces(self, role: str) -> dict[str, str]:
        host = self.hosts[role]
        entry = {host.ifname: str(host.ipv4)}
        if role == "up" and self.client_lan is not None and "up" in self.client_lan.hosts:
            entry["eth1"] = str(self.client_lan.hosts["up"].ipv4)
        return entry

    # -- tearing down ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the balancers, the upstream and nginx; delete every namespace, FRR's crash dirs, the state file
        (and an own workdir); safe to call twice."""
        if self._closed:
            return
        errors: list[BaseException] = []
        for b in self.balancers.values():
            try:
                self._stop_balancer(b)
            except (LabError, OSError, subprocess.TimeoutExpired) as exc:
                errors.append(exc)
        if self.upstream_frr is not None:
            try:
                self.upstream_frr.stop()
            except LabError as exc:
                errors.append(exc)
        stop_servers(self.nginx.values())
        self._closed = True
        for lan in (self.client_lan, self.tier):
            if lan is not None:
                try:
                    lan.close()
                except LabError as exc:
                    errors.append(exc)
        for name in reversed(self.namespaces):
            try:
                Netns(name).delete()
            except LabError as exc:
                errors.append(exc)
        _remove_crash_dirs([pid for b in self.balancers.values() for pid in b.killed_pids])
        _remove_crash_dirs(_frr_pids_in(self.workdir))
        if not errors:
            self.state_path.unlink(missing_ok=True)
            if self._own_dir:
                shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise errors[0]

    def _stop_balancer(self, b: Balancer) -> None:
        if b.proc is not None and b.proc.poll() is None:
            b.proc.send_signal(signal.SIGTERM)
            try:
                b.proc.wait(STOP_TIMEOUT_S * self.timeout_scale)
            except subprocess.TimeoutExpired:
                _kill_group(b.proc.pid)
                raise LabError(f"pykeepalived on {b.name} ignored SIGTERM; killed it") from None
        if b.control is not None:
            b.control.stop()

    def _close_after_failure(self) -> None:
        try:
            self.close()
        except (LabError, OSError) as exc:
            print(f"pykeepalived lab: cleaning up after a failed start: {exc}", file=sys.stderr)

    def __enter__(self) -> Self:
        return self.up()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _remove_crash_dirs(pids: list[int]) -> None:
    """FRR's /var/tmp/frr/<daemon>.<pid>/ of dead daemons (kept by a daemon that did not exit cleanly)."""
    for pid in pids:
        if not pid_alive(pid):
            for path in FRR_TMP.glob(f"*.{pid}"):
                shutil.rmtree(path, ignore_errors=True)


def _frr_pids_in(directory: Path) -> list[int]:
    """The pids in every FRR pid file under the lab's directory (the upstream's, the control speakers', and the
    bgpd each pykeepalived runs in its $TMPDIR there): FRR leaves them behind when killed, with its crash dir."""
    pids = []
    for name in ("zebra", "bgpd", "bfdd"):
        for path in directory.glob(f"**/{name}.pid"):
            try:
                pids.append(int(path.read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                continue
    return pids


def _frr_records(prefix: str, frr: FrrInstance) -> dict[str, ProcessRecord]:
    out = {}
    for daemon, pid in frr.pids():
        if pid_alive(pid):
            out[f"{prefix} {daemon}"] = ProcessRecord(frr.host.netns.name, pid, str(frr.conf_path(daemon)))
    return out


def destroy_tier(directory: Path) -> LabRecord | None:
    """`lab down` for an ECMP lab: FRR daemons get SIGTERM first (they remove their crash dirs on a clean exit),
    then the LVS lab's teardown (balancers SIGTERM, the rest killed, namespaces deleted), then the crash dirs of
    any FRR daemon that had to be killed."""
    path = state_path(directory)
    try:
        record = LabRecord.load(path)
    except FileNotFoundError:
        return None
    frr = [p for name, p in record.processes.items() if name.startswith("frr ") and owned(p)]
    for proc in frr:
        signal_pid(proc.pid, signal.SIGTERM)
    wait_pids_gone([p.pid for p in frr], 5.0)
    destroy(directory)
    _remove_crash_dirs([p.pid for name, p in record.processes.items() if name.startswith("frr ")])
    _remove_crash_dirs(_frr_pids_in(directory))
    return record


def tier_status(record: LabRecord) -> dict[str, Any]:
    """`lab status --json` of an ECMP lab: the upstream's paths, each balancer's process, checker and counters."""
    up = record.hosts.get("up", {}).get("namespace", "")
    paths: list[str] = []
    if up and Netns(up).exists():
        for route in Netns(up).ip_json("route", "show", f"{record.vips[0]}/32"):
            paths += [str(nh["gateway"]) for nh in route.get("nexthops", []) if "gateway" in nh]
            if "gateway" in route:
                paths.append(str(route["gateway"]))
    balancers: dict[str, Any] = {}
    for name, router in record.routers.items():
        proc = record.processes.get(name)
        running = proc is not None and owned(proc)
        ns = Netns(router.namespace)
        entry: dict[str, Any] = {"namespace": router.namespace, "pykeepalived_running": running,
                                 "pid": proc.pid if proc is not None and running else None,
                                 "address": record.hosts.get(name, {}).get("eth0", ""), "log": router.log,
                                 "status_file": router.status_file}
        try:
            status = json.loads(Path(router.status_file).read_text())
            entry["real_servers_alive"] = sum(1 for svc in status["services"] for rs in svc["real_servers"]
                                              if rs["alive"])
            bgp = status.get("bgp")
            entry["announced"] = list(bgp.get("announced", [])) if isinstance(bgp, dict) else None
        except (OSError, ValueError, KeyError, TypeError):
            entry["real_servers_alive"] = entry["announced"] = None
        if ns.exists():
            entry["syns"] = _counter(ns, ecmp_conf.SYN_COUNTER)
        balancers[name] = entry
    return {"name": record.name, "kind": record.kind, "phase": record.phase, "dir": record.dir,
            "vip": record.vips[0] if record.vips else None, "upstream_namespace": up,
            "upstream_paths": sorted(paths, key=IPv4Address), "balancers": balancers, "hosts": record.hosts,
            "notes": record.notes}
