"""The checker side of the runtime API, pure parts: names, the table's overrides, weight checks."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

import pytest

from pykeepalived.check.runtime_apply import Refused, _weight, adjust
from pykeepalived.config.model import RealServer, VirtualServer
from pykeepalived.lvs.model import Destination, VirtualService
from pykeepalived.state.runtime import RuntimeOverrides
from pykeepalived.state.runtime_names import host_port, real_server_name, same_name, virtual_server_name

VS = "TCP 203.0.113.10:80"


def _entry() -> VirtualService:
    return VirtualService(name="[203.0.113.10]:tcp:80", kind="address", address="203.0.113.10", port=80,
                          protocol="TCP", destinations=(
                              Destination("10.11.12.1", 80, 1), Destination("10.11.12.2", 80, 2),
                              Destination("10.11.12.3", 80, 0, alive=False),
                              Destination("10.11.12.9", 80, 1, sorry=True)))


def _weights(entry: VirtualService) -> list[int]:
    return [d.weight for d in entry.destinations]


def test_names_follow_the_state_document_and_accept_the_checker_s_spelling() -> None:
    vs = VirtualServer(kind="address", address=ip_address("203.0.113.10"), port=80, protocol="TCP")
    assert virtual_server_name(vs) == VS
    assert virtual_server_name(VirtualServer(kind="fwmark", fwmark=80)) == "FWM 80"
    assert real_server_name(RealServer(address=ip_address("2001:db8::2"), port=80)) == "[2001:db8::2]:80"
    assert host_port("10.11.12.2", None) == "10.11.12.2"
    assert same_name("tcp 203.0.113.10:80", VS)
    assert same_name("[203.0.113.10]:tcp:80", VS, "[203.0.113.10]:tcp:80")
    assert same_name("[2001:DB8::0002]:80", "[2001:db8::2]:80")
    assert not same_name("TCP 203.0.113.10:81", VS)


def test_no_override_leaves_the_entry_alone() -> None:
    entry = _entry()
    assert adjust(entry, VS, RuntimeOverrides()) is entry


def test_drain_puts_the_server_at_weight_0_and_keeps_it_in_the_table() -> None:
    rt = RuntimeOverrides(drained={(VS, "10.11.12.2:80")})
    out = adjust(_entry(), VS, rt)
    assert _weights(out) == [1, 0, 0, 1]
    assert [d.address for d in out.destinations] == [d.address for d in _entry().destinations]
    assert adjust(_entry(), "TCP 203.0.113.10:443", rt) == _entry()


def test_weight_applies_to_healthy_servers_and_drain_wins() -> None:
    rt = RuntimeOverrides(weights={(VS, "10.11.12.1:80"): 7, (VS, "10.11.12.3:80"): 9})
    assert _weights(adjust(_entry(), VS, rt)) == [7, 2, 0, 1]  # the inhibited (failed) one stays at 0
    rt.drained.add((VS, "10.11.12.1:80"))
    assert _weights(adjust(_entry(), VS, rt)) == [0, 2, 0, 1]


def test_out_quiesces_every_server_the_sorry_server_too() -> None:
    assert _weights(adjust(_entry(), VS, RuntimeOverrides(out={VS}))) == [0, 0, 0, 0]


@pytest.mark.parametrize("value", [-1, 65536, "3", None, True, 1.5])
def test_bad_weights_are_refused_with_400(value: Any) -> None:
    with pytest.raises(Refused) as exc:
        _weight({"weight": value})
    assert exc.value.code == 400


def test_good_weights() -> None:
    assert _weight({"weight": 0}) == 0 and _weight({"weight": 65535}) == 65535


def test_commands_change_the_overrides_by_any_spelling_and_refuse_unknown_names() -> None:
    from types import SimpleNamespace

    from pykeepalived.check.runtime_apply import change

    vs = VirtualServer(kind="address", address=ip_address("203.0.113.10"), port=80, protocol="TCP")
    srv = SimpleNamespace(plan=SimpleNamespace(config=RealServer(address=ip_address("10.11.12.2"), port=80)))
    svc = SimpleNamespace(plan=SimpleNamespace(config=vs, name="[203.0.113.10]:tcp:80"),
                          servers={"[10.11.12.2]:tcp:80": srv})
    service = SimpleNamespace(services=[svc], runtime=RuntimeOverrides())
    change(service, {"op": "drain", "vs": "[203.0.113.10]:tcp:80", "rs": "10.11.12.2:80"})
    assert service.runtime.drained == {(VS, "10.11.12.2:80")}
    assert "no longer drained" in change(service, {"op": "weight", "vs": VS, "rs": "[10.11.12.2]:tcp:80",
                                                   "weight": 4})[1]
    assert (service.runtime.drained, service.runtime.weights) == (set(), {(VS, "10.11.12.2:80"): 4})
    change(service, {"op": "undrain", "vs": VS, "rs": "10.11.12.2:80"})
    change(service, {"op": "out", "vs": VS})
    assert service.runtime.weights == {} and service.runtime.out == {VS}
    for bad, code in (({"op": "drain", "vs": VS, "rs": "10.11.12.9:80"}, 404), ({"op": "out", "vs": "TCP x:1"}, 404),
                      ({"op": "explode", "vs": VS}, 400)):
        with pytest.raises(Refused) as exc:
            change(service, bad)
        assert exc.value.code == code


def test_the_state_document_s_runtime_objects() -> None:
    from pykeepalived.state.runtime_names import instance_runtime, real_server_runtime, virtual_server_runtime

    rt = RuntimeOverrides(maintenance={"RH_1"}, drained={(VS, "a")}, weights={(VS, "b"): 3}, out={VS})
    assert real_server_runtime(rt, VS, "a") == {"drained": True, "weight": None}
    assert real_server_runtime(rt, VS, "b") == {"drained": False, "weight": 3}
    assert virtual_server_runtime(rt, VS) == {"out": True}
    assert instance_runtime(rt, "RH_1") == {"maintenance": True} and instance_runtime(rt, "X") == {"maintenance": False}
