"""ha_suspend's rules: which virtual servers' checkers run, from the local addresses."""

from __future__ import annotations

from collections import Counter
from ipaddress import ip_address

from pykeepalived.config.model import KeepalivedConfig, VirtualServer, VirtualServerGroup, VirtualServerGroupEntry
from pykeepalived.check.ha_suspend import SuspendRules


def rules() -> SuspendRules:
    config = KeepalivedConfig()
    config.virtual_server_groups["G"] = VirtualServerGroup("G", [
        VirtualServerGroupEntry("address", ip_address("10.0.0.10"), ip_address("10.0.0.20"), port=80),
        VirtualServerGroupEntry("fwmark", fwmark=3)])
    services = {
        "plain": VirtualServer("address", address=ip_address("192.0.2.1"), port=80, ha_suspend=True),
        "group": VirtualServer("group", group="G", ha_suspend=True),
        "mark": VirtualServer("fwmark", fwmark=1, ha_suspend=True),
        "always": VirtualServer("address", address=ip_address("192.0.2.2"), port=80),
    }
    return SuspendRules.build(services, config)


def test_suspended_until_an_address_is_here() -> None:
    r = rules()
    assert sorted(r.ranges) == ["group", "plain"]  # fwmark: keepalived refuses ha_suspend there
    assert r.update(Counter()) == [("plain", False), ("group", False)]
    assert r.update(Counter({ip_address("10.0.0.15"): 1})) == [("group", True)]
    assert r.runs("group") and not r.runs("plain") and r.runs("always") and r.runs("mark")
    assert r.update(Counter({ip_address("10.0.0.15"): 2, ip_address("192.0.2.1"): 1})) == [("plain", True)]
    assert r.update(Counter({ip_address("10.0.0.15"): 1})) == [("plain", False)]
    assert r.update(Counter({ip_address("2001:db8::1"): 1})) == [("group", False)]
