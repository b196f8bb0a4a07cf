"""vrrp_startup_delay's hold on backups' timers (vrrp/startup_delay.py)."""

from __future__ import annotations

from pykeepalived.vrrp.machine import State
from pykeepalived.vrrp.startup_delay import StartupDelay


def test_backup_timer_counts_from_the_end_of_the_delay() -> None:
    delay = StartupDelay(2.0, started_at=100.0)
    assert delay.hold(103.0, State.BACKUP, 100.0) == 105.0
    assert delay.hold(103.5, State.BACKUP, 100.5) == 105.0  # an advert heard restarts the count, still held
    assert delay.hold(101.0, State.MASTER, 100.5) == 101.0  # other states are not held


def test_nothing_held_after_the_delay_or_without_one() -> None:
    delay = StartupDelay(2.0, started_at=100.0)
    assert delay.hold(105.0, State.BACKUP, 102.0) == 105.0
    assert delay.until is None
    assert StartupDelay(None, 100.0).hold(103.0, State.BACKUP, 100.0) == 103.0
    assert StartupDelay(0.0, 100.0).hold(None, State.BACKUP, 100.0) is None
