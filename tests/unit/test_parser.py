"""Keyword parsing: values, ranges, blocks, errors that name file:line and the keyword."""

from __future__ import annotations

from pykeepalived.config import read_config_text


def errors(text: str) -> list[tuple[int, str]]:
    return [(e.location.line if e.location else 0, e.message) for e in read_config_text(text).errors]


def test_unknown_keyword_suggests_the_near_miss() -> None:
    found = errors("global_defs {\n  router_idd x\n}\n")
    assert found == [(2, "unknown keyword 'router_idd' in global_defs (did you mean 'router_id'?)")]


def test_out_of_range_priority_names_the_keyword_and_range() -> None:
    text = ("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 256\n"
            " virtual_ipaddress {\n 10.0.0.1\n }\n}\n")
    assert errors(text) == [(4, "priority: number '256' outside range [1, 255]")]


def test_unclosed_block_is_reported_at_its_opening_line() -> None:
    found = errors("global_defs {\n router_id x\n")
    assert found == [(1, "global_defs block is not closed: missing '}' at the end of the file")]


def test_priority_and_state_defaults_follow_keepalived() -> None:
    text = (
        "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n state MASTER\n"
        " virtual_ipaddress {\n 10.0.0.1\n }\n}\n"
        "vrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n 10.0.0.2\n }\n}\n"
    )
    cfg = read_config_text(text).config
    assert (cfg.vrrp_instances["A"].priority, cfg.vrrp_instances["A"].state) == (255, "MASTER")
    assert (cfg.vrrp_instances["B"].priority, cfg.vrrp_instances["B"].state) == (100, "BACKUP")
    assert cfg.vrrp_instances["B"].version == 2


def test_checker_timings_inherit_from_the_virtual_server() -> None:
    text = (
        "virtual_server 10.0.0.1 80 {\n delay_loop 7\n lb_algo rr\n lb_kind NAT\n protocol TCP\n"
        " connect_timeout 4\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n  }\n"
        "  HTTP_GET {\n   url {\n    path /\n   }\n  }\n }\n}\n"
    )
    cfg = read_config_text(text).config
    tcp, http = cfg.virtual_servers[0].real_servers[0].checkers
    assert (tcp.delay_loop_s, tcp.connect_timeout_s, tcp.retry, tcp.delay_before_retry_s) == (7.0, 4.0, 1, 1.0)
    assert (http.delay_before_retry_s, http.connect_port) == (3.0, 80)


def test_every_object_keeps_its_location() -> None:
    cfg = read_config_text("\n\nvirtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n }\n}\n").config
    assert str(cfg.virtual_servers[0].location) == "keepalived.conf:3"
    assert str(cfg.virtual_servers[0].real_servers[0].location) == "keepalived.conf:4"


def test_not_yet_acted_keywords_warn() -> None:
    result = read_config_text("global_defs {\n use_symlink_paths\n}\n")  # (enable_traps is acted on: snmp/)
    assert any("use_symlink_paths" in w.message and "not acted on yet" in w.message for w in result.warnings)
