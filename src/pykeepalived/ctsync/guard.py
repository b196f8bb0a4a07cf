"""A table of ours that drops mid-stream packets of the virtual services that conntrack has no entry for.

With conntrack's mid-stream pickup off (net.netfilter.nf_conntrack_tcp_loose=0),
such a packet is `ct state invalid`: no NAT rule sees it, so it would reach
the router's own TCP stack (the VIP is a local address) and be answered
with a RST that kills the client's connection; a real server's packet
would leave un-NATed and draw a RST from the client. Dropped, it is sent
again by its TCP and finds the entry once conntrackd has committed it.
The table is ours alone (the data plane's table is not touched); its two
empty NAT chains keep the NAT of existing entries working whatever the
data plane's table does (see `ruleset`).
"""

from __future__ import annotations

import logging

from .spec import CtSyncSpec

log = logging.getLogger("pykeepalived.ctsync")
TABLE = "pykeepalived_ctsync"


def ruleset(spec: CtSyncSpec) -> str:
    """The table as nft text (delete-and-add: one transaction, no window without it)."""
    v4 = [a for a in spec.guarded if ":" not in a]
    v6 = [a for a in spec.guarded if ":" in a]
    lines = [f"table inet {TABLE} {{}}", f"delete table inet {TABLE}", f"table inet {TABLE} {{"]
    for name, kind, members in (("services4", "ipv4_addr", v4), ("services6", "ipv6_addr", v6)):
        if members:
            lines.append(f"  set {name} {{ type {kind}; flags interval; auto-merge; "
                         f"elements = {{ {', '.join(members)} }} }}")
    lines += ["  chain prerouting {", "    type filter hook prerouting priority -150; policy accept;"]
    for family, name, members in (("ip", "services4", v4), ("ip6", "services6", v6)):
        if members:
            lines += [f"    ct state invalid {family} {way} @{name} counter drop" for way in ("daddr", "saddr")]
    lines += ["  }",
              # Empty NAT chains keep the kernel's NAT hooks registered while conntrackd runs: they are there only
              # while some NAT chain exists, and without them the NAT of existing entries (synced ones included)
              # is not applied, e.g. in the moment a stopping router's data plane has removed its table.
              "  chain nat_prerouting { type nat hook prerouting priority dstnat + 10; policy accept; }",
              "  chain nat_postrouting { type nat hook postrouting priority srcnat + 10; policy accept; }",
              "}"]
    return "\n".join(lines) + "\n"


def _nft(text: str) -> tuple[int, str]:
    import nftables  # type: ignore[import-untyped]

    nft = nftables.Nftables()
    rc, _out, err = nft.cmd(text)
    return int(rc), str(err).strip()


def install(spec: CtSyncSpec) -> bool:
    rc, err = _nft(ruleset(spec))
    if rc != 0:
        log.error("conntrack sync: cannot add nftables table %s (mid-stream packets without an entry may be "
                  "answered with a RST): %s", TABLE, err)
        return False
    return True


def remove() -> None:
    rc, err = _nft(f"table inet {TABLE} {{}}\ndelete table inet {TABLE}\n")
    if rc != 0:
        log.warning("conntrack sync: cannot remove nftables table %s: %s", TABLE, err)
