"""Opening a checker's connection: keepalived's bindto / bind_port / bind_if / fwmark, with a timeout.

Every stream checker (TCP, HTTP, SSL, SMTP) connects through `open_stream` so
that the bind options mean the same everywhere and a connect that hangs ends
at connect_timeout. The socket is non-blocking from the start: a connect never
blocks the event loop, however many run at once.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from typing import TYPE_CHECKING

from .probe import Target

if TYPE_CHECKING:  # imported where used: `-t` builds probes without loading asyncio and ssl (bench/startup.py)
    import asyncio
    import ssl as ssl_module

SO_MARK = getattr(socket, "SO_MARK", 36)
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


class ConnectFailed(Exception):
    """The connection could not be opened; the message is the reason for the log."""


def make_socket(target: Target, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A non-blocking socket of the target's family with the checker's bind options applied."""
    family = socket.AF_INET6 if target.address.version == 6 else socket.AF_INET
    proto = socket.IPPROTO_UDP if kind == socket.SOCK_DGRAM else 0
    try:
        sock = socket.socket(family, kind, proto)
    except OSError as exc:  # EMFILE/ENFILE under load: a failed attempt, not a dead checker
        raise ConnectFailed(f"cannot create checker socket: {exc.strerror or exc}") from exc
    try:
        sock.setblocking(False)
        if target.fwmark:
            sock.setsockopt(socket.SOL_SOCKET, SO_MARK, target.fwmark)
        if target.bind_if:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, target.bind_if.encode())
        if target.bind_address is not None or target.bind_port:
            any_ip = "::" if family == socket.AF_INET6 else "0.0.0.0"
            bind_ip = str(target.bind_address) if target.bind_address is not None else any_ip
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((bind_ip, target.bind_port or 0))
    except OSError as exc:
        sock.close()
        raise ConnectFailed(f"cannot bind checker socket: {exc.strerror or exc}") from exc
    return sock


def sockaddr(target: Target, port: int | None = None) -> tuple[str, int] | tuple[str, int, int, int]:
    p = port if port is not None else (target.port or 0)
    if target.address.version == 6:
        scope = socket.if_nametoindex(target.bind_if) if target.bind_if and target.address.is_link_local else 0
        return (str(target.address), p, 0, scope)
    return (sys.intern(str(target.address)), p)  # probes keep it: one string per host, not per server


async def connect_socket(target: Target) -> socket.socket:
    """A connected TCP socket, or ConnectFailed (refused, unreachable, timed out).

    Written against the loop's primitives rather than `loop.sock_connect`
    inside `asyncio.timeout`: at thousands of checks a second the address
    re-resolution and the extra future and timeout objects of that path cost
    more than the connect itself.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    sock = make_socket(target)
    try:
        code = sock.connect_ex(sockaddr(target))
        if code == errno.EINPROGRESS:
            waiter = loop.create_future()
            fd = sock.fileno()
            loop.add_writer(fd, _wake, waiter, True)
            timer = loop.call_later(target.connect_timeout_s, _wake, waiter, False)
            try:
                connected = await waiter
            finally:
                loop.remove_writer(fd)
                timer.cancel()
            if not connected:
                raise ConnectFailed("connection timed out")
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise ConnectFailed(f"{errno.errorcode.get(code, str(code))}: {os.strerror(code)}")
    except ConnectFailed:
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        raise ConnectFailed(_reason(exc)) from None
    except BaseException:
        sock.close()
        raise
    return sock


def _wake(waiter: asyncio.Future[bool], connected: bool) -> None:
    if not waiter.done():
        waiter.set_result(connected)


async def open_stream(
    target: Target,
    tls: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Streams over a connected socket (TLS handshake included, within connect_timeout).

    The handshake's deadline is asyncio's own `ssl_handshake_timeout`, not a
    timeout around the call: cancelling from outside only starts a TLS
    shutdown and leaves the TCP transport open on the socket, and once we had
    closed that socket its descriptor number came back for the next check
    while the old transport still claimed it ("File descriptor N is used by
    transport": a healthy server failed). asyncio's timeout aborts the
    transport instead. A connected plain socket needs no deadline here.
    """
    import asyncio

    sock = await connect_socket(target)
    try:
        return await asyncio.open_connection(
            # with a bare socket asyncio needs a name; "" means "send no SNI"
            sock=sock, ssl=tls, server_hostname=(server_hostname or "") if tls is not None else None,
            ssl_handshake_timeout=target.connect_timeout_s if tls is not None else None,
        )
    except ConnectionAbortedError as exc:
        sock.close()
        if tls is not None and "handshake" in str(exc):
            raise ConnectFailed("TLS handshake timed out") from None
        raise ConnectFailed(_reason(exc)) from None
    except OSError as exc:  # ssl.SSLError is an OSError; ssl is only imported when there is TLS
        sock.close()
        if tls is not None and isinstance(exc, _ssl_error()):
            raise ConnectFailed(f"TLS error: {getattr(exc, 'reason', None) or exc}") from None
        raise ConnectFailed(_reason(exc)) from None
    except BaseException:
        # cancelled (a reload or a stop replacing the check): with TLS, asyncio's transport may own the socket
        # already and be shutting TLS down for up to 30 s; closing it here would free the descriptor number
        # under that transport and make the next check's socket unusable ("File descriptor N is used by
        # transport"). The transport closes it; a socket no transport took is closed when collected.
        if tls is None:
            sock.close()
        raise


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close without waiting on a peer that may hang (abort after a short grace)."""
    import asyncio

    writer.close()
    try:
        async with asyncio.timeout(0.5):
            await writer.wait_closed()
    except (TimeoutError, OSError):  # ssl.SSLError included: it is an OSError
        transport = writer.transport
        transport.abort()


def _ssl_error() -> type[OSError]:
    """ssl.SSLError, imported only once a TLS connection was asked for (a checker without TLS never loads it)."""
    import ssl as ssl_module

    return ssl_module.SSLError


def _reason(exc: OSError) -> str:
    if exc.errno is not None:
        return f"{errno.errorcode.get(exc.errno, str(exc.errno))}: {os.strerror(exc.errno)}"
    return str(exc) or type(exc).__name__
