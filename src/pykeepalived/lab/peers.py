"""Real VRRP routers to interoperate with: keepalived 2.2.7 and FRR 8.4's vrrpd.

Both run as plain processes inside a lab host's namespace with every file in a
per-peer directory, so any number of them can run side by side on one machine
without touching /etc, /run/keepalived or /var/run/frr.

The two daemons model VRRP state on the host differently, and `holds()` hides
that: keepalived adds and removes the VIPs on the interface itself, FRR keeps
the VIPs on macvlan devices (one per VRID and address family, carrying the
virtual MAC) and only toggles their `protodown` flag.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from pathlib import Path
from typing import Any, Protocol

from pykeepalived.lab.netns import FRR_TMP, LabError, pid_alive, run_cmd, signal_pid, wait_pids_gone
from pykeepalived.lab.topology import Host

Vip = IPv4Interface | IPv6Interface
FRR_SBIN = Path("/usr/lib/frr")
STOP_TIMEOUT_S = 5.0


def wait_until(predicate: Callable[[], bool], timeout_s: float, *, interval_s: float = 0.05, what: str = "") -> float:
    """Poll `predicate` until it is true; return the seconds it took.

    Raises `LabError` naming `what` after `timeout_s`. Tests use the returned
    time to report failover durations.
    """
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start >= timeout_s:
            raise LabError(f"timed out after {timeout_s:g} s waiting for {what or 'condition'}")
        time.sleep(interval_s)


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _group_pids(pgid: int) -> list[int]:
    """Live processes in process group `pgid` (the daemon and every child it forked)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp, ...
        if len(fields) > 2 and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            found.append(int(entry))
    return found


class _Daemon:
    """One started process (the leader of its own process group) and its log file.

    Knows how to stop it cleanly and how to kill it without giving it (or its
    children) any chance to clean up.
    """

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.proc = proc
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """SIGTERM and wait; True if it exited in time (else it is killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
                return False
        # Children the daemon forked but did not reap (should be none).
        self._kill_group()
        return True

    def kill(self) -> None:
        """SIGKILL every process of the group, children first, with the leader frozen.

        keepalived's VRRP child asks for SIGTERM on its parent's death
        (PR_SET_PDEATHSIG) and would then send a priority-0 advert and remove
        the VIPs - a clean stop, not a crash. So the leader is stopped first (it
        cannot react to SIGCHLD by respawning), the children are killed and
        reaped, and only then the leader.
        """
        if self.proc.poll() is None:
            signal_pid(self.pid, signal.SIGSTOP)
            children = [p for p in _group_pids(self.pid) if p != self.pid]
            for pid in children:
                signal_pid(pid, signal.SIGKILL)
            wait_pids_gone(children, 2.0)
            signal_pid(self.pid, signal.SIGKILL)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired as exc:
                raise LabError(f"{self.name} (pid {self.pid}) survived SIGKILL") from exc
        self._kill_group()

    def _kill_group(self) -> None:
        leftovers = _group_pids(self.pid)
        for pid in leftovers:
            signal_pid(pid, signal.SIGKILL)
        wait_pids_gone(leftovers, 2.0)

    def log(self) -> str:
        return _read(self.log_path)


def _start_daemon(host: Host, name: str, argv: list[str], log_path: Path) -> _Daemon:
    """Start `argv` in the host's namespace with stdout and stderr appended to `log_path`."""
    # $TMPDIR: where keepalived (and we) write the signal dumps; the peer's own directory, not the shared /tmp
    with open(log_path, "ab") as log:
        proc = host.netns.popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, TMPDIR=str(log_path.parent)))
    return _Daemon(name, proc, log_path)


class VrrpPeer(Protocol):
    """What tests need from any router implementation."""

    host: Host

    def start(self) -> None: ...

    def running(self) -> bool: ...

    def stop(self) -> None: ...

    def kill(self) -> None: ...

    def holds(self, vip: IPv4Address | IPv6Address) -> bool: ...

    def remove_vips(self) -> None: ...

    def log(self) -> str: ...

    def close(self) -> None: ...


@dataclass
class VrrpSettings:
    """One VRRP instance, rendered into each peer's own config language.

    `vips` may mix IPv4 and IPv6: FRR runs both families under one VRID anyway,
    and for keepalived the renderer splits them into two instances (the IPv6 one
    named `{name}_v6`), as keepalived wants one family per instance.
    """

    vrid: int
    priority: int
    vips: list[IPv4Interface | IPv6Interface]
    version: int = 2  # 2 or 3
    advert_int_s: float = 1.0
    preempt: bool = True
    name: str = "VI_1"
    auth_pass: str | None = None  # v2 PASS (keepalived only; FRR has no auth)
    track_script: str | None = None  # executable; keepalived: interval 1, fall 1, rise 1, weight 0
    extra: list[str] = field(default_factory=list)  # raw keepalived lines for the instance block

    def __post_init__(self) -> None:
        if not 1 <= self.vrid <= 255:
            raise LabError(f"{self.name}: vrid {self.vrid} not in 1..255")
        if not 1 <= self.priority <= 255:
            raise LabError(f"{self.name}: priority {self.priority} not in 1..255")
        if self.version not in (2, 3):
            raise LabError(f"{self.name}: VRRP version {self.version} is neither 2 nor 3")
        if not self.vips:
            raise LabError(f"{self.name}: no virtual addresses")
        if self.advert_int_s <= 0:
            raise LabError(f"{self.name}: advert_int_s must be positive")
        if self.version == 2 and self.v6_vips:
            raise LabError(f"{self.name}: IPv6 virtual addresses need VRRP version 3")

    @property
    def v4_vips(self) -> list[IPv4Interface]:
        return [v for v in self.vips if isinstance(v, IPv4Interface)]

    @property
    def v6_vips(self) -> list[IPv6Interface]:
        return [v for v in self.vips if isinstance(v, IPv6Interface)]


# ----------------------------------------------------------------------------------------------
# keepalived


def _instances(settings: list[VrrpSettings]) -> list[tuple[str, VrrpSettings, list[Vip]]]:
    """keepalived's vrrp_instances: (name, settings, vips), one address family each."""
    out: list[tuple[str, VrrpSettings, list[Vip]]] = []
    for s in settings:
        v4: list[Vip] = list(s.v4_vips)
        v6: list[Vip] = list(s.v6_vips)
        if v4:
            out.append((s.name, s, v4))
        if v6:
            out.append((f"{s.name}_v6" if v4 else s.name, s, v6))
    names = [name for name, _, _ in out]
    if len(set(names)) != len(names):
        raise LabError(f"duplicate vrrp_instance names: {names}")
    return out


def render_keepalived_conf(host: Host, settings: list[VrrpSettings], extra_global: str = "") -> str:
    """keepalived.conf for these instances on `host` (also what pykeepalived reads).

    Every instance starts as BACKUP so that priorities alone decide who becomes
    master, as with FRR (which has no initial-state setting).
    """
    uses_scripts = any(s.track_script for s in settings)
    lines = ["global_defs {", f"    router_id {host.name}"]
    if uses_scripts:
        # Without these keepalived refuses to run scripts as root ("security violation").
        lines += ["    enable_script_security", "    script_user root"]
    lines += [f"    {ln}" for ln in extra_global.strip().splitlines() if ln.strip()]
    lines.append("}")

    for s in settings:
        if s.track_script:
            lines += [
                "",
                f"vrrp_script chk_{s.name} {{",
                f'    script "{s.track_script}"',
                "    interval 1",
                "    fall 1",
                "    rise 1",
                "    weight 0",
                "}",
            ]

    for name, s, vips in _instances(settings):
        lines += [
            "",
            f"vrrp_instance {name} {{",
            "    state BACKUP",
            f"    interface {host.ifname}",
            f"    virtual_router_id {s.vrid}",
            f"    priority {s.priority}",
            f"    advert_int {s.advert_int_s:g}",
            f"    version {s.version}",
        ]
        if not s.preempt:
            lines.append("    nopreempt")
        if s.auth_pass is not None:
            if s.version != 2:
                raise LabError(f"{s.name}: authentication exists only in VRRP version 2")
            lines += ["    authentication {", "        auth_type PASS", f"        auth_pass {s.auth_pass}", "    }"]
        lines.append("    virtual_ipaddress {")
        lines += [f"        {vip} dev {host.ifname}" for vip in vips]
        lines.append("    }")
        if s.track_script:
            lines += ["    track_script {", f"        chk_{s.name}", "    }"]
        lines += [f"    {ln}" for ln in s.extra]
        lines.append("}")
    return "\n".join(lines) + "\n"


_KA_STATE = re.compile(r"\((?P<name>[^)]+)\) Entering (?P<state>BACKUP|MASTER|FAULT) STATE")


class KeepalivedPeer:
    """Real keepalived (VRRP only) in the host's namespace.

    Runs `keepalived -n -l -D -G -f CONF --vrrp -p PID -r VRRPPID`: in the
    foreground (so we own the process), logging to the console (which is our
    log file) and not to syslog. `command` replaces `keepalived` to run any
    keepalived-compatible daemon - pykeepalived itself - on the same files.
    """

    def __init__(
        self,
        host: Host,
        settings: list[VrrpSettings],
        workdir: Path,
        *,
        extra_global: str = "",
        command: Sequence[str] = ("keepalived",),
        start_timeout_s: float = 5.0,
    ) -> None:
        self.host = host
        self.settings = settings
        self.command = list(command)
        self.start_timeout_s = start_timeout_s
        self.dir = Path(tempfile.mkdtemp(prefix=f"ka-{host.name}-", dir=workdir))
        self.conf_path = self.dir / "keepalived.conf"
        self.pid_path = self.dir / "keepalived.pid"
        self.vrrp_pid_path = self.dir / "vrrp.pid"
        self.log_path = self.dir / "keepalived.log"
        self.conf_path.write_text(render_keepalived_conf(host, settings, extra_global))
        self.instance_names = [name for name, _, _ in _instances(settings)]
        self._daemon: _Daemon | None = None

    def __repr__(self) -> str:
        return f"KeepalivedPeer({self.host.name}, dir={self.dir})"

    def argv(self) -> list[str]:
        return [
            *self.command,
            "-n", "-l", "-D", "-G",
            "-f", str(self.conf_path),
            "--vrrp",
            "-p", str(self.pid_path),
            "-r", str(self.vrrp_pid_path),
        ]  # fmt: skip

    def running(self) -> bool:
        return self._daemon is not None and self._daemon.running()

    def states(self) -> dict[str, str]:
        """Last state each instance logged (BACKUP, MASTER or FAULT)."""
        found: dict[str, str] = {}
        for m in _KA_STATE.finditer(self.log()):
            found[m.group("name")] = m.group("state")
        return found

    def start(self) -> None:
        """Start and wait until every instance has entered BACKUP, MASTER or FAULT."""
        if self.running():
            raise LabError(f"{self!r} is already running")
        self._daemon = _start_daemon(self.host, "keepalived", self.argv(), self.log_path)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if set(self.instance_names) <= set(self.states()):
                return
            if not self._daemon.running():
                self._daemon.kill()
                raise LabError(
                    f"keepalived on {self.host.name} exited with {self._daemon.proc.returncode} during start:\n"
                    + _tail(self.log())
                )
            if time.monotonic() >= deadline:
                self._daemon.kill()
                raise LabError(
                    f"keepalived on {self.host.name} did not enter a VRRP state within "
                    f"{self.start_timeout_s:g} s:\n" + _tail(self.log())
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: keepalived sends priority-0 adverts, removes its VIPs and exits."""
        if self._daemon is None:
            return
        if not self._daemon.terminate(STOP_TIMEOUT_S):
            raise LabError(f"keepalived on {self.host.name} ignored SIGTERM for {STOP_TIMEOUT_S:g} s; killed it")

    def kill(self) -> None:
        """SIGKILL both processes, VRRP child first: VIPs stay, no priority-0 advert goes out.

        The dead daemon's pid files are removed (as a reboot would), so that start() can run again.
        """
        if self._daemon is not None:
            self._daemon.kill()
        for path in (self.pid_path, self.vrrp_pid_path):
            path.unlink(missing_ok=True)

    def holds(self, vip: IPv4Address | IPv6Address) -> bool:
        return vip in self.host.addresses()

    def remove_vips(self) -> None:
        """Delete the configured VIPs from the interface: what a dead machine's network sees."""
        present = self.host.addresses()
        for s in self.settings:
            for vip in s.vips:
                if vip.ip in present:
                    self.host.netns.ip("addr", "del", str(vip), "dev", self.host.ifname)

    def log(self) -> str:
        return _read(self.log_path)

    def close(self) -> None:
        """Stop (kill if need be); safe to call twice and after failures."""
        if self._daemon is not None:
            if not self._daemon.terminate(STOP_TIMEOUT_S):
                self._daemon.kill()


# ----------------------------------------------------------------------------------------------
# FRR


def frr_macvlan_name(vrid: int, family: int) -> str:
    return f"vrrp{family}-{vrid}"


def frr_vmac(vrid: int, family: int) -> str:
    """RFC 5798 virtual MAC: 00:00:5e:00:01:VRID for IPv4, ...:02:VRID for IPv6."""
    return f"00:00:5e:00:{1 if family == 4 else 2:02x}:{vrid:02x}"


def render_frr_vrrpd_conf(host: Host, settings: list[VrrpSettings], *, debug: bool = False) -> str:
    """vrrpd.conf: one `vrrp VRID` block on the host's interface per settings entry.

    Raises `LabError` for what FRR cannot express rather than silently running a
    different protocol than the test asked for.
    """
    lines = [f"hostname {host.name}"]
    if debug:
        lines.append("debug vrrp protocol")
    lines.append(f"interface {host.ifname}")
    for s in settings:
        n = s.vrid
        ms = round(s.advert_int_s * 1000)
        if s.auth_pass is not None:
            raise LabError(f"{s.name}: FRR vrrpd has no VRRP authentication")
        if s.track_script is not None:
            raise LabError(f"{s.name}: FRR vrrpd has no track scripts")
        if not 1 <= s.priority <= 254:
            raise LabError(f"{s.name}: FRR accepts priority 1..254, not {s.priority}")
        if s.version == 2 and ms % 1000:
            raise LabError(f"{s.name}: VRRPv2 in FRR needs a whole-second advertisement interval")
        if ms % 10 or not 10 <= ms <= 40950:
            raise LabError(f"{s.name}: FRR wants 10..40950 ms in steps of 10, not {ms} ms")
        lines += [
            f" vrrp {n} version {s.version}",
            f" vrrp {n} priority {s.priority}",
            f" vrrp {n} advertisement-interval {ms}",
            f" vrrp {n} preempt" if s.preempt else f" no vrrp {n} preempt",
        ]
        lines += [f" vrrp {n} ip {v.ip}" for v in s.v4_vips]
        lines += [f" vrrp {n} ipv6 {v.ip}" for v in s.v6_vips]
    return "\n".join(lines) + "\n"


class FrrPeer:
    """FRR 8.4: zebra and vrrpd in the host's namespace, with their own state directory.

    vrrpd needs zebra (interface and address state comes from it) and does not
    create the macvlan devices it uses; `start()` creates them as FRR's VRRP
    documentation describes, then the daemons, each with every path given on
    the command line (config -f, pid -i, zserv socket -z, vty sockets
    --vty_socket, log --log file:) and no TCP vty (-P 0), so nothing is shared
    with another FRR on the machine.
    """

    def __init__(
        self,
        host: Host,
        settings: list[VrrpSettings],
        workdir: Path,
        *,
        debug: bool = False,
        start_timeout_s: float = 10.0,
    ) -> None:
        self.host = host
        self.settings = settings
        self.debug = debug
        self.start_timeout_s = start_timeout_s
        self.dir = Path(tempfile.mkdtemp(prefix=f"frr-{host.name}-", dir=workdir))
        self.vrrpd_conf = render_frr_vrrpd_conf(host, settings, debug=debug)  # validates early
        self._zebra: _Daemon | None = None
        self._vrrpd: _Daemon | None = None
        self._pids: list[tuple[str, int]] = []
        self._macvlans: list[str] = []

    def __repr__(self) -> str:
        return f"FrrPeer({self.host.name}, dir={self.dir})"

    # -- system set-up ---------------------------------------------------------------------

    def macvlans(self) -> dict[str, list[Vip]]:
        """Macvlan device name -> the VIPs it carries."""
        out: dict[str, list[Vip]] = {}
        for s in self.settings:
            if s.v4_vips:
                out[frr_macvlan_name(s.vrid, 4)] = list(s.v4_vips)
            if s.v6_vips:
                out[frr_macvlan_name(s.vrid, 6)] = list(s.v6_vips)
        return out

    def _setup_host(self) -> None:
        ns, parent = self.host.netns, self.host.ifname
        # The VIPs are local addresses of the host even while their macvlan is in
        # protodown, and every macvlan in bridge mode sees every broadcast: with the
        # default arp_ignore=0 the parent (own MAC) and the IPv6 macvlan (IPv6 virtual
        # MAC) answer ARP for an IPv4 VIP too. arp_ignore=1 on "all": only the
        # interface that carries the address answers.
        ns.sysctl("net.ipv4.conf.all.arp_ignore", "1")
        ns.sysctl("net.ipv4.conf.all.arp_announce", "2")
        # The master's VIP prefix route must win over a backup's linkdown duplicate.
        ns.sysctl("net.ipv4.conf.all.ignore_routes_with_linkdown", "1")
        ns.sysctl("net.ipv6.conf.all.ignore_routes_with_linkdown", "1")
        for s in self.settings:
            for family, vips in ((4, list(s.v4_vips)), (6, list(s.v6_vips))):
                if not vips:
                    continue
                dev = frr_macvlan_name(s.vrid, family)
                if dev in self._macvlans:  # a restart after stop(): keep the devices
                    continue
                ns.ip(
                    "link", "add", dev, "link", parent, "address", frr_vmac(s.vrid, family),
                    "type", "macvlan", "mode", "bridge",
                )  # fmt: skip
                self._macvlans.append(dev)
                # A link-local derived from the shared virtual MAC would be the same on
                # every router, and VRRPv3/IPv6 elects by the advert's source address.
                ns.ip("link", "set", "dev", dev, "addrgenmode", "random")
                ns.sysctl(f"net.ipv6.conf.{dev}.accept_dad", "0")
                for vip in vips:
                    extra = ["nodad"] if family == 6 else []
                    ns.ip("addr", "add", str(vip), "dev", dev, *extra)
                ns.ip("link", "set", "dev", dev, "up")

    def _teardown_host(self) -> None:
        for dev in self._macvlans:
            run_cmd(["ip", "-n", self.host.netns.name, "link", "del", dev], check=False)
        self._macvlans = []

    # -- processes -------------------------------------------------------------------------

    def _common_args(self, daemon: str) -> list[str]:
        return [
            # root, but in FRR's vty group: FRR refuses a user outside it.
            "-u", "root", "-g", "frrvty",
            "-f", str(self.dir / f"{daemon}.conf"),
            "-i", str(self.dir / f"{daemon}.pid"),
            "-z", str(self.dir / "zserv.api"),
            "--vty_socket", str(self.dir),
            "-P", "0",
            "--log", f"file:{self.dir / f'{daemon}.log'}",
        ]  # fmt: skip

    def running(self) -> bool:
        return any(d is not None and d.running() for d in (self._zebra, self._vrrpd))

    def vtysh(self, command: str, *, timeout_s: float = 5.0) -> str:
        """Run one vtysh command against this peer's vrrpd (the vty socket is a path, no netns needed)."""
        return run_cmd(
            ["vtysh", "--vty_socket", str(self.dir), "-d", "vrrpd", "-c", command], timeout_s=timeout_s
        ).stdout

    def status(self) -> dict[tuple[int, int], str]:
        """(vrid, family) -> "Initialize", "Backup" or "Master", from `show vrrp json`."""
        try:
            data: Any = json.loads(self.vtysh("show vrrp json") or "[]")
        except (LabError, json.JSONDecodeError):
            return {}
        out: dict[tuple[int, int], str] = {}
        for router in data if isinstance(data, list) else []:
            for family, key in ((4, "v4"), (6, "v6")):
                fam = router.get(key)
                if isinstance(fam, dict) and "status" in fam:
                    out[(int(router["vrid"]), family)] = str(fam["status"])
        return out

    def _expected(self) -> set[tuple[int, int]]:
        want: set[tuple[int, int]] = set()
        for s in self.settings:
            if s.v4_vips:
                want.add((s.vrid, 4))
            if s.v6_vips:
                want.add((s.vrid, 6))
        return want

    def _zebra_knows_macvlans(self) -> bool:
        """zebra has read the interfaces: a vrrpd that connects earlier may wait ~10 s for them."""
        try:
            out = run_cmd(["vtysh", "--vty_socket", str(self.dir), "-d", "zebra", "-c", "show interface brief"],
                          check=False, timeout_s=2.0).stdout
        except LabError:
            return False
        return all(dev in out for dev in self._macvlans)

    def _ready(self) -> bool:
        st = self.status()
        return all(st.get(key) in ("Backup", "Master") for key in self._expected())

    def _fail(self, why: str) -> LabError:
        self.kill()
        return LabError(f"FRR on {self.host.name}: {why}\n{_tail(self.log())}")

    def start(self) -> None:
        """Create the macvlans, start zebra, then vrrpd; wait until every router is Backup or Master."""
        if self.running():
            raise LabError(f"{self!r} is already running")
        (self.dir / "zebra.conf").write_text(f"hostname {self.host.name}\n")
        (self.dir / "vrrpd.conf").write_text(self.vrrpd_conf)
        # fresh macvlans on every start, as after a reboot: devices left behind by a
        # killed vrrpd (up, VIPs removed) are not picked up again by a new zebra/vrrpd
        self._teardown_host()
        self._setup_host()
        deadline = time.monotonic() + self.start_timeout_s

        self._zebra = _start_daemon(
            self.host, "zebra", [str(FRR_SBIN / "zebra"), *self._common_args("zebra")], self.dir / "zebra.out"
        )
        self._pids.append(("zebra", self._zebra.pid))
        zserv = self.dir / "zserv.api"
        while not (zserv.exists() and (self.dir / "zebra.vty").exists() and self._zebra_knows_macvlans()):
            if not self._zebra.running():
                raise self._fail(f"zebra exited with {self._zebra.proc.returncode}")
            if time.monotonic() >= deadline:
                raise self._fail("zebra did not open its sockets")
            time.sleep(0.02)

        self._vrrpd = _start_daemon(
            self.host, "vrrpd", [str(FRR_SBIN / "vrrpd"), *self._common_args("vrrpd")], self.dir / "vrrpd.out"
        )
        self._pids.append(("vrrpd", self._vrrpd.pid))
        while not self._ready():
            for d in (self._zebra, self._vrrpd):
                if not d.running():
                    raise self._fail(f"{d.name} exited with {d.proc.returncode}")
            if time.monotonic() >= deadline:
                raise self._fail(f"routers not up within {self.start_timeout_s:g} s: {self.status()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM vrrpd (it sends priority-0 adverts and goes protodown), then zebra."""
        clean = True
        for d in (self._vrrpd, self._zebra):
            if d is not None:
                clean = d.terminate(STOP_TIMEOUT_S) and clean
        self._remove_crash_dirs()
        if not clean:
            raise LabError(f"FRR on {self.host.name} ignored SIGTERM for {STOP_TIMEOUT_S:g} s; killed it")

    def kill(self) -> None:
        """SIGKILL vrrpd and zebra: the macvlans stay as they were (a master keeps its VIPs up)."""
        for d in (self._vrrpd, self._zebra):
            if d is not None:
                d.kill()
        self._remove_crash_dirs()

    def _remove_crash_dirs(self) -> None:
        """FRR keeps /var/tmp/frr/<daemon>.<pid>/ and removes it only on a clean exit."""
        for daemon, pid in self._pids:
            if not pid_alive(pid):
                shutil.rmtree(FRR_TMP / f"{daemon}.{pid}", ignore_errors=True)

    def _link(self, dev: str) -> dict[str, Any] | None:
        links = self.host.netns.ip_json("-d", "link", "show", "dev", dev) if dev in self._macvlans else []
        return links[0] if links else None

    def holds(self, vip: IPv4Address | IPv6Address) -> bool:
        """The VIP's macvlan is up with carrier and not in protodown, and still carries the VIP."""
        for dev, vips in self.macvlans().items():
            if not any(v.ip == vip for v in vips):
                continue
            link = self._link(dev)
            if link is None or link.get("proto_down") or link.get("operstate") != "UP":
                return False
            return vip in self.host.addresses(dev)
        return False

    def remove_vips(self) -> None:
        """Delete the VIPs from the macvlans: what a dead machine's network sees."""
        for dev, vips in self.macvlans().items():
            if dev not in self._macvlans:
                continue
            present = self.host.addresses(dev)
            for vip in vips:
                if vip.ip in present:
                    self.host.netns.ip("addr", "del", str(vip), "dev", dev)

    def log(self) -> str:
        parts = []
        for name in ("zebra.out", "zebra.log", "vrrpd.out", "vrrpd.log"):
            text = _read(self.dir / name)
            if text.strip():
                parts.append(f"==> {name} <==\n{text}")
        return "\n".join(parts)

    def close(self) -> None:
        """Stop the daemons (kill if need be), remove crash dirs and the macvlans; safe to call twice."""
        try:
            for d in (self._vrrpd, self._zebra):
                if d is not None and not d.terminate(STOP_TIMEOUT_S):
                    d.kill()
        finally:
            self._remove_crash_dirs()
            if self.host.netns.exists():
                self._teardown_host()


class PyKeepalivedPeer(KeepalivedPeer):
    """pykeepalived on the very files a KeepalivedPeer would use: same flags, same log lines."""

    def __init__(
        self,
        host: Host,
        settings: list[VrrpSettings],
        workdir: Path,
        *,
        extra_global: str = "",
        start_timeout_s: float = 5.0,
    ) -> None:
        super().__init__(host, settings, workdir, extra_global=extra_global,
                         command=(sys.executable, "-m", "pykeepalived"), start_timeout_s=start_timeout_s)
        self.json_path = self.dir / "state.json"
        dumps = f"json_dump_file {self.json_path}\nstats_dump_file {self.dir / 'state.stats'}\n"
        self.conf_path.write_text(render_keepalived_conf(host, settings, dumps + extra_global))

    def __repr__(self) -> str:
        return f"PyKeepalivedPeer({self.host.name}, dir={self.dir})"

    def signal(self, signum: int) -> None:
        """Send a signal to the daemon (e.g. SIGRTMIN+2 for the JSON dump)."""
        if self._daemon is None:
            raise LabError(f"{self!r} is not running")
        os.kill(self._daemon.pid, signum)

    def snapshot(self, timeout_s: float = 3.0) -> list[dict[str, Any]]:
        """Our extended JSON dump (keepalived's keys plus master_ip, faults and all our counters)."""
        data: list[dict[str, Any]] = self.extended_dump(timeout_s)["vrrp"]
        return data

    def extended_dump(self, timeout_s: float = 3.0) -> dict[str, Any]:
        """pykeepalived_vrrp.json, written beside the JSON dump on SIGRTMIN+2: {"vrrp": [...], "sockets": {...}}."""
        path = self.json_path.parent / "pykeepalived_vrrp.json"
        path.unlink(missing_ok=True)
        self.signal(signal.SIGRTMIN + 2)
        wait_until(path.exists, timeout_s, what=f"{self!r} extended JSON dump")
        doc: dict[str, Any] = json.loads(path.read_text())
        return doc
