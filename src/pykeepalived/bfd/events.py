"""BFD session state from the BFD process to the VRRP and checker processes.

keepalived's bfd child writes an event to a pipe per process on each Up and
each Down of a session. Ours sends one datagram per event over an abstract
unix socket (no file to create or clean up; it lives in the daemon's network
namespace) named after the parent process, so that two daemons never hear
each other:

    @pykeepalived-bfd/PARENT_PID/bfd       the BFD process
    @pykeepalived-bfd/PARENT_PID/vrrp      the VRRP process
    @pykeepalived-bfd/PARENT_PID/checker   the checker process

A datagram is one JSON object: `{"name": NAME, "up": BOOL}` for an event,
`{"hello": ROLE}` from a process that has just started, which the BFD process
answers with the state of every session that process follows: a VRRP or
checker child that was restarted learns the sessions that are already Up.
As keepalived's bfd process does when it starts (bfd_register_workers), ours
also sends every session's state (Down) once its sessions have started. A
process that is not running misses a datagram; keepalived's pipes would hold
it, which the hello's answer makes up for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import Literal

log = logging.getLogger("pykeepalived.bfd")

Role = Literal["vrrp", "checker"]
MAX_DATAGRAM = 4096


def address(parent_pid: int, role: str) -> str:
    """The abstract socket name of `role` ("bfd", "vrrp", "checker") under the daemon whose parent is `parent_pid`."""
    return f"\0pykeepalived-bfd/{parent_pid}/{role}"


def encode_event(name: str, up: bool) -> bytes:
    return json.dumps({"name": name, "up": up}).encode()


def decode(data: bytes) -> dict[str, object] | None:
    """A datagram's object, or None if it is not one of ours."""
    try:
        msg = json.loads(data)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def send_to(sock: socket.socket, target: str | bytes, data: bytes) -> bool:
    """Send one datagram; False if nobody listens there (not running, or its queue is full)."""
    try:
        sock.sendto(data, target)
        return True
    except OSError:
        return False


def open_socket(name: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        sock.bind(name)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def session_events(parent_pid: int, role: Role) -> AsyncIterator[tuple[str, bool]]:
    """(session name, up) for each event the BFD process sends to `role`, starting with its hello's answer.

    The hello is repeated every few seconds until the BFD process answers, so
    that whichever of the two processes starts first, the state arrives.
    """
    loop = asyncio.get_running_loop()
    sock = open_socket(address(parent_pid, role))
    bfd = address(parent_pid, "bfd")
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while True:
                queue.put_nowait(sock.recv(MAX_DATAGRAM))

    loop.add_reader(sock.fileno(), readable)
    hello = json.dumps({"hello": role}).encode()
    answered = False
    try:
        while True:
            if not answered:
                send_to(sock, bfd, hello)
                try:
                    data = await asyncio.wait_for(queue.get(), 2.0)
                except TimeoutError:
                    continue
                answered = True
            else:
                data = await queue.get()
            msg = decode(data)
            if msg is None:
                continue
            if msg.get("ready"):
                answered = True
                continue
            name, up = msg.get("name"), msg.get("up")
            if isinstance(name, str) and isinstance(up, bool):
                yield name, up
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
