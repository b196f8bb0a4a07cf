"""PING_CHECK: the real server is healthy when it answers one ICMP / ICMPv6 echo within connect_timeout.

Socket choice: a raw ICMP socket when we may open one (we run as root, with
CAP_NET_RAW), else the kernel's unprivileged "ping" datagram socket.
keepalived uses only the datagram socket and widens
net.ipv4.ping_group_range so that root may open it; a raw socket needs no
such system-wide change (new namespaces start with the range empty), at
the cost of seeing every ICMP message the host receives - hence the
ICMP_FILTER / ICMP6_FILTER and the matching of identifier and sequence in
`icmp.judge_echo`. An unreachable error quoting our echo ends the attempt at
once; anything else not ours is skipped until connect_timeout.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import socket
import struct
from dataclasses import dataclass, field
from itertools import count

from ..config.model import CheckerBase
from .connect import SO_BINDTODEVICE, SO_MARK, sockaddr
from .icmp import (
    ICMP6_DEST_UNREACH,
    ICMP6_ECHO_REPLY,
    ICMP6_TIME_EXCEEDED,
    ICMP_DEST_UNREACH,
    ICMP_ECHO_REPLY,
    ICMP_TIME_EXCEEDED,
    IcmpError,
    echo_request,
    judge_echo,
    strip_ipv4_header,
)
from .outcomes import filler
from .probe import OK, ProbeResult, Target, failed

# keepalived sends 128 bytes of its filler after the 8-byte header
ECHO_PAYLOAD = filler(128)
SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1
RECV_SIZE = 2048

_sequence = count(secrets.randbelow(0x10000))


class PingSocketError(Exception):
    """No ICMP socket could be opened or set up; the message is the reason for the log."""


@dataclass
class PingProbe:
    """One echo per attempt. `mode` is "auto" (raw, else datagram), "raw" or "dgram"."""

    target: Target
    mode: str = "auto"
    kind: str = "PING_CHECK"
    ident: int = field(default_factory=lambda: secrets.randbelow(0x10000))

    async def run(self) -> ProbeResult:
        try:
            sock, raw = open_icmp_socket(self.target, self.mode)
        except PingSocketError as exc:
            return failed(str(exc))
        with sock:
            try:
                async with asyncio.timeout(self.target.connect_timeout_s):
                    return await self._exchange(sock, raw)
            except TimeoutError:
                return failed("no echo reply (timed out)")
            except OSError as exc:
                return failed(_reason(exc))

    async def _exchange(self, sock: socket.socket, raw: bool) -> ProbeResult:
        loop = asyncio.get_running_loop()
        v6 = self.target.address.version == 6
        seq = next(_sequence) & 0xFFFF
        await loop.sock_sendto(sock, echo_request(self.ident, seq, ECHO_PAYLOAD, v6=v6), sockaddr(self.target, 0))
        # a datagram ping socket gets a kernel-chosen identifier (its "port") and replies only for it
        ident = self.ident if raw else sock.getsockname()[1]
        while True:
            packet = await loop.sock_recv(sock, RECV_SIZE)
            try:
                message = strip_ipv4_header(packet) if raw and not v6 else packet
            except IcmpError:
                continue
            verdict = judge_echo(message, ident, seq, v6=v6)
            if verdict is not None:
                return OK if verdict.ok else failed(verdict.reason)


def open_icmp_socket(target: Target, mode: str = "auto") -> tuple[socket.socket, bool]:
    """A non-blocking ICMP socket for the target's family with the checker's bind options; (socket, is_raw)."""
    v6 = target.address.version == 6
    family = socket.AF_INET6 if v6 else socket.AF_INET
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    kinds = {"auto": (socket.SOCK_RAW, socket.SOCK_DGRAM), "raw": (socket.SOCK_RAW,), "dgram": (socket.SOCK_DGRAM,)}
    last: OSError | None = None
    for kind in kinds.get(mode, ()):
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            last = exc
            continue
        try:
            _set_up(sock, target, raw=kind == socket.SOCK_RAW, v6=v6)
        except OSError as exc:
            sock.close()
            raise PingSocketError(f"cannot set up ICMP socket: {_reason(exc)}") from exc
        return sock, kind == socket.SOCK_RAW
    hint = " (not root, and net.ipv4.ping_group_range excludes our group?)" if last and last.errno in (
        errno.EPERM, errno.EACCES) else ""
    raise PingSocketError(f"cannot open an ICMP socket: {_reason(last) if last else 'unknown mode ' + mode}{hint}")


def _set_up(sock: socket.socket, target: Target, *, raw: bool, v6: bool) -> None:
    """bindto / bind_if / fwmark as every checker has them, and for a raw socket a filter on the ICMP types."""
    sock.setblocking(False)
    if target.fwmark:
        sock.setsockopt(socket.SOL_SOCKET, SO_MARK, target.fwmark)
    if target.bind_if:
        sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, target.bind_if.encode())
    if target.bind_address is not None:
        sock.bind(sockaddr(Target(target.bind_address, 0, target.connect_timeout_s, bind_if=target.bind_if), 0))
    if raw:
        if v6:
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER,
                            icmp6_filter((ICMP6_ECHO_REPLY, ICMP6_DEST_UNREACH, ICMP6_TIME_EXCEEDED)))
        else:
            sock.setsockopt(SOL_RAW, ICMP_FILTER, icmp_filter((ICMP_ECHO_REPLY, ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED)))


def icmp_filter(passed: tuple[int, ...]) -> bytes:
    """struct icmp_filter: a 32-bit mask of the ICMP types (< 32) to drop."""
    mask = 0xFFFFFFFF
    for kind in passed:
        mask &= ~(1 << kind)
    return struct.pack("=I", mask)


def icmp6_filter(passed: tuple[int, ...]) -> bytes:
    """struct icmp6_filter: 256 bits, one per ICMPv6 type, set = drop (as ICMP6_FILTER_SETPASS clears them)."""
    words = [0xFFFFFFFF] * 8
    for kind in passed:
        words[kind >> 5] &= ~(1 << (kind & 31))
    return struct.pack("=8I", *words)


def _reason(exc: OSError) -> str:
    if exc.errno is not None:
        return f"{errno.errorcode.get(exc.errno, str(exc.errno))}: {os.strerror(exc.errno)}"
    return str(exc) or type(exc).__name__


def make_probe(checker: CheckerBase, target: Target, ctx: object) -> PingProbe:
    return PingProbe(target)
