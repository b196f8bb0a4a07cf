"""doctor's shell: read this network namespace into `HostFacts` (sysctls, netlink, /proc, `nft -j`, the data plane).

Everything read is namespace-local (/proc/sys/net, rtnetlink, `nft`), so
doctor run with `ip netns exec NS` describes that namespace. Processes are
system-wide in /proc: only those in our network namespace count (a daemon in
another namespace is another host as far as VRRP is concerned). Nothing here
fails when a tool is absent (nft, nmcli, NetworkManager): the fact is left
unknown and the rules say nothing about it.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from ipaddress import ip_interface
from pathlib import Path
from typing import Any, Literal

from ..config.model import KeepalivedConfig
from ..host.proc import argv_of, is_pykeepalived, parent_of
from ..lvs.choose import dataplane_problems, ipvs_available, wanted_kind
from .facts import DataPlaneFacts, HostFacts, Interface, IPInterface, NetworkManagerFact, ProcessFact

PROC = Path("/proc")
SYSCTL = PROC / "sys"
NM_RUN = Path("/run/NetworkManager")
DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
PER_INTERFACE = ("rp_filter", "arp_ignore", "arp_announce", "forwarding")
GLOBAL_SYSCTLS = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")
NOT_DAEMONS = frozenset({"doctor", "status", "probe", "lab", "genhash", "reload", "-t", "--config-test", "-v",
                         "--version", "--child", "--checker-worker", "--bfd-child", "--dump-config", "-T",
                         "--genhash"})
IFF_UP, IFF_LOOPBACK, IFF_NOARP = 0x1, 0x8, 0x80
TOOL_TIMEOUT_S = 10.0


def read_sysctls() -> dict[str, str]:
    """The forwarding switches and, per IPv4 interface (and all/default), rp_filter and the ARP settings."""
    out: dict[str, str] = {}
    for name in GLOBAL_SYSCTLS:
        value = _read(SYSCTL / name.replace(".", "/"))
        if value is not None:
            out[name] = value
    conf = SYSCTL / "net/ipv4/conf"
    try:
        devices = sorted(p.name for p in conf.iterdir())
    except OSError:
        devices = []
    for device in devices:
        for key in PER_INTERFACE:
            value = _read(conf / device / key)
            if value is not None:
                out[f"net.ipv4.conf.{device}.{key}"] = value
    return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def read_interfaces() -> dict[str, Interface]:
    """Each interface with its kind, flags and addresses, from one rtnetlink dump of links and one of addresses."""
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    with IPRoute() as ipr:
        links = list(ipr.get_links())
        addrs = list(ipr.get_addr())
    by_index: dict[int, list[IPInterface]] = {}
    for msg in addrs:
        local = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if local:
            by_index.setdefault(int(msg["index"]), []).append(ip_interface(f"{local}/{msg['prefixlen']}"))
    out: dict[str, Interface] = {}
    for link in links:
        name = str(link.get_attr("IFLA_IFNAME"))
        flags = int(link["flags"])
        info = link.get_attr("IFLA_LINKINFO")
        kind = str(info.get_attr("IFLA_INFO_KIND") or "") if info is not None else ""
        if flags & IFF_LOOPBACK:
            kind = "loopback"
        out[name] = Interface(name, kind, bool(flags & IFF_UP), bool(flags & IFF_NOARP),
                              tuple(by_index.get(int(link["index"]), [])))
    return out


def _netns_of(pid: int | str) -> str | None:
    try:
        return os.readlink(PROC / str(pid) / "ns/net")
    except OSError:
        return None


def _comm(pid: int | str) -> str:
    return _read(PROC / str(pid) / "comm") or ""


def _pids() -> Iterator[int]:
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def config_of(pid: int, argv: list[str]) -> str:
    """The -f file a daemon was started with, absolute (relative to its working directory), or the default."""
    path = DEFAULT_CONFIG
    for i, word in enumerate(argv):
        if word in ("-f", "--use-file") and i + 1 < len(argv):
            path = argv[i + 1]
        elif word.startswith("--use-file="):
            path = word.split("=", 1)[1]
        elif word.startswith("-f") and len(word) > 2 and not word.startswith("--"):
            path = word[2:]
    if not os.path.isabs(path):
        try:
            path = os.path.join(os.readlink(PROC / str(pid) / "cwd"), path)
        except OSError:
            pass
    return os.path.realpath(path)


def _program(pid: int, argv: list[str]) -> Literal["keepalived", "pykeepalived"] | None:
    if argv and is_pykeepalived(argv):
        return None if NOT_DAEMONS.intersection(argv) else "pykeepalived"
    if _comm(pid) == "keepalived" or (argv and os.path.basename(argv[0]) == "keepalived"):
        return None if NOT_DAEMONS.intersection(argv) else "keepalived"
    return None


def read_processes() -> tuple[ProcessFact, ...]:
    """keepalived and pykeepalived daemons (parents only) in our network namespace, ourselves excluded."""
    ours = _netns_of("self")
    me = os.getpid()
    found: dict[int, ProcessFact] = {}
    for pid in _pids():
        if pid == me or _netns_of(pid) != ours:
            continue
        argv = argv_of(pid)
        if not argv:
            continue
        program = _program(pid, argv)
        if program is not None:
            found[pid] = ProcessFact(pid, tuple(argv), program, config_of(pid, argv))
    parents = {pid: fact for pid, fact in found.items() if parent_of(pid) not in found}  # a daemon's children
    return tuple(parents[pid] for pid in sorted(parents))


def read_network_manager(interfaces: dict[str, Interface]) -> NetworkManagerFact | None:
    """NetworkManager running in our namespace, and the devices it manages (nmcli, else its /run state files)."""
    ours = _netns_of("self")
    pid = next((p for p in _pids() if _comm(p) == "NetworkManager" and _netns_of(p) == ours), None)
    if pid is None:
        return None
    managed = _nmcli_managed()
    if managed is None:
        managed = _run_files_managed(interfaces)
    return NetworkManagerFact(pid, managed)


def _nmcli_managed() -> frozenset[str] | None:
    if shutil.which("nmcli") is None:
        return None
    try:
        proc = subprocess.run(["nmcli", "-t", "-f", "DEVICE,STATE", "device", "status"], capture_output=True,
                              text=True, timeout=TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    managed = set()
    for line in proc.stdout.splitlines():
        device, _, state = line.rpartition(":")
        if device and state and state != "unmanaged":
            managed.add(device.replace("\\:", ":"))
    return frozenset(managed)


def _run_files_managed(interfaces: dict[str, Interface]) -> frozenset[str] | None:
    """NetworkManager keeps /run/NetworkManager/devices/IFINDEX with `managed=true|false` per device."""
    import socket

    directory = NM_RUN / "devices"
    if not directory.is_dir():
        return None
    managed = set()
    for name in interfaces:
        try:
            index = socket.if_nametoindex(name)
        except OSError:
            continue
        parser = configparser.ConfigParser()
        try:
            parser.read(directory / str(index))
        except configparser.Error:
            continue
        if parser.get("device", "managed", fallback="false").strip().lower() == "true":
            managed.add(name)
    return frozenset(managed)


def read_ruleset() -> tuple[dict[str, Any] | None, str | None]:
    """`nft -j list ruleset` of this namespace, or why it could not be read."""
    if shutil.which("nft") is None:
        return None, "nft is not installed"
    try:
        proc = subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True, text=True,
                              timeout=TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    if proc.returncode != 0:
        return None, proc.stderr.strip() or f"nft exited with {proc.returncode}"
    try:
        data = json.loads(proc.stdout or '{"nftables": []}')
    except ValueError as exc:
        return None, f"nft -j printed no JSON: {exc}"
    return (data, None) if isinstance(data, dict) else (None, "nft -j printed no ruleset")


def _nftables_usable() -> tuple[bool, str | None]:
    try:
        import nftables  # type: ignore[import-untyped]  # Debian's python3-nftables
    except ImportError as exc:
        return False, f"the python3-nftables binding is missing ({exc})"
    try:
        rc, _, err = nftables.Nftables().cmd("list tables")
    except Exception as exc:  # noqa: BLE001 - libnftables raises what ctypes gives it
        return False, f"libnftables failed: {exc}"
    return (True, None) if rc == 0 else (False, str(err).strip() or f"libnftables returned {rc}")


def read_dataplane(config: KeepalivedConfig, kind: str) -> DataPlaneFacts:
    wanted = wanted_kind(kind, config)
    ipvs = ipvs_available()
    usable, problem = _nftables_usable() if config.virtual_servers else (True, None)
    unbuildable = tuple(dataplane_problems(config, kind)) if config.virtual_servers and usable else ()
    return DataPlaneFacts(wanted, ipvs, usable, problem, unbuildable)


def gather(config: KeepalivedConfig | None, dataplane: str = "auto") -> HostFacts:
    """Everything the rules read, from this network namespace."""
    interfaces = read_interfaces()
    ruleset, problem = read_ruleset() if config is not None else (None, None)
    return HostFacts(
        sysctls=read_sysctls(),
        interfaces=interfaces,
        processes=read_processes(),
        network_manager=read_network_manager(interfaces),
        ruleset=ruleset,
        ruleset_problem=problem,
        dataplane=read_dataplane(config, dataplane) if config is not None else DataPlaneFacts(),
    )
