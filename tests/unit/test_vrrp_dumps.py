"""The VRRP dump formatters (vrrp/{data,stats,json}_dump.py) on hand-made views: keepalived 2.2.7's forms.

The lab comparison with keepalived itself is tests/netns/test_dumps.py; these
pin the corners a single lab config does not reach (VRRPv3 intervals, a
backup's master lines, unicast, IPv6 VIPs, fractional intervals in JSON).
"""

from __future__ import annotations

import json
import re
from ipaddress import ip_interface

from pykeepalived.config.model import IpAddressSpec
from pykeepalived.vrrp.data_dump import format_address, format_data
from pykeepalived.vrrp.dump_view import KEEPALIVED_COUNTERS, DumpView, InstanceView, cmd_str
from pykeepalived.vrrp.json_dump import format_json
from pykeepalived.vrrp.stats_dump import format_stats


def _ctime(sec: int) -> str:
    return "Wed Dec  2 21:07:01 2026"


def _view(**overrides: object) -> InstanceView:
    base: dict[str, object] = dict(
        name="VI_1", vrid=51, version=2, family=4, state=2, wantstate=2, interface="eth0", base_priority=150,
        effective_priority=150, advert_int_cs=100, master_adver_int_cs=100, last_transition=1796245621.2347,
        stats={name: i for i, name in enumerate(KEEPALIVED_COUNTERS)} | {"chksum_err": 7},
        vips=("192.0.2.100/24 dev eth0 scope global set",), multicast_group="224.0.0.18", src_ip="192.0.2.11",
        fds=(7, 7),
    )
    base.update(overrides)
    return InstanceView(**base)  # type: ignore[arg-type]


def test_address_forms() -> None:
    spec = IpAddressSpec(ip_interface("192.0.2.100/24"))
    assert format_address(spec, "eth0", True) == "192.0.2.100/24 dev eth0 scope global set"
    assert format_address(spec, "eth0", False) == "192.0.2.100/24 dev eth0 scope global"
    host = IpAddressSpec(ip_interface("192.0.2.101/32"), device="eth1", scope="host", label="eth1:1")
    assert format_address(host, "eth0", True) == "192.0.2.101 dev eth1 scope host label eth1:1 set"
    brd = IpAddressSpec(ip_interface("192.0.2.5/24"), broadcast="+", flags=["noprefixroute"])
    assert format_address(brd, "eth0", False) == "192.0.2.5/24 brd 192.0.2.255 dev eth0 scope global noprefixroute"
    v6 = IpAddressSpec(ip_interface("2001:db8::100/64"))
    assert format_address(v6, "eth0", True) == "2001:db8::100/64 dev eth0 scope global preferred_lft forever set"


def test_command_quoting_as_keepalived() -> None:
    assert cmd_str(["/usr/bin/true", "master"]) == "'/usr/bin/true' 'master'"
    assert cmd_str(["</dev/null"]) == "</dev/null"


def test_stats_layout() -> None:
    text = format_stats(DumpView(instances=(_view(),)))
    assert text.splitlines() == [
        "VRRP Instance: VI_1", "  Advertisements:", "    Received: 0", "    Sent: 1", "  Became master: 2",
        "  Released master: 3", "  Packet Errors:", "    Length: 4", "    TTL: 6", "    Invalid Type: 7",
        "    Advertisement Interval: 5", "    Address List: 8", "  Authentication Errors:", "    Invalid Type: 9",
        "    Type Mismatch: 10", "    Failure: 11", "  Priority Zero:", "    Received: 12", "    Sent: 13",
    ]
    assert "chksum_err" not in text and text.endswith("\n")


def test_json_forms() -> None:
    text = format_json(DumpView(instances=(_view(advert_int_cs=50, master_adver_int_cs=100, version=3),
                                           _view(name="VI_2", interface=None, auth_type=1, auth_data="secret"))))
    assert " " not in text.replace(" dev eth0 scope global set", "")  # compact, like keepalived's json_writer
    doc = json.loads(text)
    first, second = doc[0]["data"], doc[1]["data"]
    assert first["adver_int"] == 0.5 and first["master_adver_int"] == 1 and isinstance(first["master_adver_int"], int)
    assert re.search(r'"last_transition":1796245621\.234700,', text)
    assert first["vipset"] is True and first["nopreempt"] is False and first["accept"] == 1
    assert "auth_data" not in first and first["auth_type"] == 0
    assert "ifp_ifname" not in second and second["auth_data"] == "secret"
    assert "evips" not in first and "track_script" not in first
    assert list(doc[0]["stats"]) == list(KEEPALIVED_COUNTERS)  # ours (chksum_err) stay out


def test_data_dump_backup_v3_unicast_lines() -> None:
    view = _view(state=1, wantstate=1, version=3, advert_int_cs=50, master_adver_int_cs=100,
                 master_router="192.0.2.12", master_priority=200, unicast=True, unicast_peers=(
                     "192.0.2.12 min_ttl 0 max_ttl 255",), multicast_group=None, read_timeout=None,
                 vips=("192.0.2.100/24 dev eth0 scope global",))
    lines = format_data(DumpView(instances=(view,)), _ctime).splitlines()
    assert lines[0] == "------< VRRP Topology >------"
    for expected in ("   State = BACKUP", "   Master router = 192.0.2.12", "   Master priority = 200",
                     "   Master advert int = 1.00 sec", "   Flags:", "     Using unicast",
                     "   Advert interval = 500 milli-sec", "   Master advert interval = 1000 milli-sec",
                     "   Read timeout = DISABLED", "   Virtual IP (1):", "     192.0.2.100/24 dev eth0 scope global",
                     "   Check unicast src : no", "   Unicast Peer :", "     192.0.2.12 min_ttl 0 max_ttl 255",
                     "   Last transition = 1796245621.234700 (Wed Dec  2 21:07:01.234700 2026)"):
        assert expected in lines, expected
    assert not any(line.startswith("   Multicast address") for line in lines)
    assert not any(line.startswith("   Authentication type") for line in lines)  # VRRPv3 has none
