"""SIGUSR2's keepalived.stats, in keepalived 2.2.7's layout (vrrp/vrrp_print.c vrrp_print_stats).

Exporters (mehdy/keepalived-exporter) read it by its section headers
(`  Advertisements:`) and the labels under them, at these indents, so the
layout is kept to the space. Counters keepalived does not have (ours, e.g.
chksum_err) are in the JSON dump's `stats` of `pykeepalived status`, not here.
"""

from __future__ import annotations

from .dump_view import DumpView

# (section or None for a top-level line, label, counter): keepalived's order
_LINES: tuple[tuple[str | None, str, str], ...] = (
    ("Advertisements", "Received", "advert_rcvd"),
    ("Advertisements", "Sent", "advert_sent"),
    (None, "Became master", "become_master"),
    (None, "Released master", "release_master"),
    ("Packet Errors", "Length", "packet_len_err"),
    ("Packet Errors", "TTL", "ip_ttl_err"),
    ("Packet Errors", "Invalid Type", "invalid_type_rcvd"),
    ("Packet Errors", "Advertisement Interval", "advert_interval_err"),
    ("Packet Errors", "Address List", "addr_list_err"),
    ("Authentication Errors", "Invalid Type", "invalid_authtype"),
    ("Authentication Errors", "Type Mismatch", "authtype_mismatch"),
    ("Authentication Errors", "Failure", "auth_failure"),
    ("Priority Zero", "Received", "pri_zero_rcvd"),
    ("Priority Zero", "Sent", "pri_zero_sent"),
)


def format_stats(view: DumpView) -> str:
    """The whole file: one block per instance, in configuration order."""
    out: list[str] = []
    for inst in view.instances:
        out.append(f"VRRP Instance: {inst.name}")
        section: str | None = None
        for sec, label, counter in _LINES:
            value = inst.stats.get(counter, 0)
            if sec is None:
                out.append(f"  {label}: {value}")
            else:
                if sec != section:
                    out.append(f"  {sec}:")
                out.append(f"    {label}: {value}")
            section = sec
    return "".join(line + "\n" for line in out)
