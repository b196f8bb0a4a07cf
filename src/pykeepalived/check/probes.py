"""From a configured checker to a runnable probe: one module per checker kind.

Each checker module (tcp.py, http.py, smtp.py, dns.py, misc.py, file.py,
ping.py, udp.py) has `make_probe(checker, target, ctx) -> Probe`; this module
completes the target (connect_ip / connect_port / bindto... falling back on the
real server) and picks the module by the checker's keyword, importing it only
when a config uses it.
"""

from __future__ import annotations

from types import ModuleType

from ..config.model import CheckerBase, SmtpCheck
from .context import ProbeContext, UnsupportedChecker, target_for
from .probe import Probe

__all__ = ["MODULES", "ProbeContext", "UnsupportedChecker", "make_probe", "make_probes", "target_for"]

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


def make_probe(checker: CheckerBase, ctx: ProbeContext) -> Probe:
    module_name = MODULES.get(checker.kind)
    if module_name is None:
        where = f"{checker.location}: " if checker.location else ""
        raise UnsupportedChecker(f"{where}{checker.kind} is not supported by pykeepalived's checker yet")
    probe: Probe = _probe_module(module_name).make_probe(checker, target_for(checker, ctx.real_server), ctx)
    return probe


def _probe_module(name: str) -> ModuleType:
    """The probe module, imported on first use (dnspython, ssl and the ICMP socket code load only if needed).

    Spelled out import by import, not through importlib, so that the layer test sees every edge.
    """
    if name == "tcp":
        from . import tcp
        return tcp
    if name == "http":
        from . import http
        return http
    if name == "smtp":
        from . import smtp
        return smtp
    if name == "dns":
        from . import dns
        return dns
    if name == "misc":
        from . import misc
        return misc
    if name == "file":
        from . import file
        return file
    if name == "ping":
        from . import ping
        return ping
    if name == "udp":
        from . import udp
        return udp
    raise KeyError(name)


def make_probes(checker: CheckerBase, ctx: ProbeContext) -> list[Probe]:
    """Usually one probe; SMTP_CHECK's deprecated host{} blocks make one per host, as in keepalived."""
    if checker.kind == "SMTP_CHECK":
        from . import smtp

        assert isinstance(checker, SmtpCheck)
        return [smtp.make_probe(checker, t, ctx)
                for t in smtp.smtp_targets(checker, ctx.real_server, ctx.virtual_server)]
    return [make_probe(checker, ctx)]
