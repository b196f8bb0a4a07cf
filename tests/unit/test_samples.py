"""Every keepalived sample parses into a model whose JSON dump holds what the file says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.config import read_config
from pykeepalived.config.dump import dump_json
from pykeepalived.host.files import LocalFileSystem
from tests.conftest import REPO, samples_dir

SAMPLES = samples_dir()


def dump(path: Path) -> dict[str, Any]:
    result = read_config(str(path), LocalFileSystem())
    return json.loads(dump_json(result.config))  # type: ignore[no-any-return]


# file -> list of (JSON path, expected value)
EXPECTED: dict[str, list[tuple[str, Any]]] = {
    "keepalived.conf.sample": [
        ("global_defs.router_id", "LVS_DEVEL"),
        ("vrrp_instances.VI_1.nopreempt", True),
        ("virtual_servers.0.sorry_server.address", "192.168.200.200"),
    ],
    "keepalived.conf.SSL_GET": [
        ("vrrp_instances.VI_1.authentication.auth_type", "AH"),
        ("virtual_servers.0.real_servers.0.checkers.0.kind", "SSL_GET"),
    ],
    "keepalived.conf.fwmark": [("virtual_servers.0.kind", "fwmark"), ("virtual_servers.0.fwmark", 1)],
    "keepalived.conf.quorum": [
        ("virtual_servers.0.quorum", 7),
        ("virtual_servers.0.hysteresis", 2),
        ("virtual_servers.0.alpha", True),
        ("virtual_servers.0.omega", True),
    ],
    "keepalived.conf.virtual_server_group": [
        ("virtual_server_groups.VSG_1.entries.3.kind", "range"),
        ("virtual_server_groups.VSG_1.entries.3.last_address", "192.168.200.10"),
    ],
    "keepalived.conf.status_code": [("virtual_servers.0.real_servers.0.checkers.0.urls.0.status_code.0", [200, 299])],
    "keepalived.conf.vrrp": [("vrrp_instances.VI_1.virtual_ipaddresses.0.address", "192.168.200.16/32")],
    "keepalived.conf.vrrp.sync": [("sync_groups.G1.members.0.name", "VI_1"), ("sync_groups.G2.members.1.name", "VI_4")],
    "keepalived.conf.misc_check_arg": [
        ("virtual_servers.0.real_servers.0.checkers.0.misc_path.argv", ["/usr/local/bin/script.sh", "arg1", "arg2"]),
    ],
    "keepalived.conf.vrrp.localcheck": [("vrrp_scripts.chk_haproxy.script.argv", ["killall", "-0", "haproxy"])],
    "keepalived.conf.IPv6": [("virtual_server_groups.IPv6_group.entries.0.last_address", "ae00::9")],
    "keepalived.conf.vrrp.routes": [("vrrp_instances.VI_1.virtual_routes.5.route_type", "blackhole")],
}


def lookup(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


pytestmark = pytest.mark.skipif(SAMPLES is None, reason="keepalived samples not found")


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("keepalived.conf.*")) if SAMPLES else [])
def test_sample_parses_into_a_model(name: str) -> None:
    assert SAMPLES is not None
    model = dump(SAMPLES / name)
    assert model["files"] == [str(SAMPLES / name)]
    assert model["vrrp_instances"] or model["virtual_servers"]
    for path, expected in EXPECTED.get(name, []):
        assert lookup(model, path) == expected, path


def test_every_expectation_names_a_sample() -> None:
    assert SAMPLES is not None
    assert set(EXPECTED) <= {p.name for p in SAMPLES.glob("keepalived.conf.*")}


def test_rhel_nat_config_models_the_guide() -> None:
    model = dump(REPO / "examples" / "rhel-nat-lb1.conf")
    assert [m["name"] for m in model["sync_groups"]["VG1"]["members"]] == ["RH_EXT", "RH_INT"]
    ext, internal = model["vrrp_instances"]["RH_EXT"], model["vrrp_instances"]["RH_INT"]
    assert (ext["interface"], ext["virtual_router_id"], ext["priority"], ext["state"]) == ("eth0", 50, 100, "MASTER")
    assert (internal["interface"], internal["virtual_router_id"]) == ("eth1", 2)
    location = ext["authentication"]["location"]
    assert ext["authentication"] == {"auth_type": "PASS", "auth_pass": "passw123", "location": location}
    assert ext["virtual_ipaddresses"][0]["address"] == "10.0.0.1/32"
    assert internal["virtual_ipaddresses"][0]["address"] == "192.168.1.1/32"
    vs = model["virtual_servers"][0]
    assert (vs["address"], vs["port"], vs["lvs_sched"], vs["lvs_method"], vs["protocol"], vs["delay_loop_s"]) == (
        "10.0.0.1", 80, "rr", "NAT", "TCP", 6.0)
    assert [rs["address"] for rs in vs["real_servers"]] == [f"192.168.1.{n}" for n in (20, 21, 22, 23)]
    assert all(rs["checkers"][0]["connect_timeout_s"] == 10.0 for rs in vs["real_servers"])
    backup = dump(REPO / "examples" / "rhel-nat-lb2.conf")
    assert backup["vrrp_instances"]["RH_EXT"]["state"] == "BACKUP"
    assert backup["vrrp_instances"]["RH_EXT"]["priority"] == 99


def test_rhel_dr_config_models_the_guide() -> None:
    model = dump(REPO / "examples" / "rhel-dr-lb1.conf")
    vs = model["virtual_servers"][0]
    assert (vs["lvs_method"], vs["persistence_timeout_s"]) == ("DR", 9600)
    assert [rs["checkers"][0]["connect_port"] for rs in vs["real_servers"]] == [80, 80, 80]
