"""The parent's end of the runtime API's command sockets: one per VRRP or checker child (state/commands.py).

Each life of a child gets a fresh AF_UNIX socket pair: the parent keeps one
end, the child gets the other as `--command-fd N` (pass_fds; the parent
closes its copy after the spawn). Commands go down as JSON lines
`{"id": 7, "op": "drain", ...}`, replies come back as
`{"event": "reply", "id": 7, "ok": true, "message": "...", "code": 200}`
(daemon/command_server.py is the child's end). A socket of its own rather
than the report pipe: replies are matched to requests by id, the report
pipe stays one-way, and a command never waits behind a reload's report.

`ChildCommandSender` is the `CommandSender` the API's runtime routes use
(`Supervisor.commands`): it finds the child by the contract's name ("vrrp",
"checker") and raises `CommandError` when that child is not running, died
during the command, or did not answer in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Sequence
from typing import Any, Protocol

from ..state.commands import CommandError

log = logging.getLogger("pykeepalived")

MAX_LINE_BYTES = 64 * 1024
CHILD_NAMES = {"vrrp": "VRRP", "checker": "Healthcheck"}  # the contract's names -> the supervisor's Child.name


class ReplyBuffer:
    """Bytes in, replies out: whole JSON lines with an id; anything else is dropped (a child cannot upset us)."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self.pending += data
        out: list[dict[str, Any]] = []
        while b"\n" in self.pending:
            line, _, self.pending = self.pending.partition(b"\n")
            try:
                msg = json.loads(line)
            except ValueError:
                log.debug("command reply dropped: %r", line[:200])
                continue
            if isinstance(msg, dict) and msg.get("event") == "reply" and isinstance(msg.get("id"), int):
                out.append(msg)
        if len(self.pending) > MAX_LINE_BYTES:
            self.pending = b""
        return out


class CommandChannel:
    """One child's command socket across its lives."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._sock: socket.socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._lock = asyncio.Lock()  # one command at a time per child: the child answers in order anyway

    def new_life(self) -> int:
        """A fresh socket pair for a child about to start: returns the child's end for pass_fds (close it after)."""
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setblocking(False)
        self._sock = ours
        self._reader = asyncio.get_running_loop().create_task(self._read(ours))
        return theirs.detach()

    async def _read(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        buffer = ReplyBuffer()
        try:
            while True:
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    break
                for reply in buffer.feed(data):
                    future = self._pending.pop(reply["id"], None)
                    if future is not None and not future.done():
                        future.set_result(reply)
        except OSError as exc:
            log.debug("%s command socket: %s", self.name, exc)
        finally:
            if self._sock is sock:
                self._drop(f"the {self.name} child process ended before it answered")

    def _drop(self, why: str) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(CommandError(why))
        self._pending.clear()

    @property
    def open(self) -> bool:
        return self._sock is not None

    async def send(self, command: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        async with self._lock:
            sock = self._sock
            if sock is None:
                raise CommandError(f"the {self.name} child process is not running")
            self._next_id += 1
            ident = self._next_id
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending[ident] = future
            line = (json.dumps({**command, "id": ident}, separators=(",", ":")) + "\n").encode()
            try:
                await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(sock, line), timeout_s)
                return await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                raise CommandError(f"the {self.name} child process did not answer within {timeout_s:g} s") from None
            except OSError as exc:
                raise CommandError(f"the {self.name} child process cannot be reached: {exc}") from None
            finally:
                self._pending.pop(ident, None)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        self._drop(f"the {self.name} child process was restarted")


def attach(channel: CommandChannel | None, argv: list[str], fds: list[int]) -> int:
    """Give a child about to start its command socket (`--command-fd`); the fd to close after the spawn, or -1."""
    if channel is None:
        return -1
    fd = channel.new_life()
    argv += ["--command-fd", str(fd)]
    fds.append(fd)
    return fd


class HasChannel(Protocol):
    """What the sender needs of a supervisor's Child (daemon/supervisor.py imports this module, not the reverse)."""

    @property
    def name(self) -> str: ...
    @property
    def commands(self) -> CommandChannel | None: ...


class ChildCommandSender:
    """`CommandSender` over the children's command sockets; `children` is the supervisor's list (changes in place)."""

    def __init__(self, children: Sequence[HasChannel]) -> None:
        self.children = children

    async def send(self, child: str, command: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
        wanted = CHILD_NAMES.get(child, child)
        for c in self.children:
            if c.name == wanted and c.commands is not None:
                return await c.commands.send(command, timeout_s)
        raise CommandError(f"no {child} child process: the configuration has none")


def close_quietly(fd: int) -> None:
    """The parent's copy of a child's end, once the child has it."""
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)
