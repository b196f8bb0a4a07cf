"""A virtual service's pool: which real servers are in the table, with what weight, without I/O.

keepalived's rules (`ipwrapper.c`, man page):
- a real server is alive when all its checkers are UP;
- a dead one leaves the table, or stays with weight 0 with `inhibit_on_failure`;
- quorum: the sum of alive weights must reach `quorum + hysteresis` to gain
  quorum and fall below `quorum - hysteresis` to lose it; without quorum the
  alive servers leave the table and the `sorry_server` (if any) goes in;
- `alpha` servers start dead (the caller's checkers start DOWN).
The pool answers with the desired table rows and the events (notify_up/down,
quorum_up/down) for the shell to carry out.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Member:
    """One real server as the pool sees it: its key, configured weight and inhibit setting."""

    key: str
    weight: int = 1
    inhibit_on_failure: bool = False


@dataclass(frozen=True)
class Row:
    """A desired table entry for the data plane."""

    key: str
    weight: int


@dataclass(frozen=True)
class ServerUp:
    key: str


@dataclass(frozen=True)
class ServerDown:
    key: str


@dataclass(frozen=True)
class QuorumUp:
    pass


@dataclass(frozen=True)
class QuorumDown:
    pass


PoolEvent = ServerUp | ServerDown | QuorumUp | QuorumDown


@dataclass
class Pool:
    members: list[Member]
    quorum: int = 1
    hysteresis: int = 0
    sorry_server: str | None = None
    sorry_inhibit: bool = False
    alive: set[str] = field(default_factory=set)
    has_quorum: bool = False

    def __post_init__(self) -> None:
        total = sum(m.weight for m in self.members)
        # keepalived lowers an unreachable quorum to the total weight, and hysteresis below quorum
        self.quorum = max(1, min(self.quorum, total)) if total else self.quorum
        self.hysteresis = max(0, min(self.hysteresis, self.quorum - 1))
        self.has_quorum = self._weight() >= self.quorum

    def _weight(self) -> int:
        return sum(m.weight for m in self.members if m.key in self.alive)

    def set_alive(self, key: str, alive: bool) -> list[PoolEvent]:
        """A real server's checkers all came UP (or one went DOWN)."""
        if alive == (key in self.alive):
            return []
        events: list[PoolEvent] = []
        if alive:
            self.alive.add(key)
            events.append(ServerUp(key))
        else:
            self.alive.discard(key)
            events.append(ServerDown(key))
        weight = self._weight()
        if not self.has_quorum and weight >= self.quorum + self.hysteresis:
            self.has_quorum = True
            events.append(QuorumUp())
        elif self.has_quorum and (weight < self.quorum - self.hysteresis or weight == 0):
            self.has_quorum = False
            events.append(QuorumDown())
        return events

    def rows(self) -> list[Row]:
        """What the data plane should hold for this service now."""
        if not self.has_quorum:
            if self.sorry_server is None:
                return [Row(m.key, 0) for m in self.members if m.inhibit_on_failure]
            return [Row(self.sorry_server, 0 if self.sorry_inhibit else 1)]
        out: list[Row] = []
        for m in self.members:
            if m.key in self.alive:
                out.append(Row(m.key, m.weight))
            elif m.inhibit_on_failure:
                out.append(Row(m.key, 0))
        return out
