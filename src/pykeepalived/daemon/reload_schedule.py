"""global_defs reload_time_file / reload_repeat: a reload at a time written in a file (keepalived 2.2.7).

Operators use it to reload a master and its backups at the same moment when
the new configs are incompatible with the old ones (a changed VIP list makes
adverts mismatch). The file's first line is exactly `HH:MM:SS`,
`YY-MM-DD HH:MM:SS` or `YYYY-MM-DD HH:MM:SS`, with an optional `Z` for UTC
(local time otherwise). A time without a date that has passed today means
tomorrow; a date and time in the past are ignored. Editing the file moves
the reload, deleting it cancels it. When the reload happens the file is
deleted, unless reload_repeat is set: a time without a date then reloads at
that time every day.

keepalived watches the file with inotify; the parent here looks at it once a
second (`watch`), which is all the precision a time to the second needs, and
reads the keywords from the configuration in force, so that a reload that
changes them moves the watch. `parse_reload_time` is the pure part.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime
import logging
import os
import re
import time
from collections.abc import Callable

from ..config.model import GlobalDefs

log = logging.getLogger("pykeepalived")

POLL_S = 1.0
_FORMAT = re.compile(r"(?:(\d{2}|\d{4})-(\d{2})-(\d{2}) )?(\d{2}):(\d{2}):(\d{2})(Z?)")


class BadReloadTime(ValueError):
    """The file's line is not one of keepalived's formats, or names no real time, or a past date."""


def parse_reload_time(line: str, now: float, to_epoch: Callable[[tuple[int, ...], bool], float] | None = None) -> float:
    """The epoch time `line` names, seen at `now`; BadReloadTime when it is wrong or (with a date) past."""
    to_epoch = to_epoch or _epoch
    match = _FORMAT.fullmatch(line)
    if match is None:
        raise BadReloadTime(f"Invalid reload time '{line}' specified - ignoring")
    year, month, day, hour, minute, second, zulu = match.groups()
    utc = zulu == "Z"
    clock = (int(hour), int(minute), int(second))
    if year is None:
        today = time.gmtime(now) if utc else time.localtime(now)
        when = _checked((today.tm_year, today.tm_mon, today.tm_mday, *clock), line, to_epoch, utc)
        if when <= now:  # passed today: tomorrow at that time
            tomorrow = datetime.date(today.tm_year, today.tm_mon, today.tm_mday) + datetime.timedelta(days=1)
            when = _checked((tomorrow.year, tomorrow.month, tomorrow.day, *clock), line, to_epoch, utc)
        return when
    full_year = int(year) + (2000 if len(year) == 2 else 0)
    when = _checked((full_year, int(month), int(day), *clock), line, to_epoch, utc)
    if when <= now:
        raise BadReloadTime(f"Reload date/time {line} is in the past - ignoring")
    return when


def _checked(fields: tuple[int, ...], line: str, to_epoch: Callable[[tuple[int, ...], bool], float],
             utc: bool) -> float:
    try:
        year, month, day, hour, minute, second = fields
        datetime.datetime(year, month, day, hour, minute, second)  # a real date and time?
    except ValueError:
        raise BadReloadTime(f"Reload date/time {line} invalid - ignoring") from None
    return to_epoch(fields, utc)


def _epoch(fields: tuple[int, ...], utc: bool) -> float:
    struct = (*fields, 0, 0, -1)  # weekday and yearday are ignored; DST: let mktime decide
    return float(calendar.timegm(struct) if utc else time.mktime(struct))  # type: ignore[arg-type]


def _first_line(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.readline().rstrip("\n")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.info("cannot read reload_time_file %s: %s", path, exc.strerror)
        return None


async def watch(settings: Callable[[], GlobalDefs], reload: Callable[[], None]) -> None:
    """Run for the daemon's life: schedule, move, cancel and fire the timed reloads."""
    seen: tuple[str, str | None] | None = None  # (path, line) last acted on
    scheduled: float | None = None
    while True:
        g = settings()
        path = g.reload_time_file
        line = _first_line(path) if path else None
        if path is None or (path, line) != seen:
            if line is None and scheduled is not None:
                log.info("Cancelling reload scheduled for %s", time.ctime(scheduled))
            scheduled = None
            if path and line is not None:
                try:
                    scheduled = parse_reload_time(line, time.time())
                    log.info("Scheduling reload for %s", time.ctime(scheduled))
                except BadReloadTime as exc:
                    log.info("%s", exc)
            seen = (path, line) if path else None
        if scheduled is not None and time.time() >= scheduled:
            log.info("Reload scheduled in %s is due", path)
            scheduled = None
            seen = None  # read the file again afterwards: with reload_repeat, a time alone means tomorrow
            if path and not g.reload_repeat:
                try:
                    os.unlink(path)
                except OSError as exc:
                    log.info("cannot remove reload_time_file %s: %s", path, exc.strerror)
            reload()
        await asyncio.sleep(POLL_S)
