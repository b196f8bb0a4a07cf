"""The runtime API's plumbing without processes: the command socket both ways, the routes, ctl's parts.

The socket pair is real (both ends in one event loop); the routes run on a
real aiohttp server with a CommandSender that answers from a table.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pykeepalived.api import runtime_routes
from pykeepalived.ctl import build_parser, ctl_main, route, status_exit
from pykeepalived.daemon.command_channel import ChildCommandSender, CommandChannel, Journal, ReplyBuffer
from pykeepalived.daemon.command_server import parse_command, serve_commands
from pykeepalived.state.commands import CommandError
from pykeepalived.state.store import StateStore


@dataclass
class _Child:
    name: str
    commands: CommandChannel | None


def test_a_command_goes_down_the_socket_and_its_reply_comes_back() -> None:
    async def main() -> None:
        seen: list[dict[str, Any]] = []

        async def handler(command: dict[str, Any]) -> dict[str, Any]:
            seen.append(command)
            if command["op"] == "boom":
                raise RuntimeError("bug")
            return {"ok": True, "message": f"did {command['op']}", "code": 200}

        channel = CommandChannel("VRRP")
        fd = channel.new_life()
        server = serve_commands(fd, handler, "VRRP")
        sender = ChildCommandSender([_Child("VRRP", channel)])
        reply = await sender.send("vrrp", {"op": "maintenance", "instance": "RH_1"}, 2.0)
        assert (reply["ok"], reply["message"], reply["code"]) == (True, "did maintenance", 200)
        assert seen[0]["instance"] == "RH_1"
        failed = await sender.send("vrrp", {"op": "boom"}, 2.0)
        assert (failed["ok"], failed["code"]) == (False, 500)
        with pytest.raises(CommandError, match="no checker child"):
            await sender.send("checker", {"op": "drain"}, 1.0)
        await server.close()  # the child is gone: a command now says so at once
        await asyncio.sleep(0.05)
        with pytest.raises(CommandError, match="VRRP child process"):
            await sender.send("vrrp", {"op": "resume"}, 1.0)
        channel.close()

    asyncio.run(main())


def test_a_child_that_does_not_answer_times_out() -> None:
    async def main() -> None:
        async def slow(command: dict[str, Any]) -> dict[str, Any]:
            await asyncio.sleep(5)
            return {}

        channel = CommandChannel("Healthcheck")
        server = serve_commands(channel.new_life(), slow, "checker")
        with pytest.raises(CommandError, match="did not answer within 0.2 s"):
            await ChildCommandSender([_Child("Healthcheck", channel)]).send("checker", {"op": "drain"}, 0.2)
        await server.close()
        channel.close()

    asyncio.run(main())


def test_garbage_lines_are_refused_or_dropped() -> None:
    assert parse_command(b"not json")[1] is None
    assert parse_command(b'{"op": "x"}')[0] is None
    assert parse_command(b'{"id": 3}') == (3, None, "no op")
    assert ReplyBuffer().feed(b'{"event":"reply","id":1,"ok":true}\nxx\n{"id":2}\n') == \
        [{"event": "reply", "id": 1, "ok": True}]


class _Sender:
    def __init__(self, reply: dict[str, Any] | None) -> None:
        self.reply = reply
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def send(self, child: str, command: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
        self.sent.append((child, command))
        if self.reply is None:
            raise CommandError("the VRRP child process is not running")
        return self.reply


@dataclass
class _Settings:
    runtime: bool


async def _post(sender: _Sender, path: str, body: Any = None, settings: Any = None,
                store: StateStore | None = None) -> tuple[int, dict[str, Any]]:
    app = web.Application()
    runtime_routes.register(app, sender, store or StateStore(), settings)
    async with TestClient(TestServer(app)) as client:
        response = await client.post(path, json=body)
        return response.status, json.loads(await response.text())


VS = "/api/v1/virtual-servers/TCP%20203.0.113.10%3A80"


def test_routes_send_the_decoded_names_to_the_right_child_and_log_an_event() -> None:
    sender = _Sender({"ok": True, "message": "drained", "code": 200})
    store = StateStore()
    status, body = asyncio.run(_post(sender, f"{VS}/real-servers/10.11.12.2%3A80/drain", store=store))
    assert (status, body) == (200, {"ok": True, "message": "drained"})
    child, command = sender.sent[0]
    assert child == "checker" and command["op"] == "drain"
    assert (command["vs"], command["rs"]) == ("TCP 203.0.113.10:80", "10.11.12.2:80")
    event = store.snapshot()["events"][-1]
    assert event["kind"] == "runtime" and "drain 10.11.12.2:80" in event["text"] and "done" in event["text"]
    asyncio.run(_post(sender, "/api/v1/vrrp/instances/RH_1/maintenance"))
    assert sender.sent[-1] == ("vrrp", {"op": "maintenance", "instance": "RH_1", "who": "token"})


def test_route_statuses() -> None:
    weight = f"{VS}/real-servers/10.11.12.2%3A80/weight"
    assert asyncio.run(_post(_Sender(None), f"{VS}/out"))[0] == 503
    assert asyncio.run(_post(_Sender({"ok": False, "message": "no such", "code": 404}), f"{VS}/in"))[0] == 404
    assert asyncio.run(_post(_Sender({}), weight, {"weight": 65536}))[0] == 400
    assert asyncio.run(_post(_Sender({}), weight, {"weight": "1"}))[0] == 400
    assert asyncio.run(_post(_Sender({}), weight, [1]))[0] == 400
    off = _Sender({"ok": True})
    assert asyncio.run(_post(off, f"{VS}/out", settings=_Settings(runtime=False)))[0] == 403
    assert asyncio.run(_post(off, weight, {"weight": 1}, settings=_Settings(runtime=False)))[0] == 403
    assert off.sent == []
    on = _Sender({"ok": True, "message": "set", "code": 200})
    assert asyncio.run(_post(on, weight, {"weight": 5}, settings=_Settings(runtime=True)))[0] == 200
    assert on.sent[0][1]["weight"] == 5


def test_ctl_paths_and_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    p = build_parser()
    assert route(p.parse_args(["drain", "TCP 203.0.113.10:80", "10.11.12.2:80"])) == \
        (f"{VS}/real-servers/10.11.12.2%3A80/drain", None)
    assert route(p.parse_args(["weight", "FWM 80", "10.11.12.2", "9"])) == \
        ("/api/v1/virtual-servers/FWM%2080/real-servers/10.11.12.2/weight", {"weight": 9})
    assert route(p.parse_args(["resume", "RH_1"])) == ("/api/v1/vrrp/instances/RH_1/resume", None)
    assert [status_exit(s) for s in (200, 400, 401, 403, 404, 409, 503)] == [0, 2, 5, 5, 4, 1, 3]
    assert ctl_main(["weight", "V", "R", "-1"]) == 2
    assert ctl_main(["frobnicate"]) == 2
    assert ctl_main(["--api", "ftp://x", "state"]) == 2
    assert ctl_main(["--api", "unix:/nonexistent/api.sock", "state"]) == 3
    assert ctl_main(["--token-file", "/nonexistent", "state"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not running at unix:/nonexistent/api.sock" in err


def test_the_journal_keeps_what_a_new_child_needs_in_order() -> None:
    j = Journal()
    j.record({"op": "drain", "vs": "V", "rs": "A", "id": 1, "who": "uid 0"})
    j.record({"op": "weight", "vs": "V", "rs": "B", "weight": 3})
    j.record({"op": "maintenance", "instance": "RH_1"})
    j.record({"op": "undrain", "vs": "V", "rs": "A"})
    j.record({"op": "resume", "instance": "RH_1"})
    assert j.entries == [{"op": "weight", "vs": "V", "rs": "B", "weight": 3}]
    j.record({"op": "in", "vs": "W"})  # nothing to undo under that spelling: kept, harmless in order
    assert j.entries[-1] == {"op": "in", "vs": "W"}


def test_a_respawned_child_gets_the_accepted_changes_again() -> None:
    async def main() -> None:
        lives: list[list[str]] = [[], []]

        def handler_for(life: int) -> Any:
            async def handler(command: dict[str, Any]) -> dict[str, Any]:
                lives[life].append(f"{command['op']} {command.get('who')}")
                return {"ok": command["op"] != "weight", "message": "", "code": 200}
            return handler

        channel = CommandChannel("Healthcheck")
        first = serve_commands(channel.new_life(), handler_for(0), "checker")
        sender = ChildCommandSender([_Child("Healthcheck", channel)])
        await sender.send("checker", {"op": "drain", "vs": "V", "rs": "A", "who": "uid 0"}, 1.0)
        await sender.send("checker", {"op": "weight", "vs": "V", "rs": "A", "weight": 2}, 1.0)  # refused: not kept
        await sender.send("checker", {"op": "out", "vs": "V"}, 1.0)
        await first.close()
        second = serve_commands(channel.new_life(), handler_for(1), "checker")
        for _ in range(100):
            if len(lives[1]) == 2:
                break
            await asyncio.sleep(0.01)
        assert lives[1] == ["drain replay", "out replay"]
        await second.close()
        channel.close()

    asyncio.run(main())
