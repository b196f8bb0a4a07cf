"""Which VRRP instances stand in front of the checker's virtual servers, and whether its data plane fails.

Pure: the VRRP process reads the checker's status file (service.py) and asks
this module what to make of it. A MASTER whose virtual servers nothing
forwards is a black hole (clients reach the VIP, the connection dies on the
router), so the instances that serve a failing data plane go to FAULT and the
backup, whose data plane works, takes over.

An instance serves a virtual server when one of its VIPs (or excluded VIPs)
is the virtual server's address, or an address of its virtual_server_group
(ranges and prefixes included). A virtual server that no instance matches
- a fwmark service, whose traffic the admin's firewall marks for addresses
we cannot know - is taken to be served by every instance: a fault too many
moves traffic to a working backup, a fault too few leaves the black hole.

Only `dataplane_error` of a status file written since this VRRP process
started counts: an older file is a leftover of an earlier run. A checker
that crashed and is being restarted leaves its last file, whose error is
null: the kernel keeps the rules, so that is no fault.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from ..config.model import KeepalivedConfig, VirtualServer, VirtualServerGroupEntry

FAULT_PREFIX = "data plane: "
MAX_REASON_CHARS = 300
HEAD_BYTES = 65536  # how much of the status file is read: its first keys, not the table (megabytes, at scale)
_KEY = re.compile(r'"(time|dataplane_error)"\s*:\s*')

IPAddress = IPv4Address | IPv6Address


def _entry_covers(entry: VirtualServerGroupEntry, address: IPAddress) -> bool:
    if entry.address is None:
        return False
    first = entry.address
    if first.version != address.version:
        return False
    if entry.last_address is not None:
        return int(first) <= int(address) <= int(entry.last_address)
    if entry.prefix_len is not None:
        return address in ip_network(f"{first}/{entry.prefix_len}", strict=False)
    return address == first


def _covers(vs: VirtualServer, config: KeepalivedConfig, address: IPAddress) -> bool:
    if vs.kind == "address":
        return vs.address is not None and ip_address(vs.address) == address
    if vs.kind == "group" and vs.group is not None:
        group = config.virtual_server_groups.get(vs.group)
        return group is not None and any(_entry_covers(e, address) for e in group.entries)
    return False


def instance_addresses(config: KeepalivedConfig) -> dict[str, list[IPAddress]]:
    """Instance name -> its VIPs and excluded VIPs."""
    return {name: [spec.address.ip for spec in (*inst.virtual_ipaddresses, *inst.virtual_ipaddresses_excluded)]
            for name, inst in config.vrrp_instances.items()}


def serving(config: KeepalivedConfig) -> list[tuple[VirtualServer, frozenset[str]]]:
    """Each virtual server with the instances that serve it (every instance when none matches)."""
    addresses = instance_addresses(config)
    everyone = frozenset(config.vrrp_instances)
    out: list[tuple[VirtualServer, frozenset[str]]] = []
    for vs in config.virtual_servers:
        matched = frozenset(name for name, vips in addresses.items() if any(_covers(vs, config, a) for a in vips))
        out.append((vs, matched or everyone))
    return out


def served_instances(config: KeepalivedConfig) -> frozenset[str]:
    """The instances that must go to FAULT while the checker's data plane fails (it is one for all services)."""
    return frozenset(name for _, names in serving(config) for name in names)


def checker_error(status: object, started_at: float) -> str | None:
    """The data-plane error a checker status file reports, if it was written since `started_at` (wall clock)."""
    if not isinstance(status, Mapping):
        return None
    written = status.get("time")
    if not isinstance(written, int | float) or written < started_at:
        return None
    error = status.get("dataplane_error")
    return error if isinstance(error, str) and error else None


def checker_error_in_head(head: str, started_at: float) -> str | None:
    """`checker_error` from the first HEAD_BYTES of the status file, without parsing the rest.

    The checker writes `time` and `dataplane_error` among its first keys; the
    table after them grows with the config, and parsing it every second
    would cost the VRRP process tens of milliseconds. Raises ValueError when
    the keys are not (wholly) in `head`: no news.
    """
    decoder = json.JSONDecoder()
    found: dict[str, object] = {}
    for match in _KEY.finditer(head):
        if match.group(1) not in found:
            found[match.group(1)], _ = decoder.raw_decode(head, match.end())
        if len(found) == 2:
            break
    if "time" not in found:
        raise ValueError("no time in the status file's head")
    if "dataplane_error" not in found:
        found["dataplane_error"] = None  # a checker from before dataplane_error existed
    return checker_error(found, started_at)


def fault_reason(error: str) -> str:
    """The fault as the instance carries it (log line, JSON dump's `faults`)."""
    text = " ".join(error.split())
    if len(text) > MAX_REASON_CHARS:
        text = text[:MAX_REASON_CHARS - 3] + "..."
    return FAULT_PREFIX + text


def is_dataplane_fault(reason: str) -> bool:
    return reason.startswith(FAULT_PREFIX)
