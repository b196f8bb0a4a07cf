"""Sending and receiving on a bare non-blocking socket with deadlines, at the event loop's lowest cost.

HTTP_GET (without TLS) is the second most common checker; through asyncio's
streams one attempt builds a transport, a protocol, a reader, a writer and a
timeout object per phase, which at a thousand checks a second is most of the
checker's CPU. These helpers try the system call first and only wait (one
future, one timer) when it would block.
"""

from __future__ import annotations

import asyncio
import socket


class SocketTimeout(Exception):
    """The peer did not make progress within the deadline."""


def _wake(waiter: asyncio.Future[bool], ready: bool) -> None:
    if not waiter.done():
        waiter.set_result(ready)


async def _wait(sock: socket.socket, timeout_s: float, *, write: bool) -> None:
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[bool] = loop.create_future()
    fd = sock.fileno()
    (loop.add_writer if write else loop.add_reader)(fd, _wake, waiter, True)
    timer = loop.call_later(timeout_s, _wake, waiter, False)
    try:
        ready = await waiter
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)
        timer.cancel()
    if not ready:
        raise SocketTimeout()


async def send_all(sock: socket.socket, data: bytes, timeout_s: float) -> None:
    """Send everything; SocketTimeout if the peer stops taking data for `timeout_s`."""
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            await _wait(sock, timeout_s, write=True)
            continue
        view = view[sent:]


async def recv_to_eof(sock: socket.socket, first_timeout_s: float, rest_timeout_s: float, limit: int) -> bytes:
    """Everything until the peer closes: the first bytes within one timeout, all the rest within another.

    The second is one deadline for the whole rest, so a server trickling a
    byte at a time cannot hold a check forever. Returns what was read when
    `limit` is passed (the caller decides); OSError from the socket propagates.
    """
    loop = asyncio.get_running_loop()
    chunks: list[bytes] = []
    size = 0
    deadline: float | None = None
    while True:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            left = first_timeout_s if deadline is None else deadline - loop.time()
            if left <= 0:
                raise SocketTimeout() from None
            await _wait(sock, left, write=False)
            continue
        if not chunk:
            return b"".join(chunks)
        if deadline is None:
            deadline = loop.time() + rest_timeout_s
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)
