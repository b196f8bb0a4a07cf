"""The shipped unit under real systemd: start (Type=notify), reload, a refused reload, the watchdog, stop.

systemd 252 runs here as PID 1 of a container made of namespaces (PID,
mount, UTS, IPC, network, cgroup) over an overlay copy of this machine's
root (fresh_root.py), with a target that starts nothing else. The .deb built
from this repository is installed in the copy with dpkg, and the test drives
the installed unit with systemctl exactly as an operator would:

- `systemctl start` returns only after the daemon's READY=1 (Type=notify),
  the unit is active, its VRRP instance takes its VIP on the container's
  interface and the checker's nftables table exists;
- `systemctl reload` (ExecReload=pykeepalived reload) applies a changed
  config and the main pid stays; a broken config makes the reload fail and
  the daemon keeps running;
- a SIGSTOPped daemon stops sending WATCHDOG=1 and systemd restarts it
  (WatchdogSec=, Restart=on-failure);
- `systemctl stop` ends it cleanly (result success, VIP removed);
- starting keepalived.service stops it (Conflicts=).

Everything lives and dies with the container: SIGKILL to its PID 1 ends every
process in it, and the mounts and the network namespace go with it.
The unit file itself (systemd-analyze verify) is checked in
tests/packaging/test_deb.py, which needs no notify code.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .fresh_root import FreshRoot, can_overlay_root
from .test_deb import build_deb

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not can_overlay_root(), reason="needs root, unshare, chroot, nsenter and dpkg"),
              pytest.mark.skipif(not Path("/usr/lib/systemd/systemd").exists(), reason="needs systemd installed")]

SERVICE = "pykeepalived.service"
VIP = "192.0.2.1"

CONFIG = """global_defs {
    router_id unit_test
}
vrrp_instance VI_1 {
    state MASTER
    interface pk0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.1/32
    }
}
virtual_server 192.0.2.1 80 {
    delay_loop 5
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.0.2.20 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
"""


@pytest.fixture
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshRoot]:
    """The package installed in a fresh root, systemd booted on it, an interface for VRRP; all removed after."""
    deb = build_deb(tmp_path_factory.mktemp("deb"))
    root = FreshRoot(tmp_path_factory.mktemp("unit") / f"root-{uuid.uuid4().hex[:8]}")
    try:
        root.write("/root/pykeepalived.deb", "")
        root.path("/root/pykeepalived.deb").write_bytes(deb.read_bytes())
        installed = root.run("dpkg -i /root/pykeepalived.deb")
        assert installed.returncode == 0, installed.stdout + installed.stderr
        if not root.path("/usr/lib/python3/dist-packages/pykeepalived/daemon/sd_notify.py").exists():
            pytest.skip("this tree has no sd_notify code yet (issue 15's daemon/sd_notify.py): "
                        "Type=notify would wait for a READY=1 that never comes")
        root.write("/etc/keepalived/keepalived.conf", CONFIG)
        root.boot()
        for argv in (["ip", "link", "add", "pk0", "type", "veth", "peer", "name", "pk1"],
                     ["ip", "link", "set", "pk1", "up"], ["ip", "link", "set", "pk0", "up"],
                     ["ip", "addr", "add", "192.0.2.2/24", "dev", "pk0"]):
            done = root.enter(argv)
            assert done.returncode == 0, done.stderr
        yield root
    finally:
        root.remove()


def show(root: FreshRoot, *props: str) -> dict[str, str]:
    out = root.systemctl("show", SERVICE, *(f"--property={p}" for p in props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def journal(root: FreshRoot) -> str:
    return root.enter(["journalctl", "-u", SERVICE, "--no-pager", "-o", "cat"]).stdout


def wait_for(what: str, check: object, timeout: float, root: FreshRoot) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout} s; journal:\n{journal(root)[-4000:]}")


def has_vip(root: FreshRoot) -> bool:
    return f"inet {VIP}/32" in root.enter(["ip", "-4", "addr", "show", "dev", "pk0"]).stdout


def test_unit_start_reload_watchdog_stop(container: FreshRoot) -> None:
    root = container
    started = root.systemctl("start", SERVICE, timeout=120)
    assert started.returncode == 0, started.stderr + journal(root)[-4000:]
    state = show(root, "ActiveState", "SubState", "MainPID", "NotifyAccess", "WatchdogUSec", "StatusText")
    assert state["ActiveState"] == "active" and state["SubState"] == "running", state
    assert state["NotifyAccess"] == "main" and state["WatchdogUSec"] != "0", state
    assert state["StatusText"], f"no STATUS= line: {state}"
    main_pid = state["MainPID"]
    wait_for("the VIP on pk0", lambda: has_vip(root), 20, root)
    assert "pykeepalived_lvs" in root.enter(["nft", "list", "tables"]).stdout

    # a changed config: reloaded in place, same main pid, still active
    cfg = root.path("/etc/keepalived/keepalived.conf")
    cfg.write_text(CONFIG.replace("priority 150", "priority 140"))
    reloaded = root.systemctl("reload", SERVICE, timeout=60)
    assert reloaded.returncode == 0, reloaded.stderr + journal(root)[-4000:]
    after = show(root, "ActiveState", "MainPID")
    assert after == {"ActiveState": "active", "MainPID": main_pid}, after
    assert has_vip(root)

    # a broken config: the reload fails, the daemon runs on with the old one
    cfg.write_text(CONFIG.replace("lb_algo rr", "lb_algo nonsense"))
    refused = root.systemctl("reload", SERVICE, timeout=60)
    assert refused.returncode != 0, journal(root)[-4000:]
    after = show(root, "ActiveState", "MainPID")
    assert after == {"ActiveState": "active", "MainPID": main_pid}, after
    assert "keepalived.conf:" in journal(root) and has_vip(root)
    cfg.write_text(CONFIG)

    # a hung daemon: no more WATCHDOG=1, systemd aborts and restarts it
    assert root.enter(["kill", "-STOP", main_pid]).returncode == 0
    wait_for("a restart by the watchdog",
             lambda: (lambda s: s["MainPID"] not in ("0", main_pid) and s["ActiveState"] == "active")(
                 show(root, "MainPID", "ActiveState")), 60, root)  # WatchdogSec + TimeoutAbortSec + RestartSec
    assert int(show(root, "NRestarts")["NRestarts"]) >= 1
    assert "watchdog timeout" in journal(root).lower()
    wait_for("the VIP back after the restart", lambda: has_vip(root), 20, root)

    # a clean stop: success, VIP handed back
    stopped = root.systemctl("stop", SERVICE, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    end = show(root, "ActiveState", "Result")
    assert end == {"ActiveState": "inactive", "Result": "success"}, end
    assert not has_vip(root)

    # Conflicts=keepalived.service: starting keepalived's unit stops ours (the two never run on one config);
    # VRRP only, since keepalived's checker needs IPVS, which this kernel may lack
    cfg.write_text(CONFIG[:CONFIG.index("virtual_server")])
    assert root.systemctl("start", SERVICE, timeout=120).returncode == 0
    keepalived = root.systemctl("start", "keepalived.service", timeout=120)
    assert keepalived.returncode == 0, keepalived.stderr
    assert show(root, "ActiveState")["ActiveState"] == "inactive"
    assert root.systemctl("is-active", "keepalived.service").stdout.strip() == "active"
    root.systemctl("stop", "keepalived.service", timeout=60)

