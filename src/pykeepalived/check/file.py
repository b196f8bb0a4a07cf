"""FILE_CHECK: a real server's state and weight follow a number in a file (a global track_file).

keepalived watches the file with inotify; we read it on every attempt and the
service polls FILE_CHECK often with retry 0, so a change acts within a poll.
The read is keepalived's: at most 127 bytes opened O_NONBLOCK, a missing or
unreadable file counts as 0, and an out-of-range number is ignored (the last
value read stays in force). What the value means is `outcomes.file_verdict`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config.model import FileCheck
from .outcomes import TRACK_FILE_READ_MAX, file_verdict, parse_track_file_value
from .probe import ProbeResult, Target
from .context import ProbeContext, UnsupportedChecker

# a track_file's own default weight (keepalived's track_file block: weight 1)
DEFAULT_WEIGHT = 1


@dataclass
class FileProbe:
    """Reads `path` each attempt; remembers the last valid value for reads keepalived would ignore."""

    target: Target
    track_file: str
    path: str
    weight: int = DEFAULT_WEIGHT
    reverse: bool = False
    kind: str = "FILE_CHECK"
    last_value: int = 0

    async def run(self) -> ProbeResult:
        value = parse_track_file_value(read_track_file(self.path))
        if value is not None:
            self.last_value = value
        return file_verdict(self.last_value, self.weight, self.reverse)


def read_track_file(path: str) -> bytes:
    """The file's first bytes, or b"" (which reads as 0) when it is missing or unreadable.

    O_NONBLOCK as keepalived opens it: a FIFO put where the file should be
    must not stall the event loop.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        return os.read(fd, TRACK_FILE_READ_MAX)
    except OSError:
        return b""
    finally:
        os.close(fd)


def make_probe(checker: FileCheck, target: Target, ctx: ProbeContext) -> FileProbe:
    """The FILE_CHECK's own weight, else the track_file's weight and reverse (keepalived's rule)."""
    name = checker.track_file
    path = ctx.track_file_paths.get(name) if name else None
    if name is None or path is None:
        where = f"{checker.location}: " if checker.location else ""
        what = f"track_file {name} not found" if name else "FILE_CHECK has no track_file specified"
        raise UnsupportedChecker(f"{where}{what}")
    if checker.weight is not None:
        return FileProbe(target, name, path, checker.weight, checker.weight_reverse)
    weight, reverse = ctx.track_file_weights.get(name, (DEFAULT_WEIGHT, False))
    return FileProbe(target, name, path, weight, reverse)
