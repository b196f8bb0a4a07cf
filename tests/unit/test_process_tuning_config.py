"""global_defs process settings: parsed into typed fields and turned into each process's settings."""

from __future__ import annotations

from pykeepalived.config import LoadResult, read_config_text
from pykeepalived.host.tuning import RT_RLIMIT_DEFAULT_US, tuning_for


def _g(body: str) -> LoadResult:
    return read_config_text("global_defs {\n" + body + "}\n")


def test_process_names_then_override_as_keepalived() -> None:
    result = _g("  process_names\n  checker_process_name hc\n  process_name main\n")
    assert not result.errors
    g = result.config.global_defs
    assert tuning_for(g, "vrrp").name == "keepalived_vrrp"
    assert tuning_for(g, "checker").name == "hc"
    assert tuning_for(g, "parent").name == "main"


def test_alone_process_takes_the_parent_name_when_it_has_none() -> None:
    g = _g("  process_name main\n").config.global_defs
    assert tuning_for(g, "vrrp").name is None
    assert tuning_for(g, "vrrp", alone=True).name == "main"


def test_long_name_is_an_error_and_cut() -> None:
    result = _g("  vrrp_process_name abcdefghijklmnopqrstuvwxyz\n")
    assert [d.message for d in result.errors] == ["Process name abcdefghijklmnopqrstuvwxyz more than 15 characters, "
                                                  "truncating"]
    assert result.config.global_defs.vrrp_process_name == "abcdefghijklmno"


def test_priorities_limits_swap_and_cpus() -> None:
    g = _g("  vrrp_priority -5\n  vrrp_rt_priority 10\n  vrrp_rlimit_rtime 1\n  vrrp_no_swap\n"
           "  vrrp_cpu_affinity 0 1\n  checker_priority 4\n").config.global_defs
    vrrp = tuning_for(g, "vrrp")
    assert (vrrp.nice, vrrp.rt_priority, vrrp.rlimit_rttime_us, vrrp.no_swap, vrrp.cpus) == (-5, 10, 2, True, (0, 1))
    checker = tuning_for(g, "checker")
    assert (checker.nice, checker.rt_priority, checker.rlimit_rttime_us, checker.no_swap, checker.cpus) == (
        4, None, RT_RLIMIT_DEFAULT_US, False, ())
