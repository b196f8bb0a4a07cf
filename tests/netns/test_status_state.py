"""`pykeepalived status` shows the whole daemon: VRRP (also on a VRRP-only router) and the virtual servers.

The parent assembles the state model from its children's reports and writes
it beside its pid file; `status` reads that. With the NAT lab running, the
document says which router is MASTER and which BACKUP, which real servers are
healthy and how many connections they carry, and it follows a real server's
death and the master's within about a second of what the daemon itself
shows (the checker's status file, the VIPs moving). A stopped daemon gives a
non-zero exit, and `status | head -1` ends without a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import unique_prefix
from pykeepalived.lab.lvs_lab import VIP, LvsLab
from pykeepalived.lab.topology import Host

from .router_fixtures import lone_router, start_logged, stop_group
from .polling import first_true
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

STATUS = [sys.executable, "-m", "pykeepalived", "status"]
MARGIN_S = 1.5  # "within a second", with room for a machine shared by other test runs


def _state_file(lab: LvsLab, router: str) -> Path:
    pid_file = lab.router(router).pid_files[0]
    return pid_file.with_name(f"{pid_file.stem}.state.json")


def _status(lab: LvsLab, router: str, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [*STATUS, "-p", str(lab.router(router).pid_files[0]), *extra]
    return lab.router(router).netns.run(argv, check=False)


def _doc(lab: LvsLab, router: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_state_file(lab, router).read_text())
    return data


def _states(doc: dict[str, Any]) -> dict[str, str]:
    return {i["name"]: i["state"] for i in doc.get("vrrp", {}).get("instances", [])}


def _healthy(doc: dict[str, Any], vs: str) -> dict[str, bool]:
    for svc in doc.get("checker", {}).get("virtual_servers", []):
        if svc["name"] == vs:
            return {rs["name"]: rs["healthy"] for rs in svc["real_servers"]}
    return {}



@pytest.fixture
def nat_lab(tmp_path: Path) -> Iterator[LvsLab]:
    lab = LvsLab("nat", prefix=unique_prefix("lvss"), name="lvs-status", workdir=tmp_path / "lab")
    try:
        lab.up()
        yield lab
    finally:
        for router in lab.routers.values():
            print(f"===== {router.name}\n{router.log()[-3000:]}")
        lab.close()


@pytest.mark.slow
def test_status_follows_the_nat_lab_real_server_and_master_deaths(nat_lab: LvsLab) -> None:
    lab = nat_lab
    master = lab.wait_for_master()
    backup = next(name for name in lab.routers if name != master)
    vs_name = f"TCP {VIP}:80"

    # both routers' status --json: roles, healthy real servers, exit 0
    for router, role in ((master, "MASTER"), (backup, "BACKUP")):
        def settled(router: str = router, role: str = role) -> bool:
            return set(_states(_doc(lab, router)).values()) == {role}
        assert first_true({"settled": settled}, 10.0), _doc(lab, router)
        proc = _status(lab, router, "--json")
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["running"] is True and doc["daemon"]["children"]["vrrp"]["running"] is True
        assert set(_states(doc).values()) == {role}
        assert doc["vrrp"]["sync_groups"][0]["state"] == role
        assert all(_healthy(doc, vs_name).values()) and len(_healthy(doc, vs_name)) == 3
        assert any(e["kind"] == "vrrp" for e in doc["events"])
    text = _status(lab, master)
    assert text.returncode == 0 and "MASTER" in text.stdout and vs_name in text.stdout, text.stdout

    # connections through the VIP are counted on the master
    for _ in range(3):
        lab.client_get(f"http://{VIP}/whoami")

    def counted() -> bool:
        svc = next(s for s in _doc(lab, master)["checker"]["virtual_servers"] if s["name"] == vs_name)
        stats = svc["stats"]
        return bool(stats) and stats["active_connections"] + stats["inactive_connections"] >= 3
    assert first_true({"counted": counted}, 6.0), _doc(lab, master)["checker"]

    # a real server dies: the state follows the checker's own status file within the margin
    lab.stop_real_server(1)
    gone = lab.real_server(1)
    rs_name = f"{gone.address}:80"
    times = first_true({
        "checker": lambda: any(not rs["alive"] for svc in lab.router(master).checker_status()["services"]
                               for rs in svc["real_servers"] if str(gone.address) in rs["name"]),
        "state": lambda: _healthy(_doc(lab, master), vs_name).get(rs_name) is False,
    }, 20.0)
    assert "state" in times and "checker" in times, (times, _doc(lab, master)["checker"])
    assert times["state"] - times["checker"] <= MARGIN_S, times
    doc = _doc(lab, master)
    assert any(e["kind"] == "real_server" and e["subject"] == rs_name and "DOWN" in e["text"] for e in doc["events"])

    # the master dies: the backup's state says MASTER within the margin of it taking the VIP
    lab.kill_router(master)
    times = first_true({
        "vip": lambda: backup in lab.vip_holders(),
        "state": lambda: set(_states(_doc(lab, backup)).values()) == {"MASTER"},
    }, 15.0)
    assert "state" in times and "vip" in times, (times, _doc(lab, backup)["vrrp"])
    assert times["state"] - times["vip"] <= MARGIN_S, times
    reasons = [t["reason"] for i in _doc(lab, backup)["vrrp"]["instances"] for t in i["transitions"]
               if t["to"] == "MASTER"]
    assert reasons and all(reasons), reasons

    # the killed router: not running, its last state kept
    proc = _status(lab, master, "--json")
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    doc = json.loads(proc.stdout)
    assert doc["running"] is False and doc["problem"]

    # into `head`: no traceback, whatever the exit status
    head = lab.router(backup).netns.run(
        ["sh", "-c", " ".join([*STATUS, "-p", str(lab.router(backup).pid_files[0])]) + " | head -1"], check=False)
    assert head.stdout.startswith("pykeepalived pid") and "Traceback" not in head.stderr, head


VRRP_ONLY = """\
global_defs {{
    router_id vrrp_only
}}
vrrp_instance VI_STATUS {{
    state MASTER
    interface eth0
    virtual_router_id 77
    priority 150
    advert_int 1
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""


@pytest.fixture
def lone(tmp_path: Path) -> Iterator[Host]:
    with lone_router("stat") as host:
        yield host


def test_status_of_a_vrrp_only_router_and_after_it_stopped(lone: Host, tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    vip = lone.ipv4.network.network_address + 200
    conf.write_text(VRRP_ONLY.format(vip=vip))
    pid_file = tmp_path / "k.pid"
    argv = [sys.executable, "-m", "pykeepalived", "-n", "-l", "-f", str(conf), "-p", str(pid_file),
            "-r", str(tmp_path / "k_vrrp.pid"), "-c", str(tmp_path / "k_checkers.pid"),
            "--status-file", str(tmp_path / "checker.json"), "--api", f"unix:{tmp_path / 'api.sock'}"]
    proc = start_logged(lone, argv, tmp_path / "log")
    status = [*STATUS, "-p", str(pid_file)]
    try:
        def master() -> bool:
            out = lone.netns.run([*status, "--json"], check=False)
            return out.returncode == 0 and _states(json.loads(out.stdout)) == {"VI_STATUS": "MASTER"}
        assert first_true({"master": master}, 15.0), (tmp_path / "log").read_text()
        text = lone.netns.run(status, check=False)
        assert text.returncode == 0 and "VI_STATUS" in text.stdout and "MASTER" in text.stdout, text.stdout
        doc = json.loads(lone.netns.run([*status, "--json"], check=False).stdout)
        assert "checker" not in doc and doc["daemon"]["router_id"] == "vrrp_only"
        assert list(doc["daemon"]["children"]) == ["vrrp"]
        via_api = lone.netns.run([*STATUS, "--api", f"unix:{tmp_path / 'api.sock'}", "--json"], check=False)
        assert via_api.returncode == 0, via_api.stderr
        assert _states(json.loads(via_api.stdout)) == {"VI_STATUS": "MASTER"}
        # the VRRP child is killed: the parent says so in the timeline and counts the restart
        os.kill(doc["daemon"]["children"]["vrrp"]["pid"], signal.SIGKILL)

        def restarted() -> bool:
            now = json.loads(lone.netns.run([*status, "--json"], check=False).stdout)
            child = now["daemon"]["children"]["vrrp"]
            return bool(child["restarts"] == 1 and child["running"] and "SIGKILL" in (child["last_exit"] or "")
                        and any(e["kind"] == "daemon" and "SIGKILL" in e["text"] for e in now["events"]))
        assert first_true({"restarted": restarted}, 10.0), (tmp_path / "log").read_text()
    finally:
        stop_group(proc)
    after = lone.netns.run([*status, "--json"], check=False)
    assert after.returncode == 3 and json.loads(after.stdout)["running"] is False, after
    missing = lone.netns.run([*STATUS, "-p", str(tmp_path / "nothing.pid"),
                              "--status-file", str(tmp_path / "none.json")], check=False)
    assert missing.returncode == 3 and "not running" in missing.stderr and "Traceback" not in missing.stderr
