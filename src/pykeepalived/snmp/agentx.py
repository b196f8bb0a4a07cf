"""The AgentX protocol (RFC 2741) as a sans-IO codec: PDUs to bytes and back.

No maintained Python AgentX library exists (pyagentx and its forks run
threads with blocking sockets; netsnmpagent wraps libnetsnmp with ctypes), so
the subagent speaks the protocol itself. This module only turns bytes into
`Packet`s and back: no sockets, no clock. Every decoding problem raises
`AgentxError` with what was wrong, so that the shell can count the PDU as
malformed and drop it instead of crashing.

Layouts (RFC 2741 section 6): a 20-byte header (version 1, type, flags,
reserved, session, transaction and packet ids, payload length), then the
payload. Integers follow the byte order the header's NETWORK_BYTE_ORDER flag
names; we always send network byte order and read both.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Union

from ..errors import PyKeepalivedError

VERSION = 1
HEADER_LEN = 20
MAX_SUBIDS = 128  # RFC 2741 5.1: an OID has at most 128 sub-identifiers
MAX_PAYLOAD = 1 << 20  # larger payloads are refused: no PDU of ours or snmpd's comes near
INTERNET = (1, 3, 6, 1)  # the prefix an OID's `prefix` byte stands for

Oid = tuple[int, ...]


class AgentxError(PyKeepalivedError):
    """A PDU that does not follow RFC 2741's layouts; the message says what was wrong."""


class PduType(enum.IntEnum):
    OPEN = 1
    CLOSE = 2
    REGISTER = 3
    UNREGISTER = 4
    GET = 5
    GET_NEXT = 6
    GET_BULK = 7
    TEST_SET = 8
    COMMIT_SET = 9
    UNDO_SET = 10
    CLEANUP_SET = 11
    NOTIFY = 12
    PING = 13
    INDEX_ALLOCATE = 14
    INDEX_DEALLOCATE = 15
    ADD_AGENT_CAPS = 16
    REMOVE_AGENT_CAPS = 17
    RESPONSE = 18


class Flag(enum.IntFlag):
    INSTANCE_REGISTRATION = 0x01
    NEW_INDEX = 0x02
    ANY_INDEX = 0x04
    NON_DEFAULT_CONTEXT = 0x08
    NETWORK_BYTE_ORDER = 0x10


class ValueType(enum.IntEnum):
    INTEGER = 2
    OCTET_STRING = 4
    NULL = 5
    OBJECT_IDENTIFIER = 6
    IP_ADDRESS = 64
    COUNTER32 = 65
    GAUGE32 = 66
    TIME_TICKS = 67
    OPAQUE = 68
    COUNTER64 = 70
    NO_SUCH_OBJECT = 128
    NO_SUCH_INSTANCE = 129
    END_OF_MIB_VIEW = 130


class CloseReason(enum.IntEnum):
    OTHER = 1
    PARSE_ERROR = 2
    PROTOCOL_ERROR = 3
    TIMEOUTS = 4
    SHUTDOWN = 5
    BY_MANAGER = 6


class ResponseError(enum.IntEnum):
    """res.error: AgentX's own errors, and the SNMP ones a subagent may return (RFC 2741 6.2.16)."""

    NO_ERROR = 0
    GEN_ERR = 5
    NO_ACCESS = 6
    NOT_WRITABLE = 17
    OPEN_FAILED = 256
    NOT_OPEN = 257
    INDEX_WRONG_TYPE = 258
    INDEX_ALREADY_ALLOCATED = 259
    INDEX_NONE_AVAILABLE = 260
    INDEX_NOT_ALLOCATED = 261
    UNSUPPORTED_CONTEXT = 262
    DUPLICATE_REGISTRATION = 263
    UNKNOWN_REGISTRATION = 264
    UNKNOWN_AGENT_CAPS = 265
    PARSE_ERROR = 266
    REQUEST_DENIED = 267
    PROCESSING_ERROR = 268


_INT_TYPES = {ValueType.INTEGER: (-(1 << 31), (1 << 31) - 1), ValueType.COUNTER32: (0, (1 << 32) - 1),
              ValueType.GAUGE32: (0, (1 << 32) - 1), ValueType.TIME_TICKS: (0, (1 << 32) - 1),
              ValueType.COUNTER64: (0, (1 << 64) - 1)}
_BYTES_TYPES = {ValueType.OCTET_STRING, ValueType.IP_ADDRESS, ValueType.OPAQUE}
_EMPTY_TYPES = {ValueType.NULL, ValueType.NO_SUCH_OBJECT, ValueType.NO_SUCH_INSTANCE, ValueType.END_OF_MIB_VIEW}

Value = Union[int, bytes, Oid, None]


@dataclass(frozen=True)
class VarBind:
    """One name and its typed value: int for the integer types, bytes for strings and IpAddress, an Oid, or None."""

    type: ValueType
    name: Oid
    value: Value = None

    def __post_init__(self) -> None:
        check_oid(self.name)
        if self.type in _INT_TYPES:
            lo, hi = _INT_TYPES[self.type]
            if not isinstance(self.value, int) or not lo <= self.value <= hi:
                raise AgentxError(f"{self.type.name} value {self.value!r} is not an integer in {lo}..{hi}")
        elif self.type in _BYTES_TYPES:
            if not isinstance(self.value, bytes):
                raise AgentxError(f"{self.type.name} value {self.value!r} is not bytes")
            if self.type == ValueType.IP_ADDRESS and len(self.value) != 4:
                raise AgentxError(f"IpAddress value {self.value!r} is not 4 bytes")
        elif self.type == ValueType.OBJECT_IDENTIFIER:
            if not isinstance(self.value, tuple):
                raise AgentxError(f"OBJECT IDENTIFIER value {self.value!r} is not a tuple")
            check_oid(self.value)
        elif self.value is not None:
            raise AgentxError(f"{self.type.name} carries no value, got {self.value!r}")


@dataclass(frozen=True)
class SearchRange:
    """Get/GetNext/GetBulk's unit: from `start` (itself included when `include`) up to `end` (excluded; () = none)."""

    start: Oid
    end: Oid = ()
    include: bool = False


# ---------------------------------------------------------------- PDU bodies
@dataclass(frozen=True)
class Open:
    timeout: int
    id: Oid
    descr: bytes


@dataclass(frozen=True)
class Close:
    reason: CloseReason


@dataclass(frozen=True)
class Register:
    subtree: Oid
    timeout: int = 0
    priority: int = 127
    range_subid: int = 0
    upper_bound: int = 0
    context: bytes | None = None


@dataclass(frozen=True)
class Unregister:
    subtree: Oid
    priority: int = 127
    range_subid: int = 0
    upper_bound: int = 0
    context: bytes | None = None


@dataclass(frozen=True)
class Get:
    ranges: tuple[SearchRange, ...]
    context: bytes | None = None


@dataclass(frozen=True)
class GetNext:
    ranges: tuple[SearchRange, ...]
    context: bytes | None = None


@dataclass(frozen=True)
class GetBulk:
    non_repeaters: int
    max_repetitions: int
    ranges: tuple[SearchRange, ...]
    context: bytes | None = None


@dataclass(frozen=True)
class Notify:
    varbinds: tuple[VarBind, ...]
    context: bytes | None = None


@dataclass(frozen=True)
class Ping:
    context: bytes | None = None


@dataclass(frozen=True)
class Response:
    sys_uptime: int = 0
    error: int = ResponseError.NO_ERROR
    index: int = 0
    varbinds: tuple[VarBind, ...] = ()


@dataclass(frozen=True)
class Other:
    """A PDU a read-only subagent does not parse (the set phases, index allocation, agent caps): its raw payload."""

    payload: bytes = b""


Body = Union[Open, Close, Register, Unregister, Get, GetNext, GetBulk, Notify, Ping, Response, Other]

_BODY_TYPE: dict[type, PduType] = {Open: PduType.OPEN, Close: PduType.CLOSE, Register: PduType.REGISTER,
                                   Unregister: PduType.UNREGISTER, Get: PduType.GET, GetNext: PduType.GET_NEXT,
                                   GetBulk: PduType.GET_BULK, Notify: PduType.NOTIFY, Ping: PduType.PING,
                                   Response: PduType.RESPONSE}


@dataclass(frozen=True)
class Packet:
    """A header's ids and a body; the type, the context flag and the payload length follow from the body."""

    body: Body
    session_id: int = 0
    transaction_id: int = 0
    packet_id: int = 0
    flags: int = 0  # INSTANCE_REGISTRATION, NEW_INDEX, ANY_INDEX as wanted; the others are set by encode()
    type: PduType | None = field(default=None)  # only for `Other`: which PDU it was

    @property
    def pdu_type(self) -> PduType:
        if isinstance(self.body, Other):
            if self.type is None:
                raise AgentxError("an Other PDU needs its type")
            return self.type
        return _BODY_TYPE[type(self.body)]


@dataclass(frozen=True)
class Header:
    version: int
    type: int
    flags: int
    session_id: int
    transaction_id: int
    packet_id: int
    payload_length: int

    @property
    def network_order(self) -> bool:
        return bool(self.flags & Flag.NETWORK_BYTE_ORDER)


def check_oid(oid: Oid) -> None:
    if len(oid) > MAX_SUBIDS:
        raise AgentxError(f"an OID has at most {MAX_SUBIDS} sub-identifiers, got {len(oid)}")
    for sub in oid:
        if not isinstance(sub, int) or not 0 <= sub < 1 << 32:
            raise AgentxError(f"sub-identifier {sub!r} is not an unsigned 32-bit integer")


def parse_oid(text: str) -> Oid:
    """"1.3.6.1.2.1.207" (a leading dot allowed) to a tuple."""
    try:
        oid = tuple(int(part) for part in text.strip().lstrip(".").split(".") if part != "")
    except ValueError:
        raise AgentxError(f"{text!r} is not a dotted OID") from None
    check_oid(oid)
    return oid


def format_oid(oid: Oid) -> str:
    return "." + ".".join(str(sub) for sub in oid) if oid else ".0.0"


# ---------------------------------------------------------------- encoding
class _Writer:
    def __init__(self, network_order: bool) -> None:
        self.order = "!" if network_order else "<"
        self.parts: list[bytes] = []

    def pack(self, fmt: str, *values: int) -> None:
        self.parts.append(struct.pack(self.order + fmt, *values))

    def oid(self, oid: Oid, include: bool = False) -> None:
        check_oid(oid)
        prefix = 0
        subids = oid
        if len(oid) > 4 and oid[:4] == INTERNET and 0 < oid[4] < 256:
            prefix, subids = oid[4], oid[5:]
        self.pack("BBBB", len(subids), prefix, 1 if include else 0, 0)
        if subids:
            self.pack(f"{len(subids)}I", *subids)

    def octets(self, data: bytes) -> None:
        self.pack("I", len(data))
        self.parts.append(data + b"\0" * (-len(data) % 4))

    def context(self, context: bytes | None) -> None:
        if context is not None:
            self.octets(context)

    def varbind(self, vb: VarBind) -> None:
        self.pack("HH", vb.type, 0)
        self.oid(vb.name)
        if vb.type in (ValueType.INTEGER,):
            assert isinstance(vb.value, int)
            self.pack("i", vb.value)
        elif vb.type in (ValueType.COUNTER32, ValueType.GAUGE32, ValueType.TIME_TICKS):
            assert isinstance(vb.value, int)
            self.pack("I", vb.value)
        elif vb.type == ValueType.COUNTER64:
            assert isinstance(vb.value, int)
            self.pack("Q", vb.value)
        elif vb.type in _BYTES_TYPES:
            assert isinstance(vb.value, bytes)
            self.octets(vb.value)
        elif vb.type == ValueType.OBJECT_IDENTIFIER:
            assert isinstance(vb.value, tuple)
            self.oid(vb.value)

    def ranges(self, ranges: Sequence[SearchRange]) -> None:
        for r in ranges:
            self.oid(r.start, r.include)
            self.oid(r.end)

    def data(self) -> bytes:
        return b"".join(self.parts)


def encode(packet: Packet, network_order: bool = True) -> bytes:
    """The packet's bytes, header included; the payload in the byte order asked for (network by default)."""
    w = _Writer(network_order)
    body = packet.body
    context = getattr(body, "context", None)
    if isinstance(body, Open):
        w.pack("B3x", body.timeout)
        w.oid(body.id)
        w.octets(body.descr)
    elif isinstance(body, Close):
        w.pack("B3x", body.reason)
    elif isinstance(body, (Register, Unregister)):
        w.context(context)
        w.pack("BBBx", body.timeout if isinstance(body, Register) else 0, body.priority, body.range_subid)
        w.oid(body.subtree)
        if body.range_subid:
            w.pack("I", body.upper_bound)
    elif isinstance(body, (Get, GetNext)):
        w.context(context)
        w.ranges(body.ranges)
    elif isinstance(body, GetBulk):
        w.context(context)
        w.pack("HH", body.non_repeaters, body.max_repetitions)
        w.ranges(body.ranges)
    elif isinstance(body, Notify):
        w.context(context)
        for vb in body.varbinds:
            w.varbind(vb)
    elif isinstance(body, Ping):
        w.context(context)
    elif isinstance(body, Response):
        w.pack("IHH", body.sys_uptime, body.error, body.index)
        for vb in body.varbinds:
            w.varbind(vb)
    else:
        w.parts.append(body.payload)
    payload = w.data()
    if len(payload) % 4:
        raise AgentxError("a payload must be a multiple of 4 bytes long")
    flags = packet.flags & ~(Flag.NON_DEFAULT_CONTEXT | Flag.NETWORK_BYTE_ORDER)
    if context is not None:
        flags |= Flag.NON_DEFAULT_CONTEXT
    if network_order:
        flags |= Flag.NETWORK_BYTE_ORDER
    header = struct.pack(("!" if network_order else "<") + "BBBxIIII", VERSION, packet.pdu_type, flags,
                         packet.session_id, packet.transaction_id, packet.packet_id, len(payload))
    return header + payload


# ---------------------------------------------------------------- decoding
def decode_header(data: bytes) -> Header:
    """The first 20 bytes; checks the version and that the payload length is sane."""
    if len(data) < HEADER_LEN:
        raise AgentxError(f"a header is {HEADER_LEN} bytes, got {len(data)}")
    version, pdu_type, flags = data[0], data[1], data[2]
    order = "!" if flags & Flag.NETWORK_BYTE_ORDER else "<"
    session, transaction, packet, length = struct.unpack_from(order + "IIII", data, 4)
    header = Header(version, pdu_type, flags, session, transaction, packet, length)
    if version != VERSION:
        raise AgentxError(f"AgentX version {version}, not {VERSION}")
    if length % 4:
        raise AgentxError(f"payload length {length} is not a multiple of 4")
    if length > MAX_PAYLOAD:
        raise AgentxError(f"payload length {length} is over {MAX_PAYLOAD}")
    return header


class _Reader:
    def __init__(self, data: bytes, network_order: bool) -> None:
        self.data = data
        self.pos = 0
        self.order = "!" if network_order else "<"

    def left(self) -> int:
        return len(self.data) - self.pos

    def unpack(self, fmt: str) -> tuple[int, ...]:
        st = struct.Struct(self.order + fmt)
        if self.left() < st.size:
            raise AgentxError(f"payload ends {st.size - self.left()} bytes early")
        values = st.unpack_from(self.data, self.pos)
        self.pos += st.size
        return tuple(values)

    def oid(self) -> tuple[Oid, bool]:
        n, prefix, include, _ = self.unpack("BBBB")
        if n > MAX_SUBIDS:
            raise AgentxError(f"an OID of {n} sub-identifiers (at most {MAX_SUBIDS})")
        if include > 1:
            raise AgentxError(f"include byte {include} is neither 0 nor 1")
        subids = self.unpack(f"{n}I") if n else ()
        oid = (*INTERNET, prefix, *subids) if prefix else subids
        if len(oid) > MAX_SUBIDS:
            raise AgentxError(f"an OID of {len(oid)} sub-identifiers (at most {MAX_SUBIDS})")
        return oid, bool(include)

    def octets(self) -> bytes:
        (n,) = self.unpack("I")
        padded = n + (-n % 4)
        if self.left() < padded:
            raise AgentxError(f"an octet string of {n} bytes runs past the payload")
        value = self.data[self.pos:self.pos + n]
        self.pos += padded
        return value

    def varbind(self) -> VarBind:
        raw_type, _ = self.unpack("HH")
        try:
            vtype = ValueType(raw_type)
        except ValueError:
            raise AgentxError(f"unknown value type {raw_type}") from None
        name, _ = self.oid()
        value: Value = None
        if vtype == ValueType.INTEGER:
            (value,) = self.unpack("i")
        elif vtype in (ValueType.COUNTER32, ValueType.GAUGE32, ValueType.TIME_TICKS):
            (value,) = self.unpack("I")
        elif vtype == ValueType.COUNTER64:
            (value,) = self.unpack("Q")
        elif vtype in _BYTES_TYPES:
            value = self.octets()
        elif vtype == ValueType.OBJECT_IDENTIFIER:
            value, _ = self.oid()
        return VarBind(vtype, name, value)

    def varbinds(self) -> tuple[VarBind, ...]:
        found = []
        while self.left():
            found.append(self.varbind())
        return tuple(found)

    def ranges(self) -> tuple[SearchRange, ...]:
        found = []
        while self.left():
            start, include = self.oid()
            end, _ = self.oid()
            found.append(SearchRange(start, end, include))
        return tuple(found)


def decode(data: bytes) -> Packet:
    """One whole PDU (header and exactly its payload) to a Packet; AgentxError if anything is off."""
    header = decode_header(data)
    if len(data) != HEADER_LEN + header.payload_length:
        raise AgentxError(f"header says {header.payload_length} payload bytes, got {len(data) - HEADER_LEN}")
    r = _Reader(data[HEADER_LEN:], header.network_order)
    has_context = bool(header.flags & Flag.NON_DEFAULT_CONTEXT)
    try:
        pdu_type = PduType(header.type)
    except ValueError:
        raise AgentxError(f"unknown PDU type {header.type}") from None
    body: Body
    if pdu_type == PduType.OPEN:
        (timeout,) = r.unpack("B3x")
        oid, _ = r.oid()
        body = Open(timeout, oid, r.octets())
    elif pdu_type == PduType.CLOSE:
        (reason,) = r.unpack("B3x")
        try:
            body = Close(CloseReason(reason))
        except ValueError:
            raise AgentxError(f"unknown close reason {reason}") from None
    elif pdu_type in (PduType.REGISTER, PduType.UNREGISTER):
        context = r.octets() if has_context else None
        timeout, priority, range_subid = r.unpack("BBBx")
        subtree, _ = r.oid()
        if range_subid > len(subtree):
            raise AgentxError(f"range_subid {range_subid} is past the subtree's {len(subtree)} sub-identifiers")
        upper = r.unpack("I")[0] if range_subid else 0
        if pdu_type == PduType.REGISTER:
            body = Register(subtree, timeout, priority, range_subid, upper, context)
        else:
            body = Unregister(subtree, priority, range_subid, upper, context)
    elif pdu_type in (PduType.GET, PduType.GET_NEXT):
        context = r.octets() if has_context else None
        ranges = r.ranges()
        body = Get(ranges, context) if pdu_type == PduType.GET else GetNext(ranges, context)
    elif pdu_type == PduType.GET_BULK:
        context = r.octets() if has_context else None
        non_repeaters, max_repetitions = r.unpack("HH")
        body = GetBulk(non_repeaters, max_repetitions, r.ranges(), context)
    elif pdu_type == PduType.NOTIFY:
        context = r.octets() if has_context else None
        body = Notify(r.varbinds(), context)
    elif pdu_type == PduType.PING:
        body = Ping(r.octets() if has_context else None)
    elif pdu_type == PduType.RESPONSE:
        sys_uptime, error, index = r.unpack("IHH")
        body = Response(sys_uptime, error, index, r.varbinds())
    else:
        body = Other(r.data)
        r.pos = len(r.data)
    if r.left():
        raise AgentxError(f"{r.left()} bytes left over after a {pdu_type.name} PDU")
    keep = header.flags & (Flag.INSTANCE_REGISTRATION | Flag.NEW_INDEX | Flag.ANY_INDEX)
    return Packet(body, header.session_id, header.transaction_id, header.packet_id, keep,
                  pdu_type if isinstance(body, Other) else None)


@dataclass
class Framer:
    """Cuts a byte stream into whole PDUs. Malformed ones are counted and skipped, never raised.

    A header that is itself unusable (wrong version with an absurd length)
    leaves the stream unsynchronised: `broken` is set and the shell must
    close the connection and start over.
    """

    buffer: bytearray = field(default_factory=bytearray)
    malformed: int = 0
    last_error: str = ""
    broken: bool = False

    def feed(self, data: bytes) -> list[Packet]:
        self.buffer.extend(data)
        packets: list[Packet] = []
        while not self.broken and len(self.buffer) >= HEADER_LEN:
            flags = self.buffer[2]
            (length,) = struct.unpack_from("!I" if flags & Flag.NETWORK_BYTE_ORDER else "<I", self.buffer, 16)
            if length > MAX_PAYLOAD or length % 4:
                self._bad(f"payload length {length}: the stream cannot be followed")
                self.broken = True
                break
            if len(self.buffer) < HEADER_LEN + length:
                break
            raw = bytes(self.buffer[:HEADER_LEN + length])
            del self.buffer[:HEADER_LEN + length]
            try:
                packets.append(decode(raw))
            except AgentxError as exc:
                self._bad(str(exc))
        return packets

    def _bad(self, why: str) -> None:
        self.malformed += 1
        self.last_error = why
