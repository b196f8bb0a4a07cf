"""Long-lived connections through a VIP: streams that ask a question every 100 ms on the same socket.

The chaos suite needs clients that keep one TCP connection for the whole of
an event and notice, per connection, whether it lived through it. The lab's
real servers run nginx, which keeps HTTP/1.1 connections open (keepalive 65 s
and 1,000 requests: far longer than one event), so a "line" is one small
request (`GET /whoami`) and its answer, which also names the real server the
connection reached. No extra server or virtual server is needed.

`LineStreams` drives them all from one thread with non-blocking sockets made
in the client's namespace. Each connection sends its next request 100 ms
after its previous answer (never two in flight). A connection that is reset,
closed, or gets no answer for `stall_s` is recorded as ended with its reason
and replaced by a new one (so the load continues and new connections are
probed too). Every answer's time is kept, for the longest gap across the
load; `mark()` notes which connections were open at an instant (the
event), `report(mark)` says which of them still answered afterwards on the
same socket.
"""

from __future__ import annotations

import errno
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .netns import LabError
from .reload_driver import _socket_in

REQUEST = b"GET /whoami HTTP/1.1\r\nHost: chaos.lab\r\nUser-Agent: pykeepalived-chaos\r\n\r\n"
CONNECT_TIMEOUT_S = 2.0
RECONNECT_AFTER_S = 0.1
_LENGTH = re.compile(rb"^content-length:\s*(\d+)\s*$", re.I | re.M)
_SERVER = re.compile(r"^(?P<name>\S+) client=")


@dataclass
class Conn:
    """One TCP connection of a stream: its whole life, for the report."""

    stream: int
    serial: int  # unique over the run
    sock: socket.socket | None
    opened_at: float
    connected_at: float | None = None
    next_send: float = 0.0
    pending_since: float | None = None
    buf: bytearray = field(default_factory=bytearray)
    server: str = ""  # the real server that answered last (nginx /whoami)
    servers: list[str] = field(default_factory=list)  # every server that answered, in order (a move shows)
    answers: int = 0
    first_answer: float | None = None
    last_answer: float | None = None
    max_gap_s: float = 0.0  # between two answers on this socket (from the connect for the first)
    ended_at: float | None = None
    end_reason: str = ""

    @property
    def open(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class Mark:
    """The connections open and answering at one instant (the event's start)."""

    at: float
    serials: frozenset[int]


class LineStreams:
    """`count` long-lived HTTP/1.1 connections to address:port from `netns`, one request per `interval_s` each."""

    def __init__(self, netns: str, address: str, port: int = 80, *, count: int = 50, interval_s: float = 0.1,
                 stall_s: float = 8.0) -> None:
        self.netns, self.address, self.port = netns, address, port
        self.count, self.interval_s, self.stall_s = count, interval_s, stall_s
        self.conns: list[Conn] = []  # every connection ever made, in order
        self.current: dict[int, Conn] = {}  # stream -> its connection now
        self.answer_times: list[float] = []
        self.bad_answers = 0
        self.errors: list[str] = []
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="line-streams", daemon=True)
        self._serial = 0
        self.started = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, ready_timeout_s: float = 10.0) -> None:
        """Open every stream; return once each has had an answer (LabError if not within ready_timeout_s)."""
        self.started = time.monotonic()
        self._thread.start()
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.all_answering(since=self.started, fresh_s=1.0):
                return
            time.sleep(0.05)
        self.stop()
        raise LabError(f"long-lived connections to {self.address}:{self.port} not all answering within "
                       f"{ready_timeout_s:g} s: {self.summary_line()}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        now = time.monotonic()
        for conn in self.current.values():
            if conn.open:
                self._end(conn, now, "")
        self._sel.close()

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            for stream in range(self.count):
                self._connect(stream, time.monotonic())
            while not self._stop.is_set():
                now = time.monotonic()
                for stream, conn in list(self.current.items()):
                    self._tick(stream, conn, now)
                for key, mask in self._sel.select(timeout=0.01):
                    conn = key.data
                    if conn.open:
                        self._ready(conn, mask, time.monotonic())
        except Exception as exc:  # noqa: BLE001 - a crashed driver must show in the report, not vanish
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def _tick(self, stream: int, conn: Conn, now: float) -> None:
        if not conn.open:
            if now - (conn.ended_at or now) >= RECONNECT_AFTER_S:
                self._connect(stream, now)
            return
        if conn.connected_at is None:
            if now - conn.opened_at > CONNECT_TIMEOUT_S:
                self._end(conn, now, "connect timeout")
            return
        if conn.pending_since is not None:
            if now - conn.pending_since > self.stall_s:
                self._end(conn, now, f"no answer for {self.stall_s:g} s")
            return
        if now >= conn.next_send:
            assert conn.sock is not None
            try:
                conn.sock.send(REQUEST)
            except BlockingIOError:
                return
            except OSError as exc:
                self._end(conn, now, _reason(exc))
                return
            conn.pending_since = now

    def _connect(self, stream: int, now: float) -> None:
        self._serial += 1
        sock = _socket_in(self.netns, socket.AF_INET, socket.SOCK_STREAM, 0)
        sock.setblocking(False)
        conn = Conn(stream, self._serial, sock, now)
        self.conns.append(conn)
        self.current[stream] = conn
        code = sock.connect_ex((self.address, self.port))
        if code not in (0, errno.EINPROGRESS):
            self._end(conn, now, f"connect: {errno.errorcode.get(code, code)}")
            return
        self._sel.register(sock, selectors.EVENT_WRITE, conn)

    def _ready(self, conn: Conn, mask: int, now: float) -> None:
        sock = conn.sock
        assert sock is not None
        if conn.connected_at is None:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._end(conn, now, f"connect: {errno.errorcode.get(code, code)}")
                return
            conn.connected_at = conn.next_send = now
            self._sel.modify(sock, selectors.EVENT_READ, conn)
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._end(conn, now, _reason(exc))
            return
        if not data:
            self._end(conn, now, "closed by peer")
            return
        conn.buf += data
        while self._answer(conn, now):
            pass

    def _answer(self, conn: Conn, now: float) -> bool:
        head_end = conn.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return False
        head = bytes(conn.buf[:head_end])
        length = _LENGTH.search(head)
        size = int(length.group(1)) if length else 0
        end = head_end + 4 + size
        if len(conn.buf) < end:
            return False
        body = bytes(conn.buf[head_end + 4:end]).decode(errors="replace")
        del conn.buf[:end]
        conn.pending_since = None
        conn.next_send = now + self.interval_s
        if not head.startswith(b"HTTP/1.1 200"):
            self.bad_answers += 1
            return True
        found = _SERVER.match(body)
        if found:
            conn.server = found.group("name")
            if not conn.servers or conn.servers[-1] != conn.server:
                conn.servers.append(conn.server)
        since = conn.last_answer if conn.last_answer is not None else (conn.connected_at or conn.opened_at)
        conn.max_gap_s = max(conn.max_gap_s, now - since)
        conn.first_answer = conn.first_answer or now
        conn.last_answer = now
        conn.answers += 1
        self.answer_times.append(now)
        return True

    def _end(self, conn: Conn, now: float, reason: str) -> None:
        """Close a connection; while the loop runs, its stream gets a new one RECONNECT_AFTER_S later."""
        conn.ended_at, conn.end_reason = now, reason
        if conn.sock is not None:
            try:
                self._sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
            conn.sock.close()
            conn.sock = None

    # -- questions ---------------------------------------------------------------------------

    def all_answering(self, since: float, fresh_s: float = 0.5) -> bool:
        """Every stream's current connection is open, answered after `since` and within the last `fresh_s`."""
        now = time.monotonic()
        current = list(self.current.values())
        if len(current) < self.count:
            return False
        return all(c.open and c.last_answer is not None and c.last_answer >= since and now - c.last_answer <= fresh_s
                   for c in current)

    def mark(self) -> Mark:
        """The connections open now that have answered at least once: those an event may cost."""
        now = time.monotonic()
        return Mark(now, frozenset(c.serial for c in list(self.current.values())
                                   if c.open and c.answers > 0))

    def marked(self, mark: Mark) -> list[Conn]:
        """The connections open at `mark`, as they are now."""
        return [c for c in self.conns if c.serial in mark.serials]

    def longest_gap(self, since: float, until: float) -> float:
        """The longest time in [since, until] without an answer on any connection."""
        times = [t for t in list(self.answer_times) if since <= t <= until]
        points = [since, *times, until]
        return max((b - a for a, b in zip(points, points[1:])), default=until - since)

    def report(self, mark: Mark, until: float, *, servers_down: frozenset[str] = frozenset()) -> dict[str, Any]:
        """What became of the connections open at `mark`: kept (same socket answered after it, still open at
        `until` or closed by us), lost (ended with a reason), stalled (open but silent since the mark).

        `servers_down` names real servers the event itself took away: connections to them are reported
        apart (`elsewhere`: the connections to every other server).
        """
        marked = self.marked(mark)

        def kept(c: Conn) -> bool:
            return (c.last_answer is not None and c.last_answer > mark.at and not c.end_reason
                    and (c.ended_at is None or c.ended_at >= until))

        lost = [c for c in marked if c.end_reason]
        kept_list = [c for c in marked if kept(c)]
        elsewhere = [c for c in marked if c.server not in servers_down]
        reasons: dict[str, int] = {}
        for c in lost:
            reasons[c.end_reason] = reasons.get(c.end_reason, 0) + 1
        survivors_gap = max((c.max_gap_s for c in kept_list), default=0.0)
        by_server: dict[str, int] = {}
        for c in marked:
            by_server[c.server or "?"] = by_server.get(c.server or "?", 0) + 1
        return {
            "connections": len(marked),
            "kept": len(kept_list),
            "lost": len(lost),
            "stalled": len(marked) - len(kept_list) - len(lost),
            "lost_reasons": reasons,
            "by_server": dict(sorted(by_server.items())),
            "elsewhere": {"connections": len(elsewhere), "kept": sum(1 for c in elsewhere if kept(c))},
            "moved": sum(1 for c in marked if len(c.servers) > 1),  # answered by another server afterwards
            "worst_kept_gap_s": round(survivors_gap, 3),
            "new_connections": sum(1 for c in self.conns if c.opened_at > mark.at),
            "bad_answers": self.bad_answers,
            "driver_errors": list(self.errors),
        }

    def summary_line(self) -> str:
        current = list(self.current.values())
        answering = sum(1 for c in current if c.open and c.answers)
        ended = [c.end_reason for c in self.conns if c.end_reason][-3:]
        return f"{answering}/{self.count} answering; last ends: {ended}; errors: {self.errors}"


def describe(conns: list[Conn]) -> list[dict[str, Any]]:
    """What a test shows of connections that did not do as asserted (JSON-ready)."""
    return [{"servers": c.servers, "answers": c.answers, "ended": c.end_reason, "max_gap_s": round(c.max_gap_s, 3)}
            for c in conns]


def through_event(netns: str, address: str, port: int, count: int, event: Callable[[], object], *,
                  settle_s: float, answers_after: int = 3, warm_s: float = 0.5) -> list[Conn]:
    """`count` long-lived connections to address:port through `event` (a failover, a server's removal...).

    The connections open when the event starts, each as it was once it had
    `answers_after` more answers after the event returned, or ended, or
    `settle_s` passed; their `answers` then count only those after the event.
    A connection's `servers` shows whether another real server took it over.
    """
    streams = LineStreams(netns, address, port, count=count, stall_s=settle_s + 10)
    streams.start()
    try:
        time.sleep(warm_s)  # a few answers each before the event (flow sets, conntrack, the stream's server)
        mark = streams.mark()
        event()
        before = {c.serial: c.answers for c in streams.marked(mark)}
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline and not all(
                c.end_reason or c.answers - before[c.serial] >= answers_after for c in streams.marked(mark)):
            time.sleep(0.1)
    finally:
        streams.stop()
    conns = streams.marked(mark)
    for conn in conns:  # the driver's thread has ended: from here on, the answers after the event
        conn.answers -= before[conn.serial]
    if len(conns) != count:
        raise LabError(f"{len(conns)} of {count} connections to {address}:{port} were answering when the event "
                       f"came: {streams.summary_line()}")
    return conns


def _reason(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    return {"ECONNRESET": "reset", "EPIPE": "broken pipe"}.get(name, name or str(exc))
