"""vrrp/reload_plan.py: what a reload keeps, changes in place, removes and adds (no I/O)."""

from __future__ import annotations

from ipaddress import ip_address

from pykeepalived.config import read_config_text
from pykeepalived.config.model import KeepalivedConfig
from pykeepalived.vrrp.reload_apply import new_settings_for
from pykeepalived.vrrp.reload_plan import ReloadPlan, plan_reload

BASE = """
global_defs {{
    router_id r1
{globals}
}}
vrrp_script chk {{
    script "/bin/true"
    interval {script_interval}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority {priority}
    advert_int {advert}
    {extra1}
    virtual_ipaddress {{
{vips}
    }}
}}
{more}
"""

VI_2 = """
vrrp_instance {name} {{
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 100
    {extra}
    virtual_ipaddress {{
        192.0.2.52/24
    }}
}}
"""


def conf(*, vrid: int = 51, priority: int = 150, advert: int = 1, vips: str = "192.0.2.100/24",
         extra1: str = "", more: str = "", globals_: str = "", script_interval: int = 1,
         blank_lines: int = 0) -> KeepalivedConfig:
    text = "\n" * blank_lines + BASE.format(
        vrid=vrid, priority=priority, advert=advert, extra1=extra1, more=more, globals=globals_,
        script_interval=script_interval,
        vips="\n".join(f"        {v}" for v in vips.split()))
    result = read_config_text(text)
    return result.config


def plan(old: KeepalivedConfig, new: KeepalivedConfig) -> ReloadPlan:
    return plan_reload(old, new, new_settings_for(old), new_settings_for(new))


def test_the_same_file_changes_nothing() -> None:
    p = plan(conf(more=VI_2.format(name="VI_2", extra="")), conf(more=VI_2.format(name="VI_2", extra="")))
    assert p.keep == ("VI_1", "VI_2")
    assert p.unchanged and not p.change and not p.remove and not p.add and not p.restart_needed and not p.problems


def test_lines_moved_by_a_comment_change_nothing() -> None:
    """Locations differ (a line added at the top), nothing else: still unchanged."""
    p = plan(conf(), conf(blank_lines=3))
    assert p.keep == ("VI_1",) and p.unchanged


def test_priority_and_advert_int_change_in_place() -> None:
    p = plan(conf(), conf(priority=120, advert=2))
    assert p.keep == () and not p.remove and not p.add
    (change,) = p.change
    assert change.name == "VI_1" and change.settings
    assert change.priority == (150, 120) and change.advert_int_cs == (100, 200)
    assert not change.addresses


def test_vip_diff_adds_the_new_and_removes_the_gone() -> None:
    p = plan(conf(vips="192.0.2.100/24 192.0.2.101/24"), conf(vips="192.0.2.100/24 192.0.2.102/24"))
    (change,) = p.change
    assert [str(s.address) for s in change.vips_added] == ["192.0.2.102/24"]
    assert [str(s.address) for s in change.vips_removed] == ["192.0.2.101/24"]
    assert change.priority is None and change.advert_int_cs is None


def test_virtual_routes_are_diffed_too() -> None:
    old = conf(extra1="virtual_routes {\n  198.51.100.0/24 via 192.0.2.1\n}")
    new = conf(extra1="virtual_routes {\n  198.51.100.0/24 via 192.0.2.1\n  203.0.113.0/24 via 192.0.2.1\n}")
    (change,) = plan(old, new).change
    assert [r.destination for r in change.routes_added] == ["203.0.113.0/24"] and not change.routes_removed


def test_a_tracker_added_is_a_change_in_place() -> None:
    (change,) = plan(conf(), conf(extra1="track_script {\n chk\n}")).change
    assert change.trackers and not change.settings


def test_a_changed_vrrp_script_is_listed() -> None:
    old = conf(extra1="track_script {\n chk\n}")
    new = conf(extra1="track_script {\n chk\n}", script_interval=2)
    p = plan(old, new)
    assert p.scripts_changed == ("chk",) and p.keep == ("VI_1",)


def test_removed_and_added_instances() -> None:
    p = plan(conf(more=VI_2.format(name="VI_2", extra="")), conf(more=VI_2.format(name="VI_3", extra="")))
    # VI_3 is VI_2's router (same VRID, interface, family): renamed, so remove + add under our names
    assert p.remove == ("VI_2",) and p.add == ("VI_3",)
    assert p.replaced == (("VI_2", "VI_3", "renamed to VI_3"),)
    p = plan(conf(), conf(more=VI_2.format(name="VI_2", extra="")))
    assert p.add == ("VI_2",) and p.keep == ("VI_1",) and not p.remove and p.groups_changed
    p = plan(conf(more=VI_2.format(name="VI_2", extra="")), conf())
    assert p.remove == ("VI_2",) and p.keep == ("VI_1",) and not p.add


def test_instances_are_matched_by_vrid_not_by_name() -> None:
    """The same name on another VRID is another router: remove the old, add the new."""
    p = plan(conf(vrid=51), conf(vrid=61))
    assert p.remove == ("VI_1",) and p.add == ("VI_1",) and not p.problems


def test_unicast_versus_multicast_is_another_router() -> None:
    p = plan(conf(), conf(extra1="unicast_src_ip 10.0.0.1\n unicast_peer {\n 10.0.0.2\n}"))
    assert p.remove == ("VI_1",) and p.add == ("VI_1",)


def test_changes_a_machine_cannot_take_are_remove_and_add() -> None:
    p = plan(conf(), conf(extra1="version 3"))
    assert p.replaced == (("VI_1", "VI_1", "version changed"),)
    p = plan(conf(), conf(priority=255))
    assert p.replaced[0][2] == "address owner (priority 255) changed"


def test_two_routers_swapping_names_are_both_restarted() -> None:
    """VI_1 takes VRID 52 and VI_X VRID 51: matched by VRID, both renamed, so both removed and added."""
    old = conf(more=VI_2.format(name="VI_2", extra=""))
    new = conf(vrid=52, more=VI_2.format(name="VI_X", extra="").replace("virtual_router_id 52",
                                                                            "virtual_router_id 51"))
    p = plan(old, new)
    assert set(p.remove) == {"VI_1", "VI_2"} and set(p.add) == {"VI_1", "VI_X"} and not p.problems


def test_global_defs_that_need_a_restart_are_named() -> None:
    p = plan(conf(), conf(globals_="    vrrp_garp_interval 0.01\n    nftables keepalived_x\n"))
    assert p.restart_needed == ("nftables", "vrrp_garp_interval")
    assert plan(conf(), conf(globals_="    nftables keepalived_x\n")).keep == ("VI_1",)


def test_global_defs_that_feed_the_instances_are_applied_in_place() -> None:
    p = plan(conf(), conf(globals_="    vrrp_garp_master_repeat 2\n"))
    (change,) = p.change
    assert change.settings and p.restart_needed == ()


def test_a_newly_tracked_process_refuses_the_reload() -> None:
    more = "vrrp_track_process p {\n process sshd\n}\n"
    old = conf(more=more)
    new = conf(more=more, extra1="track_process {\n p\n}")
    p = plan(old, new)
    assert p.problems and "track_process p" in p.problems[0]


def test_unicast_peers_change_in_place() -> None:
    old = conf(extra1="unicast_src_ip 10.0.0.1\n unicast_peer {\n 10.0.0.2\n}")
    new = conf(extra1="unicast_src_ip 10.0.0.1\n unicast_peer {\n 10.0.0.3\n}")
    (change,) = plan(old, new).change
    assert change.settings and not plan(old, new).remove
    assert new_settings_for(new)["VI_1"].unicast_peers[0].address == ip_address("10.0.0.3")
