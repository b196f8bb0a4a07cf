"""SYN probes (global_defs pykeepalived_syn_probe): the segment's bytes, and the engine's checks through raw sockets.

The wire part is sans-IO (check/syn_wire.py). The engine part runs real raw
sockets against loopback listeners (root only): the verdicts and reasons must
be what TcpProbe.run says, and the server's application never sees a check.
The IPv4 raw socket's route news are a netlink socket, which unit tests do
not open (conftest.py): here they are left out, and
tests/netns/test_check_syn_probe.py shows a route change heard.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
import random
import socket
import struct
import time

import pytest

from pykeepalived.check import icmp, syn_probe, syn_wire
from pykeepalived.check.engine import ProbeEngine, syn_probes
from pykeepalived.check.probe import ProbeResult
from pykeepalived.check.syn_probe import RESERVED_PORTS, open_syn_socket
from pykeepalived.check.tcp import TcpProbe
from pykeepalived.config.model import KeepalivedConfig

from .test_check_engine import Run, loopback_listener, tcp_checker

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="raw sockets need root (CAP_NET_RAW)")


@pytest.fixture(autouse=True)
def no_route_news(monkeypatch: pytest.MonkeyPatch) -> None:
    """No netlink socket in a unit test: the raw socket goes without its route news (see the module's docstring)."""
    monkeypatch.setattr(syn_probe, "open_source_news", lambda: None)


# --------------------------------------------------------------------------- the wire
def test_a_syn_carries_a_right_checksum_its_ports_and_seq() -> None:
    rng = random.Random(7)
    for _ in range(200):
        src, dst = bytes(rng.randrange(256) for _ in range(4)), bytes(rng.randrange(256) for _ in range(4))
        our_port, port, seq = rng.randrange(1, 65536), rng.randrange(1, 65536), rng.getrandbits(32)
        pseudo = syn_wire.address_sum(src) + syn_wire.address_sum(dst)
        segment = syn_wire.syn_segment(our_port, port, seq, pseudo)
        assert len(segment) == syn_wire.SYN_LENGTH
        # the Internet checksum over the pseudo-header and the segment comes out zero when it is right
        assert icmp.checksum(src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(segment)) + segment) == 0
        assert struct.unpack_from("!HHII", segment) == (our_port, port, seq, 0)
        assert segment[13] == syn_wire.TCP_SYN
    assert syn_wire.syn_segment(1, 2, 3, None)[16:18] == b"\0\0"  # IPv6: the kernel fills it in


def _segment(flags: int, ack: int, sport: int = 80, dport: int = 40000) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 99, ack, 5 << 4, flags, 1000, 0, 0)


def test_answers_are_syn_acks_and_resets_that_acknowledge_a_syn() -> None:
    assert syn_wire.answer(_segment(syn_wire.SYN_ACK, 1001)) == (80, 40000, 1000, syn_wire.SYN_ACK)
    rst = syn_wire.answer(_segment(syn_wire.TCP_RST | syn_wire.TCP_ACK, 0))
    assert rst is not None and rst[2] == 0xFFFFFFFF  # ack 0 answers seq 2**32 - 1
    assert syn_wire.answer(_segment(syn_wire.TCP_ACK, 1001)) is None  # a bare ACK answers nothing
    assert syn_wire.answer(_segment(syn_wire.TCP_RST, 0)) is None  # a reset without ACK answers no SYN
    assert syn_wire.answer(_segment(syn_wire.SYN_ACK, 1)[:19]) is None  # too short
    ipv4 = bytes([0x45]) + bytes(19) + _segment(syn_wire.SYN_ACK, 5)
    assert syn_wire.ipv4_header_length(ipv4) == 20
    assert syn_wire.answer(ipv4, 20) == (80, 40000, 4, syn_wire.SYN_ACK)
    assert syn_wire.ipv4_header_length(b"") == 0


def test_the_filter_program_jumps_inside_itself() -> None:
    for ipv4 in (True, False):
        program = syn_wire.answer_filter(40000, 40063, ipv4)
        insns = [struct.unpack_from("=HBBI", program, at) for at in range(0, len(program), 8)]
        assert insns[-2][0] == insns[-1][0] == 0x06  # both ends are returns
        for at, (code, jt, jf, _k) in enumerate(insns):
            assert code == 0x06 or at + 1 + max(jt, jf) < len(insns)


def test_on_by_default_and_the_keyword_turns_it_off() -> None:
    config = KeepalivedConfig()
    assert syn_probes(config)
    config.global_defs.pykeepalived_syn_probe = False
    assert not syn_probes(config)


# --------------------------------------------------------------------------- the engine, on loopback
@contextmanager
def full_listener() -> Iterator[int]:
    """A loopback port whose accept queue is full: the kernel drops every SYN to it (no answer at all)."""
    listener = loopback_listener(backlog=0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # fills the queue of one
    time.sleep(0.05)
    try:
        yield port
    finally:
        filler.close()
        listener.close()


def syn_run() -> Run:
    run = Run()
    run.engine.close()
    run.engine = ProbeEngine(asyncio.get_running_loop(), time.monotonic, run._outcome, None, syn_probe=True)
    return run


async def syn_once(port: int) -> tuple[ProbeResult, Run]:
    run = syn_run()
    chk = tcp_checker(port)
    try:
        run.engine.add(chk, None, "vs")
        return await run.attempts(chk), run
    finally:
        run.engine.close()


@needs_root
def test_an_open_port_passes_and_its_application_never_sees_the_check() -> None:
    listener = loopback_listener()
    listener.setblocking(False)
    try:
        async def main() -> None:
            result, run = await syn_once(listener.getsockname()[1])
            assert result.ok, result.reason
            assert run.engine._syn[socket.AF_INET] is not None  # it was a SYN probe, not a connect
            await asyncio.sleep(0.1)

        asyncio.run(main())
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


@needs_root
def test_a_closed_port_fails_with_the_reason_connect_gives() -> None:
    listener = loopback_listener()
    port = listener.getsockname()[1]
    listener.close()

    async def main() -> None:
        result, _run = await syn_once(port)
        probe = tcp_checker(port).plan.probe
        assert isinstance(probe, TcpProbe)
        assert result == await probe.run()
        assert result.reason == "ECONNREFUSED: Connection refused"

    asyncio.run(main())


@needs_root
def test_many_checkers_of_one_server_all_pass_round_after_round() -> None:
    """More checkers of one address and port than reserved ports: SYNs in flight meet on a port and still pass."""
    listener = loopback_listener(backlog=4096)
    port = listener.getsockname()[1]

    async def main() -> None:
        run = syn_run()
        checkers = [tcp_checker(port, delay_loop_s=0.05) for _ in range(3 * RESERVED_PORTS)]
        for chk in checkers:
            run.engine.add(chk, None, "vs")
        for chk in checkers:
            await run.attempts(chk, 5)
        assert run.outcomes == [], run.outcomes[:3]  # not one failure
        run.engine.close()

    try:
        asyncio.run(main())
    finally:
        listener.close()


@needs_root
def test_a_full_accept_queue_times_out_after_resending_the_syn_as_connect_does() -> None:
    """The kernel drops SYNs to a listener whose accept queue is full: no answer, so connect_timeout decides."""
    async def main(port: int) -> None:
        run = syn_run()
        chk = tcp_checker(port)  # connect_timeout 2 s: SYNs at 0 and 1 s
        started = time.monotonic()
        run.engine.add(chk, None, "vs")
        result = await run.attempts(chk, 1, timeout_s=6.0)
        assert not result.ok and result.reason == "connection timed out"
        assert time.monotonic() - started >= 1.9
        probe = chk.plan.probe
        assert isinstance(probe, TcpProbe)
        assert await probe.run() == result
        run.engine.close()

    with full_listener() as port:
        asyncio.run(main(port))


@needs_root
def test_a_removed_checker_in_flight_reports_nothing() -> None:
    async def main(port: int) -> None:
        run = syn_run()
        chk = tcp_checker(port)
        run.engine.add(chk, None, "vs")
        await asyncio.sleep(0.2)  # the SYN went unanswered
        assert len(run.engine._syn_flights) == 1
        run.engine.remove(chk)
        assert run.engine._syn_flights == {}
        await asyncio.sleep(2.2)
        assert chk.attempts == 0 and run.outcomes == []
        run.engine.close()

    with full_listener() as port:
        asyncio.run(main(port))


@needs_root
def test_the_raw_socket_holds_its_ports_and_hears_only_answers_for_them() -> None:
    syn = open_syn_socket(socket.AF_INET)
    try:
        first = syn.first_port
        with socket.socket() as stranger, pytest.raises(OSError):  # reserved: nobody else binds them
            stranger.bind(("0.0.0.0", first + RESERVED_PORTS - 1))
        other = loopback_listener()
        client = socket.create_connection(other.getsockname())  # ordinary traffic: filtered out
        conn, _ = other.accept()
        client.sendall(b"x")
        conn.recv(1)
        time.sleep(0.05)
        assert syn.answers() == []
        for sock in (client, conn, other):
            sock.close()
    finally:
        syn.close()


@needs_root
def test_with_a_mark_the_reserved_ports_listen_marked_and_let_nobody_connect() -> None:
    """pykeepalived_checker_notrack: the table's reply rule finds a marked socket, and no SYN gets in."""
    syn = open_syn_socket(socket.AF_INET, mark=0x6B610000)
    try:
        first = syn.first_port
        assert syn.raw.getsockopt(socket.SOL_SOCKET, 36) == 0x6B610000
        for sock in syn.reservations:
            assert sock.getsockopt(socket.SOL_SOCKET, 36) == 0x6B610000
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        with pytest.raises(TimeoutError):  # the SYN is dropped: the connect times out
            socket.create_connection(("127.0.0.1", first), timeout=0.5).close()
    finally:
        syn.close()


@needs_root
def test_marked_syn_probes_pass_and_fail_as_unmarked_ones() -> None:
    listener = loopback_listener()
    port = listener.getsockname()[1]

    async def main() -> None:
        run = Run()
        run.engine.close()
        run.engine = ProbeEngine(asyncio.get_running_loop(), time.monotonic, run._outcome, None, mark=0x6B610000,
                                 syn_probe=True)
        chk = tcp_checker(port, delay_loop_s=0.05)
        run.engine.add(chk, None, "vs")
        await run.attempts(chk, 3)
        assert run.outcomes == [] and run.engine._syn[socket.AF_INET] is not None
        listener.close()
        result = await run.attempts(chk, chk.attempts + 1)
        assert result == ProbeResult(False, "ECONNREFUSED: Connection refused")
        run.engine.close()

    try:
        asyncio.run(main())
    finally:
        listener.close()
