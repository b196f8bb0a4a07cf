"""A child's one-way channel to its parent: ready, reloaded, alive, state.

The parent cannot see inside its children, yet systemd asks it three things
that only they know: when the service is up (READY=1 once VRRP runs and the
first table is in place), when a reload has finished and whether it worked
(RELOADING=1 ... READY=1, and the exit status of `pykeepalived reload`), and
whether each child's event loop still turns (the watchdog). Each child
therefore writes JSON lines to a pipe whose write end the parent passes as
`--report-fd N`:

    {"event": "ready"}
    {"event": "reloaded", "digest": "<snapshot digest>", "ok": true, "problems": []}
    {"event": "alive"}
    {"event": "state", "part": "vrrp" | "checker", "data": {...}}

"state" carries the child's whole part of the state model (docs/state.md;
daemon/state_report.py sends it, daemon/state_feed.py reads it): at once when
something that matters changes, at most once a second otherwise.

The write end is non-blocking and buffered here: a parent that does not read
(stopped, or busy) must never stop a VRRP child's event loop. What does not
fit in the pipe waits in this process and goes when the pipe drains; while it
waits, a newer state replaces an older one still waiting (only the latest
counts), and lines are never cut in the middle.

A child started without the pipe (-P/-C alone, tests) reports to nobody. A
parent that is gone makes writes fail with EPIPE; that is ignored, as the
child dies with its parent anyway (daemon/lifeline.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..state.timeline import reads_only

log = logging.getLogger("pykeepalived")

MAX_LINE_BYTES = 8 * 1024 * 1024  # the longest line the parent reads (a state part of thousands of real servers)
MAX_RELOAD_LINE_BYTES = 64 * 1024  # a reload with thousands of errors is cut to this
MAX_BUFFERED_BYTES = 16 * 1024 * 1024  # beyond this a child drops reports instead of growing without end
EVENTS = ("ready", "reloaded", "alive", "state")
PARTS = ("vrrp", "checker")
ALIVE_INTERVAL_S = 1.0  # how often a child says its loop turns; the parent's watchdog needs well under WatchdogSec/2


@dataclass(frozen=True)
class Report:
    """One line from a child, parsed."""

    event: str  # ready, reloaded, alive, state
    digest: str = ""
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    part: str = ""  # state: "vrrp" or "checker"
    # state: the part (docs/state.md) as the JSON text it came in (what the parent keeps: state/store.py), and
    # parsed, with only what the timeline reads of it (state/timeline.py READS) when it comes from the pipe
    data: dict[str, Any] = field(default_factory=dict)
    text: str = ""


class ReportError(ValueError):
    """A line on the report pipe that is not a report (counted and dropped by the parent)."""


_TIMELINE_DECODER = json.JSONDecoder(object_pairs_hook=reads_only)
_STATE_START = b'{"event":"state","part":"'  # state_text's line, up to the part's name
_STATE_HEADS = {_STATE_START + f'{part}","data":'.encode(): part for part in PARTS}


def _state_as_sent(line: bytes | bytearray) -> Report | None:
    """A state line as our children write it, parsed once, with its part's own text cut out of the line.

    The parent keeps the text, not the objects (at 6,000 real servers 1.7
    MiB against 6.6: docs/state.md): only the part's bytes are decoded, and
    the part must end where the line does, so the text is exactly what was
    parsed (and checked as JSON). Any other form (whitespace, other keys)
    goes the general way.
    """
    if not line.startswith(_STATE_START) or not line.endswith(b"}"):
        return None
    head = bytes(line[:line.find(b":", len(_STATE_START)) + 1])  # up to the colon after "data"
    part = _STATE_HEADS.get(head)
    if part is None:
        return None
    try:
        text = str(memoryview(line)[len(head):-1], "utf-8")  # no copy of the line on the way
        data, end = _TIMELINE_DECODER.raw_decode(text)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
        return None
    if not isinstance(data, dict):
        return None
    if end < len(text):
        if text[end:].strip():
            return None
        text = text[:end]
    return Report("state", part=part, data=data, text=text)


def parse_report(line: bytes | bytearray) -> Report:
    if (sent := _state_as_sent(line)) is not None:
        return sent
    try:
        msg = json.loads(line)
    except ValueError as exc:
        raise ReportError(f"not JSON: {exc}") from None
    if not isinstance(msg, dict) or msg.get("event") not in EVENTS:
        raise ReportError(f"not a report: {line[:80]!r}")
    if msg["event"] == "state":
        part, data = msg.get("part"), msg.get("data")
        if part not in PARTS or not isinstance(data, dict):
            raise ReportError(f"not a state report: {line[:80]!r}")
        text = json.dumps(data, separators=(",", ":"))
        return Report("state", part=str(part), data=_TIMELINE_DECODER.decode(text), text=text)
    problems = msg.get("problems", [])
    if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
        raise ReportError("problems is not a list of strings")
    return Report(str(msg["event"]), str(msg.get("digest", "")), bool(msg.get("ok", True)), problems)


class ChildReporter:
    """The child's end: writes whole lines, never blocks the event loop, never raises.

    A line waits as the pieces it was given (the checker's part is one piece
    of 1.7 MiB at 6,000 real servers), never copied into a buffer of its own.
    """

    def __init__(self, fd: int = -1) -> None:
        self.fd = fd
        self.dropped = 0  # reports given up (the buffer was full): the parent missed them
        self._out: deque[memoryview] = deque()  # what the pipe did not take yet (whole lines, the first maybe begun)
        self._out_bytes = 0
        self._state: list[memoryview] | None = None  # the latest state line, waiting for the buffer to drain
        self._loop: asyncio.AbstractEventLoop | None = None
        if fd >= 0:
            os.set_inheritable(fd, False)  # scripts the child runs must not hold the parent's pipe open
            os.set_blocking(fd, False)  # a parent that does not read must not stop our loop

    def _encode(self, msg: dict[str, object]) -> bytes:
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        if msg.get("event") == "reloaded" and len(data) > MAX_RELOAD_LINE_BYTES:
            problems = list(msg.get("problems", []))  # type: ignore[call-overload]
            msg = {**msg, "problems": [*problems[:20], f"... {len(problems) - 20} more"]}
            data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()[:MAX_RELOAD_LINE_BYTES - 1] + b"\n"
        return data

    def _send(self, msg: dict[str, object]) -> None:
        if self.fd < 0:
            return
        self._send_line((self._encode(msg),), msg.get("event") == "state")

    def _send_line(self, pieces: tuple[bytes | memoryview, ...], state: bool) -> None:
        """Queue one line given as `pieces` (the last ends with its newline) and write what the pipe takes."""
        views = [memoryview(p) for p in pieces]
        size = sum(v.nbytes for v in views)
        if size > MAX_LINE_BYTES:
            self.dropped += 1
            log.warning("report to the parent not sent: %d bytes is over %d", size, MAX_LINE_BYTES)
            return
        if state and self._out:
            self._state = views  # the pipe is full: only the latest state is worth sending once it drains
            return
        if self._out_bytes + size > MAX_BUFFERED_BYTES:
            self.dropped += 1
            return
        self._out.extend(views)
        self._out_bytes += size
        self._flush()

    @property
    def pending(self) -> int:
        """Bytes waiting for the pipe to take them (tests)."""
        return self._out_bytes + (sum(v.nbytes for v in self._state) if self._state is not None else 0)

    def _flush(self) -> None:
        while self._out or self._state is not None:
            if not self._out:
                assert self._state is not None
                self._out.extend(self._state)
                self._out_bytes = sum(v.nbytes for v in self._state)
                self._state = None
            try:
                written = os.write(self.fd, self._out[0])
            except BlockingIOError:
                self._wait_writable()
                return
            except OSError as exc:  # EPIPE: the parent is gone, and we follow it soon
                log.debug("report to the parent not sent: %s", exc)
                self._out.clear()
                self._out_bytes = 0
                self._state = None
                return
            self._out_bytes -= written
            if written == self._out[0].nbytes:
                self._out.popleft()
            else:
                self._out[0] = self._out[0][written:]
        self._stop_waiting()

    def _wait_writable(self) -> None:
        if self._loop is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test, or the very end): the next report tries again
            return
        loop.add_writer(self.fd, self._flush)
        self._loop = loop

    def _stop_waiting(self) -> None:
        if self._loop is not None:
            try:
                self._loop.remove_writer(self.fd)
            except Exception:  # noqa: BLE001 - the loop may be closing
                pass
            self._loop = None

    def ready(self) -> None:
        self._send({"event": "ready"})

    def reloaded(self, digest: str, ok: bool, problems: list[str]) -> None:
        self._send({"event": "reloaded", "digest": digest, "ok": ok, "problems": problems})

    def alive(self) -> None:
        self._send({"event": "alive"})

    def state(self, part: str, data: dict[str, Any]) -> None:
        """The child's whole part of the state model (docs/state.md)."""
        self._send({"event": "state", "part": part, "data": data})

    def state_text(self, part: str, updated_at: float | None, body: Sequence[bytes]) -> None:
        """`state()` for a part already encoded: compact JSON in pieces, without its `updated_at` (it goes first).

        The feed encodes a part once and keeps only its digest (an unchanged
        part is not sent again); the line goes out as those pieces between a
        head and a tail, never joined (parse_report cuts the part out again).
        """
        if self.fd < 0 or not body:
            return
        head = f'{{"event":"state","part":{json.dumps(part)},"data":{{"updated_at":{json.dumps(updated_at)}'
        if sum(len(piece) for piece in body) == 2:  # "{}"
            self._send_line((head.encode(), b"}}\n"), True)
        else:
            first = memoryview(body[0])[1:]  # after its "{"
            self._send_line((head.encode(), b",", first, *body[1:], b"}\n"), True)
