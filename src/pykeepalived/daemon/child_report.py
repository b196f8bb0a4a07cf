"""A child's one-way channel to its parent: ready, reloaded, alive.

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

A child started without the pipe (-P/-C alone, tests) reports to nobody. A
parent that is gone makes writes fail with EPIPE; that is ignored, as the
child dies with its parent anyway (daemon/lifeline.py).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

log = logging.getLogger("pykeepalived")

MAX_LINE_BYTES = 64 * 1024  # a reload with thousands of errors is cut, never a blocked child
ALIVE_INTERVAL_S = 1.0  # how often a child says its loop turns; the parent's watchdog needs well under WatchdogSec/2


@dataclass(frozen=True)
class Report:
    """One line from a child, parsed."""

    event: str  # ready, reloaded, alive
    digest: str = ""
    ok: bool = True
    problems: list[str] = field(default_factory=list)


class ReportError(ValueError):
    """A line on the report pipe that is not a report (counted and dropped by the parent)."""


def parse_report(line: bytes) -> Report:
    try:
        msg = json.loads(line)
    except ValueError as exc:
        raise ReportError(f"not JSON: {exc}") from None
    if not isinstance(msg, dict) or msg.get("event") not in ("ready", "reloaded", "alive"):
        raise ReportError(f"not a report: {line[:80]!r}")
    problems = msg.get("problems", [])
    if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
        raise ReportError("problems is not a list of strings")
    return Report(str(msg["event"]), str(msg.get("digest", "")), bool(msg.get("ok", True)), problems)


class ChildReporter:
    """The child's end: writes whole lines, never blocks the event loop for long, never raises."""

    def __init__(self, fd: int = -1) -> None:
        self.fd = fd
        if fd >= 0:
            os.set_inheritable(fd, False)  # scripts the child runs must not hold the parent's pipe open
            os.set_blocking(fd, True)  # lines are small; a pipe takes 64 KiB before a write would wait

    def _send(self, msg: dict[str, object]) -> None:
        if self.fd < 0:
            return
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        if len(data) > MAX_LINE_BYTES:
            problems = list(msg.get("problems", []))  # type: ignore[call-overload]
            msg = {**msg, "problems": [*problems[:20], f"... {len(problems) - 20} more"]}
            data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()[:MAX_LINE_BYTES - 1] + b"\n"
        try:
            os.write(self.fd, data)
        except OSError as exc:
            log.debug("report to the parent not sent: %s", exc)

    def ready(self) -> None:
        self._send({"event": "ready"})

    def reloaded(self, digest: str, ok: bool, problems: list[str]) -> None:
        self._send({"event": "reloaded", "digest": digest, "ok": ok, "problems": problems})

    def alive(self) -> None:
        self._send({"event": "alive"})
