"""Raw sockets for SYN probes (global_defs pykeepalived_syn_probe): TCP_CHECK without a socket per check.

Why: the engine's half-open check already puts only SYN, SYN-ACK and RST on
the wire, but each check still costs a connect, a disconnect and an epoll
change, and the kernel builds and tears down a socket's state for it. Here
one raw socket per address family sends every SYN (one sendto per check) and
reads every answer; our kernel resets the half-open connection by itself,
since no socket of ours holds it. In a bare loop through veth: 4-5 us of
system time per check against 10-11 us for connect and disconnect.

What it takes to mean what connect() means:
- our ports are reserved by TCP sockets bound to them (RESERVED_PORTS in a
  row), so that no connect on this host picks one and an answer meets no
  socket here (so the kernel resets it);
- a socket filter (syn_wire.answer_filter) hands us only SYN-ACKs and resets
  to those ports;
- ICMP errors about a SYN come through IP_RECVERR / IPV6_RECVERR, and fail
  the check at once as they fail a connect;
- the IPv4 checksum is ours to compute, over the source address the kernel
  will choose (asked of a connected UDP socket, kept per destination address,
  and asked again after a failure or after the kernel announced a change of
  links, IPv4 addresses, routes or rules on a route netlink socket); IPv6 has
  the kernel compute it (IPV6_CHECKSUM).
The engine keeps the timing: SYNs are sent again after 1, 3, 7... s, as the
kernel does for a connect, until connect_timeout.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import random
import socket
import struct
from dataclasses import dataclass, field

from . import syn_wire
from .connect import SO_MARK
from .icmp import IP_RECVERR, IPV6_RECVERR, SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6, SOL_IP, SOL_IPV6, error_reports

log = logging.getLogger("pykeepalived.check")

RESERVED_PORTS = 64  # in flight at once to one server: a SYN waits for its port's turn at worst (see engine)
RECEIVE_BUFFER = 4 << 20  # answers to a burst of checks while the loop is busy
_SO_ATTACH_FILTER = 26
_SO_RCVBUFFORCE = 33
_IPV6_CHECKSUM = 7
_PORT_TRIES = 50
_MAX_READS = 4096  # segments read per wake at most: the loop gets on with other work, the rest comes next time
# route netlink groups whose news can move the source address of an IPv4 destination: links, IPv4 addresses,
# routes and rules (RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV4_RULE; pyroute2 has the names,
# but the checker process does not import pyroute2: `pyroute2.netlink.rtnl` alone is 163 modules, ~10 MiB of RSS)
_SOURCE_NEWS = 0x01 | 0x10 | 0x40 | 0x80


class SynProbeUnavailable(Exception):
    """This host will not give us what SYN probes need (raw sockets, a run of free ports); connect() is used."""


@dataclass
class SynSocket:
    """One address family's raw socket, the ports it answers for and the source addresses chosen so far."""

    family: int
    raw: socket.socket
    first_port: int
    reservations: list[socket.socket]
    sources: dict[str, int] = field(default_factory=dict)  # IPv4: destination -> checksum sum of both addresses
    # every destination sent to -> its address packed, as an answer carries it (never forgotten: one per host)
    packed: dict[str, bytes] = field(default_factory=dict)
    news: socket.socket | None = None  # IPv4: the route netlink socket whose news forget the sources

    @property
    def fd(self) -> int:
        return self.raw.fileno()

    def send(self, host: str, port: int, our_port: int, seq: int) -> int:
        """Send one SYN; 0, or the errno that fails the check now (no route, for instance).

        A SYN the host has no room for (a full queue) counts as sent: like a
        SYN lost on the way, it goes again at the next resend.
        """
        pseudo: int | None = None
        if self.family == socket.AF_INET:
            pseudo = self.sources.get(host)
            if pseudo is None:
                try:
                    pseudo = self.sources[host] = _pseudo_sum(host)
                except OSError as exc:
                    return exc.errno or errno.EHOSTUNREACH
                self.packed[host] = socket.inet_aton(host)
        elif host not in self.packed:
            self.packed[host] = socket.inet_pton(socket.AF_INET6, host)
        try:
            self.raw.sendto(syn_wire.syn_segment(our_port, port, seq, pseudo), (host, 0))
        except BlockingIOError:
            return 0
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                return 0
            return exc.errno or errno.EHOSTUNREACH
        return 0

    def forget_source(self, host: str) -> None:
        """After a failed check: the route (and so the source address) may have changed."""
        self.sources.pop(host, None)

    def read_news(self) -> None:
        """Every source forgotten if the kernel announced a change that may move one (the news are read up).

        The messages are not read for their content: a link, address, route
        or rule change is rare next to checks, and asking again is one UDP
        connect per destination at its next SYN. A SYN sent just before the
        news goes again with the right checksum at its first resend.
        """
        news = self.news
        if news is None:
            return
        heard = False
        for _ in range(_MAX_READS):
            try:
                news.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # ENOBUFS: news were lost, which is news too; anything else: forget, stop
                heard = True
                if exc.errno != errno.ENOBUFS:
                    break
                continue
            heard = True
        if heard:
            self.sources.clear()

    def answers(self) -> list[tuple[bytes, syn_wire.Answer]]:
        """What waits on the socket: (the sender's address, packed, and its answer) for each segment."""
        got: list[tuple[bytes, syn_wire.Answer]] = []
        raw = self.raw
        answer = syn_wire.answer
        if self.family == socket.AF_INET:
            recv = raw.recv  # the IP header says who sent it: no address to build
            for _ in range(_MAX_READS):
                try:
                    packet = recv(128)
                except (BlockingIOError, InterruptedError):
                    return got
                except OSError:  # the socket's pending error (an ICMP error was queued, errors() reads it)
                    continue
                reply = answer(packet, syn_wire.ipv4_header_length(packet))
                if reply is not None:
                    got.append((packet[12:16], reply))
            return got  # the rest at the next wake (level-triggered)
        for _ in range(_MAX_READS):
            try:
                packet, sender = raw.recvfrom(128)
            except (BlockingIOError, InterruptedError):
                return got
            except OSError:
                continue
            reply = answer(packet)
            if reply is not None:
                got.append((socket.inet_pton(socket.AF_INET6, sender[0]), reply))
        return got

    def errors(self) -> list[tuple[int, int, int]]:
        """ICMP errors about our SYNs: (our port, SYN seq, errno) for each."""
        got: list[tuple[int, int, int]] = []
        for _ in range(_MAX_READS):
            try:
                data, ancillary, _flags, _addr = self.raw.recvmsg(64, 256, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return got
            except OSError:
                return got
            if len(data) < 8:
                continue
            our_port, _port, seq = struct.unpack_from("!HHI", data)
            got.extend((our_port, seq, report.errno) for report in error_reports(ancillary)
                       if report.errno and report.origin in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6))
        return got

    def close(self) -> None:
        self.raw.close()
        if self.news is not None:
            self.news.close()
        for sock in self.reservations:
            sock.close()
        self.reservations.clear()


def open_syn_socket(family: int, mark: int | None = None) -> SynSocket:
    """The family's raw socket, its reserved ports and its filter; SynProbeUnavailable if any is refused.

    `mark` (pykeepalived_checker_notrack): SO_MARK of the SYNs, which the
    table's output chain untracks, and of the reserved ports, which then
    listen (see _reserve_ports) so that the table's reply rule (`socket mark`)
    finds an answer's socket and untracks it, and the reset the listener
    sends carries the mark too.
    """
    try:
        raw = socket.socket(family, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.IPPROTO_TCP)
    except OSError as exc:
        raise SynProbeUnavailable(f"no raw socket: {exc.strerror or exc}") from None
    reservations: list[socket.socket] = []
    news: socket.socket | None = None
    try:
        if mark is not None:
            raw.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
        reservations = _reserve_ports(family, mark)
        first = reservations[0].getsockname()[1]
        program = syn_wire.answer_filter(first, first + len(reservations) - 1, family == socket.AF_INET)
        _attach_filter(raw, program)
        if family == socket.AF_INET:
            raw.setsockopt(SOL_IP, IP_RECVERR, 1)
            news = open_source_news()
        else:
            raw.setsockopt(SOL_IPV6, IPV6_RECVERR, 1)
            raw.setsockopt(socket.IPPROTO_IPV6, _IPV6_CHECKSUM, 16)
        try:
            raw.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, RECEIVE_BUFFER)
        except OSError:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    except SynProbeUnavailable:
        raw.close()
        raise
    except OSError as exc:
        raw.close()
        for sock in reservations:
            sock.close()
        if news is not None:
            news.close()
        raise SynProbeUnavailable(f"cannot set the raw socket up: {exc.strerror or exc}") from None
    return SynSocket(family, raw, first, reservations, news=news)


def open_source_news() -> socket.socket:
    """A route netlink socket that hears of every change to links, IPv4 addresses, routes and rules."""
    news = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.NETLINK_ROUTE)
    try:
        news.bind((0, _SOURCE_NEWS))
    except OSError:
        news.close()
        raise
    return news


def _reserve_ports(family: int, mark: int | None = None) -> list[socket.socket]:
    """RESERVED_PORTS ports in a row inside the ephemeral range, each held by a bound TCP socket.

    With a `mark` each also listens, marked, behind a filter that drops every
    SYN (syn_wire.listener_filter): nobody can connect to it, and our answers
    (SYN-ACKs, resets) reach it, which resets a SYN-ACK as an unbound port
    would, with the mark.
    """
    low, high = _ephemeral_range()
    any_address = "::" if family == socket.AF_INET6 else "0.0.0.0"
    for _ in range(_PORT_TRIES):
        first = random.randint(low, max(low, high - RESERVED_PORTS))  # noqa: S311 - not a secret
        held: list[socket.socket] = []
        try:
            for port in range(first, first + RESERVED_PORTS):
                sock = socket.socket(family, socket.SOCK_STREAM)
                held.append(sock)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((any_address, port))
        except OSError:
            for sock in held:
                sock.close()
            continue
        if mark is not None:
            try:
                program = syn_wire.listener_filter()
                for sock in held:
                    sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
                    _attach_filter(sock, program)  # before listen(): no SYN is ever let in
                    sock.listen(1)
            except OSError as exc:
                for sock in held:
                    sock.close()
                raise SynProbeUnavailable(f"cannot mark and filter the reserved ports: {exc.strerror or exc}") from None
        return held
    raise SynProbeUnavailable(f"no {RESERVED_PORTS} free ports in a row in {low}-{high}")


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            low, high = (int(word) for word in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _attach_filter(sock: socket.socket, program: bytes) -> None:
    """SO_ATTACH_FILTER: Python's setsockopt passes bytes, so struct sock_fprog points at a ctypes copy."""
    insns = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(insns))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


def _pseudo_sum(host: str) -> int:
    """The checksum's sum of source and destination for IPv4 `host`: the source as the kernel would choose it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect((host, 9))
        source = udp.getsockname()[0]
    return syn_wire.address_sum(socket.inet_aton(source)) + syn_wire.address_sum(socket.inet_aton(host))
