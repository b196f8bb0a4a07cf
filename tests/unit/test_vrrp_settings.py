"""From the config model to what the VRRP machine runs: keepalived's completion rules."""

from __future__ import annotations

from ipaddress import IPv4Address

from pykeepalived.config import read_config_text
from pykeepalived.vrrp.packet import AuthType
from pykeepalived.vrrp.settings import instance_settings
from pykeepalived.vrrp.track import Tracked, TrackKind, instance_trackers

BASE = """
global_defs {{
  {globals}
}}
vrrp_script chk {{
  script "/bin/true"
  weight -20
}}
vrrp_sync_group G {{
  group {{
    VI_2
  }}
}}
vrrp_instance VI_1 {{
  interface eth0
  virtual_router_id 51
  {extra}
  virtual_ipaddress {{
    {vip}
  }}
  track_script {{
    chk
  }}
  track_interface {{
    eth1 weight 10
  }}
}}
vrrp_instance VI_2 {{
  interface eth0
  virtual_router_id 52
  virtual_ipaddress {{
    192.0.2.200
  }}
  track_script {{
    chk
  }}
}}
"""


def _load(extra: str = "", vip: str = "192.0.2.100", globals_: str = ""):  # type: ignore[no-untyped-def]
    result = read_config_text(BASE.format(extra=extra, vip=vip, globals=globals_))
    return result.config


def test_defaults_follow_keepalived() -> None:
    cfg = _load()
    s = instance_settings(cfg.vrrp_instances["VI_1"], cfg.global_defs)
    assert (s.version, s.family, s.base_priority, s.advert_int_cs) == (2, 4, 100, 100)
    assert not s.wanted_master and not s.nopreempt
    assert (s.garp_master_delay_s, s.garp_master_repeat, s.garp_lower_prio_repeat) == (5.0, 5, 5)
    assert s.advert_addresses == (IPv4Address("192.0.2.100"),)
    assert s.destination_group == IPv4Address("224.0.0.18")


def test_state_master_without_priority_is_the_owner_and_clears_nopreempt() -> None:
    cfg = _load("state MASTER\n  nopreempt")
    s = instance_settings(cfg.vrrp_instances["VI_1"], cfg.global_defs)
    assert s.base_priority == 255 and s.owner and s.wanted_master and not s.nopreempt


def test_ipv6_is_always_version_3_and_v3_keeps_centiseconds() -> None:
    cfg = _load("advert_int 0.25", vip="2001:db8::100", globals_="vrrp_version 2")
    s = instance_settings(cfg.vrrp_instances["VI_1"], cfg.global_defs)
    assert (s.version, s.family, s.advert_int_cs) == (3, 6, 25)


def test_v2_interval_rounds_to_whole_seconds_and_pass_is_cut_to_8() -> None:
    cfg = _load("advert_int 1.4\n  authentication {\n auth_type PASS\n auth_pass 0123456789\n }")
    s = instance_settings(cfg.vrrp_instances["VI_1"], cfg.global_defs)
    assert s.advert_int_cs == 100
    assert (s.auth_type, s.auth_data) == (AuthType.PASS, b"01234567")


def test_trackers_keep_weights_outside_sync_groups_only() -> None:
    cfg = _load()
    assert instance_trackers(cfg.vrrp_instances["VI_1"], cfg) == [
        Tracked(TrackKind.INTERFACE, "eth0", 0),
        Tracked(TrackKind.INTERFACE, "eth1", 10),
        Tracked(TrackKind.SCRIPT, "chk", -20),
    ]
    # in a sync group the script's weight is ignored: it becomes a FAULT tracker
    assert Tracked(TrackKind.SCRIPT, "chk", 0) in instance_trackers(cfg.vrrp_instances["VI_2"], cfg)
