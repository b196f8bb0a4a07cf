"""lvs_sync_daemon: the spec from the config, and which daemon runs as the instance changes state."""

from __future__ import annotations

from pykeepalived.config import read_config_text
from pykeepalived.lvs.ipvs_sync import daemon_attrs
from pykeepalived.lvs.sync_daemon import BACKUP, MASTER, SyncCommand, SyncDaemonSpec, SyncFollower, spec_for

BASE = """
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {{ 192.0.2.10 }}
    {extra}
}}
global_defs {{
    {sync}
}}
"""


def spec(sync: str, extra: str = "") -> SyncDaemonSpec | None:
    result = read_config_text(BASE.format(sync=sync, extra=extra))
    return spec_for(result.config)


def test_the_spec_follows_keepalived_defaults_and_forms() -> None:
    assert spec("lvs_sync_daemon eth1 VI_1") == SyncDaemonSpec("eth1", 51, "VI_1")
    assert spec("lvs_sync_daemon eth1 inst VI_1 id 7 maxlen 1200 port 8899 ttl 3 group 239.1.1.1") == \
        SyncDaemonSpec("eth1", 7, "VI_1", 1200, 8899, 3, "239.1.1.1")
    assert spec("lvs_sync_daemon eth1 VI_1 9") == SyncDaemonSpec("eth1", 9, "VI_1")  # the old bare sync id
    assert spec("lvs_sync_daemon eth1") == SyncDaemonSpec("eth1", 0, None)  # no instance: the checker runs both
    assert spec("", extra="lvs_sync_daemon_interface eth2") == SyncDaemonSpec("eth2", 51, "VI_1")
    assert spec("") is None


def test_one_daemon_at_a_time_following_the_instance() -> None:
    f = SyncFollower()
    assert f.start() == [SyncCommand("start", BACKUP)]
    assert f.state("BACKUP") == []
    assert f.state("MASTER") == [SyncCommand("stop", BACKUP), SyncCommand("start", MASTER)]
    assert f.state("MASTER") == []
    assert f.state("FAULT") == [SyncCommand("stop", MASTER), SyncCommand("start", BACKUP)]
    assert f.state("BACKUP") == []
    assert f.stop() == [SyncCommand("stop", BACKUP)]
    assert f.stop() == []


def test_netlink_fields_of_a_start_and_a_stop() -> None:
    s = SyncDaemonSpec("eth1", 7, "VI_1", port=8899, group="239.1.1.1")
    assert daemon_attrs(s, SyncCommand("start", MASTER)) == [
        ("IPVS_DAEMON_ATTR_STATE", 1), ("IPVS_DAEMON_ATTR_MCAST_IFN", "eth1"), ("IPVS_DAEMON_ATTR_SYNC_ID", 7),
        ("IPVS_DAEMON_ATTR_MCAST_GROUP", "239.1.1.1"), ("IPVS_DAEMON_ATTR_MCAST_PORT", 8899)]
    assert daemon_attrs(s, SyncCommand("stop", BACKUP)) == [("IPVS_DAEMON_ATTR_STATE", 2),
                                                              ("IPVS_DAEMON_ATTR_SYNC_ID", 7)]
