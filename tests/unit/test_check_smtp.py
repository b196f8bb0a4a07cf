"""SMTP_CHECK: the sans-IO conversation, the host{} targets, and the probe against loopback fakes."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable

import pytest

from pykeepalived.check.probe import Target
from pykeepalived.check.smtp import DEFAULT_PORT, SmtpProbe, make_probe, smtp_targets
from pykeepalived.check.smtp_session import (
    DEFAULT_HELO,
    MAX_LINE,
    LineReader,
    Send,
    SmtpSession,
    Stage,
    Verdict,
    parse_line,
)
from pykeepalived.config import read_config_text
from pykeepalived.config.model import RealServer, SmtpCheck, VirtualServer

HELO = Send(f"HELO {DEFAULT_HELO}\r\n".encode())
QUIT = Send(b"QUIT\r\n")


# --- reply lines -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code", "last"),
    [
        (b"220 mx.example ESMTP\r", 220, True),
        (b"250-first", 250, False),
        (b"250", 250, True),
        (b"220 ", 220, True),
        (b"hello", None, True),
        (b"22 short", None, True),
        (b"2200 too long", None, True),
        (b"22x text", None, True),
        (b" 220 leading space", None, True),
        (b"", None, True),
    ],
)
def test_parse_line(raw: bytes, code: int | None, last: bool) -> None:
    line = parse_line(raw)
    assert (line.code, line.last) == (code, last)


def test_line_reader_keeps_only_the_start_of_an_overlong_line() -> None:
    reader = LineReader()
    reader.feed(b"x" * 100_000)
    reader.feed(b"y" * 100 + b"\nnext\n")
    assert reader.next_line() == b"x" * MAX_LINE
    assert reader.next_line() == b"next"
    assert reader.next_line() is None


# --- the conversation --------------------------------------------------------------------------------------------


def converse(session: SmtpSession, *replies: bytes) -> list[Send | Verdict | None]:
    return [session.feed(r) for r in replies]


def test_keepalived_conversation() -> None:
    session = SmtpSession()
    assert converse(session, b"220 mx ESMTP\r\n", b"250 mx hello\r\n", b"221 bye\r\n") == [HELO, QUIT, Verdict(True)]
    assert session.stage is Stage.DONE


def test_default_helo_is_keepalived_s_not_the_host_name() -> None:
    assert DEFAULT_HELO == "smtpchecker.keepalived.org"
    assert SmtpSession("mail.example.org").feed(b"220 x\r\n") == Send(b"HELO mail.example.org\r\n")


def test_byte_by_byte_and_lf_only() -> None:
    session = SmtpSession()
    steps = [session.feed(bytes([b])) for b in b"220 hi\n"]
    assert steps[:-1] == [None] * 6 and steps[-1] == HELO
    assert converse(session, b"250 ok\n", b"221") == [QUIT, None]
    assert session.feed(b"\n") == Verdict(True)


def test_multi_line_replies_are_read_to_their_last_line() -> None:
    session = SmtpSession()
    assert converse(session, b"220-mx.example\r\n220-policy text\r\n") == [None]
    assert converse(session, b"220 ESMTP ready\r\n250-mx\r\n") == [HELO]
    assert converse(session, b"250 ok\r\n") == [QUIT]
    assert converse(session, b"221-bye\r\n221 closing\r\n") == [Verdict(True)]


def test_bare_code_lines_are_accepted() -> None:
    assert converse(SmtpSession(), b"220\r\n", b"250\r\n", b"221\r\n") == [HELO, QUIT, Verdict(True)]


@pytest.mark.parametrize(
    ("replies", "reason"),
    [
        ((b"554 no service\r\n",), "bad greeting banner: '554 no service'"),
        ((b"220-a\r\n421 going away\r\n",), "bad greeting banner: '421 going away'"),
        ((b"220 x\r\n", b"501 bad helo\r\n"), "bad HELO response: '501 bad helo'"),
        ((b"220 x\r\n", b"220 again\r\n"), "bad HELO response: '220 again'"),
        ((b"SSH-2.0-OpenSSH_9.2\r\n",), "malformed greeting: 'SSH-2.0-OpenSSH_9.2'"),
        ((b"220 x\r\n", b"250-ok\r\n", b"oops\r\n"), "malformed HELO reply: 'oops'"),
    ],
)
def test_failures_name_the_step_and_the_line(replies: tuple[bytes, ...], reason: str) -> None:
    steps = converse(SmtpSession(), *replies)
    assert steps[-1] == Verdict(False, reason)


def test_long_garbage_is_quoted_short() -> None:
    verdict = SmtpSession().feed(b"x" * 5000 + b"\r\n")
    assert isinstance(verdict, Verdict) and not verdict.ok
    assert len(verdict.reason) < 120


def test_quit_reply_code_is_not_checked_as_in_keepalived() -> None:
    assert converse(SmtpSession(), b"220 x\r\n", b"250 x\r\n", b"500 what\r\n")[-1] == Verdict(True)
    assert converse(SmtpSession(), b"220 x\r\n", b"250 x\r\n", b"junk\r\n")[-1] == Verdict(True)


@pytest.mark.parametrize(
    ("replies", "waiting_for"),
    [((), "greeting"), ((b"220-partial\r\n",), "greeting"), ((b"220 x\r\n",), "HELO reply"),
     ((b"220 x\r\n", b"250 x\r\n"), "QUIT reply"), ((b"220 x\r\n", b"250 x\r\n", b"221 no newline"), "QUIT reply")],
)
def test_eof_before_a_reply_is_complete_fails(replies: tuple[bytes, ...], waiting_for: str) -> None:
    session = SmtpSession()
    converse(session, *replies)
    assert session.eof() == Verdict(False, f"connection closed by server while waiting for {waiting_for}")


def test_eof_after_the_quit_reply_is_fine() -> None:
    session = SmtpSession()
    converse(session, b"220 x\r\n", b"250 x\r\n", b"221 x\r\n")
    assert session.eof() == Verdict(True)


# --- host{} blocks: one target per host ----------------------------------------------------------------------


def smtp_config(check_body: str, rs_extra: str = "") -> tuple[SmtpCheck, RealServer, VirtualServer]:
    text = (
        "virtual_server 10.0.0.1 25 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n connect_timeout 4\n"
        f" real_server 10.0.0.2 25 {{\n{rs_extra}  SMTP_CHECK {{\n{check_body}  }}\n }}\n}}\n"
    )
    result = read_config_text(text)
    assert [e.message for e in result.errors if "deprecated" not in e.message] == []
    vs = result.config.virtual_servers[0]
    rs = vs.real_servers[0]
    checker = rs.checkers[0]
    assert isinstance(checker, SmtpCheck)
    return checker, rs, vs


def brief(targets: list[Target]) -> list[tuple[str, int | None, float, str | None]]:
    return [(str(t.address), t.port, t.connect_timeout_s, str(t.bind_address) if t.bind_address else None)
            for t in targets]


def test_without_hosts_the_checker_checks_the_real_server() -> None:
    checker, rs, vs = smtp_config("   helo_name me\n")
    assert brief(smtp_targets(checker, rs, vs)) == [("10.0.0.2", 25, 4.0, None)]


def test_hosts_replace_the_checker_when_it_sets_no_connection_option() -> None:
    body = ("   host {\n    connect_ip 10.0.0.3\n    connect_port 2525\n   }\n"
            "   host {\n    connect_ip 10.0.0.4\n    bindto 10.0.0.9\n    connect_timeout 2\n   }\n"
            "   host {\n    connect_port 587\n   }\n")
    checker, rs, vs = smtp_config(body, rs_extra="  connect_timeout 3\n")
    assert brief(smtp_targets(checker, rs, vs)) == [
        ("10.0.0.3", 2525, 3.0, None), ("10.0.0.4", 25, 2.0, "10.0.0.9"), ("10.0.0.2", 587, 3.0, None),
    ]


@pytest.mark.parametrize("option", ["connect_ip 10.0.0.5", "connect_port 26", "bindto 10.0.0.8", "connect_timeout 9",
                                    "fwmark 7", "bind_port 2000"])
def test_a_connection_option_in_the_block_keeps_the_checker_itself(option: str) -> None:
    checker, rs, vs = smtp_config(f"   {option}\n   host {{\n    connect_ip 10.0.0.3\n   }}\n")
    targets = smtp_targets(checker, rs, vs)
    assert len(targets) == 2 and str(targets[1].address) == "10.0.0.3"
    assert targets[1].bind_address is None and targets[1].fwmark is None  # hosts do not inherit the block's options


def test_fwmark_service_without_ports_defaults_to_25() -> None:
    checker = SmtpCheck(kind="SMTP_CHECK", connect_timeout_s=1.0)
    rs = RealServer(address=ipaddress.ip_address("10.0.0.2"))
    vs = VirtualServer(kind="fwmark", fwmark=1)
    assert smtp_targets(checker, rs, vs)[0].port == DEFAULT_PORT
    target = Target(ipaddress.ip_address("10.0.0.2"), None, 1.0)
    probe = make_probe(checker, target, None)
    assert (probe.target.port, probe.helo_name) == (25, DEFAULT_HELO)


# --- the probe against loopback fakes ------------------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def with_server(handler: Handler, timeout_s: float, helo: str = DEFAULT_HELO) -> tuple[bool, str, float]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        probe = SmtpProbe(Target(ipaddress.ip_address("127.0.0.1"), port, timeout_s), helo)
        start = time.monotonic()
        result = await probe.run()
        return result.ok, result.reason, time.monotonic() - start
    finally:
        server.close()


def scripted(replies: list[bytes], received: list[bytes]) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(replies[0])
            for reply in replies[1:]:
                received.append(await reader.readline())
                writer.write(reply)
            await writer.drain()
        finally:
            writer.close()
    return handle


def test_probe_speaks_to_a_server() -> None:
    received: list[bytes] = []
    handler = scripted([b"220-mx\r\n220 ready\r\n", b"250 hi\r\n", b"221 bye\r\n"], received)
    ok, reason, _ = asyncio.run(with_server(handler, 2.0, "probe.example"))
    assert (ok, reason) == (True, "")
    assert received == [b"HELO probe.example\r\n", b"QUIT\r\n"]


def test_probe_fails_on_a_554_greeting() -> None:
    ok, reason, _ = asyncio.run(with_server(scripted([b"554 go away\r\n"], []), 2.0))
    assert (ok, reason) == (False, "bad greeting banner: '554 go away'")


def test_probe_fails_when_the_server_closes_early() -> None:
    ok, reason, _ = asyncio.run(with_server(scripted([b"220 x\r\n", b""], []), 2.0))
    assert (ok, reason) == (False, "connection closed by server while waiting for HELO reply")


@pytest.mark.parametrize("silent_after", [0, 1])
def test_probe_gives_up_on_a_silent_server_after_connect_timeout(silent_after: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if silent_after:
                writer.write(b"220 x\r\n")
            await asyncio.sleep(5)
        finally:
            writer.close()

    ok, reason, elapsed = asyncio.run(with_server(handle, 0.3))
    stage = "HELO reply" if silent_after else "greeting"
    assert (ok, reason) == (False, f"timed out after 0.3 s waiting for {stage}")
    assert 0.3 <= elapsed < 1.0


def test_probe_reports_a_refused_connection() -> None:
    async def refused() -> str:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        result = await SmtpProbe(Target(ipaddress.ip_address("127.0.0.1"), port, 1.0)).run()
        assert not result.ok
        return result.reason

    assert "ECONNREFUSED" in asyncio.run(refused())
