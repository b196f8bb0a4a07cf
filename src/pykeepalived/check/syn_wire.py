"""The bytes of a SYN probe: the SYN a TCP_CHECK sends, what its answers look like, and the filter that picks them.

Sans-IO: check/syn_probe.py owns the raw sockets. A SYN probe sends the
segment connect() would send first and reads the server's answer itself: a
SYN-ACK means the port is open (our kernel, which has no socket for it,
answers with the reset that ends the half-open connection), a reset means it
is closed. On the wire it is the engine's half-open check (SYN, SYN-ACK, RST),
without a socket, a connect, a disconnect and an epoll registration per check.
"""

from __future__ import annotations

import struct

TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10
SYN_ACK = TCP_SYN | TCP_ACK
# an MSS option (1460) as a connect() would send it (some stacks and middleboxes dislike a SYN without one)
_MSS_OPTION = 0x020405B4
SYN_LENGTH = 24  # 20 bytes of header and the MSS option
_SYN = struct.Struct("!HHIIHHHHI")  # ports, seq, ack, data offset and flags, window, checksum, urgent, MSS
_WINDOW = 64240
_OFFSET_FLAGS = (SYN_LENGTH // 4) << 12 | TCP_SYN
_CHECKSUM_AT = 16  # where the checksum sits in a TCP header (IPV6_CHECKSUM's offset too)
_REPLY = struct.Struct("!HHIIxB")  # source port, destination port, seq, ack, (data offset), flags
_FLAGS_AT = 13
_IPPROTO_TCP = 6
# the constant words of every SYN's checksum: data offset and flags, window, the MSS option, the protocol
# and the segment length of the pseudo-header
_CONSTANT_SUM = _OFFSET_FLAGS + _WINDOW + 0x0204 + 0x05B4 + _IPPROTO_TCP + SYN_LENGTH


# A segment that may answer one of our SYNs: the server's port (the segment's source port), our port, the seq
# of the SYN it answers (its ack - 1), its flags. A plain tuple: thousands a second are made and read once.
Answer = tuple[int, int, int, int]


def address_sum(packed: bytes) -> int:
    """The sum of an address's 16-bit words: the pseudo-header's share of a checksum."""
    return sum(struct.unpack(f"!{len(packed) // 2}H", packed))


def syn_segment(our_port: int, port: int, seq: int, pseudo_sum: int | None) -> bytes:
    """A SYN from `our_port` to `port` with sequence number `seq`.

    `pseudo_sum` is address_sum(source) + address_sum(destination) for IPv4,
    where the raw socket leaves the checksum to us; None leaves it zero for
    the kernel to fill in (IPv6 with IPV6_CHECKSUM).
    """
    checksum = 0
    if pseudo_sum is not None:
        total = pseudo_sum + _CONSTANT_SUM + our_port + port + (seq >> 16) + (seq & 0xFFFF)
        total = (total & 0xFFFF) + (total >> 16)
        total = (total & 0xFFFF) + (total >> 16)
        checksum = ~total & 0xFFFF
    return _SYN.pack(our_port, port, seq, 0, _OFFSET_FLAGS, _WINDOW, checksum, 0, _MSS_OPTION)


def answer(segment: bytes, at: int = 0) -> Answer | None:
    """The TCP header at `at` of a received segment as an Answer, or None when it answers no SYN of ours.

    A SYN-ACK or a reset with ACK set answers a SYN; anything else (a
    stray ACK, a segment too short to hold a header) does not.
    """
    if len(segment) < at + 20:
        return None
    port, our_port, _seq, ack, flags = _REPLY.unpack_from(segment, at)
    if not flags & TCP_ACK or not flags & (TCP_SYN | TCP_RST):
        return None
    return port, our_port, (ack - 1) & 0xFFFFFFFF, flags


def ipv4_header_length(packet: bytes) -> int:
    """Where the TCP header of a packet from an IPv4 raw socket starts (0 when it is not IPv4)."""
    if not packet or packet[0] >> 4 != 4:
        return 0
    return (packet[0] & 0x0F) * 4


# classic BPF, as struct sock_filter: code, jt, jf, k
_LD_B_ABS = 0x30  # A = byte at k
_LD_H_ABS = 0x28  # A = half-word at k
_LD_B_IND = 0x50  # A = byte at X + k
_LD_H_IND = 0x48  # A = half-word at X + k
_LDX_MSH = 0xB1  # X = 4 * (byte at k & 0xf): the IPv4 header's length
_ALU_AND_K = 0x54  # A &= k
_JEQ_K = 0x15
_JGE_K = 0x35
_JGT_K = 0x25
_JSET_K = 0x45
_RET_K = 0x06
_ACCEPT = 0xFFFF
_FILTER_INSN = struct.Struct("=HBBI")


def answer_filter(first_port: int, last_port: int, ipv4: bool) -> bytes:
    """A socket filter that keeps only SYN-ACKs and resets to our ports `first_port`..`last_port`.

    Without it a raw TCP socket is handed a copy of every TCP segment this
    host receives. An IPv4 raw socket's filter sees the IP header first; an
    IPv6 one sees the TCP header.
    """
    load_port, load_flags = (_LD_H_IND, _LD_B_IND) if ipv4 else (_LD_H_ABS, _LD_B_ABS)
    insns = [(_LDX_MSH, 0, 0, 0)] if ipv4 else []
    insns += [
        (load_port, 0, 0, 2),  # destination port
        (_JGE_K, 0, 4, first_port),  # below the range: drop
        (_JGT_K, 3, 0, last_port),  # above: drop
        (load_flags, 0, 0, _FLAGS_AT),
        (_JSET_K, 0, 1, TCP_SYN | TCP_RST),
        (_RET_K, 0, 0, _ACCEPT),
        (_RET_K, 0, 0, 0),
    ]
    return b"".join(_FILTER_INSN.pack(*insn) for insn in insns)


def listener_filter() -> bytes:
    """A TCP socket's filter that drops every SYN without ACK (it sees the TCP header first): see syn_probe."""
    insns = [
        (_LD_B_ABS, 0, 0, _FLAGS_AT),
        (_ALU_AND_K, 0, 0, TCP_SYN | TCP_ACK),
        (_JEQ_K, 1, 0, TCP_SYN),  # a SYN: drop
        (_RET_K, 0, 0, 0xFFFFFFFF),  # the whole segment (a TCP socket's filter trims to what it returns)
        (_RET_K, 0, 0, 0),
    ]
    return b"".join(_FILTER_INSN.pack(*insn) for insn in insns)
