"""The pure rules of max_auto_priority (host/auto_priority.py): keepalived 2.2.7's steps and switches."""

from __future__ import annotations

from pykeepalived.config import read_config_text
from pykeepalived.host.auto_priority import AutoPriority, auto_priority_for, late_text, next_priority


def _policy(lines: str) -> AutoPriority | None:
    text = "global_defs {\n" + lines + "\n}\n"
    return auto_priority_for(read_config_text(text).config.global_defs, "vrrp")


def test_steps() -> None:
    assert next_priority(False, 0, 5) == 1  # first stall: the lowest realtime priority
    assert next_priority(True, 1, 5) == 2
    assert next_priority(True, 5, 5) is None  # never past the maximum
    assert next_priority(True, 10, 5) is None  # already above it (vrrp_rt_priority): left alone


def test_switches_and_defaults() -> None:
    assert _policy("") is None
    assert _policy("max_auto_priority 0") is None
    assert _policy("max_auto_priority -1") is None
    assert _policy("max_auto_priority") == AutoPriority("vrrp", 99, 1.0)  # no value: the highest
    assert _policy("max_auto_priority 3\nmin_auto_priority_delay 2500\nvrrp_rlimit_rttime 1") == \
        AutoPriority("vrrp", 3, 0.0025, 2)


def test_late_text() -> None:
    assert late_text(1.5) == "1.500000"
    assert late_text(0.000001) == "0.000001"
