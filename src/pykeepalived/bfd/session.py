"""One BFD session's state machine (RFC 5880 section 6.8), as keepalived 2.2.7's bfd process runs it.

Sans-IO, aioquic-style: `start`, `receive` and `handle_timer` take the time (in
seconds, any monotonic clock) and return actions for the shell to carry out;
`get_timer()` says when to call `handle_timer` next. Intervals are in
microseconds, as on the wire.

keepalived's choices kept here (bfd_scheduler.c):
- while the session is not Up it asks for and sends at `idle_tx` (default 1 s);
  once Up at `min_tx`, announced with a poll sequence when the two differ;
- a `passive` session sends nothing until it has heard from its neighbour;
- the processes tracking a session are told when it comes Up, and when it
  leaves Up, except when the neighbour said AdminDown (keepalived does not
  pass that on, so a tracked instance does not go to FAULT then either);
- after a Down, the neighbour's parameters are forgotten one detection time
  later.
We also send a packet at once on each state change (keepalived waits for its
next periodic packet); the three-way handshake then takes milliseconds instead
of up to two idle intervals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config.model import BfdInstance
from .packet import ControlPacket, Diag, State

DEFAULT_TTL = 255  # keepalived's BFD_CONTROL_TTL / BFD_CONTROL_HOPLIMIT


@dataclass(frozen=True)
class SessionSettings:
    """One bfd_instance as the session runs it."""

    name: str
    min_tx_us: int = 10_000
    min_rx_us: int = 10_000
    idle_tx_us: int = 1_000_000
    detect_mult: int = 5
    passive: bool = False
    ttl: int = DEFAULT_TTL
    max_hops: int = 0

    @classmethod
    def from_config(cls, bfd: BfdInstance) -> SessionSettings:
        ttl = bfd.ttl if bfd.ttl is not None else DEFAULT_TTL
        return cls(bfd.name, round(bfd.min_tx_ms * 1000), round(bfd.min_rx_ms * 1000),
                   round(bfd.idle_tx_ms * 1000), bfd.multiplier, bfd.passive, ttl, min(bfd.max_hops or 0, ttl))

    def ttl_accepted(self, ttl: int | None) -> bool:
        """keepalived's extended GTSM check (RFC 5881): TTL + max_hops must reach the configured TTL."""
        return ttl is None or ttl == 0 or self.max_hops == 255 or ttl + self.max_hops >= self.ttl


@dataclass(frozen=True)
class Transmit:
    packet: ControlPacket


@dataclass(frozen=True)
class StateChanged:
    old: State
    new: State
    diag: Diag
    remote_diag: Diag
    notify: bool  # tell the tracking processes (keepalived's bfd_event_send)


@dataclass(frozen=True)
class Expired:
    """No packet for a detection time while Init or Up (keepalived logs it when the session was Up)."""

    dead_ms: int
    overdue_us: int
    was_up: bool


@dataclass(frozen=True)
class DetectionTimeChanged:
    new_us: int
    old_us: int


Action = Transmit | StateChanged | Expired | DetectionTimeChanged


class BfdSession:
    """One session to one neighbour; `rng()` returns a float in [0, 1) for the transmit jitter."""

    def __init__(self, settings: SessionSettings, local_discr: int, rng: Callable[[], float]) -> None:
        self.settings = settings
        self.local_discr = local_discr
        self.rng = rng
        self.state = State.DOWN
        self.diag = Diag.NO_DIAG
        self.poll = False
        self.final = False
        self.next_tx: float | None = None
        self.detect_at: float | None = None
        self.reset_at: float | None = None
        self.last_seen: float | None = None
        self.detect_time_us = 0
        self._forget_remote()

    def _forget_remote(self) -> None:
        self.remote_discr = 0
        self.remote_state = State.DOWN
        self.remote_diag = Diag.NO_DIAG
        self.remote_min_rx_us = 1
        self.remote_min_tx_us = 0
        self.remote_detect_mult = 0

    # ------------------------------------------------------------------ what we send, and how often
    @property
    def up(self) -> bool:
        return self.state is State.UP

    def desired_min_tx_us(self) -> int:
        s = self.settings
        return s.min_tx_us if self.state is State.UP else s.idle_tx_us

    def tx_interval_us(self) -> int:
        """RFC 5880 6.8.7: the slower of what we want to send and what the neighbour wants to receive."""
        return max(self.desired_min_tx_us(), self.remote_min_rx_us)

    def _jittered_s(self) -> float:
        """Less than the interval by 0-25% (10-25% with a detect multiplier of 1), RFC 5880 6.8.7."""
        low = 0.10 if self.settings.detect_mult == 1 else 0.0
        return self.tx_interval_us() / 1e6 * (1.0 - (low + (0.25 - low) * self.rng()))

    def packet(self) -> ControlPacket:
        s = self.settings
        return ControlPacket(self.state, self.local_discr, self.remote_discr, self.desired_min_tx_us(), s.min_rx_us,
                             s.detect_mult, self.diag, poll=self.poll and not self.final, final=self.final)

    def _transmit(self, now: float) -> Transmit:
        out = Transmit(self.packet())
        self.final = False
        self.next_tx = now + self._jittered_s()
        return out

    def get_timer(self) -> float | None:
        times = [t for t in (self.next_tx, self.detect_at, self.reset_at) if t is not None]
        return min(times) if times else None

    # ------------------------------------------------------------------ inputs
    def start(self, now: float) -> list[Action]:
        """Begin: an active session sends at once, then every idle interval; a passive one waits."""
        if not self.settings.passive:
            return [self._transmit(now)]
        return []

    def handle_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self.detect_at is not None and now >= self.detect_at:
            dead_s = now - self.last_seen if self.last_seen is not None else self.detect_time_us / 1e6
            actions.append(Expired(int(dead_s * 1000), max(0, int(dead_s * 1e6) - self.detect_time_us),
                                   self.state is State.UP))
            self.remote_discr = 0  # RFC 5880 6.8.1: after a detection time without packets
            actions += self._down(Diag.EXPIRED, now)
        if self.reset_at is not None and now >= self.reset_at:
            self.reset_at = None
            self._forget_remote()
        if self.next_tx is not None and now >= self.next_tx:
            actions.append(self._transmit(now))
        return actions

    def receive(self, pkt: ControlPacket, now: float) -> list[Action]:
        """A packet already checked by packet.decode and matched to this session (discriminator or addresses)."""
        actions: list[Action] = []
        if self.state is State.ADMIN_DOWN:
            return actions
        old_interval = self.tx_interval_us()
        self.remote_discr = pkt.my_discr
        self.remote_state = pkt.state
        self.remote_diag = pkt.diag
        self.remote_min_rx_us = pkt.required_min_rx_us
        self.remote_min_tx_us = pkt.desired_min_tx_us
        self.remote_detect_mult = pkt.detect_mult
        if pkt.final:
            self.poll = False
        old_detect = self.detect_time_us
        self.detect_time_us = pkt.detect_mult * max(self.settings.min_rx_us, pkt.desired_min_tx_us)
        if self.detect_time_us != old_detect:
            actions.append(DetectionTimeChanged(self.detect_time_us, old_detect))
        old_state = self.state
        if pkt.state is State.ADMIN_DOWN:
            if self.state is not State.DOWN:
                actions += self._down(Diag.NEIGHBOR_DOWN, now)
        elif self.state is State.DOWN:
            if pkt.state is State.DOWN:
                actions += self._rise(State.INIT)
            elif pkt.state is State.INIT:
                actions += self._rise(State.UP)
        elif self.state is State.INIT:
            if pkt.state in (State.INIT, State.UP):
                actions += self._rise(State.UP)
        elif pkt.state is State.DOWN:
            actions += self._down(Diag.NEIGHBOR_DOWN, now)
        self.last_seen = now
        if self.state in (State.INIT, State.UP):
            self.detect_at = now + self.detect_time_us / 1e6
        if pkt.poll:
            self.final = True
        if pkt.poll or self.state is not old_state or self.next_tx is None:
            actions.append(self._transmit(now))  # a final, a state change, or a passive session's first packet
        elif self.tx_interval_us() < old_interval:
            self.next_tx = min(self.next_tx, now + self._jittered_s())
        return actions

    # ------------------------------------------------------------------ transitions
    def _rise(self, new: State) -> list[Action]:
        old, self.state = self.state, new
        self.diag = Diag.NO_DIAG
        self.reset_at = None
        if new is State.UP and self.settings.idle_tx_us != self.settings.min_tx_us:
            self.poll = True  # the neighbour learns our Up rate through a poll sequence
        return [StateChanged(old, new, self.diag, self.remote_diag, notify=new is State.UP)]

    def _down(self, diag: Diag, now: float) -> list[Action]:
        old, self.state = self.state, State.DOWN
        self.diag = diag
        self.detect_at = None
        self.poll = False
        self.reset_at = now + self.detect_time_us / 1e6
        if self.settings.passive:
            self.next_tx = None
        notify = old is State.UP and self.remote_state is not State.ADMIN_DOWN
        return [StateChanged(old, State.DOWN, diag, self.remote_diag, notify)]
