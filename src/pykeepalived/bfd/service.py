"""The BFD sessions of one config on asyncio sockets: keepalived 2.2.7's bfd process.

As keepalived: one listening UDP socket on port 3784 for every session
(IPv6 with IPv4-mapped addresses, or IPv4 where IPv6 is off), the received
TTL/hop limit and destination read from ancillary data; one sending socket
per session, bound to its source_ip (if any) and a port in 49152-65535, its
TTL set to the session's `ttl` (255 unless configured). A packet is matched to
its session by our discriminator, or while the neighbour does not know it yet
by (neighbour address, our address). One `call_at` timer per session, armed at
the time its core asks for. State changes go to the VRRP and checker processes
through events.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import random
import socket
import struct
from dataclasses import dataclass, field

from ..config.model import BfdInstance, KeepalivedConfig
from ..config.values import IPAddress
from . import events
from .packet import CONTROL_PORT, SOURCE_PORTS, BfdPacketError, State, decode
from .session import Action, BfdSession, DetectionTimeChanged, Expired, SessionSettings, StateChanged, Transmit

log = logging.getLogger("pykeepalived.bfd")

IP_RECVTTL = 12  # linux/in.h; Python's socket module lacks it
IP_PKTINFO = 8
CMSG_SPACE = 256


@dataclass
class _Session:
    config: BfdInstance
    core: BfdSession
    out: socket.socket | None = None
    timer: asyncio.TimerHandle | None = None
    send_failed: bool = False
    roles: tuple[events.Role, ...] = field(default=())


def roles_of(bfd: BfdInstance) -> tuple[events.Role, ...]:
    """Which processes hear of the session: keepalived's `vrrp` / `checker` keywords, both when neither is given."""
    if bfd.vrrp_only == bfd.checker_only:
        return ("vrrp", "checker")
    return ("vrrp",) if bfd.vrrp_only else ("checker",)


def _unmapped(address: str) -> IPAddress:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class BfdService:
    """Every bfd_instance of `config`, reporting to the processes of the daemon whose parent is `parent_pid`."""

    def __init__(self, config: KeepalivedConfig, parent_pid: int, rng: random.Random | None = None) -> None:
        self.parent_pid = parent_pid
        self.rng = rng or random.Random()
        self.sessions: dict[str, _Session] = {}
        used: set[int] = set()
        for name, bfd in config.bfd_instances.items():
            discr = 0
            while discr == 0 or discr in used:
                discr = self.rng.randrange(1, 2**32)
            used.add(discr)
            core = BfdSession(SessionSettings.from_config(bfd), discr, self.rng.random)
            self.sessions[name] = _Session(bfd, core, roles=roles_of(bfd))
        self._by_discr = {s.core.local_discr: s for s in self.sessions.values()}
        self._rx: socket.socket | None = None
        self._ctl: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()

    # ------------------------------------------------------------------ life cycle
    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._rx = self._open_rx()
        self._loop.add_reader(self._rx.fileno(), self._on_packet)
        self._ctl = events.open_socket(events.address(self.parent_pid, "bfd"))
        self._loop.add_reader(self._ctl.fileno(), self._on_control)
        try:
            for name, s in self.sessions.items():
                try:
                    s.out = self._open_out(s.config)
                except OSError as exc:
                    log.error("(%s) Unable to open output socket, disabling instance (%s)", name, exc)
                    s.core.state = State.ADMIN_DOWN
                    continue
                self._apply(s, s.core.start(self._now()))
            for name, s in self.sessions.items():  # keepalived's bfd_register_workers: every state, at start
                self._publish(s, s.core.up)
            await self._stop.wait()
        finally:
            self._close()

    def stop(self) -> None:
        self._stop.set()

    def _close(self) -> None:
        assert self._loop is not None
        for s in self.sessions.values():
            if s.timer is not None:
                s.timer.cancel()
            if s.out is not None:
                s.out.close()
        for sock in (self._rx, self._ctl):
            if sock is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
                sock.close()

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    # ------------------------------------------------------------------ sockets
    @staticmethod
    def _open_rx() -> socket.socket:
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.EAFNOSUPPORT:
                raise
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            if sock.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
                sock.bind(("::", CONTROL_PORT))
            else:
                sock.bind(("0.0.0.0", CONTROL_PORT))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    def _open_out(self, bfd: BfdInstance) -> socket.socket:
        assert bfd.neighbor_ip is not None
        family = socket.AF_INET if bfd.neighbor_ip.version == 4 else socket.AF_INET6
        sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            ttl = bfd.ttl if bfd.ttl is not None else 255
            if family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
            source = str(bfd.source_ip) if bfd.source_ip is not None else ("0.0.0.0" if family == socket.AF_INET
                                                                            else "::")
            low, high = SOURCE_PORTS
            first = port = self.rng.randint(low, high)
            while True:  # RFC 5881: a source port in 49152-65535, the first free one from a random start
                try:
                    sock.bind((source, port))
                    break
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        raise
                    port = low if port == high else port + 1
                    if port == first:
                        raise
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    # ------------------------------------------------------------------ input
    def _on_packet(self) -> None:
        assert self._rx is not None
        for _ in range(64):
            try:
                data, ancdata, _flags, addr = self._rx.recvmsg(512, CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.error("recvmsg() error (%s)", exc)
                return
            self._handle(data, ancdata, addr)

    def _handle(self, data: bytes, ancdata: list[tuple[int, int, bytes]], addr: tuple[str, int]) -> None:
        ttl: int | None = None
        dst: IPAddress | None = None
        for level, kind, value in ancdata:
            if level == socket.IPPROTO_IP and kind == socket.IP_TTL and len(value) >= 4:
                ttl = struct.unpack("=i", value[:4])[0]
            elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT and len(value) >= 4:
                ttl = struct.unpack("=i", value[:4])[0]
            elif level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
                dst = ipaddress.IPv4Address(value[8:12])
            elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(value) >= 16:
                dst = _unmapped(str(ipaddress.IPv6Address(value[:16])))
        src = _unmapped(addr[0])
        try:
            pkt = decode(data)
        except BfdPacketError as exc:
            log.debug("Discarding bogus packet from %s (%s)", src, exc)
            return
        if pkt.your_discr:
            s = self._by_discr.get(pkt.your_discr)
        else:
            s = next((x for x in self.sessions.values() if x.config.neighbor_ip == src
                      and (x.config.source_ip is None or dst is None or x.config.source_ip == dst)), None)
        if s is None:
            log.debug("Discarding packet from %s (session is not found - your discriminator field is 0x%08x)",
                      src, pkt.your_discr)
            return
        if not s.core.settings.ttl_accepted(ttl):
            log.debug("(%s) Discarding packet from %s (ttl %s < %d)", s.config.name, src, ttl,
                      s.core.settings.ttl - s.core.settings.max_hops)
            return
        self._apply(s, s.core.receive(pkt, self._now()))

    def _on_control(self) -> None:
        """A VRRP or checker process says hello: tell it the state of each of its sessions now."""
        assert self._ctl is not None
        while True:
            try:
                data, sender = self._ctl.recvfrom(events.MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            msg = events.decode(data)
            role = msg.get("hello") if msg else None
            if role not in ("vrrp", "checker") or not isinstance(sender, (str, bytes)) or not sender:
                continue  # (an abstract name comes back as bytes)
            for name, s in self.sessions.items():
                if role in s.roles:
                    events.send_to(self._ctl, sender, events.encode_event(name, s.core.up))
            events.send_to(self._ctl, sender, b'{"ready": true}')

    def _on_timer(self, s: _Session) -> None:
        s.timer = None
        self._apply(s, s.core.handle_timer(self._now()))

    # ------------------------------------------------------------------ output
    def _apply(self, s: _Session, actions: list[Action]) -> None:
        name = s.config.name
        for action in actions:
            if isinstance(action, Transmit):
                self._send(s, action.packet.encode())
            elif isinstance(action, StateChanged):
                self._state_changed(s, action)
            elif isinstance(action, Expired):
                if action.was_up:
                    log.warning("(%s) Expired after %d ms (%d usec overdue)", name, action.dead_ms,
                                action.overdue_us)
            elif isinstance(action, DetectionTimeChanged):
                log.info("%s Detection time is %d us (was %d us)", " " * (len(name) + 2), action.new_us,
                         action.old_us)
        self._arm(s)

    def _arm(self, s: _Session) -> None:
        assert self._loop is not None
        if s.timer is not None:
            s.timer.cancel()
            s.timer = None
        when = s.core.get_timer()
        if when is not None:
            s.timer = self._loop.call_at(when, self._on_timer, s)

    def _send(self, s: _Session, data: bytes) -> None:
        if s.out is None or s.config.neighbor_ip is None:
            return
        try:
            s.out.sendto(data, (str(s.config.neighbor_ip), CONTROL_PORT))
            s.send_failed = False
        except OSError as exc:
            if not s.send_failed:
                log.error("(%s) Error sending packet (%s)", s.config.name, exc)
                s.send_failed = True

    def _state_changed(self, s: _Session, change: StateChanged) -> None:
        name = s.config.name
        if change.new is State.DOWN:
            if change.old is State.UP:
                log.warning("(%s) Entering %s state (Local diagnostic - %s, Remote diagnostic - %s)", name,
                            change.new.label, change.diag.label, change.remote_diag.label)
        elif change.new is State.UP:
            log.info("(%s) Entering %s state", name, change.new.label)
        else:
            log.debug("(%s) Entering %s state", name, change.new.label)
        if change.notify:
            self._publish(s, change.new is State.UP)

    def _publish(self, s: _Session, up: bool) -> None:
        if self._ctl is None:
            return
        data = events.encode_event(s.config.name, up)
        for role in s.roles:
            events.send_to(self._ctl, events.address(self.parent_pid, role), data)


class BfdAlongside:
    """The sessions run inside the VRRP or checker process itself, for `-P` / `-C`.

    keepalived's -P and -C keep its BFD child (they only drop the other
    subsystem); ours run the one subsystem without a parent, so the BFD
    sessions run in the same process, reporting to it under its own pid.
    """

    def __init__(self, config: KeepalivedConfig) -> None:
        self.key = os.getpid()  # what the subsystem's events.session_events() listens under
        self.service = BfdService(config, self.key)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            await self.service.run()
        except OSError as exc:
            log.error("BFD stopped on an error: %s", exc)

    async def stop(self) -> None:
        self.service.stop()
        if self._task is not None:
            await self._task


def alongside(config: KeepalivedConfig, child: bool, enabled: bool) -> BfdAlongside | None:
    """The in-process sessions when this process has no parent running a BFD child (None otherwise)."""
    if child or not enabled or not config.bfd_instances:
        return None
    return BfdAlongside(config)
