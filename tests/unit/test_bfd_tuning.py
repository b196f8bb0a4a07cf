"""global_defs bfd_* settings reach the BFD child's ProcessTuning, as vrrp_*/checker_* reach theirs."""

from __future__ import annotations

from pykeepalived.config import read_config_text
from pykeepalived.host.tuning import ProcessTuning, tuning_for


def _bfd(text: str) -> ProcessTuning:
    result = read_config_text("global_defs {\n" + text + "}\n")
    assert not result.errors, result.diagnostics
    return tuning_for(result.config.global_defs, "bfd")


def test_every_bfd_setting() -> None:
    t = _bfd("  bfd_process_name pyk_bfd\n  bfd_priority -5\n  bfd_rt_priority 20\n  bfd_rlimit_rtime 1\n"
             "  bfd_no_swap\n  bfd_cpu_affinity 0 1\n")
    assert t == ProcessTuning("bfd", name="pyk_bfd", nice=-5, rt_priority=20, rlimit_rttime_us=2, no_swap=True,
                              cpus=(0, 1))


def test_process_names_names_the_bfd_child_and_others_stay_apart() -> None:
    assert _bfd("  process_names\n").name == "keepalived_bfd"
    assert _bfd("  vrrp_priority 5\n  vrrp_process_name v\n") == ProcessTuning("bfd")
