"""UDP_CHECK: send one datagram; the real server fails if an ICMP destination unreachable comes back.

As keepalived 2.2.7: the socket is connected and has IP(V6)_RECVERR on, so
any ICMP error about our datagram lands on it; only a destination
unreachable (port, host, network, prohibited, ...) is a failure - keepalived
lets other errors (time exceeded) pass. Without require_reply, silence
until connect_timeout is success, and so is any reply. With require_reply a
reply must come within connect_timeout and, when a pattern is configured,
match it and the length limits (`outcomes.udp_reply_matches`). The payload
defaults to keepalived's 32-byte filler.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from dataclasses import dataclass

from ..config.model import UdpCheck
from .connect import ConnectFailed, make_socket, sockaddr
from .icmp import IP_RECVERR, IPV6_RECVERR, SOL_IP, SOL_IPV6, error_reports
from .outcomes import DEFAULT_UDP_PAYLOAD, ReplyPattern, parse_reply_pattern, udp_reply_matches
from .probe import OK, ProbeResult, Target, failed
from .context import ProbeContext, UnsupportedChecker

RECV_SIZE = 65536
ERRQUEUE_CONTROL_SIZE = 512


@dataclass
class UdpProbe:
    """One datagram per attempt, judged by what comes back within connect_timeout."""

    target: Target
    payload: bytes = DEFAULT_UDP_PAYLOAD
    require_reply: bool = False
    pattern: ReplyPattern | None = None
    min_length: int = 0
    max_length: int = 255
    kind: str = "UDP_CHECK"

    async def run(self) -> ProbeResult:
        try:
            sock = make_socket(self.target, socket.SOCK_DGRAM)
        except ConnectFailed as exc:
            return failed(str(exc))
        with sock:
            try:
                _enable_recverr(sock, self.target)
                sock.connect(sockaddr(self.target))
                await asyncio.get_running_loop().sock_sendall(sock, self.payload)
            except OSError as exc:
                return failed(f"cannot send: {_reason(exc)}")
            return await self._await_answer(sock)

    async def _await_answer(self, sock: socket.socket) -> ProbeResult:
        try:
            async with asyncio.timeout(self.target.connect_timeout_s):
                reply = await asyncio.get_running_loop().sock_recv(sock, RECV_SIZE)
        except TimeoutError:
            return failed("no reply (timed out)") if self.require_reply else OK
        except OSError as exc:
            return _judge_error(sock, exc)
        if self.require_reply and not udp_reply_matches(reply, self.pattern, self.min_length, self.max_length):
            return failed(f"reply data mismatch ({len(reply)} bytes)")
        return OK


def _enable_recverr(sock: socket.socket, target: Target) -> None:
    if target.address.version == 6:
        sock.setsockopt(SOL_IPV6, IPV6_RECVERR, 1)
    else:
        sock.setsockopt(SOL_IP, IP_RECVERR, 1)


def _judge_error(sock: socket.socket, exc: OSError) -> ProbeResult:
    """An error on the socket: failure if the error queue holds a destination unreachable, as keepalived reads it.

    Without a readable report (should not happen with RECVERR on) the
    socket error itself is the failure.
    """
    try:
        _, ancillary, _, _ = sock.recvmsg(1, ERRQUEUE_CONTROL_SIZE, socket.MSG_ERRQUEUE)
    except OSError:
        return failed(_reason(exc))
    reports = error_reports(ancillary)
    unreachable = next((r for r in reports if r.is_unreachable), None)
    if unreachable is not None:
        return failed(unreachable.describe())
    if reports:
        return ProbeResult(True, f"ignored {reports[0].describe()}")
    return failed(_reason(exc))


def _reason(exc: OSError) -> str:
    if exc.errno is not None:
        return f"{errno.errorcode.get(exc.errno, str(exc.errno))}: {os.strerror(exc.errno)}"
    return str(exc) or type(exc).__name__


def make_probe(checker: UdpCheck, target: Target, ctx: ProbeContext) -> UdpProbe:
    if target.port is None:
        where = f"{checker.location}: " if checker.location else ""
        raise UnsupportedChecker(f"{where}UDP_CHECK needs a port (connect_port, or the real server's port)")
    pattern = parse_reply_pattern(checker.reply_pattern) if checker.reply_pattern else None
    return UdpProbe(target, checker.payload or DEFAULT_UDP_PAYLOAD, checker.require_reply, pattern,
                    checker.min_reply_length, checker.max_reply_length)
