"""The child's end of the runtime API's command socket (`--command-fd N`; daemon/command_channel.py).

Reads JSON lines {"id": N, "op": ..., ...} from the parent, hands each to
the service's handler (vrrp/runtime_apply.py or check/runtime_apply.py) in
order, one at a time, on the child's own event loop (so a command acts
between two inputs of the service, never inside one), and writes
{"event": "reply", "id": N, "ok": ..., "message": ..., "code": ...} back.
A line that is not a command gets a refusal when it has an id, else is
dropped; a handler that raises answers "failed" and is logged: a bad
command never stops the service. A child started without the socket
(-P/-C alone, tests) serves no commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("pykeepalived")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_LINE_BYTES = 64 * 1024


def parse_command(line: bytes) -> tuple[int | None, dict[str, Any] | None, str]:
    """(id, command, why not): a command is a JSON object with an integer id and a string op."""
    try:
        msg = json.loads(line)
    except ValueError as exc:
        return None, None, f"not JSON: {exc}"
    if not isinstance(msg, dict):
        return None, None, "not a JSON object"
    ident = msg.get("id")
    if not isinstance(ident, int) or isinstance(ident, bool):
        return None, None, "no integer id"
    if not isinstance(msg.get("op"), str):
        return ident, None, "no op"
    return ident, msg, ""


class CommandServer:
    """Serves one command socket until closed."""

    def __init__(self, fd: int, handler: Handler, what: str) -> None:
        self.fd = fd
        self.handler = handler
        self.what = what  # "VRRP" or "checker", for the log
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    def start(self) -> None:
        if self.fd < 0:
            return
        os.set_inheritable(self.fd, False)  # scripts the child runs must not hold the parent's socket
        self._sock = socket.socket(fileno=self.fd)
        self._sock.setblocking(False)
        self._task = asyncio.get_running_loop().create_task(self._serve(self._sock))

    async def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        pending = b""
        while True:
            try:
                data = await loop.sock_recv(sock, 65536)
            except OSError as exc:
                log.debug("%s command socket: %s", self.what, exc)
                return
            if not data:
                return  # the parent is gone; the child dies with it (daemon/lifeline.py)
            pending += data
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                if line.strip():
                    await self._one(sock, line)
            if len(pending) > MAX_LINE_BYTES:
                log.warning("%s command line over %d bytes dropped", self.what, MAX_LINE_BYTES)
                pending = b""

    async def _one(self, sock: socket.socket, line: bytes) -> None:
        ident, command, why = parse_command(line)
        if command is None:
            log.warning("%s: runtime command dropped (%s)", self.what, why)
            if ident is None:
                return
            reply: dict[str, Any] = {"ok": False, "message": f"bad command: {why}", "code": 400}
        else:
            try:
                reply = await self.handler(command)
            except Exception as exc:  # a bug in one command must not stop VRRP or the checkers
                log.exception("%s: runtime command %s failed", self.what, command.get("op"))
                reply = {"ok": False, "message": f"{command.get('op')} failed: {exc}", "code": 500}
        out = {"event": "reply", "id": ident, "ok": bool(reply.get("ok")), "message": str(reply.get("message", "")),
               "code": int(reply.get("code", 200 if reply.get("ok") else 409))}
        try:
            await asyncio.get_running_loop().sock_sendall(sock, (json.dumps(out) + "\n").encode())
        except OSError as exc:
            log.debug("%s command reply not sent: %s", self.what, exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def serve_commands(fd: int, handler: Handler, what: str) -> CommandServer:
    """Start serving (nothing without a socket); `await server.close()` when the service stopped."""
    server = CommandServer(fd, handler, what)
    server.start()
    return server
