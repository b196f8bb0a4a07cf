"""The parent's end of the runtime API's command sockets: one per VRRP or checker child (state/commands.py).

Each life of a child gets a fresh AF_UNIX socket pair: the parent keeps one
end, the child gets the other as `--command-fd N` (pass_fds; the parent
closes its copy after the spawn). Commands go down as JSON lines
`{"id": 7, "op": "drain", ...}`, replies come back as
`{"event": "reply", "id": 7, "ok": true, "message": "...", "code": 200}`
(daemon/command_server.py is the child's end). A socket of its own rather
than the report pipe: replies are matched to requests by id, the report
pipe stays one-way, and a command never waits behind a reload's report.

The channel keeps a journal of the changes each child accepted: a child
that dies and is respawned starts from its configuration, so the channel
gives its new life the same changes again, in order (a drained server does
not take traffic again because its checker crashed). The journal lives in
the parent's memory only: a restart of the whole daemon starts clean.

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
REPLAY_TIMEOUT_S = 60.0  # a new child answers once its service runs (its first table applied, its instances started)
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


UNDO = {"undrain": ("drain", "weight", "undrain"), "in": ("out", "in"), "resume": ("maintenance", "resume")}
MAX_JOURNAL = 10_000


def _target(command: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(command.get(k) for k in ("vs", "rs", "instance"))


class Journal:
    """The changes a child accepted, in order, so that its next life (a respawn) gets them again.

    Pure. An undo (undrain, in, resume) drops the earlier entries for the same
    names instead of growing the list; an undo spelled differently from its
    change (another spelling of the same server) is kept, and replaying both
    in order still ends where the child was.
    """

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def record(self, command: dict[str, Any]) -> None:
        op = command.get("op")
        entry = {k: v for k, v in command.items() if k not in ("id", "who")}
        if op in UNDO:
            before = len(self.entries)
            self.entries = [e for e in self.entries
                            if not (e.get("op") in UNDO[str(op)] and _target(e) == _target(entry))]
            if len(self.entries) < before:
                return
        self.entries.append(entry)
        del self.entries[:-MAX_JOURNAL]


class CommandChannel:
    """One child's command socket across its lives; a new life gets the accepted changes again (Journal)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.journal = Journal()
        self._sock: socket.socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._replay: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._lock = asyncio.Lock()  # one command at a time per child: the child answers in order anyway

    def new_life(self) -> int:
        """A fresh socket pair for a child about to start: returns the child's end for pass_fds (close it after)."""
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setblocking(False)
        self._sock = ours
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read(ours))
        if self.journal.entries:
            self._replay = loop.create_task(self._replay_journal(list(self.journal.entries)))
        return theirs.detach()

    async def _replay_journal(self, entries: list[dict[str, Any]]) -> None:
        """A respawned child starts from its configuration: give it the runtime changes it had (in order)."""
        log.info("runtime API: giving the new %s child process its %d runtime change(s) again", self.name,
                 len(entries))
        for entry in entries:
            try:
                reply = await self.send({**entry, "who": "replay"}, REPLAY_TIMEOUT_S, record=False)
            except CommandError as exc:
                log.warning("runtime API: %s not given again to the %s child: %s", entry.get("op"), self.name, exc)
                return
            if not reply.get("ok"):
                log.warning("runtime API: the new %s child refused %s again: %s", self.name, entry.get("op"),
                            reply.get("message"))

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

    async def send(self, command: dict[str, Any], timeout_s: float, record: bool = True) -> dict[str, Any]:
        reply = await self._send(command, timeout_s)
        if record and reply.get("ok"):
            self.journal.record(command)
        return reply

    async def _send(self, command: dict[str, Any], timeout_s: float) -> dict[str, Any]:
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
        for task in (self._reader, self._replay):
            if task is not None:
                task.cancel()
        self._reader = self._replay = None
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
