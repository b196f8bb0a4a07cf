"""bgpd's vty socket protocol, as vtysh speaks it (learned from behaviour, not FRR's code).

Why not run `vtysh -c ...`: a vtysh process costs 40-70 ms a change and a
withdrawal must go out at once; one connection held open costs 0.06 ms a
command (docs/ecmp.md). The protocol: each command is its text and a NUL;
the daemon answers with its output, three NULs and one status byte (0:
done). A fresh connection is in view mode; `enable` first.
"""

from __future__ import annotations

from dataclasses import dataclass

END_MARK = b"\0\0\0"
STATUS_NAMES = {0: "success", 1: "warning", 2: "unknown command", 3: "ambiguous command", 4: "incomplete command",
                5: "too many arguments", 6: "nothing to do", 10: "not my instance", 12: "no daemon", 13: "warning"}


class VtyProtocolError(ValueError):
    """The daemon's answer is not in the vty framing (a bug or the wrong socket)."""


@dataclass(frozen=True, slots=True)
class VtyReply:
    output: str
    status: int

    @property
    def ok(self) -> bool:
        return self.status == 0

    def describe(self) -> str:
        text = self.output.strip().replace("\n", " / ")
        return f"{STATUS_NAMES.get(self.status, f'status {self.status}')}{': ' + text if text else ''}"


def encode_command(line: str) -> bytes:
    if "\0" in line or "\n" in line:
        raise VtyProtocolError(f"a vty command is one line without NUL: {line!r}")
    return line.encode() + b"\0"


class VtyReplyReader:
    """Bytes from the socket in, whole replies out (a reply may arrive in pieces, or several in one read)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[VtyReply]:
        self._buffer += data
        replies: list[VtyReply] = []
        while True:
            end = self._buffer.find(END_MARK)
            if end < 0 or len(self._buffer) < end + len(END_MARK) + 1:
                return replies
            output = bytes(self._buffer[:end]).decode(errors="replace")
            status = self._buffer[end + len(END_MARK)]
            del self._buffer[:end + len(END_MARK) + 1]
            replies.append(VtyReply(output, status))

    @property
    def pending(self) -> int:
        return len(self._buffer)


def session_commands(local_as: int) -> list[str]:
    """What puts a fresh connection where `network` lines are taken."""
    return ["enable", "configure terminal", f"router bgp {local_as}"]


def announcement_commands(prefixes: list[str], add: bool) -> list[str]:
    """`network` (or `no network`) lines for /32 and /128 prefixes, each in its address family."""
    out: list[str] = []
    for family in ("ipv4", "ipv6"):
        mine = [p for p in prefixes if (":" in p) == (family == "ipv6")]
        if mine:
            out.append(f"address-family {family} unicast")
            out += [f"{'' if add else 'no '}network {p}" for p in mine]
            out.append("exit-address-family")
    return out
