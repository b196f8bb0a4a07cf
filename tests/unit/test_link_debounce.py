"""The interface_up_down_delays core (vrrp/link_debounce.py): keepalived 2.2.7's debounce rules."""

from __future__ import annotations

from pykeepalived.vrrp.link_debounce import Debouncer, capped_delays


def test_down_is_held_then_delivered() -> None:
    d = Debouncer({"eth0": (2.0, 1.0)})
    d.start("eth0", True)
    shown, note = d.report("eth0", False, 10.0)
    assert shown is None and "Adding flags change" in note
    assert d.next_due() == 12.0
    assert d.expire(11.9) == []
    assert d.expire(12.0) == [("eth0", False)]
    assert d.known["eth0"] is False


def test_flip_back_cancels_silently() -> None:
    d = Debouncer({"eth0": (2.0, 1.0)})
    d.start("eth0", True)
    d.report("eth0", False, 10.0)
    assert d.report("eth0", True, 10.5) == (None, "")
    assert d.next_due() is None and d.expire(20.0) == []
    assert d.known["eth0"] is True


def test_first_up_and_creation_are_immediate() -> None:
    d = Debouncer({"eth0": (2.0, 1.0)})
    d.start("eth0", False)  # never seen up: no delay
    assert d.report("eth0", True, 1.0)[0] is True
    assert d.report("eth0", False, 2.0)[0] is None  # now it was seen up: held
    assert d.report("eth0", False, 2.1, immediate=True)[0] is False  # deleted: at once
    assert d.pending == {}


def test_no_delay_for_other_interfaces() -> None:
    d = Debouncer({"eth0": (2.0, 1.0)})
    d.start("eth1", True)
    assert d.report("eth1", False, 1.0)[0] is False


def test_delays_are_cut_under_the_down_timer() -> None:
    delays, notes = capped_delays({"eth0": (5.0, 1.0), "eth1": (1.0, 1.0)},
                                  [("VI_1", "eth0", 1.0, 3), ("VI_2", "eth1", 1.0, 1)])
    assert delays["eth0"] == (2.0 - 1 / 256, 1.0)
    assert delays["eth1"] == (0.0, 0.0)
    assert notes == ["VI_1: interface eth0 debounce timer(s) not less that 2 * advert_int - resetting",
                     "VI_2: cannot use debounce timers with down_timer_adverts = 1 - resetting"]
