"""The runtime API's routes (drain, weight, take out, maintenance): registered on the API's application.

Each route turns the request into a command for one child (state/commands.py:
"checker" for virtual and real servers, "vrrp" for instances), waits for
its reply and answers JSON {"ok": bool, "message": str} with the HTTP status
the child chose (200, 400 bad weight, 404 unknown name) or 503 when the
child is not running or does not answer. Every request that reaches a
child is logged with who asked (the peer's uid on the unix socket, "token"
on TCP), what, and the result, and goes into the state's event timeline
(kind "runtime"). Authentication is the server's (api/server.py); when the
API's settings say the runtime API is off, every route answers 403.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..state.commands import CommandError, CommandSender
from ..state.store import StateStore

log = logging.getLogger("pykeepalived")

COMMAND_TIMEOUT_S = 6.0  # a checker command waits up to 3 s for the data plane (check/runtime_apply.py)
MAX_WEIGHT = 65535
Route = Callable[[web.Request], Awaitable[web.Response]]


def who(request: web.Request) -> str:
    """Who asked: "uid N" on a unix socket (SO_PEERCRED), "token" on TCP (the bearer token was checked)."""
    sock = request.transport.get_extra_info("socket") if request.transport is not None else None
    if sock is not None and getattr(sock, "family", None) == socket.AF_UNIX:  # asyncio's TransportSocket
        try:
            _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                  struct.calcsize("3i")))
            return f"uid {uid}"
        except OSError:
            return "unix socket"
    return "token"


def runtime_enabled(settings: Any) -> bool:
    """No settings: the caller registered the routes on purpose (--api-runtime); else its `runtime` flag."""
    return settings is None or bool(getattr(settings, "runtime", False))


async def _weight_of(request: web.Request) -> int:
    """The body's {"weight": N}, N in 0..65535 (web.HTTPBadRequest otherwise)."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _error(400, 'the body must be JSON {"weight": N}') from None
    value = body.get("weight") if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error(400, f'the body must be JSON {{"weight": N}} with N an integer 0..{MAX_WEIGHT}, not {value!r}')
    if not 0 <= value <= MAX_WEIGHT:
        raise _error(400, f"weight {value} is out of range 0..{MAX_WEIGHT}")
    return value


def _error(status: int, message: str) -> web.HTTPException:
    body = json.dumps({"ok": False, "message": message})
    classes: dict[int, type[web.HTTPException]] = {400: web.HTTPBadRequest, 403: web.HTTPForbidden,
                                                    404: web.HTTPNotFound, 503: web.HTTPServiceUnavailable}
    return classes.get(status, web.HTTPConflict)(text=body, content_type="application/json")


class RuntimeRoutes:
    """The handlers, bound to the parent's command sender and state store."""

    def __init__(self, commands: CommandSender, store: StateStore, settings: Any = None) -> None:
        self.commands = commands
        self.store = store
        self.settings = settings

    async def run(self, request: web.Request, child: str, command: dict[str, Any], subject: str,
                  what: str) -> web.Response:
        if not runtime_enabled(self.settings):
            raise _error(403, "the runtime API is not enabled (--api-runtime, docs/runtime-api.md)")
        asker = who(request)
        try:
            reply = await self.commands.send(child, {**command, "who": asker}, COMMAND_TIMEOUT_S)
        except CommandError as exc:
            ok, message, status = False, str(exc), 503
        else:
            ok, message = bool(reply.get("ok")), str(reply.get("message", ""))
            code = reply.get("code")
            status = code if isinstance(code, int) and 200 <= code < 600 else (200 if ok else 409)
        line = f"{what} by {asker}: {'done' if ok else 'refused'}: {message}"
        (log.info if ok else log.warning)("runtime API: %s", line)
        self.store.add_event({"at": time.time(), "kind": "runtime", "subject": subject, "text": line})
        return web.json_response({"ok": ok, "message": message}, status=status)

    async def drain(self, request: web.Request) -> web.Response:
        vs, rs = request.match_info["vs"], request.match_info["rs"]
        return await self.run(request, "checker", {"op": "drain", "vs": vs, "rs": rs}, f"{vs} {rs}",
                              f"drain {rs} of {vs}")

    async def undrain(self, request: web.Request) -> web.Response:
        vs, rs = request.match_info["vs"], request.match_info["rs"]
        return await self.run(request, "checker", {"op": "undrain", "vs": vs, "rs": rs}, f"{vs} {rs}",
                              f"undrain {rs} of {vs}")

    async def weight(self, request: web.Request) -> web.Response:
        vs, rs = request.match_info["vs"], request.match_info["rs"]
        if not runtime_enabled(self.settings):
            raise _error(403, "the runtime API is not enabled (--api-runtime, docs/runtime-api.md)")
        n = await _weight_of(request)
        return await self.run(request, "checker", {"op": "weight", "vs": vs, "rs": rs, "weight": n}, f"{vs} {rs}",
                              f"weight {n} for {rs} of {vs}")

    async def out(self, request: web.Request) -> web.Response:
        vs = request.match_info["vs"]
        return await self.run(request, "checker", {"op": "out", "vs": vs}, vs, f"take {vs} out")

    async def back_in(self, request: web.Request) -> web.Response:
        vs = request.match_info["vs"]
        return await self.run(request, "checker", {"op": "in", "vs": vs}, vs, f"put {vs} back in")

    async def maintenance(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return await self.run(request, "vrrp", {"op": "maintenance", "instance": name}, name,
                              f"maintenance of {name}")

    async def resume(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return await self.run(request, "vrrp", {"op": "resume", "instance": name}, name, f"resume {name}")


def register(app: Any, commands: CommandSender, store: StateStore, settings: Any = None) -> None:
    """Add the runtime routes to `app` (an aiohttp web.Application).

    `settings`, when given, is the API's settings: its `runtime` flag off
    makes every route answer 403 (the routes exist, so that a client learns
    why rather than getting 404).
    """
    routes = RuntimeRoutes(commands, store, settings)
    rs_base = "/api/v1/virtual-servers/{vs}/real-servers/{rs}"
    app.router.add_post(f"{rs_base}/drain", routes.drain)
    app.router.add_post(f"{rs_base}/undrain", routes.undrain)
    app.router.add_post(f"{rs_base}/weight", routes.weight)
    app.router.add_post("/api/v1/virtual-servers/{vs}/out", routes.out)
    app.router.add_post("/api/v1/virtual-servers/{vs}/in", routes.back_in)
    app.router.add_post("/api/v1/vrrp/instances/{name}/maintenance", routes.maintenance)
    app.router.add_post("/api/v1/vrrp/instances/{name}/resume", routes.resume)
