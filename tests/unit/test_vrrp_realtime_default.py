"""The VRRP process's realtime default (host/tuning.py, docs/false-failovers.md) and its off switch."""

from __future__ import annotations

import pytest

from pykeepalived.config import read_config_text
from pykeepalived.config.model import GlobalDefs
from pykeepalived.host.tuning import DEFAULT_VRRP_RT_PRIORITY, RT_RLIMIT_DEFAULT_US, tuning_for


def _g(body: str) -> GlobalDefs:
    result = read_config_text("global_defs {\n" + body + "}\n")
    assert not result.errors, [d.message for d in result.errors]
    return result.config.global_defs


def test_vrrp_is_realtime_unless_the_config_says_otherwise() -> None:
    t = tuning_for(_g(""), "vrrp")
    assert (t.rt_priority, t.rt_by_default) == (DEFAULT_VRRP_RT_PRIORITY, True)
    assert t.rlimit_rttime_us == RT_RLIMIT_DEFAULT_US == 1_000_000  # not keepalived's 10 ms: SIGKILLs Python
    assert tuning_for(_g(""), "checker").rt_priority is None  # only the VRRP process


@pytest.mark.parametrize("line", ["pykeepalived_vrrp_realtime off", "vrrp_priority -5", "max_auto_priority 5",
                                  "min_auto_priority_delay 200000"])
def test_off_when_turned_off_or_scheduling_configured(line: str) -> None:
    t = tuning_for(_g(f"  {line}\n"), "vrrp")
    assert t.rt_priority is None and not t.rt_by_default


def test_configured_priority_wins() -> None:
    t = tuning_for(_g("  vrrp_rt_priority 40\n  vrrp_rlimit_rttime 50000\n"), "vrrp")
    assert (t.rt_priority, t.rt_by_default, t.rlimit_rttime_us) == (40, False, 50000)


def test_bad_value_is_a_config_error() -> None:
    result = read_config_text("global_defs {\n  pykeepalived_vrrp_realtime maybe\n}\n")
    assert result.errors and "pykeepalived_vrrp_realtime" in str([d.message for d in result.errors] +
                                                                 [str(d.location) for d in result.errors])
