"""Which data plane the checker hands its table to, and the router set-up it needs.

`auto` is IPVS where the kernel has it (loading the ip_vs module if it is
there but not loaded, as keepalived does) and nftables elsewhere; `ipvs` and
`nftables` force one and fail clearly when it is missing; `none` keeps the
table only (checkers alone). The command line's `--dataplane` wins over
global_defs' `pykeepalived_dataplane`.
A router that cannot forward is a set-up mistake the guide warns about
(NAT needs net.ipv4.ip_forward=1); we say so at start, loudly, because the
symptom otherwise is silent: clients time out.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..config.model import CHECKER_NOTRACK_MARK, KeepalivedConfig, VirtualServer
from ..config.vocabulary import DATAPLANES, DataPlaneChoice
from .model import DataPlane, DataPlaneError
from .plan import configured_services, service_name

if TYPE_CHECKING:  # `-t` asks dataplane_problems() only: the daemon's imports wait until it runs
    import logging
    from pathlib import Path

SYSCTL = "/proc/sys"


def _log() -> logging.Logger:
    import logging

    return logging.getLogger("pykeepalived.lvs")


def read_sysctl(name: str, root: Path | str = SYSCTL) -> str | None:
    try:
        with open(os.path.join(root, *name.split("."))) as f:
            return f.read().strip()
    except OSError:
        return None


def setup_problems(config: KeepalivedConfig, root: Path | str = SYSCTL) -> list[str]:
    """What this machine lacks for the config's virtual servers, as sentences that say the fix."""
    problems: list[str] = []
    methods = {(rs.lvs_method or vs.lvs_method or "NAT") for vs in config.virtual_servers for rs in vs.real_servers}
    families = {6 if (vs.address is not None and vs.address.version == 6) or vs.ip_family == 6 else 4
                for vs in config.virtual_servers}
    if "NAT" in methods:
        if 4 in families and read_sysctl("net.ipv4.ip_forward", root) == "0":
            problems.append("NAT virtual servers need packet forwarding, and net.ipv4.ip_forward is 0: "
                            "run `sysctl -w net.ipv4.ip_forward=1` (and set it in /etc/sysctl.d/)")
        if 6 in families and read_sysctl("net.ipv6.conf.all.forwarding", root) == "0":
            problems.append("IPv6 NAT virtual servers need net.ipv6.conf.all.forwarding=1: "
                            "run `sysctl -w net.ipv6.conf.all.forwarding=1`")
    return problems


def wanted_kind(kind: str, config: KeepalivedConfig) -> DataPlaneChoice:
    """The command line's choice, else global_defs' pykeepalived_dataplane, else auto."""
    choice = DATAPLANES.get(kind)
    if choice is None:  # the command line offers only these words
        raise DataPlaneError(f"unknown data plane '{kind}' (expected {'|'.join(DATAPLANES)})")
    if choice != "auto":
        return choice
    return config.global_defs.pykeepalived_dataplane or "auto"


def ipvs_available(root: Path | str = "/") -> bool:
    """IPVS is loaded, or its module is installed for the running kernel (so `modprobe ip_vs` will work)."""
    if os.path.exists(os.path.join(root, "proc/net/ip_vs")):
        return True
    try:
        with open(os.path.join(root, "lib/modules", os.uname().release, "modules.dep")) as f:
            return "/ip_vs.ko" in f.read()
    except OSError:
        return False


def load_ipvs() -> bool:
    """Load ip_vs if needed (keepalived does the same at start); True when IPVS is there afterwards."""
    import subprocess

    from .ipvs_sync import kernel_has_ipvs

    if kernel_has_ipvs():
        return True
    try:
        subprocess.run(["modprobe", "ip_vs"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return kernel_has_ipvs()


def choose_dataplane(kind: str, config: KeepalivedConfig) -> DataPlane:
    """The backend for `--dataplane KIND`; falls back to keeping the table only, with an error logged.

    The fallback carries the error (TableOnly.error): the checker reports it
    as a failing data plane, which puts the VRRP instances in front of these
    virtual servers in FAULT. A backend asked for by name that cannot be had
    raises DataPlaneError instead.
    """
    from .null import TableOnly

    log = _log()
    for problem in setup_problems(config):
        log.error("%s", problem)
    choice = wanted_kind(kind, config)
    if choice == "none" or not config.virtual_servers:
        return TableOnly()
    if choice == "auto" or choice == "ipvs":
        if load_ipvs():
            from .ipvs import IpvsBackend, IpvsOptions

            try:
                return IpvsBackend(IpvsOptions.from_global_defs(config.global_defs))
            except DataPlaneError as exc:
                if choice == "ipvs":
                    raise
                log.error("IPVS is there but unusable (%s); using nftables", exc)
        elif choice == "ipvs":
            raise DataPlaneError("the IPVS data plane was asked for (--dataplane ipvs or pykeepalived_dataplane "
                                 "ipvs) but this kernel has no IPVS: /proc/net/ip_vs is missing and "
                                 "`modprobe ip_vs` did not load it; use nftables or a kernel with CONFIG_IP_VS")
    from .nft import NftablesBackend
    from .nft_limits import consistent_flows

    try:
        notrack = CHECKER_NOTRACK_MARK if config.global_defs.pykeepalived_checker_notrack else None
        return skip_unbuildable(NftablesBackend(consistent_flows=consistent_flows(config.global_defs),
                                                checker_notrack_mark=notrack), config)
    except DataPlaneError as exc:
        if choice == "nftables":
            raise
        log.error("no data plane: %s; the checkers run and keep the table, nothing forwards", exc)
        return TableOnly(error=f"no data plane (auto found neither IPVS nor a usable nftables): {exc}")


def unbuildable(config: KeepalivedConfig) -> list[tuple[VirtualServer, str]]:
    """Each virtual server the nftables backend cannot build, with why (first reason only)."""
    from .nft_limits import CannotExpress, check_service

    out: list[tuple[VirtualServer, str]] = []
    seen: set[int] = set()
    for vs, svc in configured_services(config):
        if id(vs) in seen:
            continue
        if any(entry.kind == "fwmark" and not entry.fwmark for entry in svc.group_entries):
            seen.add(id(vs))  # keepalived takes it; as a rule it would catch every unmarked packet
            out.append((vs, f"virtual server {svc.name}: fwmark 0 in group {svc.group} marks nothing"))
            continue
        try:
            check_service(svc)
        except CannotExpress as exc:
            seen.add(id(vs))
            out.append((vs, str(exc)))
    return out


def skip_unbuildable(backend: DataPlane, config: KeepalivedConfig) -> DataPlane:
    """The nftables backend, told to leave out the services it cannot build; each is logged once.

    keepalived runs such a config (IPVS builds everything), so we run it too:
    every other service forwards. `--strict-dataplane` refuses the config
    before this point instead.
    """
    from .skip import SkipServices

    skipped: dict[str, str] = {}
    for vs, reason in unbuildable(config):
        name = service_name(vs)
        skipped[name] = reason
        _log().error("%s: virtual server %s is not built: %s (IPVS is needed for it); the other virtual servers "
                     "run", vs.location or "config", name, reason)
    return SkipServices(backend, skipped) if skipped else backend


def dataplane_problems(config: KeepalivedConfig, kind: str = "auto") -> list[str]:
    """What the nftables backend cannot build in this config, one `FILE:LINE: reason` per virtual server.

    Used by `-t` (a warning each: keepalived accepts these configs) and before
    starting (the daemon leaves these services out and runs the rest, or
    refuses the config with `--strict-dataplane`). IPVS builds everything
    keepalived does, so where it will be used there is nothing to say.
    """
    choice = wanted_kind(kind, config)
    if choice == "none" or choice == "ipvs" or (choice == "auto" and ipvs_available()):
        return []
    return [f"{vs.location}: {reason}" if vs.location else reason for vs, reason in unbuildable(config)]


def limit_warning(problem: str) -> str:
    """One of dataplane_problems() as `-t` prints it: a warning, since keepalived accepts the config."""
    where, sep, reason = problem.partition(": ")
    if not sep or not where.rpartition(":")[2].isdigit():
        return f"warning: {problem}; the daemon will run the other virtual servers (--strict-dataplane: refuse)"
    return (f"{where}: warning: {reason}; the daemon will run the other virtual servers without it "
            "(--strict-dataplane: refuse the config)")
