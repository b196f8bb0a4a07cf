"""interface_up_down_delays: hold an interface's up/down change for a while before VRRP sees it.

keepalived 2.2.7 (keepalived_netlink.c update_interface_flags) delays a
change of an interface's up/down state by that interface's DOWN_DELAY (going
down) or UP_DELAY (coming up): if the state flips back before the delay
ends, the pending change is dropped and VRRP never hears of either. Only an
interface that has been seen up is debounced (the first up is immediate), a
delay of 0 means no delay, and an interface created or deleted is reported
at once. Polled interfaces (linkbeat) are not debounced, as in keepalived.

This is the sans-IO core: it is told what the kernel reports and the time,
and answers what VRRP should see now and when to wake it next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Debouncer", "Pending", "capped_delays"]


@dataclass(frozen=True)
class Pending:
    """A change held back: the state VRRP will see at `due` unless it flips back first."""

    up: bool
    due: float


@dataclass
class Debouncer:
    """Per interface: the state VRRP knows, and a change waiting for its delay.

    `delays` maps an interface name to (down delay, up delay) in seconds.
    """

    delays: Mapping[str, tuple[float, float]]
    known: dict[str, bool] = field(default_factory=dict)  # the state VRRP was last told
    pending: dict[str, Pending] = field(default_factory=dict)
    seen_up: set[str] = field(default_factory=set)

    def start(self, ifname: str, up: bool) -> None:
        """The state found at start: VRRP is told it directly."""
        self.known[ifname] = up
        if up:
            self.seen_up.add(ifname)

    def report(self, ifname: str, up: bool, now: float, *, immediate: bool = False) -> tuple[bool | None, str]:
        """The kernel reports `up` for `ifname`: the state VRRP must see now (None: nothing yet) and a log note.

        `immediate` is for an interface that was created or deleted: no delay.
        """
        was = self.known.get(ifname)
        held = self.pending.get(ifname)
        if immediate:
            self.pending.pop(ifname, None)
            return self._deliver(ifname, up), ""
        if held is not None:
            if held.up == up:
                return None, ""  # the same change is already waiting
            del self.pending[ifname]  # it flipped back to what VRRP knows: neither change is seen (nor logged)
            return None, ""
        if was == up:
            return None, ""
        down_delay, up_delay = self.delays.get(ifname, (0.0, 0.0))
        delay = up_delay if up else down_delay
        if delay > 0 and ifname in self.seen_up:
            self.pending[ifname] = Pending(up, now + delay)
            return None, (f"{ifname}: Adding flags change from {'down' if up else 'up'} to {'up' if up else 'down'} "
                          f"delay by {round(delay * 1e6)}")  # keepalived's words (it shows the flags in hex)
        return self._deliver(ifname, up), ""

    def expire(self, now: float) -> list[tuple[str, bool]]:
        """The held changes whose delay is over, now delivered to VRRP."""
        due = [(name, p.up) for name, p in self.pending.items() if p.due <= now]
        for name, up in due:
            del self.pending[name]
            self._deliver(name, up)
        return due

    def next_due(self) -> float | None:
        return min((p.due for p in self.pending.values()), default=None)

    def _deliver(self, ifname: str, up: bool) -> bool:
        self.known[ifname] = up
        if up:
            self.seen_up.add(ifname)
        return up


def capped_delays(delays: Mapping[str, tuple[float, float]],
                  instances: Iterable[tuple[str, str | None, float, int]]) -> tuple[dict[str, tuple[float, float]],
                                                                                     list[str]]:
    """The delays keepalived 2.2.7 really uses, and its log lines about the ones it cut.

    `instances` gives (name, interface, advert interval in seconds,
    down_timer_adverts) per instance. A delay must stay under
    (down_timer_adverts - 1) adverts of every instance on the interface, or
    the backups would take over before the master knew its link was down:
    keepalived cuts it to that less 1/256 of an advert, and drops both delays
    of an interface with down_timer_adverts 1.
    """
    out = dict(delays)
    notes: list[str] = []
    for name, ifname, advert_s, adverts in instances:
        if not ifname or ifname not in out:
            continue
        down, up = out[ifname]
        if adverts == 1:
            if down or up:
                notes.append(f"{name}: cannot use debounce timers with down_timer_adverts = 1 - resetting")
                out[ifname] = (0.0, 0.0)
            continue
        limit = (adverts - 1) * advert_s
        if down >= limit or up >= limit:
            cut = limit - advert_s / 256
            out[ifname] = (down if down < limit else cut, up if up < limit else cut)
            notes.append(f"{name}: interface {ifname} debounce timer(s) not less that {adverts - 1} * advert_int "
                         "- resetting")
    return out, notes
