"""The parent's reload decisions (daemon/reload_plan.py) and timed reloads' times (daemon/reload_schedule.py)."""

from __future__ import annotations

import calendar
import time

import pytest

from pykeepalived.config import LexerOptions, read_config
from pykeepalived.config.memfs import MemoryFileSystem
from pykeepalived.config.model import GlobalDefs, KeepalivedConfig, Script
from pykeepalived.daemon.reload_plan import refused_changes, restart_needed, wanted_children
from pykeepalived.daemon.reload_schedule import BadReloadTime, parse_reload_time

VRRP = ("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 100\n"
        " virtual_ipaddress {\n 10.0.0.1\n }\n}\n")
VS = "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n TCP_CHECK {\n }\n }\n}\n"


def _config(text: str) -> KeepalivedConfig:
    return read_config("/k.conf", MemoryFileSystem({"/k.conf": text}), None, LexerOptions(config_id="h")).config


def test_what_keepalived_refuses_to_change_live() -> None:
    old, new = GlobalDefs(), GlobalDefs(net_namespace="blue", instance="i2", nftables="t2", disable_local_igmp=True)
    lines = refused_changes(old, new)
    assert len(lines) == 4 and all(line.endswith("please restart pykeepalived") for line in lines)
    assert "Cannot change network namespace at a reload (unset -> blue)" in lines[0]
    assert refused_changes(old, GlobalDefs(router_id="r2", vrrp_version=3)) == []
    assert refused_changes(old, GlobalDefs(net_namespace="blue"), namespace_override="red") == []  # -s wins


def test_global_defs_read_at_start_are_named_for_a_restart() -> None:
    old = GlobalDefs(startup_script=Script(["/bin/a"]))
    same_script_moved = GlobalDefs(startup_script=Script(["/bin/a"], location=None), router_id="other")
    assert restart_needed(old, same_script_moved) == []
    lines = restart_needed(old, GlobalDefs(startup_script=Script(["/bin/b"]), vrrp_priority=-5, umask=["0022"]))
    assert [line.split()[1] for line in lines] == ["vrrp_priority", "umask", "startup_script"]
    assert "(unset -> -5)" in lines[0] and "next restart" in lines[0]


@pytest.mark.parametrize(("text", "expected"), [
    (VRRP, {"VRRP"}),
    (VS, {"Healthcheck"}),
    (VRRP + VS, {"VRRP", "Healthcheck"}),
    ("", {"VRRP"}),  # as at start: nothing configured still runs the VRRP child
])
def test_children_the_new_config_calls_for(text: str, expected: set[str]) -> None:
    assert wanted_children(_config(text)) == expected


NOW = calendar.timegm((2026, 12, 3, 12, 0, 0, 0, 0, 0))  # 2026-12-03 12:00:00 UTC


@pytest.mark.parametrize(("line", "expected"), [
    ("12:00:05Z", NOW + 5),
    ("11:59:59Z", NOW + 86399),  # passed today: tomorrow
    ("2026-12-03 13:00:00Z", NOW + 3600),
    ("26-12-04 12:00:00Z", NOW + 86400),
])
def test_reload_times(line: str, expected: float) -> None:
    assert parse_reload_time(line, NOW) == expected


@pytest.mark.parametrize(("line", "why"), [
    ("12:00", "Invalid reload time"),
    (" 12:00:05Z", "Invalid reload time"),  # keepalived: no leading or trailing white space
    ("2026-12-03  13:00:00", "Invalid reload time"),
    ("25:00:00Z", "invalid"),
    ("2026-02-30 10:00:00Z", "invalid"),
    ("2026-12-03 11:00:00Z", "in the past"),
])
def test_bad_reload_times(line: str, why: str) -> None:
    with pytest.raises(BadReloadTime, match=why):
        parse_reload_time(line, NOW)


def test_local_time_without_z() -> None:
    now = time.time()
    soon = time.localtime(now + 120)
    line = time.strftime("%H:%M:%S", soon)
    assert abs(parse_reload_time(line, now) - (now + 120)) < 1.0


def test_reloads_are_serialized_and_hups_during_one_run_one_more() -> None:
    import asyncio

    from pykeepalived.daemon.supervisor import Supervisor

    runs: list[str] = []

    async def main() -> None:
        supervisor = Supervisor([])

        async def fake_reload() -> None:
            runs.append("start")
            await asyncio.sleep(0.05)
            runs.append("end")

        supervisor.reload_once = fake_reload  # type: ignore[assignment,method-assign]
        supervisor.request_reload()
        await asyncio.sleep(0.01)
        for _ in range(3):  # three HUPs while the first runs: one more reload, not three, never two at once
            supervisor.request_reload()
        await asyncio.sleep(0.3)
        supervisor.request_reload()  # idle again: runs at once
        await asyncio.sleep(0.1)

    asyncio.run(main())
    assert runs == ["start", "end"] * 3
