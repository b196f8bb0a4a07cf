"""The Red Hat guide's LVS load balancer, built in network namespaces with pykeepalived on both routers.

One topology for the three forwarding methods (`LabKind`), with the guide's
addresses (and /work/shared/reference/lab-facts.md's):

- public LAN 203.0.113.0/24: the client `c` (.100), router1 eth0 (.2),
  router2 eth0 (.3), the VIP 203.0.113.10 (`virtual_server 203.0.113.10 80`)
  and a second VIP 203.0.113.11 for the firewall-mark service (ports 80 and
  443 marked 80 by an nftables table in each router, as the guide's mangle
  rule does), both held by the VRRP master;
- private LAN 10.11.12.0/24: router1 eth1 (.8), router2 eth1 (.9), real
  servers rs1..rs3 (.1-.3) running nginx on 80 and 443 (a self-signed
  certificate made by the lab); for NAT the private VIP 10.11.12.10 is the
  real servers' default route;
- DR and TUN: the real servers hold the public VIPs themselves (on `lo`, or
  `tunl0` where the kernel has IPIP) and answer the client through a
  separate gateway `gw` (.254 on both LANs), never through a router that
  holds the VIP.

`LvsLab` builds it, writes both routers' keepalived.conf, starts pykeepalived
in each router and waits until the master holds the VIPs and both checkers
see every real server. Everything it makes is listed in a JSON state file
(`lab.json` in the lab's directory) from the moment the first namespace
exists, so that `destroy()` (`pykeepalived lab down`) removes a lab from
another process, even one whose `up()` crashed half-way.
"""

from __future__ import annotations

import enum
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from .netns import LabError, Netns, pid_alive, signal_pid, wait_pids_gone
from .peers import wait_until
from .servers import NginxServer, self_signed, stop_servers
from .topology import Host, Lan, unique_prefix


class LabKind(enum.Enum):
    """The forwarding method: keepalived's `lb_kind`."""

    NAT = "nat"
    DR = "dr"
    TUN = "tun"


PUBLIC_NET = "203.0.113.0/24"
PRIVATE_NET = "10.11.12.0/24"
PUBLIC_NET6 = "2001:db8:203::/64"  # the Lan gives every host IPv6 too; one /64 per segment
PRIVATE_NET6 = "2001:db8:10::/64"
VIP = IPv4Address("203.0.113.10")
FWMARK_VIP = IPv4Address("203.0.113.11")
PRIVATE_VIP = IPv4Address("10.11.12.10")
GATEWAY_PRIVATE = IPv4Address("10.11.12.254")  # DR/TUN real servers' default route
CLIENT_HOST = 100
GATEWAY_HOST = 254
REAL_SERVER_HOSTS = (1, 2, 3)
HTTP_PORT = 80
HTTPS_PORT = 443
FWMARK = 80
MARK_TABLE = "pklab_marks"
AUTH_PASS = "passw123"
PUBLIC_VRID = 50
PRIVATE_VRID = 51
PUBLIC_INSTANCE = "RH_EXT"
PRIVATE_INSTANCE = "RH_INT"
SYNC_GROUP = "VG1"
DEFAULT_NAME = "pklab"
DEFAULT_ROOT = Path("/run/pykeepalived/lab")
STATE_FILE_NAME = "lab.json"
START_TIMEOUT_S = 20.0  # routers started -> the lab ready
ROUTER_START_TIMEOUT_S = 15.0  # one pykeepalived started -> its VRRP instances in a state
STOP_TIMEOUT_S = 12.0  # the supervisor gives its children 10 s
PHASE_BUILDING = "building"
# nginx closes a kept-alive connection after 1000 requests (its default); wrk at 20k requests/s would then reopen
# each connection every few tenths of a second, so a "kept-alive" run would test new connections too
KEEPALIVE_REQUESTS = "    keepalive_requests 10000000;"
PHASE_UP = "up"


@dataclass(frozen=True)
class RouterSpec:
    """One LVS router of the guide: its host numbers on both LANs and its VRRP role."""

    name: str
    public_host: int
    private_host: int
    state: str
    priority: int


ROUTER_SPECS = (RouterSpec("router1", 2, 8, "MASTER", 150), RouterSpec("router2", 3, 9, "BACKUP", 100))
# router_args for a lab whose routers serve the API with its runtime routes, each on <dir>/<router>.api.sock
# (LvsLab.ctl talks to it)
API_ROUTER_ARGS = ("--api", "unix:{dir}/{name}.api.sock", "--api-runtime")


def default_dir(name: str) -> Path:
    """Where `pykeepalived lab up --name NAME` keeps configs, logs and the state file."""
    return DEFAULT_ROOT / name


def lab_vips(kind: LabKind) -> list[IPv4Address]:
    """Every VIP the VRRP master of a lab of this kind holds."""
    return [VIP, FWMARK_VIP, PRIVATE_VIP] if kind is LabKind.NAT else [VIP, FWMARK_VIP]


# ----------------------------------------------------------------------------------------------
# keepalived.conf


CHECK_TIMING = ("connect_timeout 1", "retry 1", "delay_before_retry 1")


def _block(head: str, body: Sequence[str], indent: int) -> list[str]:
    pad = " " * indent
    return [f"{pad}{head} {{", *[f"{pad}    {line}" if line else "" for line in body], f"{pad}}}"]


def _url_check(kind: str, connect_port: int | None, connect_timeout_s: int = 1) -> list[str]:
    body = [*_block("url", ["path /whoami", "status_code 200"], 0)]
    if connect_port is not None:
        body.append(f"connect_port {connect_port}")
    timing = [f"connect_timeout {connect_timeout_s}" if line.startswith("connect_timeout ") else line
              for line in CHECK_TIMING]
    return _block(kind, [*body, *timing], 0)


def _instance(name: str, ifname: str, vrid: int, router: RouterSpec, vips: Sequence[IPv4Address]) -> list[str]:
    return _block(f"vrrp_instance {name}", [
        f"state {router.state}",
        f"interface {ifname}",
        f"virtual_router_id {vrid}",
        f"priority {router.priority}",
        "advert_int 1",
        *_block("authentication", ["auth_type PASS", f"auth_pass {AUTH_PASS}"], 0),
        *_block("virtual_ipaddress", [f"{vip}/32 dev {ifname}" for vip in vips], 0),
    ], 0)


def _vrrp(kind: LabKind, router: RouterSpec) -> list[str]:
    public = _instance(PUBLIC_INSTANCE, "eth0", PUBLIC_VRID, router, [VIP, FWMARK_VIP])
    if kind is not LabKind.NAT:
        return public
    group = _block(f"vrrp_sync_group {SYNC_GROUP}", _block("group", [PUBLIC_INSTANCE, PRIVATE_INSTANCE], 0), 0)
    private = _instance(PRIVATE_INSTANCE, "eth1", PRIVATE_VRID, router, [PRIVATE_VIP])
    return [*group, "", *public, "", *private]


def _plain_service(kind: LabKind, real_servers: Sequence[IPv4Address]) -> list[str]:
    body = ["delay_loop 1", "lb_algo rr", f"lb_kind {kind.name}", "protocol TCP"]
    for rs in real_servers:
        body += ["", *_block(f"real_server {rs} {HTTP_PORT}", _url_check("HTTP_GET", None), 0)]
    return _block(f"virtual_server {VIP} {HTTP_PORT}", body, 0)


def _fwmark_service(kind: LabKind, real_servers: Sequence[IPv4Address], tls_connect_timeout_s: int) -> list[str]:
    # keepalived ignores (and we refuse) `protocol` in a fwmark service; the real servers have
    # no port: the packet keeps the port the client asked for.
    body = ["delay_loop 1", "lb_algo rr", f"lb_kind {kind.name}", "persistence_timeout 30"]
    for rs in real_servers:
        checks = [*_url_check("HTTP_GET", HTTP_PORT), *_url_check("SSL_GET", HTTPS_PORT, tls_connect_timeout_s)]
        body += ["", *_block(f"real_server {rs}", checks, 0)]
    return [
        f"! HTTP and HTTPS of {FWMARK_VIP} as one service: nftables table {MARK_TABLE} in each router",
        f"! marks tcp ports {HTTP_PORT} and {HTTPS_PORT} to {FWMARK_VIP} with {FWMARK}.",
        *_block(f"virtual_server fwmark {FWMARK}", body, 0),
    ]


def render_router_conf(kind: LabKind, router: RouterSpec, real_servers: Sequence[IPv4Address], *,
                       sync_daemon: bool = False, tls_connect_timeout_s: int = 1) -> str:
    """keepalived.conf for one router of the lab (valid for `keepalived -t` and `pykeepalived -t`).

    `sync_daemon` adds connection sync between the routers (IPVS's sync
    daemon, or conntrackd on the nftables data plane), over the private
    network for NAT (following RH_INT), the public one otherwise.
    `tls_connect_timeout_s` is the SSL_GET checks' connect_timeout, which
    covers the TLS handshake: 1 like the others, more where the machine is
    many times slower (LvsLab's timeout_scale; the qemu guest of tests/vm,
    where handshakes beside the labs took over a second and every server
    of the fwmark service was removed at once).
    """
    defs = [f"router_id {router.name}"]
    if sync_daemon:
        defs.append(f"lvs_sync_daemon eth1 {PRIVATE_INSTANCE}" if kind is LabKind.NAT
                    else f"lvs_sync_daemon eth0 {PUBLIC_INSTANCE}")
    lines = [
        f"! pykeepalived lab ({kind.name}): {router.name}, {router.state} at priority {router.priority}",
        *_block("global_defs", defs, 0),
        "",
        *_vrrp(kind, router),
        "",
        *_plain_service(kind, real_servers),
        "",
        *_fwmark_service(kind, real_servers, tls_connect_timeout_s),
    ]
    return "\n".join(lines) + "\n"


def render_marks() -> str:
    """The nftables table that gives HTTP and HTTPS to the fwmark VIP the guide's mark (its mangle rule)."""
    return (
        f"table ip {MARK_TABLE} {{\n"
        "    chain prerouting {\n"
        "        type filter hook prerouting priority mangle; policy accept;\n"
        f"        ip daddr {FWMARK_VIP} tcp dport {{ {HTTP_PORT}, {HTTPS_PORT} }} meta mark set {FWMARK}\n"
        "    }\n"
        "}\n"
    )


# ----------------------------------------------------------------------------------------------
# The state file


@dataclass
class ProcessRecord:
    """A process of the lab: `marker` (its config path) must be in its command line before we signal it."""

    namespace: str
    pid: int
    marker: str


@dataclass
class RouterRecord:
    namespace: str
    conf: str
    log: str
    status_file: str
    pid_files: list[str]


@dataclass
class LabRecord:
    """What `lab.json` holds: enough for `lab status` and `lab down` in another process.

    `namespaces` lists every namespace before it is created, so a crash between
    `ip netns add` and the next save still leaves nothing unlisted (the names
    carry a random part, so a listed name is never someone else's).
    """

    name: str
    kind: str
    prefix: str
    dir: str
    phase: str = PHASE_BUILDING
    namespaces: list[str] = field(default_factory=list)
    hosts: dict[str, dict[str, str]] = field(default_factory=dict)  # role -> {"namespace": ..., "eth0": "a/n"}
    routers: dict[str, RouterRecord] = field(default_factory=dict)
    processes: dict[str, ProcessRecord] = field(default_factory=dict)  # "router1", "nginx rs1"
    vips: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(asdict(self), indent=1) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> LabRecord:
        try:
            data = json.loads(path.read_text())
            return cls(
                name=str(data["name"]), kind=str(data["kind"]), prefix=str(data["prefix"]), dir=str(data["dir"]),
                phase=str(data["phase"]), namespaces=[str(n) for n in data["namespaces"]],
                hosts={str(k): {str(a): str(b) for a, b in v.items()} for k, v in data["hosts"].items()},
                routers={str(k): RouterRecord(**v) for k, v in data["routers"].items()},
                processes={str(k): ProcessRecord(**v) for k, v in data["processes"].items()},
                vips=[str(v) for v in data["vips"]], notes=[str(n) for n in data["notes"]],
            )
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LabError(f"{path} is not a lab state file: {type(exc).__name__}: {exc}") from exc


def state_path(directory: Path) -> Path:
    return directory / STATE_FILE_NAME


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def owned(proc: ProcessRecord) -> bool:
    """The recorded process still runs and is still ours (not a recycled pid)."""
    return pid_alive(proc.pid) and proc.marker in _cmdline(proc.pid)


def _addresses(ns: Netns) -> set[IPv4Address]:
    found: set[IPv4Address] = set()
    for link in ns.ip_json("-4", "addr", "show"):
        for info in link.get("addr_info", []):
            if info.get("local"):
                found.add(IPv4Address(info["local"]))
    return found


def record_is_alive(record: LabRecord) -> bool:
    return any(Netns(n).exists() for n in record.namespaces) or any(owned(p) for p in record.processes.values())


def router_holdings(record: LabRecord) -> dict[str, list[str]]:
    """Router name -> the lab VIPs on its interfaces right now."""
    vips = {IPv4Address(v) for v in record.vips}
    held: dict[str, list[str]] = {}
    for name, router in record.routers.items():
        ns = Netns(router.namespace)
        present = _addresses(ns) if ns.exists() else set()
        held[name] = [str(v) for v in sorted(vips & present)]
    return held


def destroy(directory: Path) -> LabRecord | None:
    """Stop every process and delete every namespace of the lab in `directory`, then its state file.

    Routers get SIGTERM first (a clean stop: logs say so, pid files go);
    whatever still runs in a namespace is killed by deleting it. Returns the
    record (None if there was no state file). Raises LabError if a namespace
    survives; the state file then stays, so that `down` can be run again.
    """
    path = state_path(directory)
    try:
        record = LabRecord.load(path)
    except FileNotFoundError:
        return None
    routers = [p for name, p in record.processes.items() if name in record.routers and owned(p)]
    for proc in routers:
        signal_pid(proc.pid, signal.SIGTERM)
    wait_pids_gone([p.pid for p in routers], STOP_TIMEOUT_S)
    for proc in record.processes.values():
        if owned(proc):
            _kill_group(proc.pid)
    problems: list[str] = []
    for name in reversed(record.namespaces):
        try:
            Netns(name).delete()
        except LabError as exc:
            problems.append(str(exc))
    if problems:
        raise LabError("; ".join(problems))
    for router in record.routers.values():
        for pid_file in router.pid_files:
            Path(pid_file).unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    return record


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_pids_gone([pgid], 5.0)


# ----------------------------------------------------------------------------------------------
# Hosts of the running lab


_ENTERING = re.compile(r"\((?P<name>[^)]+)\) Entering (?P<state>BACKUP|MASTER|FAULT) STATE")


class PykeepalivedFiles:
    """A lab host running pykeepalived: its files in `dir`, named after it, and the process.

    Shared by the guide's routers (`Router`) and the ECMP tier's balancers
    (ecmp_lab.Balancer): every pid file is given (-p, -r, -c), since their
    defaults (/run/keepalived_*.pid) would be shared by every host on the
    machine, and the checker's status file too.
    """

    dir: Path
    proc: subprocess.Popen[bytes] | None

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def netns(self) -> Netns:
        raise NotImplementedError

    @property
    def conf_path(self) -> Path:
        return self.dir / f"{self.name}.conf"

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.name}.log"

    @property
    def status_file(self) -> Path:
        return self.dir / f"{self.name}.checker.json"

    @property
    def pid_files(self) -> list[Path]:
        return [self.dir / f"{self.name}{suffix}.pid" for suffix in ("", "_vrrp", "_checkers")]

    def base_argv(self) -> list[str]:
        pid, vrrp_pid, checkers_pid = self.pid_files
        return [sys.executable, "-m", "pykeepalived", "-n", "-l", "-G", "-f", str(self.conf_path),
                "-p", str(pid), "-r", str(vrrp_pid), "-c", str(checkers_pid), "--status-file", str(self.status_file)]

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running() and self.proc is not None else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def checker_status(self) -> dict[str, Any]:
        """The checker's status file (what `pykeepalived status --json` prints)."""
        data: dict[str, Any] = json.loads(self.status_file.read_text())
        return data

    def record(self) -> RouterRecord:
        return RouterRecord(self.netns.name, str(self.conf_path), str(self.log_path), str(self.status_file),
                            [str(p) for p in self.pid_files])


@dataclass
class Router(PykeepalivedFiles):
    """One LVS router: a namespace with eth0 on the public LAN and eth1 on the private one, running pykeepalived."""

    spec: RouterSpec
    public: Host
    private: Host
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    dataplane: str | None = None  # --dataplane; None: pykeepalived's default
    env: dict[str, str] | None = None  # pykeepalived's environment at the next start; None: ours
    extra_args: tuple[str, ...] = ()  # more pykeepalived flags; "{name}" and "{dir}" are the router's (e.g. --api)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def netns(self) -> Netns:
        return self.public.netns

    def argv(self) -> list[str]:
        return [*self.base_argv(), *(["--dataplane", self.dataplane] if self.dataplane else []),
                *(a.format(name=self.name, dir=self.dir) for a in self.extra_args)]

    def addresses(self) -> set[IPv4Address]:
        return _addresses(self.netns)


@dataclass
class RealServer:
    """A real server: nginx answering /whoami with its name on port 80 and (TLS) 443."""

    name: str
    host: Host
    nginx: NginxServer

    @property
    def address(self) -> IPv4Address:
        return self.host.ipv4.ip


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def http_get(ns: Netns, url: str, timeout_s: float = 2.0) -> str:
    """GET `url` with curl from inside `ns` (TLS not verified); the body, or LabError (no answer, status >= 400)."""
    argv = ["curl", "-sS", "-k", "--fail-with-body", "--max-time", f"{timeout_s:g}", url]
    proc = ns.run(argv, check=False, timeout_s=timeout_s + 5.0)
    if proc.returncode != 0:
        why = proc.stderr.strip() or f"curl exit {proc.returncode}"
        raise LabError(f"GET {url} from {ns.name}: {why} {proc.stdout.strip()[:200]}".rstrip())
    return proc.stdout


def _sysctls(ns: Netns, settings: dict[str, str]) -> None:
    ns.run(["sysctl", "-q", "-w", *[f"{k}={v}" for k, v in settings.items()]])


def _no_rp_filter(*ifnames: str) -> dict[str, str]:
    return {f"net.ipv4.conf.{i}.rp_filter": "0" for i in ("all", "default", *ifnames)}


# ----------------------------------------------------------------------------------------------
# The lab


def refuse_if_running(state_path: Path, workdir: Path) -> None:
    """A lab of this name that is still up is an error; the record of one that is gone is removed."""
    try:
        old = LabRecord.load(state_path)
    except FileNotFoundError:
        return
    if record_is_alive(old):
        where = "" if workdir == default_dir(old.name) else f" --dir {workdir}"
        raise LabError(f"lab {old.name!r} ({old.kind}) is already up in {workdir} (namespaces "
                       f"{old.prefix}-*); take it down first: pykeepalived lab down --name {old.name}{where}")
    state_path.unlink(missing_ok=True)  # a stale file from a lab that is gone


class LvsLab:
    """The guide's LVS topology for one `LabKind`, with pykeepalived on both routers.

    `up()` builds and starts everything and returns once router1 (MASTER,
    priority 150) holds the VIPs and both routers' checkers see every real
    server alive; `close()` removes everything (also after a failed `up()`).
    As a context manager it does both. `workdir` gets the configs, logs,
    certificates and `lab.json`; without one a temporary directory is used
    and removed by `close()`. `timeout_scale` multiplies the lab's own waits
    (start, readiness, stop): a machine that runs Python many times slower
    (the qemu guest of tests/vm) needs longer ones, this one must not get them.
    """

    rs_listen: tuple[str, ...] = ("0.0.0.0",)  # the real servers' nginx addresses (a subclass adds "::")

    def __init__(self, kind: LabKind | str, *, prefix: str | None = None, name: str = DEFAULT_NAME,
                 workdir: Path | str | None = None, timeout_scale: float = 1.0, sync_daemon: bool = False,
                 dataplane: str | None = None, router_args: Sequence[str] = ()) -> None:
        try:
            self.kind = kind if isinstance(kind, LabKind) else LabKind(kind.lower())
        except ValueError as exc:
            raise LabError(f"unknown lab kind {kind!r}: choose nat, dr or tun") from exc
        if timeout_scale <= 0:
            raise LabError(f"timeout_scale must be positive, not {timeout_scale}")
        self.name = name
        self.prefix = prefix or unique_prefix(name)
        self.timeout_scale = timeout_scale
        # lvs_sync_daemon in both routers' configs: IPVS's sync daemon, or conntrackd on the nftables data plane
        # (ctsync/); the routers then run with net.netfilter.nf_conntrack_tcp_loose=0
        self.sync_daemon = sync_daemon
        self.dataplane = dataplane  # the routers' --dataplane; None: their default (auto)
        self.router_args = tuple(router_args)  # more flags for both routers' pykeepalived (Router.extra_args)
        self._own_dir = workdir is None  # made by up(), removed by close()
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.gettempdir()) / f"lvslab-{self.prefix}"
        self.state_path = state_path(self.workdir)
        self.vip, self.fwmark_vip, self.private_vip = VIP, FWMARK_VIP, PRIVATE_VIP
        self.vips = lab_vips(self.kind)
        self.public: Lan | None = None
        self.private: Lan | None = None
        self.hosts: dict[str, Host] = {}  # role -> its first interface (eth0)
        self.routers: dict[str, Router] = {}
        self.real_servers: list[RealServer] = []
        # where DR/TUN real servers hold the VIPs (None for NAT); TUN falls back to lo without IPIP
        self.rs_vip_device: str | None = {LabKind.DR: "lo", LabKind.TUN: "tunl0"}.get(self.kind)
        self.notes: list[str] = []
        self.services_count = 2  # virtual servers in the configs (a subclass that adds some says so)
        self._record: LabRecord | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"LvsLab({self.kind.value!r}, prefix={self.prefix!r}, workdir={str(self.workdir)!r})"

    @property
    def _stop_timeout_s(self) -> float:
        return STOP_TIMEOUT_S * self.timeout_scale

    # -- public helpers ----------------------------------------------------------------------

    @property
    def namespaces(self) -> list[str]:
        """Every namespace of the lab, in the order they were made."""
        return list(self._record.namespaces) if self._record is not None else []

    @property
    def client(self) -> Host:
        return self.hosts["c"]

    @property
    def gateway(self) -> Host | None:
        return self.hosts.get("gw")

    def real_server(self, which: int | str) -> RealServer:
        """`which` is an index into `real_servers` (0 is rs1) or a name ("rs1")."""
        if isinstance(which, str):
            for rs in self.real_servers:
                if rs.name == which:
                    return rs
            raise LabError(f"no real server {which!r}")
        return self.real_servers[which]

    def router(self, name: str) -> Router:
        try:
            return self.routers[name]
        except KeyError:
            raise LabError(f"no router {name!r} (have {', '.join(self.routers)})") from None

    def ctl(self, router: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`pykeepalived ctl ARGS` against `router`'s API socket (a lab started with API_ROUTER_ARGS)."""
        sock = self.router(router).dir / f"{router}.api.sock"
        return subprocess.run([sys.executable, "-m", "pykeepalived", "ctl", "--api", f"unix:{sock}", *args],
                              capture_output=True, text=True, timeout=30, check=False)

    def client_get(self, url: str, timeout_s: float = 2.0) -> str:
        """GET `url` from the client (e.g. "http://203.0.113.10/whoami"); the body."""
        return http_get(self.client.netns, url, timeout_s)

    def vip_holders(self) -> list[str]:
        """Routers that hold the public VIP right now."""
        return [name for name, r in self.routers.items() if self.vip in r.addresses()]

    def which_router_is_master(self) -> str | None:
        """The router holding the public VIP; None while none (or, in a split brain, both) do."""
        holders = self.vip_holders()
        return holders[0] if len(holders) == 1 else None

    def wait_for_master(self, timeout_s: float = 10.0, name: str | None = None) -> str:
        """Wait until exactly one router (`name`, if given) holds the public VIP; its name."""
        seen: list[str] = []

        def settled() -> bool:
            master = self.which_router_is_master()
            if master is None or (name is not None and master != name):
                return False
            seen.append(master)  # the answer is what was seen: a second look may land in a transition
            return True

        wait_until(settled, timeout_s, what=f"{name or 'one router'} holding {self.vip}")
        return seen[-1]

    def kill_router(self, name: str) -> None:
        """Crash a router: SIGKILL pykeepalived (no priority-0 advert), drop its VIPs and take its links down.

        A dead machine neither answers for the VIPs nor forwards: without the
        links going down its forwarding rules (which outlive the daemon) would
        keep serving clients whose ARP caches still point at it.
        """
        router = self.router(name)
        if router.proc is not None:
            _kill_group(router.proc.pid)
            router.proc.wait(self._stop_timeout_s)
        present = router.addresses()
        for vip in self.vips:
            if vip in present:
                dev = "eth1" if vip == self.private_vip else "eth0"
                router.netns.ip("addr", "del", f"{vip}/32", "dev", dev)
        for host in (router.public, router.private):
            host.netns.ip("link", "set", host.ifname, "down")
        self._save()

    def kill_daemon_parent(self, name: str) -> int:
        """SIGKILL only the router's pykeepalived parent process (its children are left to fend for themselves).

        Returns its pid.
        """
        router = self.router(name)
        if router.proc is None or router.proc.poll() is not None:
            raise LabError(f"pykeepalived on {name} is not running")
        pid = router.proc.pid
        os.kill(pid, signal.SIGKILL)
        router.proc.wait(self._stop_timeout_s)
        self._save()
        return pid

    def router_processes(self, name: str) -> list[int]:
        """Live (not zombie) processes whose command line names the router's config: the daemon and all it started."""
        marker = str(self.router(name).conf_path)
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or marker not in _cmdline(int(entry.name)).split(" "):
                continue
            try:
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
            except (OSError, IndexError):
                continue
        return found

    def stop_router(self, name: str, *, interrupt: bool = False) -> None:
        """Stop a router cleanly (SIGTERM: it sends priority-0 adverts and removes its VIPs).

        `interrupt` sends SIGINT to its whole process group instead, as Ctrl-C
        at the terminal of a foreground daemon does (children included).
        """
        router = self.router(name)
        if router.proc is not None and router.proc.poll() is None:
            if interrupt:
                os.killpg(router.proc.pid, signal.SIGINT)
            else:
                router.proc.send_signal(signal.SIGTERM)
            try:
                router.proc.wait(self._stop_timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(router.proc.pid)
                router.proc.wait(self._stop_timeout_s)
                raise LabError(f"pykeepalived on {name} ignored SIGTERM for {self._stop_timeout_s:g} s; "
                               "killed it") from None
        self._save()

    def start_router(self, name: str, timeout_s: float | None = None, *, keep_pid_files: bool = False) -> None:
        """(Re)start pykeepalived on a router and wait until every VRRP instance has entered a state.

        `timeout_s` defaults to ROUTER_START_TIMEOUT_S times the lab's `timeout_scale`.
        `keep_pid_files` starts it over whatever pid files a killed daemon left,
        as an init system would (by default they are removed first).
        """
        timeout_s = ROUTER_START_TIMEOUT_S * self.timeout_scale if timeout_s is None else timeout_s
        router = self.router(name)
        if router.running():
            raise LabError(f"pykeepalived on {name} is already running")
        for pid_file in [] if keep_pid_files else router.pid_files:  # a crashed daemon's files
            pid_file.unlink(missing_ok=True)
        for host in (router.public, router.private):  # kill_router took them down
            host.netns.ip("link", "set", host.ifname, "up")
        offset = router.log_path.stat().st_size if router.log_path.exists() else 0
        with open(router.log_path, "ab") as log:
            router.proc = router.netns.popen(router.argv(), stdout=log, stderr=subprocess.STDOUT, env=router.env)
        self._save()
        instances = {PUBLIC_INSTANCE, PRIVATE_INSTANCE} if self.kind is LabKind.NAT else {PUBLIC_INSTANCE}

        def entered() -> bool:
            if not router.running():
                return True
            text = router.log()[offset:]
            return instances <= {m.group("name") for m in _ENTERING.finditer(text)}

        wait_until(entered, timeout_s, what=f"pykeepalived on {name} entering a VRRP state:\n{_tail(router.log())}")
        if not router.running():
            code = router.proc.returncode
            raise LabError(f"pykeepalived on {name} exited with {code} during start:\n{_tail(router.log())}")

    def stop_real_server(self, which: int | str) -> None:
        """Kill a real server's nginx (connections refused: the checkers take it out)."""
        self.real_server(which).nginx.kill()
        self._save()

    def start_real_server(self, which: int | str) -> None:
        self.real_server(which).nginx.start()
        self._save()

    def status_text(self, router: str) -> str:
        """`pykeepalived status` for that router's checker, as a person would run it."""
        argv = [sys.executable, "-m", "pykeepalived", "status", "--status-file", str(self.router(router).status_file)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10 * self.timeout_scale, check=False)
        return proc.stdout + proc.stderr

    def alive_counts(self, router: str) -> dict[str, int]:
        """Service name -> how many of its real servers the router's checker holds alive."""
        status = self.router(router).checker_status()
        return {svc["name"]: sum(1 for rs in svc["real_servers"] if rs["alive"]) for svc in status["services"]}

    # -- building ----------------------------------------------------------------------------

    def up(self) -> Self:
        """Build the lab and start everything; on any failure (or Ctrl-C) remove what was made, then raise."""
        if self._record is not None:
            raise LabError(f"{self!r} is already up (or was closed)")
        self._refuse_if_running()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._record = LabRecord(self.name, self.kind.value, self.prefix, str(self.workdir),
                                 vips=[str(v) for v in self.vips])
        try:
            self._save()
            self._build_networks()
            self._configure_hosts()
            self._start_real_servers()
            self._configure_routers()
            for spec in ROUTER_SPECS:  # the MASTER first: the backup then hears it at once and never takes over
                self.start_router(spec.name)
            self._wait_ready()
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

    def _lan(self, prefix: str, ipv4_net: str, ipv6_net: str) -> Lan:
        self._plan(f"{prefix}-sw")
        return Lan(prefix, ipv4_net=ipv4_net, ipv6_net=ipv6_net)

    def _add_host(self, lan: Lan, role: str, number: int) -> Host:
        self._plan(f"{lan.prefix}-{role}")
        host = lan.add_host(role, number)
        self.hosts[role] = host
        return host

    def _build_networks(self) -> None:
        self.public = public = self._lan(self.prefix, PUBLIC_NET, PUBLIC_NET6)
        self.private = private = self._lan(f"{self.prefix}-priv", PRIVATE_NET, PRIVATE_NET6)
        self._add_host(public, "c", CLIENT_HOST)
        for spec in ROUTER_SPECS:
            eth0 = self._add_host(public, spec.name, spec.public_host)
            eth1 = private.attach(eth0, "eth1", spec.private_host)
            self.routers[spec.name] = Router(spec, eth0, eth1, self.workdir, dataplane=self.dataplane,
                                           extra_args=self.router_args)
        if self.kind is not LabKind.NAT:
            gw = self._add_host(public, "gw", GATEWAY_HOST)
            private.attach(gw, "eth1", GATEWAY_HOST)
        for i, number in enumerate(REAL_SERVER_HOSTS, 1):
            self._add_host(private, f"rs{i}", number)
        self._save()

    def _configure_hosts(self) -> None:
        # with sync, no mid-stream pickup: a flow the backup takes over must come from the synced entry, not be
        # adopted as new and sent to whichever real server rr picks (docs/conntrack-sync.md)
        loose = {"net.netfilter.nf_conntrack_tcp_loose": "0"} if self.sync_daemon else {}
        for router in self.routers.values():
            _sysctls(router.netns, {"net.ipv4.ip_forward": "1", **_no_rp_filter("eth0", "eth1"), **loose})
        gw = self.gateway
        if gw is not None:
            _sysctls(gw.netns, {"net.ipv4.ip_forward": "1", **_no_rp_filter("eth0", "eth1")})
        for i in range(1, len(REAL_SERVER_HOSTS) + 1):
            self._configure_real_server(self.hosts[f"rs{i}"])

    def _configure_real_server(self, rs: Host) -> None:
        ns = rs.netns
        if self.kind is LabKind.NAT:
            ns.ip("route", "add", "default", "via", str(PRIVATE_VIP))
            return
        # DR/TUN: the VIPs are local (so the server accepts packets for them) but never announced
        arp = {f"net.ipv4.conf.{i}.{k}": v for i in ("all", "eth0") for k, v in (("arp_ignore", "1"),
                                                                              ("arp_announce", "2"))}
        device = "lo" if self.kind is LabKind.DR else self._tunnel_device(ns)
        extra = _no_rp_filter("eth0", device) if self.kind is LabKind.TUN else {}
        _sysctls(ns, {**arp, **extra})
        for vip in (VIP, FWMARK_VIP):
            ns.ip("addr", "add", f"{vip}/32", "dev", device)
        ns.ip("route", "add", "default", "via", str(GATEWAY_PRIVATE))

    def _tunnel_device(self, ns: Netns) -> str:
        """tunl0 up in the real server (the IPIP fallback device); `lo` if this kernel has no IPIP."""
        for argv in (["link", "show", "tunl0"], ["link", "add", "tunl0", "type", "ipip"]):
            try:
                ns.ip(*argv)
            except LabError:
                continue
            ns.ip("link", "set", "tunl0", "up")
            return "tunl0"
        note = ("this kernel has no IPIP (tunl0 cannot be made): the real servers hold the VIPs on lo; "
                "IPIP-encapsulated packets would not be decapsulated")
        if note not in self.notes:
            self.notes.append(note)
        self.rs_vip_device = "lo"
        return "lo"

    def _start_real_servers(self) -> None:
        cert, key = self_signed(self.workdir / "tls", "lab", f"{self.name}.lab.example")
        for i in range(1, len(REAL_SERVER_HOSTS) + 1):
            host = self.hosts[f"rs{i}"]
            nginx = NginxServer(host, self.workdir / host.name, addresses=list(self.rs_listen), ports=[HTTP_PORT],
                                tls_ports=[HTTPS_PORT], cert=cert, key=key, name=host.name,
                                extra_http=KEEPALIVE_REQUESTS)
            self.real_servers.append(RealServer(host.name, host, nginx))
            nginx.start()
            self._save()

    def _configure_routers(self) -> None:
        addresses = [rs.address for rs in self.real_servers]
        if self.kind is LabKind.TUN and self.rs_vip_device != "tunl0" and self.dataplane is None:
            # Without IPIP no data plane can carry TUN: the checker's applies would fail for ever and
            # (rightly) put both routers' instances in FAULT. The lab still shows VRRP and the checkers.
            note = "without IPIP the routers keep the table only (--dataplane none): TUN traffic is not forwarded"
            if note not in self.notes:
                self.notes.append(note)
            for router in self.routers.values():
                router.dataplane = "none"
        for router in self.routers.values():
            router.netns.run(["nft", "-f", "-"], input=render_marks())
            router.conf_path.write_text(render_router_conf(
                self.kind, router.spec, addresses, sync_daemon=self.sync_daemon,
                tls_connect_timeout_s=max(1, math.ceil(self.timeout_scale))))
            for path in (router.log_path, router.status_file, *router.pid_files):
                path.unlink(missing_ok=True)
        # both routers' configs checked at once: each `-t` is a Python start, seconds under emulation (tests/vm)
        with ThreadPoolExecutor(max_workers=len(self.routers)) as pool:
            tests = [(router, pool.submit(router.netns.run, [sys.executable, "-m", "pykeepalived", "-t", "-f",
                                                             str(router.conf_path)], check=False, timeout_s=30.0))
                     for router in self.routers.values()]
        for router, future in tests:
            test = future.result()
            if test.returncode != 0:
                raise LabError(f"pykeepalived -t refuses {router.conf_path}:\n{_tail(test.stderr + test.stdout)}")

    def _ready(self) -> bool:
        for router in self.routers.values():
            if not router.running():
                code = router.proc.returncode if router.proc is not None else None
                raise LabError(f"pykeepalived on {router.name} exited with {code}:\n{_tail(router.log())}")
        master = self.routers[ROUTER_SPECS[0].name]
        if not set(self.vips) <= master.addresses():
            return False
        wanted = len(self.real_servers)
        for router in self.routers.values():
            try:
                counts = self.alive_counts(router.name)
            except (OSError, ValueError, KeyError, TypeError):
                return False
            if len(counts) != self.services_count or any(n != wanted for n in counts.values()):
                return False
        return True

    def is_ready(self) -> bool:
        """Whether the lab is as `up()` leaves it: every nginx and router running, router1 holding the VIPs,
        both routers' checkers seeing every real server alive. Asked once; never raises.

        Lets a caller reuse one lab for several tests (e.g. tests/netns/test_dataplane_lab.py) as long as
        each test leaves it this way, and build a new one when a test did not (a killed router...).
        """
        if self._record is None or self._closed or not all(rs.nginx.running() for rs in self.real_servers):
            return False
        try:
            return self._ready()
        except LabError:
            return False

    def _wait_ready(self) -> None:
        try:
            wait_until(self._ready, START_TIMEOUT_S * self.timeout_scale, interval_s=0.1, what="the lab to be ready")
        except LabError as exc:
            detail = "\n".join(f"--- {r.name} holds {sorted(map(str, set(self.vips) & r.addresses()))}\n"
                               f"{self.status_text(r.name)}\n{_tail(r.log(), 15)}" for r in self.routers.values())
            raise LabError(f"{exc}\n{detail}") from exc

    # -- the state file ----------------------------------------------------------------------

    def _save(self) -> None:
        record = self._record
        if record is None or self._closed:
            return
        record.notes = list(self.notes)
        record.hosts = {role: self._host_entry(role) for role in self.hosts}
        record.routers = {name: r.record() for name, r in self.routers.items()}
        procs: dict[str, ProcessRecord] = {}
        for name, r in self.routers.items():
            if r.pid is not None:
                procs[name] = ProcessRecord(r.netns.name, r.pid, str(r.conf_path))
        for rs in self.real_servers:
            if rs.nginx.running():
                procs[f"nginx {rs.name}"] = ProcessRecord(rs.host.netns.name, rs.nginx.pid, str(rs.nginx.conf_path))
        record.processes = procs
        record.save(self.state_path)

    def _host_entry(self, role: str) -> dict[str, str]:
        host = self.hosts[role]
        entry = {"namespace": host.netns.name, host.ifname: str(host.ipv4)}
        router = self.routers.get(role)
        if router is not None:
            entry[router.private.ifname] = str(router.private.ipv4)
        if role == "gw" and self.private is not None and role in self.private.hosts:
            entry["eth1"] = str(self.private.hosts[role].ipv4)
        return entry

    # -- tearing down ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the routers and nginx, delete every namespace, the state file (and an own workdir); safe twice."""
        if self._closed:
            return
        errors: list[BaseException] = []
        for name in list(self.routers):
            try:
                self.stop_router(name)
            except (LabError, OSError, subprocess.TimeoutExpired) as exc:
                errors.append(exc)
        stop_servers(rs.nginx for rs in self.real_servers)
        self._closed = True
        for lan in (self.private, self.public):
            if lan is not None:
                try:
                    lan.close()
                except LabError as exc:
                    errors.append(exc)
        for name in reversed(self._record.namespaces if self._record is not None else []):
            try:
                Netns(name).delete()
            except LabError as exc:
                errors.append(exc)
        if not errors:
            self.state_path.unlink(missing_ok=True)
            if self._own_dir:
                shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise errors[0]

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
