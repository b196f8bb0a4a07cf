"""Slot-map elements written straight over nfnetlink: the bulk of a change, at the kernel's cost.

Why not libnftables, which sends everything else: it spends about 8.6 us of
its own per map element (JSON in, its parse, evaluation and netlink build),
and the hash and load-based schedulers' slot maps are where the elements are
(a Maglev table has 65,521 slots; 1,000 services of their own pools, 509,000
elements). The kernel itself takes about 2 us an element (ours and
libnftables' alike), so libnftables' share is what can go.

Why not pyroute2's encoder (`nft_set_elem_list_msg`), the project's usual
netlink library: measured in one run against the same map (bench/nft_elements.py),
it costs 90-146 us per element (nested NLA objects built and encoded one by
one), 9-11 times libnftables; and 0.9.7 declares the element lists without
NLA_F_NESTED, which the kernel's strict parser refuses (EINVAL). The format
here is small and fixed: every element is a key of one 32-bit integer (the
slot, in host byte order, as `numgen` and `jhash` leave it) and its data (an
address, an address and a port, or a verdict `goto`), so each distinct datum
is encoded once per batch and each element is one `struct` pack; 0.4 us an
element, 4x faster than libnftables with the kernel's share (docs/dataplane.md).
What is encoded is kept between batches only for Maglev maps of 4,093
slots or more (`ElementChange.keep_encoded`, nft_diff's SlotWrite.maglev:
those built with a history, SlotMap.base): a change to one of 1,000 servers
rewrites ~430 slots of ~400 servers, whose encodings are then mostly known
(1 ms of an mh apply). An rr, wrr or load-based map changes a few
slots per server that changes, so its encodings are made per batch: kept,
the checker's rr table of 6,000 real servers held them for its whole life
(0.9 MiB, bench/checks.py) to save microseconds.

What it writes: the elements of existing maps, deleted and added in ONE
nfnetlink batch (the kernel applies it atomically), every message asking for
an ACK, every ACK checked; any refusal raises ElementError naming the set and
the kernel's reason, and then nothing of the batch was applied. Tables,
chains, rules, sets and their declarations stay with libnftables (lvs/nft.py
orders the two batches; docs/dataplane.md says why that stays safe), but
for one kind of rule: a pick rule whose modulus alone changes goes in the
element batch as the kernel's own encoding of it with the new number
(nft_modulus.py: a NEWRULE that replaces it by its handle).
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .model import DataPlaneError
from .nft_handles import NFPROTO, NLA_F_NESTED, nla
from .nft_modulus import RuleReplace
from .nft_rules import SLOT_KEY_TYPEOF

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11
NETLINK_CAP_ACK = 10
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
ACK_BYTES = 1024
"""What one ACK takes of the receive buffer (the kernel counts its buffer, ~800 bytes here, not the 36 read):
a batch of 1,000 maps (1,000 services of their own pools) has 1,000 ACKs queued before the first is read."""
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_REPLACE = 0x100
NLM_F_CREATE = 0x400
NLM_F_ACK_TLVS = 0x200
NLMSG_ERROR = 2
NLMSGERR_ATTR_MSG = 1
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NFT_MSG_NEWRULE = 6
NFT_MSG_NEWSETELEM = 12
NFT_MSG_DELSETELEM = 14
NFTA_SET_ELEM_LIST_TABLE = 1
NFTA_SET_ELEM_LIST_SET = 2
NFTA_SET_ELEM_LIST_ELEMENTS = 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY = 1
NFTA_SET_ELEM_DATA = 2
NFTA_DATA_VALUE = 1
NFTA_DATA_VERDICT = 2
NFTA_VERDICT_CODE = 1
NFTA_VERDICT_CHAIN = 2
VERDICTS = {"accept": 1, "drop": 0, "continue": -1, "return": -5}  # NF_ACCEPT, NF_DROP, NFT_CONTINUE, NFT_RETURN
CHAIN_VERDICTS = {"jump": -3, "goto": -4}  # NFT_JUMP, NFT_GOTO
ELEMENTS_PER_LIST_BYTES = 60_000
"""A message's element list stops short of this: its length is a 16-bit NLA field (libnftnl splits alike)."""

_HEADER = struct.Struct("=IHHIIBBH")  # nlmsghdr + nfgenmsg
_KEY_ELEM = struct.Struct("=HHHHHHI")  # element nest, key nest, key value (a 32-bit slot)
_DATA_WORDS = re.compile(r"(ip6?) daddr(?: \. (tcp|udp|sctp|dccp|udplite|th) dport)?")


class ElementError(DataPlaneError):
    """The kernel refused an element batch (or the batch cannot be written); nothing of it was applied."""


@dataclass(frozen=True)
class ElementChange:
    """The elements of one map to delete, then add, in one batch with the others.

    `key_type` and `data_type` are the map's `typeof` words as nft_rules
    renders them (`SLOT_KEY_TYPEOF`; "ip daddr . tcp dport", "ip6 daddr",
    "verdict"); `add` gives each key's data as nft_rules' JSON text
    (`SlotMap.data`: "\\"10.1.2.3\\"", {"concat": ["10.1.2.3", 80]},
    {"goto": {"target": "chain"}}). A key both deleted and added is replaced.
    """

    family: str
    table: str
    name: str
    key_type: str
    data_type: str
    delete: Sequence[int] = ()
    add: Sequence[tuple[int, str]] = ()
    keep_encoded: bool = False  # keep the data's encodings for later batches (module docstring: Maglev maps)


ENCODED_MAX = 65536
"""Encoded data an ElementWriter keeps at most for Maglev maps (beyond, it starts afresh): a few MiB at worst."""


def _verdict(value: Any) -> bytes:
    if isinstance(value, dict) and len(value) == 1:
        (word, arg), = value.items()
        if word in CHAIN_VERDICTS and isinstance(arg, dict) and isinstance(arg.get("target"), str):
            return nla(NFTA_DATA_VERDICT | NLA_F_NESTED,
                        nla(NFTA_VERDICT_CODE, struct.pack("!i", CHAIN_VERDICTS[word]))
                        + nla(NFTA_VERDICT_CHAIN, arg["target"].encode() + b"\0"))
        if word in VERDICTS and arg is None:
            return nla(NFTA_DATA_VERDICT | NLA_F_NESTED, nla(NFTA_VERDICT_CODE, struct.pack("!i", VERDICTS[word])))
    raise ValueError(f"not a verdict: {json.dumps(value)}")


def _address(value: Any, version: int) -> bytes:
    """The address in network order; inet_pton, not ipaddress: a Maglev change encodes ~400 of them per apply."""
    if not isinstance(value, str):
        raise ValueError(f"{json.dumps(value)} is not an IPv{version} address")
    try:
        return socket.inet_pton(socket.AF_INET6 if version == 6 else socket.AF_INET, value)
    except OSError:
        raise ValueError(f"{value} is not an IPv{version} address") from None


# nft_rules' own spelling of an address and a port (`_nat_target_text`): read without json.loads
_CONCAT_TEXT = re.compile(r'\{"concat": \["([0-9A-Fa-f.:]+)", ([0-9]{1,5})\]\}')


def encode_data(data_type: str, text: str) -> bytes:
    """NFTA_SET_ELEM_DATA for one datum (ValueError if it does not fit `data_type`).

    Addresses as the kernel keeps them (network order); a port is 16 bits in
    network order padded to 32, as every part of a concatenation is.
    """
    if data_type == "verdict":
        return nla(NFTA_SET_ELEM_DATA | NLA_F_NESTED, _verdict(json.loads(text)))
    words = _DATA_WORDS.fullmatch(data_type)
    if words is None:
        raise ValueError(f"data type {data_type!r} is not one this writer knows")
    version = 6 if words.group(1) == "ip6" else 4
    if words.group(2) is None:
        plain = len(text) > 2 and text[0] == text[-1] == '"' and "\\" not in text
        raw = _address(text[1:-1] if plain else json.loads(text), version)
    elif (quick := _CONCAT_TEXT.fullmatch(text)) is not None and int(quick.group(2)) <= 0xFFFF:
        raw = _address(quick.group(1), version) + struct.pack("!Hxx", int(quick.group(2)))
    else:
        value = json.loads(text)
        parts = value.get("concat") if isinstance(value, dict) else None
        if not (isinstance(parts, list) and len(parts) == 2 and isinstance(parts[1], int)
                and 0 <= parts[1] <= 0xFFFF):
            raise ValueError(f"{text} is not an address and a port")
        raw = _address(parts[0], version) + struct.pack("!Hxx", parts[1])
    return nla(NFTA_SET_ELEM_DATA | NLA_F_NESTED, nla(NFTA_DATA_VALUE, raw))


class Batch:
    """The bytes of one nfnetlink batch of element messages (and rule replacements, nft_modulus), and what each
    message's sequence number changes.

    Each element is written into the batch's one buffer as it is encoded,
    its message's lengths filled in when the message is full: a first table
    of 6,000 slots held them as a list of bytes, then as joined lists, then
    as the joined batch, 1.1 MiB of the first apply's peak (bench/checks.py's
    checker, tracemalloc) for a batch of 0.3 MB.
    """

    def __init__(self, first_seq: int, encoded: dict[tuple[str, str], bytes] | None = None) -> None:
        self.data = bytearray(_control(NFNL_MSG_BATCH_BEGIN, first_seq))
        self.names: dict[int, str] = {}  # sequence number -> "the elements of map <family> <table> <set>", "rule ..."
        self.seq = first_seq + 1
        # data type and text -> encoded: the writer's (ElementWriter.encoded), kept from batch to batch for the
        # changes that ask (keep_encoded); the others' for this batch only, by data type then text
        self._cache: dict[tuple[str, str], bytes] = {} if encoded is None else encoded
        self._batch_cache: dict[str, dict[str, bytes]] = {}

    def add(self, change: ElementChange | RuleReplace) -> None:
        """Append `change`'s deletions, then its additions, or the rule it replaces (ElementError if they cannot
        be written: the batch is then as it was)."""
        if isinstance(change, RuleReplace):
            self._rule(change)
            return
        where = f"map {change.family} {change.table} {change.name}"
        family = NFPROTO.get(change.family)
        if family is None:
            raise ElementError(f"{where}: no nftables family {change.family!r}")
        if change.key_type != SLOT_KEY_TYPEOF:
            raise ElementError(f"{where}: keys of type {change.key_type!r} are not written here "
                               f"(only {SLOT_KEY_TYPEOF!r}, a 32-bit integer)")
        head = (nla(NFTA_SET_ELEM_LIST_TABLE, change.table.encode() + b"\0")
                + nla(NFTA_SET_ELEM_LIST_SET, change.name.encode() + b"\0"))
        size, seq = len(self.data), self.seq
        deletions = (_KEY_ELEM.pack(16, NFTA_LIST_ELEM | NLA_F_NESTED, 12, NFTA_SET_ELEM_KEY | NLA_F_NESTED,
                                    8, NFTA_DATA_VALUE, key) for key in change.delete)
        try:
            self._messages(NFT_MSG_DELSETELEM, 0, family, where, head, deletions)
            self._messages(NFT_MSG_NEWSETELEM, NLM_F_CREATE, family, where, head, self._elements(change))
        except (struct.error, ValueError) as exc:
            del self.data[size:]
            for number in range(seq, self.seq):
                del self.names[number]
            self.seq = seq
            raise ElementError(f"{where}: cannot write its elements: {exc}") from exc

    def _rule(self, replace: RuleReplace) -> None:
        """One NEWRULE that replaces a rule by its handle (nft_modulus: a pick rule's new modulus)."""
        family = NFPROTO.get(replace.family)
        if family is None:
            raise ElementError(f"{replace.where}: no nftables family {replace.family!r}")
        start = len(self.data)
        self.data += bytes(_HEADER.size)
        self.data += replace.payload()
        _HEADER.pack_into(self.data, start, len(self.data) - start, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE,
                          NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE, self.seq, 0, family, 0, 0)
        self.names[self.seq] = replace.where
        self.seq += 1

    def _messages(self, kind: int, flags: int, family: int, where: str, head: bytes,
                  elements: Iterator[bytes]) -> None:
        """`elements` as messages of `kind`, each element list under ELEMENTS_PER_LIST_BYTES (libnftnl splits alike)."""
        data = self.data
        start = first = -1  # where the open message starts, and its first element
        for element in elements:
            if start >= 0 and len(data) - first + len(element) > ELEMENTS_PER_LIST_BYTES:
                self._close(start, first, kind, flags, family, where)
                start = -1
            if start < 0:
                start = len(data)
                data += bytes(_HEADER.size)  # nlmsghdr + nfgenmsg, filled in by _close
                data += head
                data += bytes(4)  # NFTA_SET_ELEM_LIST_ELEMENTS' nest, likewise
                first = len(data)
            data += element
        if start >= 0:
            self._close(start, first, kind, flags, family, where)

    def _close(self, start: int, first: int, kind: int, flags: int, family: int, where: str) -> None:
        """Fill in the lengths of the message at `start` (its elements from `first` to the end), number it."""
        end = len(self.data)
        _HEADER.pack_into(self.data, start, end - start, NFNL_SUBSYS_NFTABLES << 8 | kind,
                          NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0, family, 0, 0)
        struct.pack_into("=HH", self.data, first - 4, 4 + end - first, NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED)
        self.names[self.seq] = f"the elements of {where}"
        self.seq += 1

    def _elements(self, change: ElementChange) -> Iterator[bytes]:
        pack, data_type = _KEY_ELEM.pack, change.data_type
        if change.keep_encoded:
            cache = self._cache
            for key, text in change.add:
                data = cache.get((data_type, text))
                if data is None:
                    if len(cache) >= ENCODED_MAX:
                        cache.clear()
                    data = cache[(data_type, text)] = encode_data(data_type, text)
                yield pack(16 + len(data), NFTA_LIST_ELEM | NLA_F_NESTED, 12, NFTA_SET_ELEM_KEY | NLA_F_NESTED,
                           8, NFTA_DATA_VALUE, key) + data
            return
        seen = self._batch_cache.setdefault(data_type, {})  # keyed by text alone: no pair per datum
        for key, text in change.add:
            data = seen.get(text)
            if data is None:
                data = seen[text] = encode_data(data_type, text)
            yield pack(16 + len(data), NFTA_LIST_ELEM | NLA_F_NESTED, 12, NFTA_SET_ELEM_KEY | NLA_F_NESTED,
                       8, NFTA_DATA_VALUE, key) + data

    def finish(self) -> bytearray:
        """The whole batch, its end included (nothing may be added after)."""
        self.data += _control(NFNL_MSG_BATCH_END, self.seq)
        self.seq += 1
        return self.data


def _control(kind: int, seq: int) -> bytes:
    """A batch's begin or end message (nfgenmsg's res_id names the nftables subsystem)."""
    return _HEADER.pack(20, kind, NLM_F_REQUEST, seq, 0, 0, 0, socket.htons(NFNL_SUBSYS_NFTABLES))


def _grow(sock: socket.socket, option: int, force: int, size: int) -> None:
    """Make a socket buffer at least `size` bytes (the FORCE option passes net.core's maximum; it needs
    CAP_NET_ADMIN, which writing nftables needs too)."""
    if sock.getsockopt(socket.SOL_SOCKET, option) >= size + 64:  # the kernel reports twice what was set
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, option, size)


def parse_acks(data: bytes) -> Iterator[tuple[int, int, str]]:
    """(sequence number, errno or 0, the kernel's message) of each NLMSG_ERROR in `data`."""
    offset = 0
    while offset + 16 <= len(data):
        length, kind, flags, seq, _ = struct.unpack_from("=IHHII", data, offset)
        if length < 16:
            break
        if kind == NLMSG_ERROR and length >= 20:
            code = -struct.unpack_from("=i", data, offset + 16)[0]
            text = ""
            if code and flags & NLM_F_ACK_TLVS:
                # the request's header follows (NETLINK_CAP_ACK: without its payload), then the TLVs
                tlv, end = offset + 20 + 16, offset + length
                while tlv + 4 <= end:
                    size, attr = struct.unpack_from("=HH", data, tlv)
                    if size < 4:
                        break
                    if attr & 0x3FFF == NLMSGERR_ATTR_MSG:
                        text = data[tlv + 4:tlv + size].rstrip(b"\0").decode(errors="replace")
                    tlv += (size + 3) & ~3
            yield seq, code, text
        offset += (length + 3) & ~3


class ElementWriter:
    """One nfnetlink socket that writes element batches (ElementChange) and checks each ACK."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._seq = 1
        # each Maglev datum's encoding, kept: a Maglev change rewrites ~450 slots of ~400 servers whose texts are the
        # same objects at every build (nft_rules' BuildContext), so encoding them again was 1 ms of each apply
        self.encoded: dict[tuple[str, str], bytes] = {}
        self.written = 0  # elements deleted or added by batches the kernel took (tests read it)
        self.rules_replaced = 0  # rules replaced by them (nft_modulus; likewise)

    def send(self, changes: Sequence[ElementChange | RuleReplace]) -> None:
        """Apply `changes` in one batch, in their order, or raise ElementError naming the first set or rule refused
        (nothing applied)."""
        changes = [c for c in changes if isinstance(c, RuleReplace) or c.delete or c.add]
        if not changes:
            return
        batch = Batch(self._seq, self.encoded)
        for change in changes:
            batch.add(change)
        data = batch.finish()
        self._seq = batch.seq if batch.seq < 1 << 30 else 1
        try:
            replies = self._talk(data, len(batch.names))
        except OSError as exc:
            self.close()  # replies left behind would be read as this socket's next answers
            raise ElementError(f"cannot write {next(iter(batch.names.values()))}: "
                               f"{os.strerror(exc.errno) if exc.errno else exc}") from exc
        acked: set[int] = set()
        for seq, code, text in replies:
            if code:
                where = batch.names.get(seq, "the batch")  # the begin's (a batch refused whole, e.g. EPERM)
                reason = f"{os.strerror(code)}{f' ({text})' if text else ''}"
                raise ElementError(f"nftables refused {where}: {reason}")
            acked.add(seq)
        missing = [seq for seq in batch.names if seq not in acked]
        if missing:
            raise ElementError(f"nftables acknowledged {len(batch.names) - len(missing)} of {len(batch.names)} "
                               f"messages (the first unanswered: {batch.names[missing[0]]})")
        self.written += sum(len(c.delete) + len(c.add) for c in changes if isinstance(c, ElementChange))
        self.rules_replaced += sum(isinstance(c, RuleReplace) for c in changes)

    def _talk(self, data: bytes | bytearray, messages: int) -> list[tuple[int, int, str]]:
        """Send one batch and read every answer: the kernel handles a batch within send(), so all are queued."""
        sock = self._socket()
        # a batch must be one send, refused when larger than the send buffer (libnftables grows it alike), and
        # its ACKs must all fit the receive buffer (one lost would leave the batch's fate unknown)
        _grow(sock, socket.SO_SNDBUF, SO_SNDBUFFORCE, len(data) + 4096)
        _grow(sock, socket.SO_RCVBUF, SO_RCVBUFFORCE, messages * ACK_BYTES + 65536)
        sock.send(data)
        replies: list[tuple[int, int, str]] = []
        while True:
            try:
                answer = sock.recv(1 << 16)
            except BlockingIOError:
                return replies
            replies.extend(parse_acks(answer))

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
            try:
                sock.setblocking(False)  # nothing waits: the kernel has answered when send() returns
                sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)  # errors without the request's payload
                sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)  # ... but with the kernel's reason
                sock.bind((0, 0))
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
