"""The HTTP API on the NAT lab: GET /api/v1/state and GET /metrics say what the lab is, and follow it.

Both routers run with `--api unix:... --api-runtime`. Read through the API
(the JSON and a Prometheus scrape parsed with prometheus-client's own
parser): which router is MASTER and which BACKUP (`keepalived_vrrp_state`),
the healthy real servers, the connections the client made through the VIP;
what the runtime API changed (drain, weight, out, maintenance) shows as such
in both and as a "runtime" event in the timeline and in `pykeepalived
status`; a real server's death and the master's reach the API within about a
second of the daemon acting on them (the checker's status file, the VIPs
moving). The delays measured are printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pykeepalived.ctl import connection
from pykeepalived.lab.lvs_lab import PUBLIC_INSTANCE, VIP, LvsLab

from .api_labs import runtime_api_lab
from .polling import first_true
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.slow]

VS = f"TCP {VIP}:80"
MARGIN_S = 1.5  # "within a second", with room for a machine shared by other test runs

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _api(lab: LvsLab, router: str) -> str:
    return f"unix:{lab.router(router).dir / f'{router}.api.sock'}"


def _get(lab: LvsLab, router: str, path: str) -> str:
    conn = connection(_api(lab, router))
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        body = reply.read().decode()
        assert reply.status == 200, (path, reply.status, body)
        return body
    finally:
        conn.close()


def _state(lab: LvsLab, router: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_get(lab, router, "/api/v1/state"))
    return doc


def _metrics(lab: LvsLab, router: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(_get(lab, router, "/metrics")):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def _m(samples: Samples, name: str, **labels: str) -> list[float]:
    """The values of `name` whose labels include `labels`."""
    want = set(labels.items())
    return [v for (n, ls), v in samples.items() if n == name and want <= ls]


def _ctl(lab: LvsLab, router: str, *args: str) -> None:
    done = lab.ctl(router, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)


def _vs(doc: dict[str, Any]) -> dict[str, Any]:
    return next(v for v in doc["checker"]["virtual_servers"] if v["name"] == VS)


def _rs(doc: dict[str, Any], rs: str) -> dict[str, Any]:
    return next(r for r in _vs(doc)["real_servers"] if r["name"] == rs)


def _states(doc: dict[str, Any]) -> set[str]:
    return {i["state"] for i in doc.get("vrrp", {}).get("instances", [])}



def _until(cond: Callable[[], bool], timeout_s: float, what: Callable[[], object]) -> None:
    assert first_true({"it": cond}, timeout_s), what()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LvsLab]:
    with runtime_api_lab("apilab", tmp_path / "lab") as lab:
        yield lab


def test_state_and_metrics_follow_the_nat_lab(lab: LvsLab) -> None:
    master = lab.wait_for_master()
    backup = next(name for name in lab.routers if name != master)
    rs = {r.name: f"{r.address}:80" for r in lab.real_servers}

    # roles: the JSON and keepalived_vrrp_state (2 MASTER, 1 BACKUP) on both routers
    for router, role, number in ((master, "MASTER", 2.0), (backup, "BACKUP", 1.0)):
        _until(lambda router=router, role=role: _states(_state(lab, router)) == {role}, 10.0,
               lambda router=router: _state(lab, router)["vrrp"])
        samples = _metrics(lab, router)
        vip_states = _m(samples, "keepalived_vrrp_state", iname=PUBLIC_INSTANCE)
        assert len(vip_states) == 2 and set(vip_states) == {number}, samples  # one series per VIP
        assert _m(samples, "keepalived_up") == [1.0]
        doc = _state(lab, router)
        assert {r["name"]: r["healthy"] for r in _vs(doc)["real_servers"]} == {n: True for n in rs.values()}
        assert all(_m(samples, "pykeepalived_real_server_healthy", virtual_server=VS, real_server=n) == [1.0]
                   for n in rs.values()), samples

    # connections through the VIP, counted on the master
    for _ in range(3):
        lab.client_get(f"http://{VIP}/")

    def counted() -> bool:
        samples = _metrics(lab, master)
        conns = sum(_m(samples, "pykeepalived_virtual_server_active_connections", virtual_server=VS)
                    + _m(samples, "pykeepalived_virtual_server_inactive_connections", virtual_server=VS))
        stats = _vs(_state(lab, master))["stats"]
        return conns >= 3 and stats["active_connections"] + stats["inactive_connections"] >= 3
    _until(counted, 8.0, lambda: _vs(_state(lab, master)))

    # the runtime API's changes show in the JSON, the metrics, the timeline and `status`
    _ctl(lab, master, "drain", VS, rs["rs1"])
    _ctl(lab, master, "weight", VS, rs["rs2"], "5")
    _ctl(lab, backup, "maintenance", PUBLIC_INSTANCE)

    def runtime_shown() -> bool:
        doc, samples = _state(lab, master), _metrics(lab, master)
        one, two = _rs(doc, rs["rs1"]), _rs(doc, rs["rs2"])
        return (one["runtime"]["drained"] is True and one["effective_weight"] == 0
                and two["runtime"] == {"drained": False, "weight": 5} and two["effective_weight"] == 5
                and _m(samples, "pykeepalived_real_server_drained", real_server=rs["rs1"]) == [1.0]
                and _m(samples, "pykeepalived_real_server_effective_weight", real_server=rs["rs1"]) == [0.0]
                and _m(samples, "pykeepalived_real_server_effective_weight", real_server=rs["rs2"]) == [5.0]
                and _m(samples, "pykeepalived_real_server_runtime_weight", real_server=rs["rs2"]) == [5.0]
                and _m(samples, "pykeepalived_real_server_runtime_weight", real_server=rs["rs3"]) == [])
    _until(runtime_shown, 3.0, lambda: (_vs(_state(lab, master)), _metrics(lab, master)))

    def held() -> bool:
        doc = _state(lab, backup)
        return all(i["runtime"]["maintenance"] for i in doc["vrrp"]["instances"]) and \
            _m(_metrics(lab, backup), "pykeepalived_vrrp_maintenance", iname=PUBLIC_INSTANCE) == [1.0]
    _until(held, 3.0, lambda: _state(lab, backup)["vrrp"])

    events = [e for e in _state(lab, master)["events"] if e["kind"] == "runtime"]
    assert any(f"drain {rs['rs1']}" in e["text"] for e in events), events
    status = subprocess.run([sys.executable, "-m", "pykeepalived", "status", "-p",
                             str(lab.router(master).pid_files[0])], capture_output=True, text=True, timeout=30,
                            check=False)
    assert status.returncode == 0 and "runtime:" in status.stdout and "(drained)" in status.stdout, status.stdout

    _ctl(lab, master, "out", VS)

    def out_shown() -> bool:
        doc, samples = _state(lab, master), _metrics(lab, master)
        return (_vs(doc)["runtime"]["out"] is True
                and all(r["effective_weight"] == 0 for r in _vs(doc)["real_servers"])
                and _m(samples, "pykeepalived_virtual_server_out", virtual_server=VS) == [1.0])
    _until(out_shown, 3.0, lambda: _vs(_state(lab, master)))

    for args in (("in", VS), ("undrain", VS, rs["rs1"]), ("undrain", VS, rs["rs2"])):
        _ctl(lab, master, *args)
    _ctl(lab, backup, "resume", PUBLIC_INSTANCE)

    def cleared() -> bool:
        doc = _state(lab, master)
        return not _vs(doc)["runtime"]["out"] and all(
            r["runtime"] == {"drained": False, "weight": None} and r["effective_weight"] == r["weight"]
            for r in _vs(doc)["real_servers"])
    _until(cleared, 3.0, lambda: _vs(_state(lab, master)))
    assert lab.which_router_is_master() == master

    # a real server dies: the API follows the checker's own status file
    lab.stop_real_server("rs3")
    gone = lab.real_server("rs3")
    times = first_true({
        "checker": lambda: any(not r["alive"] for s in lab.router(master).checker_status()["services"]
                               for r in s["real_servers"] if str(gone.address) in r["name"]),
        "state": lambda: _rs(_state(lab, master), rs["rs3"])["healthy"] is False,
        "metrics": lambda: _m(_metrics(lab, master), "pykeepalived_real_server_healthy",
                              virtual_server=VS, real_server=rs["rs3"]) == [0.0],
    }, 20.0)
    print(f"real server death: checker at 0, state +{times.get('state', 99) - times.get('checker', 0):.3f} s, "
          f"metrics +{times.get('metrics', 99) - times.get('checker', 0):.3f} s")
    assert set(times) == {"checker", "state", "metrics"}, (times, _vs(_state(lab, master)))
    assert max(times["state"], times["metrics"]) - times["checker"] <= MARGIN_S, times
    assert _rs(_state(lab, master), rs["rs3"])["effective_weight"] == 0

    # the master dies: the survivor's API says MASTER once it holds the VIPs
    lab.kill_router(master)
    times = first_true({
        "vip": lambda: backup in lab.vip_holders(),
        "state": lambda: _states(_state(lab, backup)) == {"MASTER"},
        "metrics": lambda: set(_m(_metrics(lab, backup), "keepalived_vrrp_state", iname=PUBLIC_INSTANCE)) == {2.0},
    }, 15.0)
    print(f"master death: VIPs moved at 0, state +{times.get('state', 99) - times.get('vip', 0):.3f} s, "
          f"metrics +{times.get('metrics', 99) - times.get('vip', 0):.3f} s")
    assert set(times) == {"vip", "state", "metrics"}, (times, _state(lab, backup)["vrrp"])
    assert max(times["state"], times["metrics"]) - times["vip"] <= MARGIN_S, times
