"""SMTP_CHECK's conversation as a sans-IO state machine: bytes in, the next line to send or a verdict out.

keepalived's checker reads the greeting (it must be 220), sends `HELO name`,
wants 250, sends `QUIT` and then only needs *some* reply line before it calls
the server healthy; the QUIT reply's code is not looked at. We keep that
dialogue and those verdicts, with two deliberate differences where keepalived
only looks at the first line it happens to read:

* multi-line replies (`220-...` continued by `220 ...`) are read to their last
  line, as RFC 5321 defines them; keepalived takes the `-` after the code as a
  bad code and fails such a server;
* a bare code line (`220` with no text, which RFC 5321 allows) is accepted;
  keepalived rejects it because the CR follows the code.

Keeping this apart from the socket code lets the unit tests drive every reply
shape (split anywhere, overlong, garbage, early EOF) without a server, and
keeps the I/O loop in smtp.py down to "write what it says, read what it asks".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# keepalived reads replies into a 512-byte buffer; RFC 5321 caps a reply line at
# 512 octets too. Only this much of a line is kept: the code is at its start,
# and a server that never sends a newline cannot make us buffer without bound.
MAX_LINE = 512
DEFAULT_HELO = "smtpchecker.keepalived.org"  # keepalived's SMTP_DEFAULT_HELO, not the local host name


class Stage(Enum):
    """What the conversation is waiting for; names the step in timeout and failure reasons."""

    GREETING = "greeting"
    HELO = "HELO reply"
    QUIT = "QUIT reply"
    DONE = "nothing"


@dataclass(frozen=True)
class Send:
    """Write these bytes, then keep feeding what the server sends."""

    data: bytes


@dataclass(frozen=True)
class Verdict:
    """The conversation is over: healthy or not, and why not."""

    ok: bool
    reason: str = ""


Step = Send | Verdict | None  # None: more bytes are needed


@dataclass(frozen=True)
class ReplyLine:
    code: int | None  # None when the line does not start with a three-digit code
    last: bool  # False for a continuation line ("250-...")
    text: str  # the line as received (CRLF stripped, decoded for log lines)


def parse_line(raw: bytes) -> ReplyLine:
    """One reply line: `NNN text` ends a reply, `NNN-text` continues it, anything else is malformed."""
    line = raw.rstrip(b"\r")
    text = line.decode("utf-8", "replace")
    head, sep = line[:3], line[3:4]
    if len(head) == 3 and head.isdigit() and sep in (b"", b" ", b"-"):
        return ReplyLine(int(head), sep != b"-", text)
    return ReplyLine(None, True, text)


class LineReader:
    """Splits a byte stream into lines, keeping at most MAX_LINE bytes of each."""

    def __init__(self) -> None:
        self._partial = bytearray()
        self._lines: list[bytes] = []

    def feed(self, data: bytes) -> None:
        while data:
            newline = data.find(b"\n")
            chunk, data = (data, b"") if newline < 0 else (data[:newline], data[newline + 1:])
            room = MAX_LINE - len(self._partial)
            if room > 0:
                self._partial += chunk[:room]
            if newline >= 0:
                self._lines.append(bytes(self._partial))
                self._partial.clear()

    def next_line(self) -> bytes | None:
        return self._lines.pop(0) if self._lines else None


class SmtpSession:
    """One SMTP_CHECK conversation; `feed` what arrives, `eof` when the server closes.

    Each call returns the next step: bytes to send, a verdict, or None when
    the current reply is not complete yet. `stage` says which reply is awaited
    so the caller can name it when its timer runs out.
    """

    def __init__(self, helo_name: str | None = None) -> None:
        self.helo_name = helo_name or DEFAULT_HELO
        self.stage = Stage.GREETING
        self._reader = LineReader()

    def feed(self, data: bytes) -> Step:
        if self.stage is Stage.DONE:
            return None
        self._reader.feed(data)
        while (raw := self._reader.next_line()) is not None:
            step = self._on_line(parse_line(raw))
            if step is not None:
                return step
        return None

    def eof(self) -> Verdict:
        """The server closed (or reset) the connection before the reply we wait for was complete."""
        if self.stage is Stage.DONE:
            return Verdict(True)
        stage, self.stage = self.stage, Stage.DONE
        return Verdict(False, f"connection closed by server while waiting for {stage.value}")

    def _on_line(self, line: ReplyLine) -> Step:
        if self.stage is Stage.QUIT:
            # keepalived is satisfied by any line after QUIT; a malformed one ends the reply too.
            if line.last or line.code is None:
                self.stage = Stage.DONE
                return Verdict(True)
            return None
        if line.code is None:
            return self._finish(False, f"malformed {self.stage.value}: {_quote(line.text)}")
        if not line.last:
            return None
        if self.stage is Stage.GREETING:
            if line.code != 220:
                return self._finish(False, f"bad greeting banner: {_quote(line.text)}")
            self.stage = Stage.HELO
            return Send(f"HELO {self.helo_name}\r\n".encode("utf-8", "replace"))
        if line.code != 250:
            return self._finish(False, f"bad HELO response: {_quote(line.text)}")
        self.stage = Stage.QUIT
        return Send(b"QUIT\r\n")

    def _finish(self, ok: bool, reason: str) -> Verdict:
        self.stage = Stage.DONE
        return Verdict(ok, reason)


def _quote(text: str, limit: int = 80) -> str:
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown)
