"""vrrp_track_process without I/O: which processes match, and keepalived 2.2.7's quorum rules.

keepalived matches a process's name (its comm, 15 characters at most) exactly,
or with `full_command` (also implied by parameters or `param_match`) the first
word of its command line; parameters are compared as the NUL-separated bytes
after that word: exactly (the default), `partial` (the configured ones are the
first ones), or `initial` (as partial, but the last configured one may be the
start of a longer one). Zombies do not count.

The quorum counter follows keepalived's event rules one process at a time: a
process that appears by forking from a process the tracker counts waits
`fork_delay` before it can give quorum; one that exits waits
`terminate_delay` before its loss is acted on; a process that starts matching
or stops matching otherwise (an exec, a name change) acts at once. A pending
delay is cancelled by the opposite move, and when a delay runs out the status
is whatever the count says then.

The shell (vrrp/process_watch.py, reading /proc through host/proc_watch.py) hands `ProcessTable.observe`
every process it saw, with the time; `deadline()` says when to call `expire`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ..config.model import TrackProcess

UNLIMITED = 2**32 - 1  # keepalived's quorum_max default (UINT_MAX)


class ParamMatch(enum.Enum):
    NONE = "none"
    EXACT = "exact"
    PARTIAL = "partial"
    INITIAL = "initial"


class SeenProcess(Protocol):
    """What the core needs of one process (host/proc_watch.py's ProcessInfo has it)."""

    @property
    def pid(self) -> int: ...
    @property
    def ppid(self) -> int: ...
    @property
    def comm(self) -> str: ...
    @property
    def cmdline(self) -> bytes: ...
    @property
    def zombie(self) -> bool: ...


@dataclass(frozen=True)
class ProcessSample:
    """One process, for tests of this core (cmdline only read when some tracker needs it)."""

    pid: int
    ppid: int
    comm: str
    cmdline: bytes = b""
    zombie: bool = False


@dataclass(frozen=True)
class ProcessPattern:
    """What one vrrp_track_process matches."""

    name: str
    params: bytes | None = None  # NUL-terminated parameters, or None when none were configured
    param_match: ParamMatch = ParamMatch.NONE
    full_command: bool = False

    @classmethod
    def from_config(cls, tp: TrackProcess) -> ProcessPattern:
        """keepalived's parser rules: parameters or param_match imply full_command; parameters imply exact."""
        words = tp.process
        params = b"".join(w.encode() + b"\0" for w in words[1:]) if len(words) > 1 else None
        match = ParamMatch.NONE
        if tp.param_match is not None:
            match = {"initial": ParamMatch.INITIAL, "partial": ParamMatch.PARTIAL}.get(tp.param_match,
                                                                                        ParamMatch.EXACT)
        elif params is not None:
            match = ParamMatch.EXACT
        full = tp.full_command or params is not None or match is not ParamMatch.NONE
        return cls(words[0] if words else "", params, match, full)

    def matches(self, sample: SeenProcess) -> bool:
        if sample.zombie:
            return False
        if not self.full_command:
            return sample.comm == self.name
        head, _, rest = sample.cmdline.partition(b"\0")
        if head != self.name.encode():
            return False
        return self.param_match is ParamMatch.NONE or self._params_match(rest)

    def _params_match(self, got: bytes) -> bool:
        want = self.params
        if self.param_match is ParamMatch.EXACT:
            return got == (want or b"")
        if want is None:
            return True
        if len(got) < len(want):
            return False
        if self.param_match is ParamMatch.PARTIAL:
            return got.startswith(want)
        return len(want) == 1 or got.startswith(want[:-1])  # INITIAL: the last one may go on


class _Delay(enum.Enum):
    FORK = "fork"
    TERMINATE = "terminate"


@dataclass
class ProcessQuorum:
    """One tracker's count of matching processes and whether it has quorum (keepalived's have_quorum)."""

    quorum: int = 1
    quorum_max: int = UNLIMITED
    fork_delay_s: float = 0.0
    terminate_delay_s: float = 0.0
    count: int = 0
    have_quorum: bool = False
    pending: tuple[_Delay, float] | None = None

    def in_range(self) -> bool:
        return self.quorum <= self.count <= self.quorum_max

    def start(self, count: int) -> None:
        self.count = count
        self.have_quorum = self.in_range()

    def added(self, forked: bool, now: float) -> None:
        self.count += 1
        if self.count != self.quorum and self.count != self.quorum_max + 1:
            return
        if self.pending is not None and self.pending[0] is _Delay.TERMINATE:
            self.pending = None
        elif forked and self.fork_delay_s > 0:
            self.pending = (_Delay.FORK, now + self.fork_delay_s)
            return
        self.have_quorum = self.count == self.quorum

    def removed(self, exited: bool, now: float) -> None:
        old = self.count
        self.count -= 1
        if old != self.quorum and self.count != self.quorum_max:
            return
        if self.pending is not None and self.pending[0] is _Delay.FORK:
            self.pending = None
        elif exited and self.terminate_delay_s > 0:
            self.pending = (_Delay.TERMINATE, now + self.terminate_delay_s)
            return
        self.have_quorum = self.count == self.quorum_max

    def expire(self, now: float) -> None:
        if self.pending is not None and now >= self.pending[1]:
            self.pending = None
            self.have_quorum = self.in_range()


@dataclass
class _Tracker:
    pattern: ProcessPattern
    quorum: ProcessQuorum
    pids: set[int] = field(default_factory=set)


class ProcessTable:
    """Every vrrp_track_process of a configuration; `observe` and `expire` return the trackers whose status moved."""

    def __init__(self, trackers: Mapping[str, TrackProcess]) -> None:
        self._trackers: dict[str, _Tracker] = {}
        for name, tp in trackers.items():
            qmax = UNLIMITED if tp.quorum_max is None else tp.quorum_max
            quorum = 0 if tp.quorum_max == 0 else tp.quorum
            self._trackers[name] = _Tracker(ProcessPattern.from_config(tp), ProcessQuorum(
                quorum, qmax, tp.fork_delay_s or 0.0, tp.terminate_delay_s or 0.0))
        self.started = False
        self.last_scan_s = 0.0  # how long the shell's last look at /proc took (it spaces its scans by it)

    @property
    def needs_cmdline(self) -> bool:
        return any(t.pattern.full_command for t in self._trackers.values())

    def names(self) -> list[str]:
        return list(self._trackers)

    def has_quorum(self, name: str) -> bool:
        return self._trackers[name].quorum.have_quorum

    def count(self, name: str) -> int:
        return self._trackers[name].quorum.count

    def observe(self, samples: Iterable[SeenProcess], now: float) -> list[str]:
        """One look at every process; the first one sets the counts without delays (keepalived's start-up scan)."""
        seen = list(samples)
        alive = {s.pid for s in seen}
        changed: list[str] = []
        for name, t in self._trackers.items():
            before = t.quorum.have_quorum
            matching = {s.pid: s.ppid for s in seen if t.pattern.matches(s)}
            if not self.started:
                t.pids = set(matching)
                t.quorum.start(len(t.pids))
                continue
            for pid in sorted(t.pids - matching.keys()):
                t.quorum.removed(exited=pid not in alive, now=now)
            old = t.pids
            for pid in sorted(matching.keys() - old):
                t.quorum.added(forked=matching[pid] in old, now=now)
            t.pids = set(matching)
            if t.quorum.have_quorum != before:
                changed.append(name)
        self.started = True
        return changed

    def expire(self, now: float) -> list[str]:
        changed: list[str] = []
        for name, t in self._trackers.items():
            before = t.quorum.have_quorum
            t.quorum.expire(now)
            if t.quorum.have_quorum != before:
                changed.append(name)
        return changed

    def deadline(self) -> float | None:
        times = [t.quorum.pending[1] for t in self._trackers.values() if t.quorum.pending is not None]
        return min(times) if times else None
