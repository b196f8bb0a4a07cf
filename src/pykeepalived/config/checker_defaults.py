"""The health checkers' timing defaults (keepalived 2.2.7), as plain numbers: the only place they are written.

This module imports nothing so that `model.py` can take the virtual
server's defaults from it; `checker_timing.py` holds the rules that apply
them (inheritance from real and virtual server, the per-kind defaults).
keepalived's sources: `check_data.c alloc_vs` for the virtual server,
`check_api.c queue_checker` for a checker's own defaults, and the
`default_retry` / `default_delay_before_retry` each checker kind's handler
sets (`check_http.c`, `check_dns.c`, `check_misc.c`).
"""

from __future__ import annotations

from dataclasses import dataclass

VS_DELAY_LOOP_S = 60.0  # KEEPALIVED_DEFAULT_DELAY: a virtual server's delay_loop, which its checkers inherit
VS_CONNECT_TIMEOUT_S = 5.0  # a virtual server's connection_to, which its checkers inherit


@dataclass(frozen=True)
class KindDefaults:
    """What a checker kind uses when neither it, its real server nor its virtual server sets the value.

    `delay_before_retry_s` None stands for keepalived's 0 there: the
    checker's own (inherited) delay_loop.
    """

    retry: int = 1
    delay_before_retry_s: float | None = 1.0


COMMON = KindDefaults()
BY_KIND: dict[str, KindDefaults] = {
    "HTTP_GET": KindDefaults(delay_before_retry_s=3.0),
    "SSL_GET": KindDefaults(delay_before_retry_s=3.0),
    "DNS_CHECK": KindDefaults(retry=3, delay_before_retry_s=None),
    "MISC_CHECK": KindDefaults(retry=0),
}


def kind_defaults(kind: str) -> KindDefaults:
    return BY_KIND.get(kind, COMMON)
