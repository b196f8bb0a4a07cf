"""From a configured checker to a runnable probe: one module per checker kind.

Each checker module (tcp.py, http.py, smtp.py, dns.py, misc.py, file.py,
ping.py, udp.py) has `make_probe(checker, target, ctx) -> Probe`; this module
completes the target (connect_ip / connect_port / bindto... falling back on the
real server) and picks the module by the checker's keyword, importing it only
when a config uses it.
"""

from __future__ import annotations

import importlib
import ipaddress
from dataclasses import dataclass, field

from ..config.checker_defaults import VS_CONNECT_TIMEOUT_S
from ..config.errors import PyKeepalivedError
from ..config.model import CheckerBase, GlobalDefs, RealServer, SmtpCheck, SslContext, VirtualServer
from .probe import Probe, Target

MODULES = {
    "TCP_CHECK": "tcp",
    "HTTP_GET": "http",
    "SSL_GET": "http",
    "SMTP_CHECK": "smtp",
    "DNS_CHECK": "dns",
    "MISC_CHECK": "misc",
    "FILE_CHECK": "file",
    "PING_CHECK": "ping",
    "UDP_CHECK": "udp",
}


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
        address=ipaddress.ip_address(address),
        port=port,
        # completed by config/checker_timing.py; the virtual server's default only for a checker built by hand
        connect_timeout_s=checker.connect_timeout_s if checker.connect_timeout_s is not None else VS_CONNECT_TIMEOUT_S,
        bind_address=ipaddress.ip_address(checker.bindto) if checker.bindto is not None else None,
        bind_port=checker.bind_port,
        bind_if=checker.bind_if,
        fwmark=checker.fwmark,
    )


def make_probe(checker: CheckerBase, ctx: ProbeContext) -> Probe:
    module_name = MODULES.get(checker.kind)
    if module_name is None:
        where = f"{checker.location}: " if checker.location else ""
        raise UnsupportedChecker(f"{where}{checker.kind} is not supported by pykeepalived's checker yet")
    module = importlib.import_module(f"{__package__}.{module_name}")
    probe: Probe = module.make_probe(checker, target_for(checker, ctx.real_server), ctx)
    return probe


def make_probes(checker: CheckerBase, ctx: ProbeContext) -> list[Probe]:
    """Usually one probe; SMTP_CHECK's deprecated host{} blocks make one per host, as in keepalived."""
    if checker.kind == "SMTP_CHECK":
        from . import smtp

        assert isinstance(checker, SmtpCheck)
        return [smtp.make_probe(checker, t, ctx)
                for t in smtp.smtp_targets(checker, ctx.real_server, ctx.virtual_server)]
    return [make_probe(checker, ctx)]
