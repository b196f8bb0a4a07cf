"""global_defs *_netlink_*_rcv_bufs[_force]: the receive buffers of the daemon's netlink sockets.

keepalived sets SO_RCVBUF (capped by net.core.rmem_max) or, with `_force`,
SO_RCVBUFFORCE (not capped; needs CAP_NET_ADMIN) on its command socket and on
its monitor socket. Here the command socket is the address manager's
(net/addresses.py) and the monitor the link-event subscription
(net/links.py, which re-applies it when it subscribes afresh after an
overflow). Unset, pyroute2's 1 MiB request stays (keepalived's own default
differs; pykeepalived chose the larger one for its resync logic). A refusal
is one log line in keepalived's words.

The checker's pair, lvs_netlink_{cmd,monitor}_rcv_bufs: keepalived's checker
keeps an rtnetlink command socket and an address-event monitor for
ha_suspend. pykeepalived's checker has one long-lived rtnetlink socket, the
one ha_suspend's address watch dumps addresses on (net/local_addresses.py,
check/ha_watch.py): it does both jobs, so it takes the command size, or the
monitor's when only that one is given (`checker_addresses_rcvbuf`). Without
a virtual server with ha_suspend the checker opens no such socket, as
keepalived's checker then has nothing to watch either.

process_monitor_rcv_bufs[_force] sizes the proc connector socket that
vrrp_track_process follows (host/proc_connector.py, vrrp/process_watch.py);
the kernel offers that socket only in the initial network namespace.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any

from ..config.model import GlobalDefs

log = logging.getLogger("pykeepalived")
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


@dataclass(frozen=True)
class RcvBuf:
    size: int
    force: bool = False


def vrrp_cmd_rcvbuf(g: GlobalDefs) -> RcvBuf | None:
    size = g.vrrp_netlink_cmd_rcv_bufs
    return RcvBuf(size, g.vrrp_netlink_cmd_rcv_bufs_force) if size else None


def vrrp_monitor_rcvbuf(g: GlobalDefs) -> RcvBuf | None:
    size = g.vrrp_netlink_monitor_rcv_bufs
    return RcvBuf(size, g.vrrp_netlink_monitor_rcv_bufs_force) if size else None


def set_rcvbuf(sock: Any, buf: RcvBuf | None) -> None:
    """Apply `buf` to a pyroute2 netlink socket (anything with setsockopt); None leaves it as it is."""
    if buf is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE if buf.force else socket.SO_RCVBUF, buf.size)
    except OSError as exc:
        if buf.force:
            log.info("cant set SO_RCVBUFFORCE IP option. errno=%d (%s)", exc.errno or 0, exc.strerror)
        else:
            log.info("Cannot set SO_RCVBUF IP option. errno=%d (%s)", exc.errno or 0, exc.strerror)


def lvs_cmd_rcvbuf(g: GlobalDefs) -> RcvBuf | None:
    size = g.lvs_netlink_cmd_rcv_bufs
    return RcvBuf(size, g.lvs_netlink_cmd_rcv_bufs_force) if size else None


def lvs_monitor_rcvbuf(g: GlobalDefs) -> RcvBuf | None:
    size = g.lvs_netlink_monitor_rcv_bufs
    return RcvBuf(size, g.lvs_netlink_monitor_rcv_bufs_force) if size else None


def checker_addresses_rcvbuf(g: GlobalDefs) -> RcvBuf | None:
    """The checker's one rtnetlink socket (ha_suspend's address watch): the command size, else the monitor's."""
    return lvs_cmd_rcvbuf(g) or lvs_monitor_rcvbuf(g)


def process_monitor_rcvbuf(g: GlobalDefs) -> RcvBuf | None:
    size = g.process_monitor_rcv_bufs
    return RcvBuf(size, g.process_monitor_rcv_bufs_force) if size else None
