"""The Red Hat guide's router pair, and its appendix (keepalived in front of HAProxy).

- NAT chapter: LB1 and LB2 share two VIPs, one on the public network (RH_EXT)
  and one on the private network (RH_INT), kept together by vrrp_sync_group
  VG1: a failure on either side moves both.
- Appendix A.3: a vrrp_script checks HAProxy with weight 2 (priorities 101 and
  100): when HAProxy dies on the master, the other router outranks it and takes
  the VIP. The guide's `killall -0 haproxy` would see the other router's
  HAProxy here (namespaces share the PID space), so each router checks its own
  HAProxy's pid file instead; the rule is the same.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from pykeepalived.lab import KeepalivedPeer, Lan, PyKeepalivedPeer, VrrpSettings, unique_prefix, wait_until
from pykeepalived.lab.topology import Host

from .vrrp_helpers import HAVE_KEEPALIVED, needs_root

pytestmark = [pytest.mark.netns, needs_root]

EXT_VIP = IPv4Interface("203.0.113.10/24")
INT_VIP = IPv4Interface("10.11.12.10/24")


def _instance(name: str, interface: str, vrid: int, priority: int, vip: IPv4Interface) -> str:
    return f"""
vrrp_instance {name} {{
    state BACKUP
    interface {interface}
    virtual_router_id {vrid}
    priority {priority}
    advert_int 1
    authentication {{
        auth_type PASS
        auth_pass passw123
    }}
    virtual_ipaddress {{
        {vip}
    }}
}}
"""


def _sync_group_conf(priority: int) -> str:
    """The guide's LB config (section 4.1), VRRP part: VG1 with RH_EXT on eth0 and RH_INT on eth1."""
    return f"""
global_defs {{
    router_id LVS_{priority}
}}
vrrp_sync_group VG1 {{
    group {{
        RH_EXT
        RH_INT
    }}
}}
""" + _instance("RH_EXT", "eth0", 50, priority, EXT_VIP) + _instance("RH_INT", "eth1", 2, priority, INT_VIP)


class TwoNets:
    """The NAT chapter's networks: public (eth0 on the routers) and private (eth1)."""

    def __init__(self, prefix: str) -> None:
        self.public = Lan(f"{prefix}p", ipv4_net="203.0.113.0/24", ipv6_net="2001:db8:1::/64")
        self.private = Lan(f"{prefix}q", ipv4_net="10.11.12.0/24", ipv6_net="2001:db8:2::/64")
        self.lb1 = self.public.add_host("lb1", 2)
        self.lb2 = self.public.add_host("lb2", 3)
        self.lb1_int = self.private.attach(self.lb1, "eth1", 8)
        self.lb2_int = self.private.attach(self.lb2, "eth1", 9)
        self.peers: list[KeepalivedPeer] = []

    def close(self) -> None:
        for peer in self.peers:
            print(f"===== {peer!r} =====\n{peer.log()[-4000:]}")
            peer.close()
        self.private.close()
        self.public.close()


@pytest.fixture
def nets() -> Iterator[TwoNets]:
    n = TwoNets(unique_prefix("rh")[:10])
    try:
        yield n
    finally:
        n.close()


def _router(nets: TwoNets, kind: str, host: Host, priority: int, workdir: Path) -> KeepalivedPeer:
    if kind == "ka" and not HAVE_KEEPALIVED:
        pytest.skip("keepalived not installed")
    dummy = [VrrpSettings(vrid=50, priority=priority, vips=[EXT_VIP])]
    cls = PyKeepalivedPeer if kind == "py" else KeepalivedPeer
    peer = cls(host, dummy, workdir)
    text = _sync_group_conf(priority)
    if isinstance(peer, PyKeepalivedPeer):
        text = text.replace("global_defs {", f"global_defs {{\n    json_dump_file {peer.json_path}", 1)
    peer.conf_path.write_text(text)
    peer.instance_names = ["RH_EXT", "RH_INT"]
    nets.peers.append(peer)
    return peer


def _holds_both(ext: Host, internal: Host) -> bool:
    return EXT_VIP.ip in ext.addresses() and INT_VIP.ip in internal.addresses()


def _holds_none(ext: Host, internal: Host) -> bool:
    return EXT_VIP.ip not in ext.addresses() and INT_VIP.ip not in internal.addresses()


@pytest.mark.parametrize(("lb1_kind", "lb2_kind"), [("py", "py"),
                                                    pytest.param("py", "ka", marks=pytest.mark.keepalived),
                                                    pytest.param("ka", "py", marks=pytest.mark.keepalived)])
def test_sync_group_moves_both_vips_together(nets: TwoNets, tmp_path: Path, lb1_kind: str, lb2_kind: str) -> None:
    lb1 = _router(nets, lb1_kind, nets.lb1, 150, tmp_path)
    lb2 = _router(nets, lb2_kind, nets.lb2, 100, tmp_path)
    lb2.start()
    lb1.start()
    wait_until(lambda: _holds_both(nets.lb1, nets.lb1_int) and _holds_none(nets.lb2, nets.lb2_int), 10,
               what="LB1 holds both VIPs")

    # the private side of LB1 fails: the whole group moves, the public VIP too
    nets.private.set_link(nets.lb1_int, False)
    wait_until(lambda: _holds_both(nets.lb2, nets.lb2_int) and _holds_none(nets.lb1, nets.lb1_int), 8,
               what="LB2 holds both VIPs after LB1's eth1 failed")
    nets.private.set_link(nets.lb1_int, True)
    wait_until(lambda: _holds_both(nets.lb1, nets.lb1_int) and _holds_none(nets.lb2, nets.lb2_int), 10,
               what="LB1 takes both VIPs back")

    # LB1 dies
    lb1.kill()
    lb1.remove_vips()
    nets.lb1.netns.ip("addr", "del", str(INT_VIP), "dev", "eth1")
    wait_until(lambda: _holds_both(nets.lb2, nets.lb2_int), 8, what="LB2 holds both VIPs after LB1 died")


needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")


def _start_haproxy(host: Host, workdir: Path) -> Path:
    """HAProxy as the guide runs it (a daemon); its pid file is what the check reads."""
    pidfile = workdir / f"haproxy-{host.name}.pid"
    cfg = workdir / f"haproxy-{host.name}.cfg"
    cfg.write_text("""global
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen web
    bind 0.0.0.0:8080
    server local 127.0.0.1:9 check
""")
    host.netns.run(["haproxy", "-D", "-p", str(pidfile), "-f", str(cfg)])
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() != "", 5, what="haproxy pid file")
    return pidfile


def _kill_pidfile(pidfile: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        for word in pidfile.read_text().split():
            os.kill(int(word), signal.SIGKILL)


@needs_haproxy
@pytest.mark.parametrize("other", ["py", pytest.param("ka", marks=pytest.mark.keepalived)])
def test_appendix_haproxy_check_with_weight_moves_the_vip(nets: TwoNets, tmp_path: Path, other: str) -> None:
    pidfiles: list[Path] = []
    try:
        peers = []
        for host, priority, kind in ((nets.lb1, 101, "py"), (nets.lb2, 100, other)):
            if kind == "ka" and not HAVE_KEEPALIVED:
                pytest.skip("keepalived not installed")
            pidfile = _start_haproxy(host, tmp_path)
            pidfiles.append(pidfile)
            check = tmp_path / f"chk-{host.name}.sh"
            check.write_text(f"#!/bin/sh\nkill -0 $(cat {pidfile}) 2>/dev/null\n")
            check.chmod(0o755)
            vip = IPv4Interface("203.0.113.100/24")
            cls = PyKeepalivedPeer if kind == "py" else KeepalivedPeer
            peer = cls(host, [VrrpSettings(vrid=51, priority=priority, vips=[vip])], tmp_path)
            text = f"""global_defs {{
    enable_script_security
    script_user root
    {f'json_dump_file {peer.json_path}' if isinstance(peer, PyKeepalivedPeer) else ''}
}}
vrrp_script chk_haproxy {{
    script "{check}"
    interval 2
    weight 2
}}
vrrp_instance VI_1 {{
    interface eth0
    state {'MASTER' if priority == 101 else 'BACKUP'}
    virtual_router_id 51
    priority {priority}
    virtual_ipaddress {{
        {vip}
    }}
    track_script {{
        chk_haproxy
    }}
}}
"""
            peer.conf_path.write_text(text)
            nets.peers.append(peer)
            peers.append(peer)
        lb1, lb2 = peers
        lb2.start()
        lb1.start()
        vip_ip = IPv4Interface("203.0.113.100/24").ip
        wait_until(lambda: lb1.holds(vip_ip) and not lb2.holds(vip_ip), 10, what="haproxy node 1 holds the VIP")
        time.sleep(3)  # both scripts have succeeded: 103 against 102
        assert lb1.holds(vip_ip) and not lb2.holds(vip_ip)
        _kill_pidfile(pidfiles[0])  # HAProxy dies on the master: 101 < 102
        wait_until(lambda: lb2.holds(vip_ip) and not lb1.holds(vip_ip), 12, what="node 2 takes the VIP")
    finally:
        for pidfile in pidfiles:
            _kill_pidfile(pidfile)
