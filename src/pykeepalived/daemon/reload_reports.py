"""The parent's end of the children's report pipes (daemon/child_report.py): ready, reloaded, alive.

Each life of a VRRP or checker child gets a fresh pipe: the parent keeps the
read end, the child gets the write end as `--report-fd N` (pass_fds), and the
parent closes its copy of the write end at once, so that the pipe reads EOF
when the child dies. `ReportBuffer` cuts the bytes into lines and parses
them (no I/O, unit tested); `ChildReports` keeps what the parent needs to
know of one child across its lives: has it been ready, when did it last say
it is alive, and the "reloaded" reports a reload waits for. A line that is
not a report is counted, logged at debug and dropped: a child cannot make
the parent fail by writing garbage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable

from .child_report import MAX_LINE_BYTES, Report, ReportError, parse_report

log = logging.getLogger("pykeepalived")


class ReportBuffer:
    """Bytes in, reports out: whole lines parsed, a partial line kept, malformed or oversized ones counted.

    A state line of thousands of real servers comes in dozens of reads: the
    partial line grows in place and only the new bytes are searched for its end.
    """

    def __init__(self) -> None:
        self.pending = bytearray()
        self.malformed = 0
        self._skipping = False  # inside an oversized line: dropped up to its newline

    def feed(self, data: bytes) -> list[Report]:
        reports: list[Report] = []
        searched = len(self.pending)  # no newline before this
        self.pending += data
        while True:
            end = self.pending.find(b"\n", searched)
            if end < 0:
                if len(self.pending) > MAX_LINE_BYTES:
                    self.malformed += 1 if not self._skipping else 0
                    self._skipping = True
                    self.pending.clear()
                    log.debug("child report line over %d bytes dropped", MAX_LINE_BYTES)
                return reports
            if end + 1 == len(self.pending):  # the usual case, the line ends the read: it is taken, not copied
                line = self.pending
                del line[end:]
                self.pending = bytearray()
            else:
                line = self.pending[:end]
                del self.pending[:end + 1]
            searched = 0
            if self._skipping:
                self._skipping = False
                continue
            if not line.strip():
                continue
            try:
                reports.append(parse_report(line))
            except ReportError as exc:
                self.malformed += 1
                log.debug("child report dropped (%s): %r", exc, line[:200])


class ChildReports:
    """What one child has told the parent, across its lives (a respawn keeps `ever_ready` and the counts)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ever_ready = False
        self.ready = False  # in this life
        self.last_alive = 0.0  # time.monotonic() of the last report of any kind (or of the start)
        self.malformed = 0
        self.reloaded: list[Report] = []  # since the last take_reloaded()
        self.changed = asyncio.Event()  # set on every report and at EOF; cleared by the waiters
        self.on_state: Callable[[Report], None] | None = None  # "state" reports go here (daemon/state_feed.py)
        self._fd = -1
        self._buffer = ReportBuffer()
        self._loop: asyncio.AbstractEventLoop | None = None

    def new_life(self) -> int:
        """A fresh pipe for a child about to start: returns the write end for its pass_fds (close it after)."""
        self.close()
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(read_fd, False)
        self._fd = read_fd
        self._buffer = ReportBuffer()
        self.ready = False
        self.last_alive = time.monotonic()  # a starting child gets its first interval of grace
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(read_fd, self._readable)
        return write_fd

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            log.debug("%s report pipe: %s", self.name, exc)
            data = b""
        if not data:  # the child is gone (or closed it): nothing more comes on this pipe
            self.close()
            self.changed.set()
            return
        before = self._buffer.malformed
        for report in self._buffer.feed(data):
            self.on_report(report)
        self.malformed += self._buffer.malformed - before
        self.changed.set()

    def on_report(self, report: Report) -> None:
        self.last_alive = time.monotonic()
        if report.event == "ready":
            self.ready = self.ever_ready = True
        elif report.event == "reloaded":
            self.reloaded.append(report)
        elif report.event == "state" and self.on_state is not None:
            self.on_state(report)

    def take_reloaded(self) -> list[Report]:
        got, self.reloaded = self.reloaded, []
        return got

    @property
    def open(self) -> bool:
        return self._fd >= 0

    def close(self) -> None:
        if self._fd >= 0:
            if self._loop is not None:
                with contextlib.suppress(Exception):  # the loop may be closing
                    self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
