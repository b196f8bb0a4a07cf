"""The probe engine (check/engine.py) against loopback servers: the same verdicts and reasons as the probes'.

Every HTTP scenario runs through both paths, the asyncio probe
(`HttpProbe.run_step`) and the engine, and the two must say the same thing;
TCP_CHECK the same against `TcpProbe.run`. Then what only the engine has: the
half-open TCP check (the server's application never sees it), its schedule,
removal in flight, ha_suspend.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from pykeepalived.check import http as http_probe
from pykeepalived.check.context import ProbeContext
from pykeepalived.check.engine import Job, ProbeEngine, notrack_mark, runs_here
from pykeepalived.check.http import HttpProbe, make_probe
from pykeepalived.check.logic import Change, Verdict
from pykeepalived.check.plan import CheckerPlan
from pykeepalived.check.probe import ProbeResult, Target
from pykeepalived.check.running import CheckerState
from pykeepalived.check.tcp import TcpProbe
from pykeepalived.config.checker_timing import CheckerTiming
from pykeepalived.config.model import (CHECKER_NOTRACK_MARK, HttpCheck, KeepalivedConfig, RealServer, TcpCheck, UrlSpec,
                                       VirtualServer)

LOCAL = ipaddress.ip_address("127.0.0.1")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def timing(delay_loop_s: float = 60.0, timeout_s: float = 2.0) -> CheckerTiming:
    return CheckerTiming(delay_loop_s=delay_loop_s, connect_timeout_s=timeout_s, retry=1, delay_before_retry_s=0.1,
                         warmup_s=0.0, alpha=False)


def answer(body: bytes, status: str = "200 OK") -> bytes:
    return f"HTTP/1.1 {status}\r\nServer: test\r\n\r\n".encode() + body


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[int]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0, backlog=4096)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()


def loopback_listener(backlog: int = 64) -> socket.socket:
    """A TCP socket listening on 127.0.0.1 at a free port; the test closes it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(backlog)
    return listener


def http_checker(port: int, url: UrlSpec, timeout_s: float = 2.0,
                 delay_loop_s: float = 60.0) -> CheckerState:
    checker = HttpCheck(kind="HTTP_GET", urls=[url])
    rs = RealServer(LOCAL, port)
    probe = make_probe(checker, Target(LOCAL, port, timeout_s), ProbeContext(VirtualServer("address"), rs, None))
    plan = CheckerPlan("HTTP_GET#0", "HTTP_GET", timing(delay_loop_s, timeout_s), probe, checker)
    return CheckerState(plan, plan.make_core(time.monotonic(), 0.0))


def tcp_checker(port: int, delay_loop_s: float = 60.0, address: str = "127.0.0.1") -> CheckerState:
    target = Target(ipaddress.ip_address(address), port, 2.0)
    plan = CheckerPlan("TCP_CHECK#0", "TCP_CHECK", timing(delay_loop_s), TcpProbe(target), TcpCheck(kind="TCP_CHECK"))
    return CheckerState(plan, plan.make_core(time.monotonic(), 0.0))


class Run:
    """An engine on the running loop that records every outcome it reports."""

    def __init__(self, runs: Callable[[str], bool] | None = None) -> None:
        self.outcomes: list[tuple[CheckerState, ProbeResult, Change | None]] = []
        self.engine = ProbeEngine(asyncio.get_running_loop(), time.monotonic, self._outcome, runs)

    def _outcome(self, job: Job, result: ProbeResult, change: Change | None) -> None:
        self.outcomes.append((job.chk, result, change))

    async def attempts(self, chk: CheckerState, count: int = 1, timeout_s: float = 5.0) -> ProbeResult:
        deadline = time.monotonic() + timeout_s
        while chk.attempts < count:
            assert time.monotonic() < deadline, f"{chk.attempts} attempts, wanted {count}"
            await asyncio.sleep(0.01)
        assert chk.last_ok is not None
        return ProbeResult(chk.last_ok, chk.last_reason)


async def engine_once(chk: CheckerState) -> ProbeResult:
    run = Run()
    try:
        run.engine.add(chk, None, "vs")
        return await run.attempts(chk)
    finally:
        run.engine.close()


# --------------------------------------------------------------------------- the same as the probes
async def _mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await asyncio.sleep(10)
    finally:
        writer.close()


async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        writer.write(b"HTTP/1.0 200 OK\r\n")
        for _ in range(40):
            await asyncio.sleep(0.05)
            writer.write(b"X: y\r\n")
    finally:
        writer.close()


async def _close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


def _replying(page: bytes) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(page)
        await writer.drain()
        writer.close()

    return handle


SCENARIOS: dict[str, tuple[Handler, UrlSpec, float]] = {
    "ok": (_replying(answer(b"fine")), UrlSpec(path="/"), 2.0),
    "digest": (_replying(answer(b"fine")), UrlSpec(path="/", digest=hashlib.md5(b"fine").hexdigest()), 2.0),
    "wrong digest": (_replying(answer(b"fine")), UrlSpec(path="/", digest="0" * 32), 2.0),
    "status 500": (_replying(answer(b"", "500 Broken")), UrlSpec(path="/"), 2.0),
    "regex": (_replying(answer(b"all good")), UrlSpec(path="/", regex="good$"), 2.0),
    "no answer": (_close_at_once, UrlSpec(path="/"), 2.0),
    "mute": (_mute, UrlSpec(path="/"), 0.3),
    "trickle": (_trickle, UrlSpec(path="/"), 0.3),
    "big": (_replying(answer(b"x" * 200_000)), UrlSpec(path="/"), 2.0),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_http_get_in_the_engine_says_what_the_probe_says(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_probe, "MAX_RESPONSE_BYTES", 100_000)
    handler, url, timeout_s = SCENARIOS[name]

    async def main() -> None:
        async with server(handler) as port:
            chk = http_checker(port, url, timeout_s)
            assert runs_here(chk)
            probe = chk.plan.probe
            assert isinstance(probe, HttpProbe)
            start = time.monotonic()
            by_probe = await probe.run_step(0)
            probe_s = time.monotonic() - start
            start = time.monotonic()
            by_engine = await engine_once(chk)
            engine_s = time.monotonic() - start
        assert by_engine == by_probe
        if name in ("mute", "trickle"):  # within the same timeouts (the engine starts up to a tick late)
            assert by_probe.reason.startswith("timeout reading the answer from")
            assert abs(engine_s - probe_s) < 0.25

    asyncio.run(main())


def test_refused_http_and_tcp_read_as_the_probes_say() -> None:
    async def main() -> None:
        async with server(_close_at_once) as port:
            pass  # the port is free again: connects are refused
        http = http_checker(port, UrlSpec(path="/"))
        assert isinstance(http.plan.probe, HttpProbe)
        assert await engine_once(http) == await http.plan.probe.run_step(0)
        assert http.last_reason.startswith(f"cannot connect to [127.0.0.1]:tcp:{port} url(1) /: ECONNREFUSED")
        tcp = tcp_checker(port)
        assert isinstance(tcp.plan.probe, TcpProbe)
        assert await engine_once(tcp) == await tcp.plan.probe.run()
        assert tcp.last_reason == "ECONNREFUSED: Connection refused"

    asyncio.run(main())


# --------------------------------------------------------------------------- the engine's own
def test_tcp_check_is_half_open_the_server_application_never_sees_it() -> None:
    listener = loopback_listener()
    listener.setblocking(False)
    try:
        async def main() -> None:
            chk = tcp_checker(listener.getsockname()[1])
            assert runs_here(chk)
            result = await engine_once(chk)
            assert result.ok, result.reason
            await asyncio.sleep(0.1)

        asyncio.run(main())
        with pytest.raises(BlockingIOError):  # nothing ever reached the accept queue
            listener.accept()
    finally:
        listener.close()


def test_a_checker_follows_its_core_schedule_and_a_dead_server_goes_down_after_the_retry() -> None:
    listener = loopback_listener()
    port = listener.getsockname()[1]

    async def main() -> None:
        run = Run()
        chk = tcp_checker(port, delay_loop_s=0.1)
        run.engine.add(chk, "owner", "vs")
        await run.attempts(chk, 3)
        assert run.outcomes == []  # successes of an UP checker are not reported
        listener.close()
        deadline = time.monotonic() + 5
        while not any(c is not None for _, _, c in run.outcomes):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        (first, r1, c1), (_, r2, c2) = run.outcomes[:2]
        assert first is chk and not r1.ok and c1 is None  # the first failure is retried (retry 1)
        assert c2 == Change(Verdict.DOWN, 2) and chk.core.verdict is Verdict.DOWN
        run.engine.close()

    asyncio.run(main())


def test_removed_checker_in_flight_reports_nothing_and_closes_its_socket() -> None:
    async def main() -> None:
        closed = asyncio.Event()

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # EOF when the checker's socket closes
            closed.set()
            writer.close()

        async with server(hold) as port:
            run = Run()
            chk = http_checker(port, UrlSpec(path="/"))
            run.engine.add(chk, None, "vs")
            await asyncio.sleep(0.2)  # connected, request sent, waiting for the answer
            assert chk in run.engine and chk.attempts == 0
            run.engine.remove(chk)
            await asyncio.wait_for(closed.wait(), 2)
            await asyncio.sleep(0.1)
            assert chk.attempts == 0 and run.outcomes == [] and len(run.engine) == 0
            run.engine.close()

    asyncio.run(main())


def test_a_suspended_service_is_not_checked_until_it_runs_again() -> None:
    listener = loopback_listener()
    allowed = {"vs": False}

    async def main() -> None:
        run = Run(runs=lambda name: allowed[name])
        chk = tcp_checker(listener.getsockname()[1], delay_loop_s=0.05)
        run.engine.add(chk, None, "vs")
        await asyncio.sleep(0.3)
        assert chk.attempts == 0
        allowed["vs"] = True
        await run.attempts(chk, 1, timeout_s=2)
        run.engine.close()

    try:
        asyncio.run(main())
    finally:
        listener.close()


def test_hundreds_of_checkers_share_one_engine() -> None:
    listener = loopback_listener(4096)
    port = listener.getsockname()[1]

    async def main() -> None:
        run = Run()
        checkers = [tcp_checker(port, delay_loop_s=0.2) for _ in range(500)]
        for chk in checkers:
            run.engine.add(chk, None, "vs")
        for chk in checkers:
            await run.attempts(chk, 2, timeout_s=10)
        assert all(chk.last_ok for chk in checkers), {c.last_reason for c in checkers if not c.last_ok}
        run.engine.close()

    try:
        asyncio.run(main())
    finally:
        listener.close()


def test_what_the_engine_leaves_to_the_asyncio_probes() -> None:
    tls = http_checker(80, UrlSpec(path="/"))
    assert isinstance(tls.plan.probe, HttpProbe)
    tls.plan.probe.tls = object()  # type: ignore[assignment]  # SSL_GET
    assert not runs_here(tls)
    no_urls = http_checker(80, UrlSpec(path="/"))
    assert isinstance(no_urls.plan.probe, HttpProbe)
    no_urls.plan.probe.urls = ()
    assert not runs_here(no_urls)



def test_repeated_checks_reuse_their_sockets_and_stay_right() -> None:
    """Sockets go back to a pool after a good check (connect AF_UNSPEC); HTTP and TCP, IPv4 and IPv6."""
    listeners = []
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        listener = socket.socket(family)
        try:
            listener.bind((address, 0))
        except OSError:  # no IPv6 loopback here
            listener.close()
            continue
        listener.listen(64)
        listeners.append(listener)

    async def main() -> None:
        async with server(_replying(answer(b"fine"))) as port:
            run = Run()
            http = http_checker(port, UrlSpec(path="/", digest=hashlib.md5(b"fine").hexdigest()), delay_loop_s=0.02)
            tcps = [tcp_checker(s.getsockname()[1], delay_loop_s=0.02, address=s.getsockname()[0]) for s in listeners]
            for chk in (http, *tcps):
                run.engine.add(chk, None, "vs")
            for chk in (http, *tcps):
                await run.attempts(chk, 8)
            assert run.outcomes == [], [r.reason for _, r, _ in run.outcomes]
            assert all(chk.last_ok for chk in (http, *tcps))
            run.engine.close()

    try:
        asyncio.run(main())
    finally:
        for listener in listeners:
            listener.close()


def test_a_burst_of_due_checks_starts_a_bounded_number_at_a_time_and_loses_none(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pykeepalived.check import engine as engine_module

    monkeypatch.setattr(engine_module, "MAX_IN_FLIGHT", 10)
    listener = loopback_listener(4096)

    async def main() -> None:
        run = Run()
        checkers = [tcp_checker(listener.getsockname()[1]) for _ in range(200)]
        for chk in checkers:  # all due at once
            run.engine.add(chk, None, "vs")
        for chk in checkers:
            await run.attempts(chk, 1, timeout_s=10)
        assert all(chk.last_ok for chk in checkers)
        run.engine.close()

    try:
        asyncio.run(main())
    finally:
        listener.close()


def test_checks_due_in_one_tick_start_together_never_early_and_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The schedule keeps one bucket per TICK_S: a check starts at or after its due time, once per due time."""
    listener = loopback_listener(4096)
    started: list[tuple[CheckerState, float]] = []
    real_start = ProbeEngine._start

    def recording_start(self: ProbeEngine, job: Job, now: float) -> None:
        started.append((job.chk, now))
        real_start(self, job, now)

    monkeypatch.setattr(ProbeEngine, "_start", recording_start)

    async def main() -> None:
        run = Run()
        base = time.monotonic() + 0.02
        checkers = [tcp_checker(listener.getsockname()[1]) for _ in range(60)]
        due = {}
        for i, chk in enumerate(checkers):
            chk.core.next_due_s = due[chk] = base + (i % 30) * 0.001  # two per millisecond over 30 ms
            run.engine.add(chk, None, "vs")
        for chk in checkers:
            await run.attempts(chk, 1, timeout_s=10)
        run.engine.close()
        assert sorted(id(chk) for chk, _ in started) == sorted(id(chk) for chk in checkers)  # each once
        assert all(now >= due[chk] for chk, now in started)  # never early
        assert len({now for _, now in started}) < len(checkers)  # in batches, not one wake each

    try:
        asyncio.run(main())
    finally:
        listener.close()


def test_with_a_mark_the_engine_marks_its_own_sockets_and_checks_alike() -> None:
    """pykeepalived_checker_notrack: SO_MARK on the sockets the engine makes (pooled ones keep it).

    Without CAP_NET_ADMIN the mark is refused: the check runs unmarked (tracked) and passes all the same.
    """
    listener = loopback_listener()
    mark = 0x6B610000

    async def main() -> None:
        run = Run()
        run.engine._mark = mark
        chk = tcp_checker(listener.getsockname()[1], delay_loop_s=0.02)
        run.engine.add(chk, None, "vs")
        await run.attempts(chk, 3)
        assert run.outcomes == [] and chk.last_ok
        pooled = run.engine._pools[socket.AF_INET]
        assert pooled
        try:
            wanted = mark if os.geteuid() == 0 else 0
            assert {s.getsockopt(socket.SOL_SOCKET, socket.SO_MARK) for s in pooled} == {wanted}
        finally:
            run.engine.close()

    try:
        asyncio.run(main())
    finally:
        listener.close()


def test_the_mark_comes_from_global_defs() -> None:
    assert notrack_mark(KeepalivedConfig()) is None
    config = KeepalivedConfig()
    config.global_defs.pykeepalived_checker_notrack = True
    assert notrack_mark(config) == CHECKER_NOTRACK_MARK
