"""The checker's status names a data plane that cannot forward (issue 12, items 9 and 13), and `status` prints it.

`auto` without IPVS or libnftables' binding falls back to keeping the table
only; that fallback carries the reason, which the status file reports as
`dataplane_error` (the VRRP process faults on it). `--dataplane none` is a
choice, not an error. The fallback itself, which runs `modprobe ip_vs` first,
is tested in tests/netns/test_choose_dataplane_kernel.py.
"""

from __future__ import annotations

import ipaddress

import pytest


from pykeepalived.check.service import CheckService
from pykeepalived.config.model import GlobalDefs, KeepalivedConfig, RealServer, VirtualServer
from pykeepalived.lvs.null import TableOnly
from pykeepalived.status import Liveness, render

RUNNING = Liveness(trusted=True, running=True, problem=None, age_s=0.0)


def config() -> KeepalivedConfig:
    vs = VirtualServer(kind="address", address=ipaddress.ip_address("203.0.113.10"), port=80, protocol="TCP",
                       lvs_sched="rr", lvs_method="NAT",
                       real_servers=[RealServer(ipaddress.ip_address("10.11.12.1"), 80, weight=1)])
    return KeepalivedConfig(global_defs=GlobalDefs(), virtual_servers=[vs])


def test_a_fallback_without_a_data_plane_is_reported() -> None:
    service = CheckService(config(), TableOnly(error="no data plane (auto found neither IPVS nor nftables): x"))
    status = service.status()
    assert status["dataplane_error"] == "no data plane (auto found neither IPVS nor nftables): x"
    assert status["dataplane_repairs"] == {"count": 0, "last_at": None, "last": None}
    assert render(status, RUNNING).splitlines()[1] == (
        "DATA PLANE FAILING: no data plane (auto found neither IPVS nor nftables): x")


def test_no_data_plane_by_choice_is_no_error() -> None:
    status = CheckService(config(), TableOnly()).status()
    assert status["dataplane_error"] is None
    assert "DATA PLANE FAILING" not in render(status, RUNNING)


def test_the_status_file_text_is_the_status_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """write_status encodes a few real servers at a time (status_parts): the same document as status()."""
    import json

    import pykeepalived.check.service as service_module

    monkeypatch.setattr(service_module, "STATUS_BATCH", 2)  # batches full, partial, and none

    cfg = config()
    vs = cfg.virtual_servers[0]
    vs.real_servers += [RealServer(ipaddress.ip_address("10.11.12.2"), 8080, weight=3),
                        RealServer(ipaddress.ip_address("10.11.12.4"), 80, weight=1)]
    for port, servers in ((81, [RealServer(ipaddress.ip_address("10.11.12.3"), 80, weight=1)]), (82, [])):
        cfg.virtual_servers.append(VirtualServer(kind="address", address=ipaddress.ip_address("203.0.113.10"),
                                                 port=port, protocol="TCP", lvs_sched="rr", lvs_method="NAT",
                                                 real_servers=servers))
    service = CheckService(cfg, TableOnly(), clock=lambda: 100.0)
    service.build()
    service.counts = {"x": {"y": (1, 2), "z": (0, 1), "w": (3, 4)}, "v": {}, "u": {"t": (0, 0)}}
    service.counts_at = 99.5
    service.table = service.current_table()  # what the publisher hands the data plane
    text, doc = json.loads("".join(service.status_parts())), json.loads(json.dumps(service.status()))
    assert text.pop("time") <= doc.pop("time")
    assert text == doc
    assert [r["name"] for r in text["services"][0]["real_servers"]] == [
        "[10.11.12.1]:tcp:80", "[10.11.12.2]:tcp:8080", "[10.11.12.4]:tcp:80"]
    assert [len(s["real_servers"]) for s in text["services"]] == [3, 1, 0]
    assert len(text["table"]["services"]) == 3
    empty = CheckService(KeepalivedConfig(global_defs=GlobalDefs()), TableOnly())
    assert json.loads("".join(empty.status_parts()))["services"] == []
