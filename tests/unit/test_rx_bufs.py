"""vrrp_rx_bufs_policy parsing and each instance's share of its socket's buffer (vrrp/rx_bufs.py)."""

from __future__ import annotations

from pykeepalived.config import read_config_text
from pykeepalived.config.model import GlobalDefs
from pykeepalived.vrrp.rx_bufs import advert_length, instance_share
from pykeepalived.vrrp.settings import instance_settings


def _policy(words: str) -> tuple[GlobalDefs, list[str]]:
    result = read_config_text(f"global_defs {{\n  vrrp_rx_bufs_policy {words}\n}}\n")
    return result.config.global_defs, [d.message for d in result.errors]


def test_policy_words_as_keepalived() -> None:
    g, errors = _policy("mtu")
    assert (g.vrrp_rx_bufs_policy, g.vrrp_rx_bufs_size, errors) == ("MTU", None, [])
    g, errors = _policy("MTU ADVERT")
    assert g.vrrp_rx_bufs_policy == "MTU"
    assert errors == ["Cannot set both vrrp_rx_bufs_policy MTU and ADVERT, ignoring ADVERT"]
    g, errors = _policy("4096 ADVERT")
    assert (g.vrrp_rx_bufs_policy, g.vrrp_rx_bufs_size) == (None, 4096)
    assert errors == ["Cannot set vrrp_rx_bufs_policy size and policy, ignoring policy"]
    _, errors = _policy("MTU 4096")  # keepalived reads the size from the second word
    assert errors[0] == "Invalid vrrp_rx_bufs_policy 4096"


def test_shares() -> None:
    result = read_config_text("vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  priority 100\n"
                              "  virtual_ipaddress {\n    192.0.2.1\n    192.0.2.2\n  }\n}\n")
    g = result.config.global_defs
    s = instance_settings(result.config.vrrp_instances["VI_1"], g)
    assert advert_length(s) == 8 + 8 + 2 * 4 + 20  # header, v2 auth data, two addresses, IPv4 header
    assert instance_share(s, None, GlobalDefs(vrrp_rx_bufs_policy="ADVERT"), None) == 3 * 44
    assert instance_share(s, 1000, GlobalDefs(vrrp_rx_bufs_policy="ADVERT"), None) == 1000
    assert instance_share(s, None, GlobalDefs(vrrp_rx_bufs_policy="MTU", vrrp_rx_bufs_multiplier=2), 1400) == 2800
    assert instance_share(s, None, GlobalDefs(vrrp_rx_bufs_size=5000), 1400) == 5000
    assert instance_share(s, None, GlobalDefs(), 1400) == 0
