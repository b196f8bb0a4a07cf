"""From a configured checker to a runnable probe: one module per checker kind.

Each checker module (tcp.py, http.py, smtp.py, dns.py, misc.py, file.py,
ping.py, udp.py) has `make_probe(checker, target, ctx) -> Probe`; this module
completes the target (connect_ip / connect_port / bindto... falling back on the
real server) and picks the module by the checker's keyword, importing it only
when a config uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from ..config.model import CheckerBase, SmtpCheck
from ..config.vocabulary import CheckerKind
from .context import ProbeContext, UnsupportedChecker, target_for
from .probe import Probe

__all__ = ["PROBE_MODULES", "ProbeContext", "UnsupportedChecker", "make_probe", "make_probes", "target_for"]


# Each importer is spelled out (not importlib with a name) so that the layer test sees every edge, and
# runs on first use, so that dnspython, ssl and the ICMP socket code load only when a config needs them.
def _tcp() -> ModuleType:
    from . import tcp
    return tcp


def _http() -> ModuleType:
    from . import http
    return http


def _smtp() -> ModuleType:
    from . import smtp
    return smtp


def _dns() -> ModuleType:
    from . import dns
    return dns


def _misc() -> ModuleType:
    from . import misc
    return misc


def _file() -> ModuleType:
    from . import file
    return file


def _ping() -> ModuleType:
    from . import ping
    return ping


def _udp() -> ModuleType:
    from . import udp
    return udp


def _bfd() -> ModuleType:
    from . import bfd_check
    return bfd_check


PROBE_MODULES: dict[CheckerKind, Callable[[], ModuleType]] = {
    "TCP_CHECK": _tcp,
    "HTTP_GET": _http,
    "SSL_GET": _http,
    "SMTP_CHECK": _smtp,
    "DNS_CHECK": _dns,
    "MISC_CHECK": _misc,
    "FILE_CHECK": _file,
    "PING_CHECK": _ping,
    "UDP_CHECK": _udp,
    "BFD_CHECK": _bfd,  # driven by the BFD process's events, not run (check/bfd_check.py)
}
"""The checker kinds we run, each with the importer of its probe module."""


def make_probe(checker: CheckerBase, ctx: ProbeContext) -> Probe:
    importer = PROBE_MODULES.get(checker.kind)
    if importer is None:
        where = f"{checker.location}: " if checker.location else ""
        raise UnsupportedChecker(f"{where}{checker.kind} is not supported by pykeepalived's checker yet")
    probe: Probe = importer().make_probe(checker, target_for(checker, ctx.real_server), ctx)
    return probe


def make_probes(checker: CheckerBase, ctx: ProbeContext) -> list[Probe]:
    """Usually one probe; SMTP_CHECK's deprecated host{} blocks make one per host, as in keepalived."""
    if checker.kind == "SMTP_CHECK":
        from . import smtp

        assert isinstance(checker, SmtpCheck)
        return [smtp.make_probe(checker, t, ctx)
                for t in smtp.smtp_targets(checker, ctx.real_server, ctx.virtual_server)]
    return [make_probe(checker, ctx)]
