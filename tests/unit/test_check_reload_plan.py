"""check/reload_plan.py: what a reload keeps, changes, adds and removes, from two parsed configs."""

from __future__ import annotations

from pykeepalived.check.plan import build_plan
from pykeepalived.check.reload_plan import ReloadPlan, keep_start_only, needs_restart, plan_reload
from pykeepalived.config import read_config
from pykeepalived.config.memfs import MemoryFileSystem
from pykeepalived.config.model import KeepalivedConfig


def _config(text: str) -> KeepalivedConfig:
    result = read_config("/etc/keepalived/keepalived.conf", MemoryFileSystem({"/etc/keepalived/keepalived.conf": text}))
    assert not result.start_errors, [d.format() for d in result.start_errors]
    return result.config


def _rs(ip: str, weight: int = 1, check: str = "connect_timeout 1", extra: str = "") -> str:
    return f"""
    real_server {ip} 80 {{
        weight {weight}
        {extra}
        TCP_CHECK {{
            {check}
        }}
    }}"""


def _conf(*servers: str, sched: str = "rr", vip: str = "192.0.2.200", more: str = "", glob: str = "") -> str:
    return f"""
global_defs {{
    router_id lb
    {glob}
}}
virtual_server {vip} 80 {{
    delay_loop 1
    lb_algo {sched}
    lb_kind NAT
    protocol TCP
{''.join(servers)}
}}
{more}
"""


def _plan(old: str, new: str) -> ReloadPlan:
    def views(text: str) -> list:  # type: ignore[type-arg]
        return [(p.name, p.config, [(r.name, r.config) for r in p.real_servers]) for p in build_plan(_config(text))]

    return plan_reload(views(old), views(new))


A, B, C = "10.0.0.1", "10.0.0.2", "10.0.0.3"


def test_the_same_config_changes_nothing_even_when_blocks_move_in_the_file() -> None:
    old = _conf(_rs(A), _rs(B))
    moved = "\n\n# a comment that shifts every line\n" + old
    plan = _plan(old, moved)
    assert plan.unchanged
    assert [s.action for s in plan.services] == ["keep"]
    assert [s.action for s in plan.services[0].servers] == ["keep", "keep"]


def test_an_added_real_server_is_added_and_the_others_kept() -> None:
    plan = _plan(_conf(_rs(A), _rs(B)), _conf(_rs(A), _rs(B), _rs(C)))
    (svc,) = plan.services
    assert svc.action == "change" and not svc.settings_changed
    assert [(s.key, s.action) for s in svc.servers] == [
        ("[10.0.0.1]:tcp:80", "keep"), ("[10.0.0.2]:tcp:80", "keep"), ("[10.0.0.3]:tcp:80", "add")]
    assert plan.counts()["servers_added"] == 1


def test_a_removed_real_server_is_named() -> None:
    plan = _plan(_conf(_rs(A), _rs(B)), _conf(_rs(A)))
    (svc,) = plan.services
    assert svc.removed_servers == ("[10.0.0.2]:tcp:80",)
    assert [s.action for s in svc.servers] == ["keep"]


def test_a_changed_checker_parameter_updates_that_checker_only() -> None:
    plan = _plan(_conf(_rs(A), _rs(B)), _conf(_rs(A), _rs(B, check="connect_timeout 2")))
    servers = plan.services[0].servers
    assert servers[0].action == "keep"
    assert servers[1].action == "change"
    assert [(c.action, c.old_index) for c in servers[1].checkers] == [("update", 0)]


def test_a_checker_of_another_kind_is_new() -> None:
    plan = _plan(_conf(_rs(A)), _conf(_rs(A).replace("TCP_CHECK", "PING_CHECK").replace("connect_timeout 1", "")))
    assert [c.action for c in plan.services[0].servers[0].checkers] == ["new"]


def test_a_weight_change_is_a_change_of_the_server_with_its_checker_kept() -> None:
    plan = _plan(_conf(_rs(A)), _conf(_rs(A, weight=3)))
    (srv,) = plan.services[0].servers
    assert srv.action == "change"
    assert [c.action for c in srv.checkers] == ["keep"]


def test_scheduler_change_is_a_settings_change_in_place() -> None:
    plan = _plan(_conf(_rs(A)), _conf(_rs(A), sched="wlc"))
    (svc,) = plan.services
    assert svc.action == "change" and svc.settings_changed
    assert [s.action for s in svc.servers] == ["keep"]


def test_services_are_matched_by_identity_added_and_removed() -> None:
    second = """
virtual_server 192.0.2.201 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.9 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
"""
    plan = _plan(_conf(_rs(A)), _conf(_rs(A), more=second))
    assert [(s.key, s.action) for s in plan.services] == [("[192.0.2.200]:tcp:80", "keep"),
                                                          ("[192.0.2.201]:tcp:80", "add")]
    plan = _plan(_conf(_rs(A), more=second), _conf(_rs(A)))
    assert plan.removed_services == ("[192.0.2.201]:tcp:80",)
    assert [s.action for s in plan.services] == ["keep"]
    plan = _plan(_conf(_rs(A)), _conf(_rs(A), vip="192.0.2.202"))
    assert plan.removed_services == ("[192.0.2.200]:tcp:80",)
    assert [(s.key, s.action) for s in plan.services] == [("[192.0.2.202]:tcp:80", "add")]


def test_start_only_global_defs_are_named_and_kept() -> None:
    old = _config(_conf(_rs(A), glob="lvs_flush"))
    new = _config(_conf(_rs(A), glob="checker_log_all_failures"))
    names = needs_restart(old.global_defs, new.global_defs)
    assert names == ["lvs_flush"]
    kept = keep_start_only(old.global_defs, new.global_defs, names)
    assert kept.lvs_flush == old.global_defs.lvs_flush
    assert kept.checker_log_all_failures  # what can change live does
    assert needs_restart(old.global_defs, old.global_defs) == []


def test_a_config_without_keyword_positions_plans_like_the_one_with_them() -> None:
    """The checker drops real servers' keyword_locations (check/service.py): a reload compares without them."""
    from pykeepalived.check.service import forget_keyword_positions

    text = _conf(_rs(A), _rs(B, weight=2))
    light = _config(text)
    forget_keyword_positions(light)
    servers = [rs for vs in light.virtual_servers for rs in vs.real_servers]
    assert all(rs.keyword_locations == {} and rs.location is not None for rs in servers)

    def views(config: KeepalivedConfig) -> list:  # type: ignore[type-arg]
        return [(p.name, p.config, [(r.name, r.config) for r in p.real_servers]) for p in build_plan(config)]

    assert plan_reload(views(light), views(_config(text))).unchanged
    changed = plan_reload(views(light), views(_config(_conf(_rs(A), _rs(B, weight=3)))))
    assert not changed.unchanged
