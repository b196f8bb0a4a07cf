"""global_defs vrrp_startup_delay: keepalived 2.2.7's hold on becoming master after the process starts.

keepalived starts every instance at once (BACKUP, listening, notifies run),
but while the delay runs a backup's master-down timer is counted from the
end of the delay: it becomes master no earlier than delay + down interval
after the start (an advert heard meanwhile restarts that count, as always).
Instances in other states are not held.
Pure: the shell asks `hold` each time it arms an instance's timer.
"""

from __future__ import annotations

from .machine import State


class StartupDelay:
    def __init__(self, delay_s: float | None, started_at: float) -> None:
        self.until: float | None = started_at + delay_s if delay_s else None

    def hold(self, when: float | None, state: State, now: float) -> float | None:
        """The time to wake an instance whose core asked for `when`: moved by the rest of the delay in BACKUP."""
        if self.until is None or when is None:
            return when
        if now >= self.until:
            self.until = None  # past the delay: nothing is held any more
            return when
        return when + (self.until - now) if state is State.BACKUP else when
