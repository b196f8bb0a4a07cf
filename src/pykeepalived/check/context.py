"""What a probe is built from beyond its own checker block, shared by every probe module.

A module of its own so that the probe modules and `probes.py`, which picks
one of them by keyword, do not import each other.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..config.checker_defaults import VS_CONNECT_TIMEOUT_S
from ..config.model import CheckerBase, GlobalDefs, RealServer, SslContext, VirtualServer
from ..errors import PyKeepalivedError
from .probe import Target


class UnsupportedChecker(PyKeepalivedError):
    """A checker keyword we parse but cannot run (BFD_CHECK); the message says where."""


@dataclass(frozen=True)
class ProbeContext:
    """What a probe may need beyond its own block: the servers it belongs to and global settings."""

    virtual_server: VirtualServer
    real_server: RealServer
    ssl: SslContext | None = None
    global_defs: GlobalDefs = field(default_factory=GlobalDefs)
    track_file_paths: dict[str, str] = field(default_factory=dict)
    track_file_weights: dict[str, tuple[int, bool]] = field(default_factory=dict)  # name -> (weight, reverse)


def target_for(checker: CheckerBase, rs: RealServer) -> Target:
    """connect_ip/connect_port/bindto/bind_port/bind_if/fwmark over the real server's address and port."""
    address = checker.connect_ip if checker.connect_ip is not None else rs.address
    port = checker.connect_port if checker.connect_port is not None else rs.port
    return Target(
        # the config's own address object when it is one (thousands of real servers: no copy each)
        address=address if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address)
        else ipaddress.ip_address(address),
        port=port,
        # completed by config/checker_timing.py; the virtual server's default only for a checker built by hand
        connect_timeout_s=(checker.connect_timeout_s if checker.connect_timeout_s is not None
                           else VS_CONNECT_TIMEOUT_S),
        bind_address=ipaddress.ip_address(checker.bindto) if checker.bindto is not None else None,
        bind_port=checker.bind_port,
        bind_if=checker.bind_if,
        fwmark=checker.fwmark,
    )
