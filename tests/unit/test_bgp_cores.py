"""pykeepalived_bgp: the block's checks, bgpd.conf, the vty framing and the announce rule (sans-IO)."""

from __future__ import annotations

import ipaddress

import pytest

from pykeepalived.bgp.announce import ServiceHealth, transition, wanted
from pykeepalived.bgp.frr_conf import BgpConfigError, render_bgpd_conf
from pykeepalived.bgp.vty import (VtyProtocolError, VtyReplyReader, announcement_commands, encode_command,
                                  session_commands)
from pykeepalived.config import read_config_text
from pykeepalived.config.bgp_checks import service_ranges
from pykeepalived.config.errors import Severity
from pykeepalived.config.model import BgpSpeaker

BASE = """
bfd_instance up {
    neighbor_ip 10.19.0.1
    source_ip 10.19.0.11
}
virtual_server 203.0.113.50 80 {
    protocol TCP
    lb_algo mh
    lb_kind DR
    real_server 10.19.1.1 80 { TCP_CHECK { } }
}
virtual_server_group web {
    203.0.113.60-70 80
    198.51.100.0/30 443
}
virtual_server group web {
    protocol TCP
    lb_algo rr
    lb_kind NAT
    real_server 10.19.1.1 80 { TCP_CHECK { } }
}
"""

GOOD = BASE + """
pykeepalived_bgp {
    local_as 65001
    hold_time 9
    neighbor 10.19.0.1 {
        remote_as 65000
        source_ip 10.19.0.11
        bfd up
        password s3cret
    }
    neighbor 2001:db8::1 {
        remote_as 65000
    }
    announce 203.0.113.50 203.0.113.65
    announce 2001:db8::50
    community 65001:100 no-export
    med 10
}
"""


def errors(text: str) -> list[str]:
    return [f"{d.location.line if d.location else '?'}: {d.message}" for d in read_config_text(text).diagnostics
            if d.severity is Severity.ERROR]


def warnings(text: str) -> list[str]:
    return [d.message for d in read_config_text(text).diagnostics if d.severity is Severity.WARNING]


def test_the_block_is_read_and_completed() -> None:
    result = read_config_text(GOOD)
    assert errors(GOOD) == []
    bgp = result.config.bgp
    assert bgp is not None
    assert bgp.local_as == 65001 and bgp.hold_time_s == 9 and bgp.keepalive_s == 3  # hold / 3
    assert str(bgp.router_id) == "10.19.0.11"  # the first IPv4 source_ip
    assert [str(a) for a in bgp.announce] == ["203.0.113.50", "203.0.113.65", "2001:db8::50"]
    assert bgp.communities == ["65001:100", "no-export"] and bgp.med == 10
    first = bgp.neighbors[0]
    assert (str(first.address), first.remote_as, first.bfd, first.password) == ("10.19.0.1", 65000, "up", "s3cret")
    # 2001:db8::50 is on no virtual server: said, not refused
    assert any("no virtual_server is on announced address 2001:db8::50" in w for w in warnings(GOOD))


@pytest.mark.parametrize("body, expected", [
    ("neighbor 10.19.0.1 { remote_as 65000 }\n announce 203.0.113.50", "has no local_as"),
    ("local_as 65001\n announce 203.0.113.50", "has no neighbor"),
    ("local_as 65001\n neighbor 10.19.0.1 { source_ip 10.19.0.11 }", "has no remote_as"),
    ("local_as 65001\n neighbor 10.19.0.1 { remote_as 1\n source_ip 2001:db8::2 }", "not of the same family"),
    ("local_as 65001\n hold_time 2\n neighbor 10.19.0.1 { remote_as 1 }", "hold_time"),
    ("local_as 65001\n keepalive 3\n neighbor 10.19.0.1 { remote_as 1 }", "must be shorter than hold_time"),
    ("local_as 65001\n neighbor 10.19.0.1 { remote_as 1\n bfd nope }", "bfd_instance nope does not exist"),
    ("local_as 65001\n neighbor 10.19.0.1 { remote_as 1 }\n community 70000:1", "invalid community"),
    ("local_as 65001\n neighbor 10.19.0.1 { remote_as 1 }\n announce 203.0.113.300", "invalid IP address"),
    ("local_as 65001\n router_id 2001:db8::1\n neighbor 10.19.0.1 { remote_as 1 }", "(a BGP identifier)"),
    ("local_as 65001\n neighbor 10.19.0.1 { remote_as 1 }", "needs a router_id"),
    ("local_as 65001\n neighbor 10.19.0.1 { remote_as 1 }\n neighbor 10.19.0.1 { remote_as 2 }", "given twice"),
])
def test_mistakes_are_errors_at_their_line(body: str, expected: str) -> None:
    text = BASE + "pykeepalived_bgp {\n " + body + "\n}\n"
    found = errors(text)
    assert any(expected in e for e in found), found
    assert all(not e.startswith("?") for e in found)


def test_a_second_block_is_refused() -> None:
    text = GOOD + "pykeepalived_bgp {\n local_as 1\n}\n"
    assert any("only one pykeepalived_bgp block" in e for e in errors(text))


def test_router_id_from_global_defs() -> None:
    text = "global_defs {\n router_id 192.0.2.9\n}\n" + BASE + \
        "pykeepalived_bgp {\n local_as 1\n neighbor 10.19.0.1 { remote_as 2 }\n announce 203.0.113.50\n}\n"
    bgp = read_config_text(text).config.bgp
    assert bgp is not None and str(bgp.router_id) == "192.0.2.9"


def test_no_block_no_speaker() -> None:
    assert read_config_text(BASE).config.bgp is None


def test_bgpd_conf_sessions_and_policy() -> None:
    bgp = read_config_text(GOOD).config.bgp
    assert bgp is not None
    conf = render_bgpd_conf(bgp, "lb1")
    lines = conf.splitlines()
    for line in ["router bgp 65001", " bgp router-id 10.19.0.11", " no bgp ebgp-requires-policy",
                 " no bgp network import-check", " timers bgp 3 9", " neighbor 10.19.0.1 remote-as 65000",
                 " neighbor 10.19.0.1 update-source 10.19.0.11", " neighbor 10.19.0.1 password s3cret",
                 " neighbor 10.19.0.1 timers connect 1", " address-family ipv6 unicast",
                 "  neighbor 2001:db8::1 activate", "  neighbor 10.19.0.1 route-map PYKEEPALIVED-IN in",
                 "route-map PYKEEPALIVED-IN deny 10", " set community 65001:100 no-export", " set metric 10"]:
        assert line in lines, line
    assert not [x for x in lines if x.strip().startswith("network")]  # announcements go over the vty, never the file
    with pytest.raises(BgpConfigError):
        render_bgpd_conf(BgpSpeaker())


def test_vty_framing() -> None:
    assert encode_command("enable") == b"enable\0"
    with pytest.raises(VtyProtocolError):
        encode_command("a\nb")
    reader = VtyReplyReader()
    assert reader.feed(b"some out") == []
    assert reader.feed(b"put\0\0") == []
    first = reader.feed(b"\0\0% [BGP] Unknown command: x\n\0\0\0\2")
    assert [(r.output, r.status, r.ok) for r in first] == [("some output", 0, True),
                                                           ("% [BGP] Unknown command: x\n", 2, False)]
    assert "unknown command" in first[1].describe() and reader.pending == 0


def test_session_and_announcement_commands() -> None:
    assert session_commands(65001) == ["enable", "configure terminal", "router bgp 65001"]
    assert announcement_commands(["203.0.113.50/32", "2001:db8::50/128"], add=True) == [
        "address-family ipv4 unicast", "network 203.0.113.50/32", "exit-address-family",
        "address-family ipv6 unicast", "network 2001:db8::50/128", "exit-address-family"]
    assert announcement_commands(["203.0.113.50/32"], add=False)[1] == "no network 203.0.113.50/32"


def test_announce_rule() -> None:
    result = read_config_text(GOOD)
    config = result.config
    assert config.bgp is not None
    single, group = config.virtual_servers
    ranges = (tuple(service_ranges(single, config)), tuple(service_ranges(group, config)))
    ip = ipaddress.ip_address
    assert ranges[1] == ((ip("203.0.113.60"), ip("203.0.113.70")), (ip("198.51.100.0"), ip("198.51.100.3")))
    announce = config.bgp.announce

    def now(q1: bool, q2: bool, ok: bool = True) -> frozenset[str]:
        return wanted(announce, [ServiceHealth(ranges[0], q1), ServiceHealth(ranges[1], q2)], ok)

    assert now(True, True) == {"203.0.113.50/32", "203.0.113.65/32", "2001:db8::50/128"}
    assert now(False, True) == {"203.0.113.65/32", "2001:db8::50/128"}  # only the VIP whose service lost quorum
    assert now(True, False) == {"203.0.113.50/32", "2001:db8::50/128"}  # a group's range counts
    assert now(True, True, ok=False) == frozenset()  # a data plane that does not forward announces nothing
    change = transition(frozenset({"a", "b"}), frozenset({"b", "c"}))
    assert (change.withdraw, change.announce) == (("a",), ("c",))


def test_status_line() -> None:
    from pykeepalived.status import bgp_line

    assert bgp_line({"pid": 7, "announced": ["203.0.113.50/32"], "wanted": ["203.0.113.50/32"], "error": None}) == \
        "BGP (bgpd pid 7): announcing 203.0.113.50/32"
    assert bgp_line({"pid": None, "announced": [], "wanted": ["203.0.113.50/32"], "error": "bgpd ended"}) == \
        "BGP (bgpd pid -): announcing nothing; not yet: 203.0.113.50/32; ERROR: bgpd ended"


def test_a_reload_keeps_bgpd_unless_the_sessions_change() -> None:
    from pykeepalived.check.bgp_link import same_sessions

    old = read_config_text(GOOD).config
    more = read_config_text(GOOD.replace("announce 2001:db8::50", "announce 2001:db8::50 203.0.113.66")).config
    moved = read_config_text("\n\n" + GOOD).config  # the same block on other lines
    other_as = read_config_text(GOOD.replace("remote_as 65000\n        source_ip", "remote_as 9\n source_ip")).config
    assert same_sessions(old, more) and same_sessions(old, moved)
    assert not same_sessions(old, other_as)
    assert not same_sessions(old, read_config_text(BASE).config)
    assert same_sessions(read_config_text(BASE).config, read_config_text(BASE).config)
