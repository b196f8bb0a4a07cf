"""The subagent's side of an AgentX session, sans IO: what to send, and the answer to each PDU received.

After connecting, the shell sends `opening()`; the master's Response gives
the session id, and `receive` answers it with one Register per subtree. Once
registered, Get/GetNext/GetBulk are answered from the view the shell
supplies (built lazily, only when a request comes); the set phases get
notWritable (TestSet) or a plain answer (CommitSet, UndoSet; none for
CleanupSet), since everything is read-only. A Close from the master, or a
refused Open, leaves `closed` set: the shell reconnects. Malformed bytes are
counted by the framer and dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .agentx import (Close, CloseReason, Framer, Get, GetBulk, GetNext, Notify, Oid, Open, Other, Packet, PduType,
                     Ping, Register, Response, ResponseError, VarBind, encode)
from .view import MibView

SUBAGENT_OID: Oid = (1, 3, 6, 1, 4, 1, 9586, 100, 5)  # KEEPALIVED-MIB's root names us, as keepalived does
DESCRIPTION = b"pykeepalived SNMP subagent"
OPEN_TIMEOUT_S = 5  # how long the master waits for our answers (0 would mean its default)


@dataclass
class Session:
    roots: Sequence[Oid]
    session_id: int = 0
    opened: bool = False  # the master accepted our Open
    registered: int = 0  # subtrees the master accepted
    closed: bool = False  # the master closed us, or refused: reconnect
    problems: list[str] = field(default_factory=list)  # for the log, taken by the shell
    framer: Framer = field(default_factory=Framer)
    answered: int = 0
    _next_packet: int = 0
    _open_packet: int = -1
    _register_packets: dict[int, Oid] = field(default_factory=dict)
    _pings: set[int] = field(default_factory=set)

    @property
    def ready(self) -> bool:
        return self.opened and not self.closed

    def _packet_id(self) -> int:
        self._next_packet = (self._next_packet + 1) & 0xFFFFFFFF
        return self._next_packet

    def opening(self) -> bytes:
        self._open_packet = self._packet_id()
        return encode(Packet(Open(OPEN_TIMEOUT_S, SUBAGENT_OID, DESCRIPTION), packet_id=self._open_packet))

    def ping(self) -> bytes:
        pid = self._packet_id()
        self._pings.add(pid)
        return encode(Packet(Ping(), self.session_id, packet_id=pid))

    @property
    def pings_unanswered(self) -> int:
        return len(self._pings)

    def notify(self, varbinds: Sequence[VarBind]) -> bytes:
        return encode(Packet(Notify(tuple(varbinds)), self.session_id, packet_id=self._packet_id()))

    def closing(self, reason: CloseReason = CloseReason.SHUTDOWN) -> bytes:
        return encode(Packet(Close(reason), self.session_id, packet_id=self._packet_id()))

    def receive(self, data: bytes, view: Callable[[], MibView], sys_uptime: int = 0) -> list[bytes]:
        """The bytes to send back for what arrived; `view()` is called at most once, and only for a read."""
        replies: list[bytes] = []
        cached: list[MibView] = []

        def current() -> MibView:
            if not cached:
                cached.append(view())
            return cached[0]

        for packet in self.framer.feed(data):
            replies += self._on(packet, current, sys_uptime)
        if self.framer.broken:
            self.problems.append(f"unreadable AgentX stream ({self.framer.last_error})")
            self.closed = True
        return replies

    def _on(self, packet: Packet, view: Callable[[], MibView], sys_uptime: int) -> list[bytes]:
        body = packet.body
        if isinstance(body, Response):
            return self._on_response(packet, body)
        if isinstance(body, Close):
            self.problems.append(f"the master agent closed the session ({body.reason.name})")
            self.closed = True
            return []
        if not self.opened or packet.session_id != self.session_id:
            return [self._answer(packet, Response(sys_uptime, ResponseError.NOT_OPEN))]
        if isinstance(body, (Get, GetNext, GetBulk)) and body.context is not None:
            return [self._answer(packet, Response(sys_uptime, ResponseError.UNSUPPORTED_CONTEXT))]  # default only
        if isinstance(body, Get):
            return [self._answer(packet, Response(sys_uptime, varbinds=tuple(view().get(r.start)
                                                                             for r in body.ranges)))]
        if isinstance(body, GetNext):
            return [self._answer(packet, Response(sys_uptime, varbinds=tuple(view().next(r) for r in body.ranges)))]
        if isinstance(body, GetBulk):
            found = view().bulk(body.non_repeaters, body.max_repetitions, body.ranges)
            return [self._answer(packet, Response(sys_uptime, varbinds=tuple(found)))]
        if isinstance(body, Other) and packet.type == PduType.TEST_SET:
            return [self._answer(packet, Response(sys_uptime, ResponseError.NOT_WRITABLE, 1))]
        if isinstance(body, Other) and packet.type == PduType.CLEANUP_SET:
            return []  # RFC 2741 7.2.4.4: no response
        if isinstance(body, (Other, Ping)):
            return [self._answer(packet, Response(sys_uptime))]
        return [self._answer(packet, Response(sys_uptime, ResponseError.PROCESSING_ERROR))]

    def _answer(self, request: Packet, body: Response) -> bytes:
        self.answered += 1
        return encode(Packet(body, request.session_id, request.transaction_id, request.packet_id))

    def _on_response(self, packet: Packet, body: Response) -> list[bytes]:
        pid = packet.packet_id
        if pid == self._open_packet:
            self._open_packet = -1
            if body.error != ResponseError.NO_ERROR:
                self.problems.append(f"the master agent refused our Open ({_error_name(body.error)})")
                self.closed = True
                return []
            self.session_id = packet.session_id
            self.opened = True
            replies = []
            for root in self.roots:
                rid = self._packet_id()
                self._register_packets[rid] = root
                replies.append(encode(Packet(Register(root, OPEN_TIMEOUT_S), self.session_id, packet_id=rid)))
            return replies
        if pid in self._register_packets:
            root = self._register_packets.pop(pid)
            if body.error == ResponseError.NO_ERROR:
                self.registered += 1
            else:
                dotted = ".".join(map(str, root))
                self.problems.append(f"the master agent refused {dotted} ({_error_name(body.error)})")
            return []
        if pid in self._pings:  # any answer proves the master alive (net-snmp answers some pings notOpen)
            self._pings.discard(pid)
            return []
        if body.error != ResponseError.NO_ERROR:
            self.problems.append(f"the master agent answered {_error_name(body.error)}")
        return []


def _error_name(code: int) -> str:
    try:
        return ResponseError(code).name
    except ValueError:
        return str(code)
