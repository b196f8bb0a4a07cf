"""DNS_CHECK: the real server is healthy when it answers a UDP query for `name`/`type` with NOERROR.

Like keepalived we use UDP only, on a connected socket: the kernel then drops
datagrams from other sources, and an ICMP port-unreachable (nothing listens)
ends the attempt at once instead of at the timeout. One connect_timeout covers
the whole exchange, send and reply, as keepalived's single timer does. The
port is connect_port, else the real server's, else 53.

We do our own datagram I/O on the checker's socket rather than use dnspython's
asyncio resolver so that bindto, bind_port, bind_if and fwmark apply exactly
as for every other checker (`make_socket`); dnspython only builds and parses
the messages, in the sans-IO `dns_wire`.

keepalived's DNS_CHECK defaults to retry 3 and delay_before_retry = the
checker's delay_loop: config/checker_timing.py applies them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import socket
from dataclasses import dataclass

from ..config.model import CheckerBase, DnsCheck
from .connect import ConnectFailed, make_socket, sockaddr
from .dns_wire import DnsQuery, DnsVerdict, Ignored, build_query, check_reply
from .probe import OK, ProbeResult, Target, failed

DEFAULT_PORT = 53
MAX_DATAGRAM = 65535


@dataclass
class DnsProbe:
    """One DNS_CHECK attempt: one query with a fresh id, judged by `dns_wire.check_reply`."""

    target: Target
    query: DnsQuery
    kind: str = "DNS_CHECK"

    async def run(self) -> ProbeResult:
        try:
            sock = make_socket(self.target, socket.SOCK_DGRAM)
        except ConnectFailed as exc:
            return failed(str(exc))
        try:
            return await self._exchange(sock)
        finally:
            sock.close()

    async def _exchange(self, sock: socket.socket) -> ProbeResult:
        loop = asyncio.get_running_loop()
        query_id = secrets.randbits(16)
        timeout = self.target.connect_timeout_s
        last_ignored: Ignored | None = None
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, sockaddr(self.target))
                await loop.sock_sendall(sock, self.query.wire(query_id))
                while True:
                    outcome = check_reply(query_id, await loop.sock_recv(sock, MAX_DATAGRAM))
                    if isinstance(outcome, DnsVerdict):
                        return OK if outcome.ok else failed(outcome.reason)
                    last_ignored = outcome
        except TimeoutError:
            ignored = f" (ignored: {last_ignored.reason})" if last_ignored else ""
            return failed(f"no reply within {timeout:g} s{ignored}")
        except OSError as exc:
            return failed(f"query failed: {exc.strerror or exc}")


def make_probe(checker: CheckerBase, target: Target, ctx: object) -> DnsProbe:
    """The probe for one DNS_CHECK; a name or type that cannot be queried raises DnsQueryError here, not at run time."""
    if isinstance(checker, DnsCheck):
        query = build_query(checker.name, checker.query_type)
    else:
        query = build_query(".", "SOA")
    if target.port is None:
        target = dataclasses.replace(target, port=DEFAULT_PORT)
    return DnsProbe(target, query)
