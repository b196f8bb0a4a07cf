"""The probe engine: TCP_CHECK and plain HTTP_GET for thousands of checkers on one epoll, no task per check.

Profiled at 6,000 checkers (bench/checks.py), the asyncio path cost about
0.17 ms of interpreter time per check: a task per checker, a sleep future and
timer per wait, a future, a timer and two selector registrations per connect,
a coroutine frame per layer. HAProxy spends about 0.08 ms per check in all,
most of it in the kernel. This engine keeps the checkers' schedule in one
list of jobs per TICK_S, a heap ordering the ticks rather than the checks (a
heap entry per check cost 4-10 % more CPU per check at 6,000 checkers, six
paired runs), and their sockets in one epoll of its own, which the event loop
watches as a single reader: an attempt is one socket, one epoll registration
and a few system calls, and the loop wakes at most once per TICK_S however many
checks are due (a check starts at most TICK_S late, never early).

What an attempt means is unchanged: the verdict cores (logic.py) decide
through `running.record_result`, the reasons are the probes' (tcp.py,
http.py), and so are the timeouts: connect within connect_timeout; for
HTTP_GET the request sent within connect_timeout of each progress, the first
bytes of the answer within connect_timeout and the rest within another.

One difference from the asyncio probe, on the wire: TCP_CHECK is half-open,
as HAProxy's plain checks are (TCP_QUICKACK off before connecting delays the
handshake's last ACK; the socket, connected on the SYN-ACK, is closed at once
with a reset). It proves what a full connect proves (the server's kernel
answers on that port: a dead listener or a full accept queue fails both),
costs both ends less, and the server's application never sees the check.

After a good check the connection is reset with connect(AF_UNSPEC) and the
socket kept for a later check (see `_disconnector`): no socket(), close() and
epoll registration per check. Checkers with bind options (bindto, bind_port,
bind_if, fwmark) get a socket of their own each time, through
connect.make_socket; SSL_GET and every other kind keep their asyncio probe.

By default (global_defs pykeepalived_syn_probe) a TCP_CHECK without bind
options takes no socket at all: its SYN goes out through one raw socket per
address family and the answer is read there (syn_probe.py, the `_SYN` phase
below); the connect path above is then for the others.
"""

from __future__ import annotations

import ctypes
import errno
import heapq
import logging
import math
from collections import deque
import os
import random
import select
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config.model import CHECKER_NOTRACK_MARK, KeepalivedConfig
from .connect import ConnectFailed, make_socket, sockaddr
from . import http
from .http import HttpProbe, UrlPlan
from .http_response import judge
from .logic import Change, HttpCheckerCore
from .probe import OK, ProbeResult, failed
from .running import CheckerState, internal_error, record_result
from .syn_probe import RESERVED_PORTS, SynProbeUnavailable, SynSocket, open_syn_socket
from .syn_wire import TCP_SYN
from .tcp import TcpProbe

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("pykeepalived.check")

TICK_S = 0.005  # the loop wakes at most this often for due checks: a check starts up to 5 ms late
# attempts in flight at most: after the loop was held up (a start-up burst, a starved CPU) the checks that
# fell due start over the next ticks rather than all at once (thousands of sockets, megabytes)
MAX_IN_FLIGHT = 1024
HA_RECHECK_S = 0.25  # a checker of a suspended service (ha_suspend) looks again this often
READ_CHUNK = 65536
_LINGER_RESET = struct.pack("ii", 1, 0)
_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)

_ERRORS = select.EPOLLERR | select.EPOLLHUP
_WAIT_OUT = select.EPOLLOUT | select.EPOLLONESHOT  # one event per wait: a pooled socket's registration stays
_WAIT_IN = select.EPOLLIN | select.EPOLLONESHOT
POOL_MAX = 1024  # idle sockets kept per address family (see _disconnector): a burst of MAX_IN_FLIGHT fits
_NO_CHUNKS: list[bytes] = []  # shared and never appended to: thousands of idle jobs need no list each

# what an attempt in flight waits for
_CONNECT, _SEND, _READ, _SYN = 1, 2, 3, 4
_PORT_TURNS = RESERVED_PORTS - 1  # a SYN's seq, masked with this, says which reserved port sent it
assert RESERVED_PORTS & _PORT_TURNS == 0, "RESERVED_PORTS is a power of two"
SYN_RETRY_S = 1.0  # a SYN probe's first resend, doubling after: the kernel's SYN retransmits for a connect


def notrack_mark(config: KeepalivedConfig) -> int | None:
    """The mark of the engine's sockets: CHECKER_NOTRACK_MARK with global_defs pykeepalived_checker_notrack."""
    return CHECKER_NOTRACK_MARK if config.global_defs.pykeepalived_checker_notrack else None


def syn_probes(config: KeepalivedConfig) -> bool:
    """Whether TCP_CHECKs without bind options are SYN probes (global_defs pykeepalived_syn_probe)."""
    return config.global_defs.pykeepalived_syn_probe


def runs_here(chk: CheckerState) -> bool:
    """Whether the engine runs this checker: TCP_CHECK, and HTTP_GET without TLS that has urls to fetch."""
    probe = chk.plan.probe
    if chk.plan.immediate or chk.plan.event:
        return False
    if type(probe) is TcpProbe:
        return probe.target.port is not None
    return (type(probe) is HttpProbe and probe.tls is None and probe.setup_error is None and bool(probe.urls)
            and probe.target.port is not None)


class Job:
    """One checker the engine runs, and its attempt in flight (at most one): no object per attempt."""

    __slots__ = ("chk", "owner", "service", "probe", "addr", "family", "plain", "http", "active", "due_tick",
                 "sock", "fd", "phase", "deadline", "url", "sent", "chunks", "size", "got_first")

    def __init__(self, chk: CheckerState, owner: Any, service: str) -> None:
        self.chk = chk
        self.owner = owner  # handed back with each result that matters (the service's (svc, srv))
        self.service = service  # for ha_suspend
        self.probe: object = None
        self.addr: tuple[Any, ...] = ()
        self.family = socket.AF_INET
        self.plain = True
        self.http = False
        self.active = True
        self.due_tick = -1  # the tick whose bucket holds its live entry (ProbeEngine._buckets), -1: none
        self.sock: socket.socket | None = None
        self.fd = -1
        self.phase = 0
        self.deadline = 0.0  # the float object of its queue entry: `is` tells the live entry from stale ones
        self.url: UrlPlan | None = None
        self.sent = 0
        self.chunks: list[bytes] = _NO_CHUNKS  # a list of its own only while an answer is read
        self.size = 0
        self.got_first = False

    def refresh(self) -> None:
        """Address, family and socket options from the checker's probe (again after a reload changed it)."""
        probe = self.chk.plan.probe
        if probe is self.probe:
            return
        assert isinstance(probe, TcpProbe | HttpProbe)
        t = probe.target
        self.probe = probe
        self.addr = sockaddr(t)
        self.family = socket.AF_INET6 if t.address.version == 6 else socket.AF_INET
        self.plain = not (t.fwmark or t.bind_if or t.bind_address is not None or t.bind_port)
        self.http = isinstance(probe, HttpProbe)


Outcome = Callable[[Job, ProbeResult, "Change | None"], None]


class ProbeEngine:
    """Schedules and runs its jobs; `on_outcome(job, result, change)` hears every attempt that is not a plain success.

    `clock` is the service's (the cores' time); `runs(service)` says whether
    ha_suspend lets a virtual server's checkers run now. `mark`: SO_MARK of
    the sockets it makes itself (global_defs pykeepalived_checker_notrack: the
    nftables table untracks what carries it); checkers with bind options keep
    their own sockets, unmarked.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Callable[[], float], on_outcome: Outcome,
                 runs: Callable[[str], bool] | None = None, mark: int | None = None, syn_probe: bool = False) -> None:
        self._loop = loop
        self._mark = mark
        self._clock = clock
        self._on_outcome = on_outcome
        self._runs = runs
        self._ep = select.epoll()
        self._flights: dict[int, Job] = {}  # fd -> the job whose socket it is
        # the schedule: tick number (due time / TICK_S, rounded up) -> the jobs due then, and a heap of the
        # ticks that have a bucket. A check starts at a tick anyway, so one entry per tick, not per check, is
        # ordered. A job is scheduled only when it has no live entry (added, or just taken from its bucket);
        # an entry whose tick is not the job's due_tick is stale and skipped
        self._buckets: dict[int, list[Job]] = {}
        self._ticks: list[int] = []
        # timeout -> (deadlines, jobs), two FIFOs in step, in deadline order (`now` only grows). An entry
        # stays after its attempt ended (about two seconds' worth: 12,000-16,000 at 6,000 checks a second); it
        # is the job's live one while job.deadline is its deadline object, so it carries no sequence number.
        # Two deques, not one of (deadline, job) tuples: a tuple per entry was 0.7 MiB at 6,000 checks a second
        self._deadlines: dict[float, tuple[deque[float], deque[Job]]] = {}
        self._jobs: dict[CheckerState, Job] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._last_wake = 0.0
        self._closed = False
        self._pools: dict[int, list[socket.socket]] = {socket.AF_INET: [], socket.AF_INET6: []}
        self._disconnect = _disconnector()
        # SYN probes (syn_probe.py): family -> its raw socket, None once refused (connect() then); fd (the raw
        # socket's, or its route news') -> socket; seq of the SYN -> the job whose answer it awaits
        self._syn_probe = syn_probe
        self._syn: dict[int, SynSocket | None] = {}
        self._syn_fds: dict[int, SynSocket] = {}
        self._syn_flights: dict[int, Job] = {}
        self._syn_turn = 0
        loop.add_reader(self._ep.fileno(), self._on_ready)

    # ------------------------------------------------------------------ jobs
    def __contains__(self, chk: CheckerState) -> bool:
        return chk in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, chk: CheckerState, owner: Any, service: str) -> None:
        """Run `chk` from its core's next_due_s on."""
        job = Job(chk, owner, service)
        self._jobs[chk] = job
        self._schedule(job, chk.core.next_due_s)

    def remove(self, chk: CheckerState) -> None:
        """Stop running `chk`; an attempt in flight is dropped unrecorded (as a cancelled task's would be)."""
        job = self._jobs.pop(chk, None)
        if job is not None:
            job.active = False
            self._drop_socket(job)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for job in list(self._jobs.values()):
            job.active = False
            self._drop_socket(job)
        self._jobs.clear()
        for pool in self._pools.values():
            for sock in pool:
                sock.close()
            pool.clear()
        for syn in self._syn.values():
            if syn is not None:
                syn.close()
        self._syn_fds.clear()
        self._syn_flights.clear()
        if self._timer is not None:
            self._timer.cancel()
        self._loop.remove_reader(self._ep.fileno())
        self._ep.close()

    # ------------------------------------------------------------------ time
    def _schedule(self, job: Job, due: float) -> None:
        tick = math.ceil(due / TICK_S)
        job.due_tick = tick
        bucket = self._buckets.get(tick)
        if bucket is not None:
            bucket.append(job)
            return
        self._buckets[tick] = [job]
        heapq.heappush(self._ticks, tick)
        at = tick * TICK_S
        if self._timer is None or at < self._timer_at:
            self._arm(at)

    def _set_deadline(self, job: Job, now: float, timeout_s: float) -> None:
        deadline = job.deadline = now + timeout_s  # a new float object each time (see self._deadlines)
        queue = self._deadlines.get(timeout_s)
        if queue is None:
            queue = self._deadlines[timeout_s] = (deque(), deque())
        times, jobs = queue
        times.append(deadline)
        jobs.append(job)
        if len(times) == 1 and (self._timer is None or deadline < self._timer_at):
            self._arm(deadline)

    def _arm(self, at: float) -> None:
        """Wake at `at` (service clock), but not sooner than TICK_S after the last wake: checks come in batches."""
        at = max(at, self._last_wake + TICK_S)
        if self._timer is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_at(self._loop.time() + (at - self._clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._last_wake = self._clock()
        nxt = float("inf")
        # a copy: a SYN probe's resend may add a queue (its remaining time) while these are read
        for times, jobs in list(self._deadlines.values()):
            while times and times[0] <= now:
                deadline, job = times.popleft(), jobs.popleft()
                if job.deadline is deadline and (job.sock is not None or job.phase == _SYN):
                    self._guarded(self._timed_out, job, now)
            if times and times[0] < nxt:
                nxt = times[0]
        ticks, buckets = self._ticks, self._buckets
        flights = self._flights
        syn_flights = self._syn_flights
        last = now / TICK_S  # the buckets due by now: tick <= last
        while ticks and ticks[0] <= last:
            tick = ticks[0]
            bucket = buckets[tick]
            while bucket and len(flights) + len(syn_flights) < MAX_IN_FLIGHT:
                job = bucket.pop()
                if job.due_tick == tick and job.active:
                    job.due_tick = -1
                    try:
                        self._start(job, now)
                    except Exception as exc:  # noqa: BLE001 - see _guarded
                        self._failed_inside(job, exc, now)
            if bucket:
                break  # MAX_IN_FLIGHT holds the rest back: the next tick takes them
            del buckets[tick]
            heapq.heappop(ticks)
        if ticks and ticks[0] * TICK_S < nxt:
            nxt = ticks[0] * TICK_S  # (in the past when MAX_IN_FLIGHT held some back: the next tick takes them)
        if nxt != float("inf") and not self._closed and (self._timer is None or nxt < self._timer_at):
            self._arm(nxt)

    def _guarded(self, step: Callable[[Job, float], None], job: Job, now: float) -> None:
        """A bug in one attempt becomes that attempt's failure; the checker goes on (running.internal_error)."""
        try:
            step(job, now)
        except Exception as exc:  # noqa: BLE001
            self._failed_inside(job, exc, now)

    def _failed_inside(self, job: Job, exc: Exception, now: float) -> None:
        self._drop_socket(job)  # its socket, or its SYN probe in flight
        if job.active:
            self._finish(job, internal_error(job.chk, exc), now)

    # ------------------------------------------------------------------ one attempt
    def _start(self, job: Job, now: float) -> None:
        if self._runs is not None and not self._runs(job.service):
            self._schedule(job, now + HA_RECHECK_S)  # suspended: no attempt, the core is not told
            return
        if job.probe is not job.chk.plan.probe:
            job.refresh()
        if job.http:
            core = job.chk.core
            urls = job.probe.urls  # type: ignore[attr-defined]
            job.url = urls[(core.step if isinstance(core, HttpCheckerCore) else 0) % len(urls)]
        if job.plain and self._syn_probe and not job.http:
            syn = self._syn[job.family] if job.family in self._syn else self._open_syn(job.family)
            if syn is not None:
                self._send_syn(job, syn, now)
                return
        registered = False
        try:
            if job.plain:
                pool = self._pools[job.family]
                if pool:
                    sock, registered = pool.pop(), True
                else:
                    sock = socket.socket(job.family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
                    if self._mark is not None:
                        _set_mark(sock, self._mark)
            else:
                sock = make_socket(job.probe.target)  # type: ignore[attr-defined]
        except ConnectFailed as exc:
            self._fail_connect(job, str(exc), now)
            return
        except OSError as exc:  # EMFILE/ENFILE under load: a failed attempt, not a dead checker
            self._fail_connect(job, f"cannot create checker socket: {exc.strerror or exc}", now)
            return
        try:
            # TCP_CHECK: half-open (see the module's docstring); HTTP_GET: the request rides on the handshake's
            # last ACK instead of following a bare one
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 0)
            code = sock.connect_ex(job.addr)
        except OSError as exc:
            sock.close()
            self._fail_connect(job, _reason(exc.errno) if exc.errno is not None else str(exc), now)
            return
        job.sock, job.fd, job.phase = sock, sock.fileno(), _CONNECT
        if code != errno.EINPROGRESS and code != 0:
            self._drop_socket(job)
            self._fail_connect(job, _reason(code), now)
            return
        self._flights[job.fd] = job
        watch = self._ep.modify if registered else self._ep.register
        if job.http and self._send_early(job, now, watch):
            return
        watch(job.fd, _WAIT_OUT)
        if code == 0:  # connected at once (it happens on loopback)
            self._connected(job, now)
        else:
            self._set_deadline(job, now, job.probe.target.connect_timeout_s)  # type: ignore[attr-defined]

    def _send_early(self, job: Job, now: float, watch: Callable[[int, int], None]) -> bool:
        """HTTP_GET: send the request right after connect(); False while the handshake is still going on.

        Over a local link the server's answer to the SYN is often handled
        inside connect() itself (veth, loopback), so the socket is connected
        when the call returns: sending at once saves a wait for writability,
        an epoll change and a wake per check. An error here is the connect's
        (a reset: refused), reported as the wait for the connect would.
        """
        sock, url = job.sock, job.url
        assert sock is not None and url is not None
        try:
            job.sent = sock.send(url.request)
        except BlockingIOError:
            return False
        except OSError as exc:
            self._drop_socket(job)
            self._fail_connect(job, _reason(exc.errno) if exc.errno is not None else str(exc), now)
            return True
        job.phase = _SEND
        self._wait_after_send(job, now, watch)
        return True

    def _on_ready(self) -> None:
        now = self._clock()
        flights = self._flights
        # all of them (what is left could time out first), and the raw sockets of SYN probes
        for fd, events in self._ep.poll(0, len(flights) + 3):
            job = flights.get(fd)
            if job is None:
                syn = self._syn_fds.get(fd)
                if syn is None:
                    continue
                if fd == syn.fd:
                    self._syn_answers(syn, events, now)
                else:
                    syn.read_news()
                continue
            if job.phase == _CONNECT:
                sock = job.sock
                assert sock is not None
                if events & _ERRORS:
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    self._drop_socket(job)
                    self._fail_connect(job, _reason(code or errno.ECONNREFUSED), now)
                elif not job.http:  # TCP_CHECK, the common case: connected is all it asks
                    self._release_socket(job)
                    self._finish(job, OK, now)
                else:
                    self._guarded(self._connected, job, now)
            elif job.phase == _SEND:
                self._guarded(self._send, job, now)
            else:
                self._guarded(self._read, job, now)

    def _connected(self, job: Job, now: float) -> None:
        if not job.http:
            self._release_socket(job)
            self._finish(job, OK, now)
            return
        job.phase, job.sent = _SEND, 0
        self._send(job, now)

    def _send(self, job: Job, now: float) -> None:
        sock, url = job.sock, job.url
        assert sock is not None and url is not None
        try:
            job.sent += sock.send(url.request[job.sent:] if job.sent else url.request)
        except BlockingIOError:
            pass
        except OSError as exc:
            self._http_failed(job, f"cannot send the request to {url.where}: {exc}", now)
            return
        self._wait_after_send(job, now, self._ep.modify)

    def _wait_after_send(self, job: Job, now: float, watch: Callable[[int, int], None]) -> None:
        """Wait to send the rest of the request, or for the answer once it is all sent."""
        url = job.url
        assert url is not None
        timeout_s = job.probe.target.connect_timeout_s  # type: ignore[attr-defined]
        if job.sent < len(url.request):
            watch(job.fd, _WAIT_OUT)
            self._set_deadline(job, now, timeout_s)  # each bit of progress has connect_timeout (sockio.send_all)
            return
        job.phase, job.chunks, job.size, job.got_first = _READ, [], 0, False
        watch(job.fd, _WAIT_IN)
        self._set_deadline(job, now, timeout_s)  # the first bytes of the answer

    def _read(self, job: Job, now: float) -> None:
        sock, url = job.sock, job.url
        assert sock is not None and url is not None
        while True:
            try:
                chunk = sock.recv(READ_CHUNK)
            except BlockingIOError:
                if job.size and not job.got_first:  # the first bytes came: the rest within another connect_timeout
                    job.got_first = True  # (set only now: most answers end in the read that brings them)
                    self._set_deadline(job, now, job.probe.target.connect_timeout_s)  # type: ignore[attr-defined]
                self._ep.modify(job.fd, _WAIT_IN)
                return
            except OSError as exc:
                self._http_failed(job, f"read error from {url.where}: {exc}", now)
                return
            if not chunk:
                break
            job.chunks.append(chunk)
            job.size += len(chunk)
            if job.size > http.MAX_RESPONSE_BYTES:
                self._http_failed(job, f"answer from {url.where} is larger than {http.MAX_RESPONSE_BYTES >> 20} MiB",
                                  now)
                return
        raw = b"".join(job.chunks)
        job.chunks = _NO_CHUNKS
        self._release_socket(job)  # the server closed first: a reset, no FIN back
        reason = judge(url.rule, raw, url.where)
        self._finish(job, failed(reason) if reason is not None else OK, now)

    def _timed_out(self, job: Job, now: float) -> None:
        phase, url = job.phase, job.url
        if phase == _SYN:
            self._syn_timed_out(job, now)
            return
        if phase == _CONNECT and _connected_by_now(job.sock):
            # the connect finished in time but the loop was too busy to hear it (a start-up burst, a starved
            # CPU): the kernel says connected, so it is, not a failure of a healthy server
            self._connected(job, now)
            return
        self._drop_socket(job)
        if phase == _CONNECT:
            self._fail_connect(job, "connection timed out", now)
        elif url is not None and phase == _SEND:
            self._finish(job, failed(f"timeout sending the request to {url.where}"), now)
        elif url is not None:
            self._finish(job, failed(f"timeout reading the answer from {url.where}"), now)

    def _fail_connect(self, job: Job, reason: str, now: float) -> None:
        if job.http and job.url is not None:
            reason = f"cannot connect to {job.url.where}: {reason}"
        self._finish(job, failed(reason), now)

    def _http_failed(self, job: Job, reason: str, now: float) -> None:
        self._drop_socket(job)
        self._finish(job, failed(reason), now)

    def _release_socket(self, job: Job) -> None:
        """After a good attempt: the connection reset, the socket kept for another check if it can be."""
        sock = job.sock
        assert sock is not None
        job.sock = None
        del self._flights[job.fd]
        pool = self._pools[job.family]
        if job.plain and self._disconnect is not None and len(pool) < POOL_MAX and self._disconnect(job.fd):
            pool.append(sock)  # still registered in the epoll set, waiting for nothing (one-shot)
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)  # RST: no FIN, no TIME_WAIT
        except OSError:
            pass
        sock.close()

    def _drop_socket(self, job: Job) -> None:
        if job.phase == _SYN:  # a SYN probe: its answer no longer awaited
            if self._syn_flights.get(job.size) is job:
                del self._syn_flights[job.size]
            job.phase = 0
        sock = job.sock
        if sock is None:
            return
        job.sock = None
        self._flights.pop(job.fd, None)
        job.chunks = _NO_CHUNKS
        sock.close()  # closing the only descriptor takes it out of the epoll set too

    # ------------------------------------------------------------------ SYN probes (syn_probe.py)
    def _open_syn(self, family: int) -> SynSocket | None:
        try:
            syn = open_syn_socket(family, self._mark)
        except SynProbeUnavailable as exc:
            log.warning("pykeepalived_syn_probe: %s; TCP_CHECK connects instead", exc)
            self._syn[family] = None
            return None
        self._syn[family] = self._syn_fds[syn.fd] = syn
        self._ep.register(syn.fd, select.EPOLLIN)
        if syn.news is not None:
            news_fd = syn.news.fileno()
            self._syn_fds[news_fd] = syn
            self._ep.register(news_fd, select.EPOLLIN)
        return syn

    def _send_syn(self, job: Job, syn: SynSocket, now: float) -> None:
        """A SYN with a seq of its own; which reserved port sends it is in the seq's low bits (_PORT_TURNS).

        The ports take turns, so two checks of one server (two virtual servers
        naming the same real server) in flight at once use two ports; when they
        meet on one, the later SYN's answer is lost and its resend a second later
        has it. The job keeps the seq in `size` and its resends in `sent`
        (fields an HTTP_GET uses, a TCP_CHECK not).
        """
        flights = self._syn_flights
        turn = self._syn_turn = (self._syn_turn + 1) & _PORT_TURNS
        seq = random.getrandbits(32) & ~_PORT_TURNS | turn
        while seq in flights:
            seq = random.getrandbits(32) & ~_PORT_TURNS | turn
        host, port = job.addr[0], job.addr[1]
        code = syn.send(host, port, syn.first_port + turn, seq)
        if code:
            syn.forget_source(host)
            self._fail_connect(job, _reason(code), now)
            return
        job.phase, job.size, job.sent = _SYN, seq, 0
        flights[seq] = job
        self._set_deadline(job, now, min(SYN_RETRY_S, job.probe.target.connect_timeout_s))  # type: ignore[attr-defined]

    def _syn_answers(self, syn: SynSocket, events: int, now: float) -> None:
        """Answers to SYNs: a SYN-ACK is a good check, a reset or an ICMP error a failed one."""
        flights = self._syn_flights
        family = syn.family
        if events & select.EPOLLERR:
            for our_port, seq, code in syn.errors():
                job = flights.get(seq)
                if job is not None and job.family == family and our_port == syn.first_port + (seq & _PORT_TURNS):
                    self._syn_ended(job, syn, _reason(code), now)
        first = syn.first_port
        packed = syn.packed
        for sender, (port, our_port, seq, flags) in syn.answers():
            job = flights.get(seq)
            if job is None:
                continue  # not an answer to a SYN of ours in flight (a late one, a stray segment)
            addr = job.addr
            if (addr[1] != port or our_port != first + (seq & _PORT_TURNS) or job.family != family
                    or packed.get(addr[0]) != sender):
                continue
            if flags & TCP_SYN:
                del flights[seq]
                job.phase = 0
                self._finish(job, OK, now)
            else:  # a reset: the port is closed (the route and source address work: nothing to forget)
                self._syn_ended(job, syn, _reason(errno.ECONNREFUSED), now, forget=False)

    def _syn_ended(self, job: Job, syn: SynSocket, reason: str, now: float, forget: bool = True) -> None:
        """A failed SYN probe; `forget`: the source address is chosen again at the next SYN to that host."""
        del self._syn_flights[job.size]
        job.phase = 0
        if forget:
            syn.forget_source(job.addr[0])
        self._fail_connect(job, reason, now)

    def _syn_timed_out(self, job: Job, now: float) -> None:
        """Send the SYN again after 1, 3, 7... s (the kernel's retransmits), or fail at connect_timeout."""
        syn = self._syn.get(job.family)
        assert syn is not None
        self._syn_answers(syn, 0, now)  # an answer the loop had no time to read is not a timeout
        if job.phase != _SYN:
            return
        syn.read_news()  # the resend goes from the source the kernel would choose now
        timeout_s = job.probe.target.connect_timeout_s  # type: ignore[attr-defined]
        job.sent += 1
        waited = SYN_RETRY_S * ((1 << job.sent) - 1)  # where the schedule stands: 1, 3, 7... s
        if waited < timeout_s:
            seq = job.size
            code = syn.send(job.addr[0], job.addr[1], syn.first_port + (seq & _PORT_TURNS), seq)
            if code:
                self._syn_ended(job, syn, _reason(code), now)
                return
            self._set_deadline(job, now, min(SYN_RETRY_S * (1 << job.sent), timeout_s - waited))
            return
        self._syn_ended(job, syn, "connection timed out", now)

    def _finish(self, job: Job, result: ProbeResult, now: float) -> None:
        if not job.active:
            return
        chk = job.chk
        change = record_result(chk, result, now)
        if change is not None or not result.ok:
            try:
                self._on_outcome(job, result, change)
            except Exception:  # the service's bug: say it, and keep checking
                log.exception("%s: handling an attempt's result failed", chk.plan.kind)
        if job.active:
            self._schedule(job, chk.core.next_due_s)


def _disconnector() -> Callable[[int], bool] | None:
    """connect(fd, AF_UNSPEC): Linux resets a TCP connection and leaves the socket free for another connect.

    Python's socket module cannot make this call (its connect() wants an
    address of the socket's family), hence ctypes. Reusing sockets this way
    saves the socket()/close() pair, the epoll registration and SO_LINGER of
    every check: about a quarter of the CPU of a TCP check on loopback
    (0.082 -> 0.062 ms in a bare loop). The reset is the one close() with
    SO_LINGER 0 sends (tcp_disconnect); the local port is released, the next
    connect picks a new one. None where libc's connect cannot be found: then
    every check has a socket of its own.
    """
    try:
        connect = ctypes.CDLL(None, use_errno=True).connect
    except (OSError, AttributeError):
        return None
    connect.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
    connect.restype = ctypes.c_int
    unspec = ctypes.create_string_buffer(struct.pack("=H14x", socket.AF_UNSPEC), 16)

    def disconnect(fd: int) -> bool:
        return bool(connect(fd, unspec, 16) == 0)

    return disconnect


def _set_mark(sock: socket.socket, mark: int) -> None:
    """SO_MARK, or a warning once per socket refused (no CAP_NET_ADMIN): the check then runs tracked."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
    except OSError as exc:
        log.warning("cannot mark a checker socket (pykeepalived_checker_notrack): %s", exc)


def _connected_by_now(sock: socket.socket | None) -> bool:
    if sock is None:
        return False
    try:
        sock.getpeername()
    except OSError:  # ENOTCONN: still connecting (or failed)
        return False
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


def _reason(code: int) -> str:
    """connect.py's spelling of a failed connect: `ECONNREFUSED: Connection refused`."""
    return f"{errno.errorcode.get(code, str(code))}: {os.strerror(code)}"
