"""The closed sets of words the domain is spelled in: one place, checked by mypy.

The config model, the checkers and the data planes compare these words all
over the code (`vs.kind == "fwmark"`, `method == "NAT"`). Each set is a
`Literal` type rather than an enum so that the values stay plain strings (or
ints): `--dump-config`, the status files, log lines and test expectations
are byte-for-byte what they were. mypy --strict (strict equality) rejects a
comparison with a word outside the set, so `kind == "fwmrak"` is a type error
instead of a branch that never runs.

The tables next to each type map what a config file may say (any case,
keepalived's aliases) to the canonical spelling; `values.to_choice` keeps
their value type, so a parsed word is typed as a member of the set.

Pure: imports nothing but `typing`.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# ----------------------------------------------------------------------------- VRRP
VrrpState = Literal["MASTER", "BACKUP"]
"""The initial state a vrrp_instance asks for (`state`)."""

VRRP_STATES: Final[dict[str, VrrpState]] = {"master": "MASTER", "backup": "BACKUP"}

StateWord = Literal["BACKUP", "MASTER", "FAULT", "STOP"]
"""A state an instance has entered, in the words of keepalived's log lines, notify scripts and FIFO lines."""

# ----------------------------------------------------------------------------- addresses
Family = Literal[4, 6]
"""An address family, as the IP version number (`inet` 4, `inet6` 6)."""

FAMILY_WORDS: Final[dict[str, Family]] = {"inet": 4, "inet6": 6}

# ----------------------------------------------------------------------------- LVS
LbKind = Literal["NAT", "DR", "TUN"]
"""How a real server is reached (`lvs_method`, old name `lb_kind`)."""

LB_KINDS: Final[dict[str, LbKind]] = {"nat": "NAT", "dr": "DR", "tun": "TUN"}

Scheduler = Literal["rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"]
"""An IPVS scheduler (`lvs_sched`, old name `lb_algo`); `twos` is keepalived 2.4's power-of-two choices."""

SCHEDULER_NAMES: Final[tuple[Scheduler, ...]] = get_args(Scheduler)
TableScheduler = Scheduler | Literal["random"]
"""What a desired-table service may ask of a data plane: the config's schedulers, and the nftables
plane's weighted random spread (no config keyword reaches it; its layout tests use it)."""

LOAD_SCHEDULERS: Final[frozenset[Scheduler]] = frozenset({"lc", "wlc", "sed", "nq", "twos", "fo", "ovf"})
"""Schedulers that choose by the connections each server has (the data plane must count them)."""

L4Protocol = Literal["TCP", "UDP", "SCTP"]
"""The transport protocol of a virtual server."""

PROTOCOLS: Final[dict[str, L4Protocol]] = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}

ServerKind = Literal["address", "fwmark", "group"]
"""What a virtual_server matches: `IP PORT`, `fwmark N` or `group NAME`."""

GroupEntryKind = Literal["address", "range", "fwmark"]
"""One line of a virtual_server_group: one address, a range or prefix, or a fwmark."""

DataPlaneChoice = Literal["auto", "ipvs", "nftables", "none"]
"""Which data plane forwards (`--dataplane`, global_defs `pykeepalived_dataplane`)."""

DATAPLANES: Final[dict[str, DataPlaneChoice]] = {"auto": "auto", "ipvs": "ipvs", "nftables": "nftables", "none": "none"}

# ----------------------------------------------------------------------------- checkers
CheckerKind = Literal[
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "SMTP_CHECK",
    "SMTP_CHECK host",  # a `host { }` block inside SMTP_CHECK: a connection, not a checker of its own
    "DNS_CHECK",
    "MISC_CHECK",
    "FILE_CHECK",
    "PING_CHECK",
    "UDP_CHECK",
    "BFD_CHECK",
]
"""A health checker's block name."""

HTTP_KINDS: Final[frozenset[CheckerKind]] = frozenset({"HTTP_GET", "SSL_GET"})
