"""A virtual service's pool: which real servers are in the table, with what weight, without I/O.

keepalived's rules (`check/ipwrapper.c`), which this core reproduces:
- a real server is alive when all its checkers are up; its effective weight is
  the configured weight plus its checkers' offsets (misc_dynamic, FILE_CHECK),
  clamped to 0..65535 when it reaches the table;
- a dead server leaves the table, or stays with weight 0 with
  `inhibit_on_failure` (an inhibited server is in the table from the start);
- quorum: with quorum up, the sum of alive weights must fall below
  `quorum - hysteresis` (or to 0) to lose it; with quorum down it must reach
  `quorum + hysteresis` to gain it. Losing quorum runs quorum_down and, only
  when there is a `sorry_server`, replaces the alive servers by the sorry
  server; without one the alive servers stay;
- at start the pool begins without quorum and gains it as the initial servers
  come alive, so quorum_up runs at start as keepalived's does; with a sorry
  server and no quorum at start, the sorry server goes in at once.
The pool answers with the desired rows and the events (notify_up/down,
quorum_up/down) for the shell to carry out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

IPVS_WEIGHT_LIMIT = 65535


def table_weight(effective: int) -> int:
    return max(0, min(effective, IPVS_WEIGHT_LIMIT))


@dataclass(frozen=True, slots=True)  # one per real server
class Member:
    """One real server as the pool sees it: its key, configured weight and inhibit setting."""

    key: str
    weight: int = 1
    inhibit_on_failure: bool = False


@dataclass(frozen=True, slots=True)  # one per real server
class Row:
    """A desired table entry for the data plane; `alive` is False for an inhibited (weight 0) server."""

    key: str
    weight: int
    alive: bool = True
    sorry: bool = False


@dataclass(frozen=True)
class ServerUp:
    key: str


@dataclass(frozen=True)
class ServerDown:
    key: str


@dataclass(frozen=True)
class WeightChanged:
    key: str
    old: int
    new: int


@dataclass(frozen=True)
class QuorumUp:
    """Quorum gained; `sorry_out` when the sorry server leaves the table for the alive servers."""

    weight_sum: int = 0
    threshold: int = 0
    at_start: bool = False
    sorry_out: bool = False


@dataclass(frozen=True)
class QuorumDown:
    """Quorum lost (or absent at start); `sorry_in` when the sorry server replaces the alive servers."""

    weight_sum: int = 0
    threshold: int = 0
    at_start: bool = False
    sorry_in: bool = False


PoolEvent = ServerUp | ServerDown | WeightChanged | QuorumUp | QuorumDown


@dataclass
class Pool:
    members: list[Member]
    quorum: int = 1
    hysteresis: int = 0
    sorry_server: str | None = None
    sorry_inhibit: bool = False
    sorry_weight: int = 1
    alive: set[str] = field(default_factory=set)
    offsets: dict[str, int] = field(default_factory=dict)
    has_quorum: bool = False
    sorry_active: bool = False

    def __post_init__(self) -> None:
        total = sum(m.weight for m in self.members)
        # keepalived lowers an unreachable quorum to the total weight, and hysteresis below quorum
        if total and self.quorum > total:
            self.quorum = total
        if self.hysteresis >= self.quorum:
            self.hysteresis = max(0, self.quorum - 1)
        self._by_key = {m.key: m for m in self.members}
        # the alive servers' table weights, kept as they change: summing them on every decision made one
        # real server's death cost milliseconds at 5,000 servers (bench/checks.py)
        self._alive_sum = self._sum_alive()

    # ------------------------------------------------------------------ inputs
    def start(self, alive: set[str]) -> list[PoolEvent]:
        """The servers alive at start (no checker failed yet); returns the start-up quorum events."""
        self.alive = set(alive) & set(self._by_key)
        self._alive_sum = self._sum_alive()
        return self._update_quorum(at_start=True)

    def set_alive(self, key: str, alive: bool) -> list[PoolEvent]:
        """A real server's checkers all came UP (or one went DOWN)."""
        if alive == (key in self.alive):
            return []
        events: list[PoolEvent] = []
        if alive:
            self.alive.add(key)
            self._alive_sum += table_weight(self.effective_weight(key))
            events.append(ServerUp(key))
        else:
            self.alive.discard(key)
            self._alive_sum -= table_weight(self.effective_weight(key))
            events.append(ServerDown(key))
        return events + self._update_quorum()

    def set_offset(self, key: str, offset: int, quiet: bool = False) -> list[PoolEvent]:
        """A checker changed this server's weight offset (the sum over its checkers).

        `quiet` for a server that is not alive: its weight counts for nothing
        now, so there is nothing to tell (keepalived resets it silently).
        """
        old = self.effective_weight(key)
        self.offsets[key] = offset
        new = self.effective_weight(key)
        if key in self.alive:
            self._alive_sum += table_weight(new) - table_weight(old)
        if quiet or table_weight(old) == table_weight(new):
            return []
        return [WeightChanged(key, table_weight(old), table_weight(new))] + self._update_quorum()

    def carry_over(self, old: Pool, kept: set[str]) -> list[PoolEvent]:
        """A reload: this pool, built from the new config, takes `old`'s state for the servers in `kept`.

        Those keep their alive flag and weight offsets, the service its quorum
        state and sorry server; what the new weights or quorum change comes
        back as events (a weight change of an alive server, quorum gained or
        lost), as if it had happened now. New servers join afterwards through
        `set_alive`, as at start.
        """
        kept = kept & set(self._by_key)
        self.alive = old.alive & kept
        self.offsets = {k: v for k, v in old.offsets.items() if k in kept}
        self.has_quorum = old.has_quorum
        self.sorry_active = old.sorry_active and self.sorry_server is not None
        self._alive_sum = self._sum_alive()
        events: list[PoolEvent] = []
        for key in sorted(self.alive):
            before, after = table_weight(old.effective_weight(key)), table_weight(self.effective_weight(key))
            if before != after:
                events.append(WeightChanged(key, before, after))
        return events + self._update_quorum()

    # ------------------------------------------------------------------ views
    def effective_weight(self, key: str) -> int:
        return self._by_key[key].weight + self.offsets.get(key, 0)

    def weight_sum(self) -> int:
        """The alive servers' weights as the table has them (what quorum compares)."""
        return self._alive_sum

    def _sum_alive(self) -> int:
        return sum(table_weight(self.effective_weight(k)) for k in self.alive)

    def rows(self) -> list[Row]:
        """What the data plane should hold for this service now."""
        out: list[Row] = []
        for m in self.members:
            if m.key in self.alive and not self.sorry_active:
                out.append(Row(m.key, table_weight(self.effective_weight(m.key))))
            elif m.inhibit_on_failure:
                out.append(Row(m.key, 0, alive=m.key in self.alive))
        if self.sorry_server is not None:
            if self.sorry_active:
                out.append(Row(self.sorry_server, self.sorry_weight, sorry=True))
            elif self.sorry_inhibit:
                out.append(Row(self.sorry_server, 0, alive=False, sorry=True))
        return out

    # ------------------------------------------------------------------ quorum
    def _update_quorum(self, at_start: bool = False) -> list[PoolEvent]:
        total = self.weight_sum()
        threshold = self.quorum + (-self.hysteresis if self.has_quorum else self.hysteresis)
        if not self.has_quorum and total >= threshold:
            self.has_quorum = True
            sorry_out, self.sorry_active = self.sorry_active, False
            return [QuorumUp(total, threshold, at_start, sorry_out)]
        lost = self.has_quorum and (total == 0 or total < threshold)
        starts_down = at_start and not self.has_quorum and self.sorry_server is not None and not self.sorry_active
        if lost or starts_down:
            self.has_quorum = False
            sorry_in = self.sorry_server is not None and not self.sorry_active
            self.sorry_active = self.sorry_server is not None
            return [QuorumDown(total, threshold, at_start, sorry_in)]
        return []
