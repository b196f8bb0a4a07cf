"""The BFD control packet (RFC 5880 section 4.1), without authentication, and its checks.

Pure: bytes in, a `ControlPacket` out (or `BfdPacketError` naming the rule the
packet broke), and back. The checks are RFC 5880 section 6.8.6's, plus
keepalived 2.2.7's extra ones (poll and final together, an unknown
diagnostic), so that we drop exactly what keepalived's bfd process drops.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from ..errors import PyKeepalivedError

HEADER = struct.Struct("!BBBBIIIII")
LENGTH = HEADER.size  # 24 bytes: no authentication section
VERSION = 1
CONTROL_PORT = 3784  # RFC 5881 single hop
SOURCE_PORTS = (49152, 65535)  # RFC 5881: the source port of a session's packets


class State(enum.IntEnum):
    ADMIN_DOWN = 0
    DOWN = 1
    INIT = 2
    UP = 3

    @property
    def label(self) -> str:
        """keepalived's spelling in its log lines ("Entering Up state")."""
        return ("AdminDown", "Down", "Init", "Up")[self.value]


class Diag(enum.IntEnum):
    NO_DIAG = 0
    EXPIRED = 1
    ECHO_FAILED = 2
    NEIGHBOR_DOWN = 3
    FORWARDING_RESET = 4
    PATH_DOWN = 5
    CONCAT_PATH_DOWN = 6
    ADMIN_DOWN = 7
    REVERSE_CONCAT_PATH_DOWN = 8

    @property
    def label(self) -> str:
        return _DIAG_LABELS[self.value]


_DIAG_LABELS = ("No Diagnostic", "Control Detection Time Expired", "Echo Function Failed",
                "Neighbor Signaled Session Down", "Forwarding Plane Reset", "Path Down", "Concatenated Path Down",
                "Administratively Down", "Reverse Concatenated Path Down")


class BfdPacketError(PyKeepalivedError):
    """A received control packet that RFC 5880 (or keepalived) says to discard; the message says why."""


@dataclass(frozen=True)
class ControlPacket:
    state: State
    my_discr: int
    your_discr: int
    desired_min_tx_us: int
    required_min_rx_us: int
    detect_mult: int
    diag: Diag = Diag.NO_DIAG
    poll: bool = False
    final: bool = False
    demand: bool = False
    required_min_echo_rx_us: int = 0

    def encode(self) -> bytes:
        flags = (self.state << 6) | (self.poll << 5) | (self.final << 4) | (self.demand << 1)
        return HEADER.pack((VERSION << 5) | self.diag, flags, self.detect_mult, LENGTH, self.my_discr,
                           self.your_discr, self.desired_min_tx_us, self.required_min_rx_us,
                           self.required_min_echo_rx_us)


def decode(data: bytes) -> ControlPacket:
    """Parse and check one control packet; BfdPacketError if it is to be discarded."""
    if len(data) < LENGTH:
        raise BfdPacketError(f"packet is too small: {len(data)} bytes")
    vers_diag, flags, mult, length, my, your, tx, rx, echo = HEADER.unpack_from(data)
    if length != len(data):
        raise BfdPacketError(f"length field {length} does not match the {len(data)} bytes received")
    if vers_diag >> 5 != VERSION:
        raise BfdPacketError(f"unsupported version {vers_diag >> 5}")
    if flags & 0x04:
        raise BfdPacketError("authentication is not in use")
    if mult == 0:
        raise BfdPacketError("detect multiplier is zero")
    if flags & 0x01:
        raise BfdPacketError("multipoint bit is set")
    if my == 0:
        raise BfdPacketError("my discriminator is zero")
    state = State(flags >> 6)
    if your == 0 and state not in (State.DOWN, State.ADMIN_DOWN):
        raise BfdPacketError(f"your discriminator is zero in state {state.label}")
    poll, final = bool(flags & 0x20), bool(flags & 0x10)
    if poll and final:
        raise BfdPacketError("poll and final are both set")
    diag = vers_diag & 0x1F
    if diag >= len(_DIAG_LABELS):
        raise BfdPacketError(f"invalid diagnostic {diag}")
    return ControlPacket(state, my, your, tx, rx, mult, Diag(diag), poll, final, bool(flags & 0x02), echo)
