"""keepalived 2.2.7's verdicts on virtual servers and checkers, on the pure config core (no keepalived needed).

The same cases run against real keepalived in tests/compat/corpus/{lvs,checkers}; these pin the
model each leaves behind (what is kept, dropped or normalised).
"""

from __future__ import annotations

import pytest

from pykeepalived.config import read_config_text
from pykeepalived.config.errors import ValueProblem
from pykeepalived.config.model import KeepalivedConfig, UdpCheck
from pykeepalived.config import schema_check


def vs_conf(head: str = "192.0.2.10 80", body: str = "", servers: str | None = None, top: str = "") -> str:
    if servers is None:
        servers = "  real_server 10.0.0.1 80 {\n    TCP_CHECK {\n    }\n  }\n"
    return (f"{top}virtual_server {head} {{\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n{body}{servers}}}\n")


def errors(text: str) -> list[str]:
    return [d.message for d in read_config_text(text).errors]


def model(text: str) -> KeepalivedConfig:
    result = read_config_text(text)
    assert not result.errors, [e.format() for e in result.errors]
    return result.config


@pytest.mark.parametrize(("word", "mask"), [
    ("255.255.255.0", "255.255.255.0"),
    ("255.0.255.0", "255.0.255.0"),  # not contiguous: keepalived and ipvsadm take it
    ("24", "0.0.0.24"),  # inet_aton's reading, as keepalived's
    ("0xffffff00", "255.255.255.0"),
])
def test_ipv4_persistence_granularity_is_any_address(word: str, mask: str) -> None:
    vs = model(vs_conf(body=f"  persistence_granularity {word}\n")).virtual_servers[0]
    assert vs.persistence_granularity == mask
    assert vs.persistence_timeout_s == 360  # granularity makes the service persistent


def test_granularity_without_a_dot_makes_a_fwmark_service_ipv6() -> None:
    text = vs_conf(head="fwmark 9", body="  persistence_granularity 64\n",
                   servers="  real_server 2001:db8::1 80 {\n  }\n").replace("  protocol TCP\n", "")
    vs = model(text).virtual_servers[0]
    assert (vs.ip_family, vs.persistence_granularity) == (6, "64")


def test_a_group_of_fwmarks_needs_no_protocol_and_refuses_one() -> None:
    group = "virtual_server_group marks {\n  fwmark 1\n  fwmark 2 inet\n}\n"
    assert errors(vs_conf(head="group marks", top=group).replace("  protocol TCP\n", "")) == []
    assert any("protocol specified for fwmark" in e for e in errors(vs_conf(head="group marks", top=group)))


def test_nb_get_retry_is_an_error_that_still_sets_retry() -> None:
    text = vs_conf(servers="  real_server 10.0.0.1 80 {\n    HTTP_GET {\n      nb_get_retry 4\n"
                           "      url {\n        path /\n      }\n    }\n  }\n")
    result = read_config_text(text)
    assert [d.message for d in result.errors] == ["nb_get_retry is deprecated - please use 'retry'"]
    assert result.config.virtual_servers[0].real_servers[0].checkers[0].retry == 4


def test_a_real_server_of_the_other_family_is_dropped_unless_tunnelled() -> None:
    servers = "  real_server 10.0.0.1 80 {\n  }\n  real_server 2001:db8::2 80 {\n  }\n"
    result = read_config_text(vs_conf(servers=servers))
    assert any("don't match - skipping real server" in d.message for d in result.errors)
    assert [str(rs.address) for rs in result.config.virtual_servers[0].real_servers] == ["10.0.0.1"]
    tunnelled = model(vs_conf(servers=servers).replace("lb_kind NAT", "lb_kind TUN"))
    assert len(tunnelled.virtual_servers[0].real_servers) == 2


@pytest.mark.parametrize(("flags", "algo", "kept", "error"), [
    ("sh-port", "sh", ["sh-port"], False),
    ("mh-port", "sh", [], False),  # the other scheduler's flag: dropped without a word
    ("hashed", "sh", [], False),
    ("sh-port", "rr", [], True),
    ("ops\n  flag-2", "rr", ["ops", "flag-2"], False),
])
def test_scheduler_flags_follow_the_scheduler_set_so_far(flags: str, algo: str, kept: list[str], error: bool) -> None:
    text = vs_conf(body=f"  {flags}\n").replace("lb_algo rr", f"lb_algo {algo}").replace("protocol TCP", "protocol UDP")
    result = read_config_text(text)
    assert bool(result.errors) is error, [e.format() for e in result.errors]
    assert result.config.virtual_servers[0].sched_flags == kept


@pytest.mark.parametrize(("text", "data"), [("0a0b", b"\n\x0b"), ("abc", b"\xab\x0c"), ("1 2 ff", b"\x01\x02\xff")])
def test_hex_strings_are_read_as_keepalived_reads_them(text: str, data: bytes) -> None:
    assert schema_check.read_hex(text) == data


@pytest.mark.parametrize("text", ["0x0a", "zz", ""])
def test_bad_hex_strings_are_refused(text: str) -> None:
    with pytest.raises(ValueProblem):
        schema_check.read_hex(text)


def test_checker_problems_are_reported_at_the_closing_line_and_drop_the_checker() -> None:
    text = vs_conf(servers="  real_server 10.0.0.1 80 {\n    UDP_CHECK {\n      min_reply_length 9\n"
                           "      max_reply_length 3\n    }\n    FILE_CHECK {\n    }\n  }\n")
    result = read_config_text(text)
    lines = sorted((d.location.line if d.location else 0, d.message) for d in result.errors)
    assert [line for line, _ in lines] == [9, 11]  # the closing braces of UDP_CHECK and FILE_CHECK
    assert [type(c) for c in result.config.virtual_servers[0].real_servers[0].checkers] == [UdpCheck]


def test_an_empty_group_is_removed_and_a_second_definition_is_only_a_warning() -> None:
    empty = read_config_text("virtual_server_group none {\n}\n")
    assert [(d.location.line if d.location else 0) for d in empty.errors] == [2]
    assert "none" not in empty.config.virtual_server_groups
    group = "virtual_server_group g {{\n  192.0.2.{} 80\n}}\n"
    twice = read_config_text(group.format(1) + group.format(2))
    assert twice.errors == [] and len(twice.config.virtual_server_groups["g"].entries) == 1


@pytest.mark.parametrize("entries", [
    ["192.0.2.17/28 80"],  # host bits set
    ["192.0.2.20-20 80"],  # a range must end above its start
    ["192.0.2.20 80", "2001:db8::20 80", "fwmark 5"],  # both families and a fwmark without one
])
def test_groups_keepalived_removes(entries: list[str]) -> None:
    text = "virtual_server_group g {\n" + "".join(f"  {e}\n" for e in entries) + "}\n"
    result = read_config_text(text)
    assert result.errors and "g" not in result.config.virtual_server_groups
