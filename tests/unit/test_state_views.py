"""The state model's pure parts: the VRRP and checker views, the timeline, the feed and the parent's assembly.

The views turn what the children hold into docs/state.md's shapes; the
timeline derives events from successive parts (each transition and health
change once, also across a respawn); the child's feed sends changes that
matter at once and counters at most once a second, over a reporter that never
blocks; the parent keeps a dead child's part marked not running and drops a
retired one.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, replace
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykeepalived.check.state_view import (HealthLog, Rates, checker_part, checker_part_pieces, health_reason,
                                           rs_state_name, split_internal, totals, vs_state_name)
from pykeepalived.config.model import IpAddressSpec
from pykeepalived.daemon import state_report
from pykeepalived.daemon.child_report import ChildReporter, Report, parse_report
from pykeepalived.daemon.reload_reports import ChildReports, ReportBuffer
from pykeepalived.daemon.reload_result import ReloadResult
from pykeepalived.daemon.paths import state_path
from pykeepalived.daemon.state_feed import ParentState
from pykeepalived.lvs.model import DesiredTable, Destination, VirtualService
from pykeepalived.state.runtime import RuntimeOverrides
from pykeepalived.state.store import StateStore
from pykeepalived.state.timeline import READS, Timeline
from pykeepalived.vrrp.core import VrrpCore
from pykeepalived.vrrp.machine import State, StateChanged
from pykeepalived.vrrp.settings import InstanceSettings
from pykeepalived.vrrp.state_view import COUNTERS, TransitionLog, counters, fingerprint, vrrp_part

OURS = IPv4Address("192.0.2.11")


def _settings(name: str, vrid: int, **kw: object) -> InstanceSettings:
    base = InstanceSettings(name=name, vrid=vrid, version=2, family=4, interface="eth0", base_priority=150,
                            wanted_master=True, advert_int_cs=100,
                            vips=(IpAddressSpec(IPv4Interface("192.0.2.100/24")),))
    return replace(base, **kw)  # type: ignore[arg-type]


def _keys(doc_block: str) -> set[str]:
    """The keys docs/state.md shows in one block of its example (a rough reading: `"key":` words)."""
    return set(re.findall(r'"([a-z_]+)":', doc_block))


# ------------------------------------------------------------------ VRRP
def test_vrrp_part_has_the_documented_shape_and_follows_the_machines() -> None:
    settings = {"EXT": _settings("EXT", 1), "INT": _settings("INT", 2, nopreempt=True)}
    core = VrrpCore(settings.values(), {"VG": ["EXT", "INT"]})
    log = TransitionLog()
    for name in settings:
        core.set_source(name, OURS)
        for action in core.start(name, 10.0):
            if isinstance(action, StateChanged):
                log.record(action, 1000.0)
    fp = fingerprint(settings, core.machines, log, set())
    part = vrrp_part(settings, core.machines, [("VG", core.group_state("VG"), ("EXT", "INT"))], log,
                     maintenance={"INT"}, started_at=900.0, now=1001.0)
    ext, int_ = part["instances"]
    assert ext["name"] == "EXT" and ext["state"] == "BACKUP" and ext["wanted_state"] == "BACKUP"
    assert ext["priority"] == 150 and ext["effective_priority"] == 150 and ext["master_address"] is None
    assert ext["vips"] == ["192.0.2.100/24"] and ext["family"] == "inet" and ext["advert_int_ms"] == 1000
    assert ext["sync_group"] == "VG" and ext["preempt"] is True and int_["preempt"] is False
    assert ext["since"] == 1000.0 and ext["transitions"] == [
        {"at": 1000.0, "from": "INIT", "to": "BACKUP", "reason": ext["transitions"][0]["reason"]}]
    assert ext["runtime"] == {"maintenance": False} and int_["runtime"] == {"maintenance": True}
    assert part["sync_groups"] == [{"name": "VG", "state": "BACKUP", "instances": ["EXT", "INT"]}]
    assert set(ext["counters"]) == {name for name, _ in COUNTERS}
    doc = Path(__file__).parents[2].joinpath("docs/state.md").read_text()
    vrrp_block = doc[doc.index("# the VRRP child's part"):doc.index("# the checker child's part")]
    assert _keys(vrrp_block) <= set(ext) | set(part) | set(ext["counters"]) | {"from", "to", "reason", "at",
                                                                                   "maintenance", "checker"}
    # the master-down timer fires: state, master address and the fingerprint move
    for action in core.timer("EXT", 20.0) + core.timer("INT", 20.0):
        if isinstance(action, StateChanged):
            log.record(action, 1010.0)
    assert fingerprint(settings, core.machines, log, set()) != fp
    part = vrrp_part(settings, core.machines, [("VG", core.group_state("VG"), ("EXT", "INT"))], log,
                     maintenance=(), started_at=900.0, now=1011.0)
    ext = part["instances"][0]
    assert ext["state"] == "MASTER" and ext["master_address"] == str(OURS) and ext["since"] == 1010.0
    assert ext["transitions"][-1]["to"] == "MASTER" and ext["transitions"][-1]["reason"]
    assert part["sync_groups"][0]["state"] == "MASTER"


def test_counters_use_the_documented_names_and_join_the_auth_errors() -> None:
    got = counters({"advert_rcvd": 5, "invalid_authtype": 1, "authtype_mismatch": 2, "auth_failure": 3,
                    "chksum_err": 4})
    assert got["adverts_rx"] == 5 and got["auth_errors"] == 6 and got["checksum_errors"] == 4
    assert got["invalid_auth_type"] == 1 and got["auth_type_mismatch"] == 2 and got["auth_failures"] == 3


def test_transition_log_keeps_the_last_twenty() -> None:
    log = TransitionLog()
    for i in range(25):
        log.record(StateChanged("X", State.BACKUP, State.MASTER, 100, f"r{i}"), float(i))
    assert [t["reason"] for t in log.of("X")] == [f"r{i}" for i in range(5, 25)] and log.version == 25


# ------------------------------------------------------------------ checker
def _table() -> DesiredTable:
    return DesiredTable((
        VirtualService("[192.0.2.10]:tcp:80", "address", "192.0.2.10", 80, "TCP", scheduler="rr", method="NAT",
                       destinations=(Destination("10.0.0.1", 80, 1), Destination("10.0.0.2", 80, 2))),
        VirtualService("FWM 7", "fwmark", fwmark=7, persistence_timeout_s=30),
    ))


def _status(alive2: bool = True) -> dict[str, Any]:
    def rs(name: str, alive: bool, weight: int) -> dict[str, Any]:
        return {"name": name, "alive": alive, "weight": weight, "effective_weight": weight if alive else 0,
                "checkers": [{"kind": "TCP_CHECK", "verdict": "up" if alive else "down", "attempts": 3,
                              "last_ok": alive, "last_reason": "" if alive else "connection refused",
                              "next_in_s": 1.0}]}
    return {"dataplane": "nftables", "applied": True, "dataplane_error": None,
            "dataplane_repairs": {"count": 2},
            "bgp": {"pid": 7, "configured": ["192.0.2.10/32"], "announced": ["192.0.2.10/32"],
                    "wanted": ["192.0.2.10/32"], "error": None, "restarts": 0, "changes": 1, "changed_at": 5.0,
                    "run_dir": "/run/x.bgp"},
            "services": [{"name": "[192.0.2.10]:tcp:80", "quorum_up": True, "weight_sum": 3,
                          "real_servers": [rs("[10.0.0.1]:tcp:80", True, 1), rs("[10.0.0.2]:tcp:80", alive2, 2)]},
                         {"name": "FWM 7", "quorum_up": False, "weight_sum": 0, "real_servers": []}]}


def test_names_are_the_state_documents() -> None:
    table = _table()
    assert vs_state_name(table.services[0]) == "TCP 192.0.2.10:80" and vs_state_name(table.services[1]) == "FWM 7"
    assert vs_state_name(VirtualService("[web]:80", "group", group="web", port=80)) == "GRP web:80"
    assert vs_state_name(VirtualService("x", "address", "2001:db8::1", 443, "UDP")) == "UDP [2001:db8::1]:443"
    assert rs_state_name("[10.0.0.1]:tcp:80") == "10.0.0.1:80" and rs_state_name("[2001:db8::2]:tcp:80") == \
        "[2001:db8::2]:80"
    assert split_internal("[10.0.0.1]:none:0") == ("10.0.0.1", 0)


def test_checker_part_has_the_documented_shape_counts_history_and_runtime() -> None:
    history = HealthLog()
    history.record("[192.0.2.10]:tcp:80", "[10.0.0.2]:tcp:80", False, "TCP_CHECK: connection refused", 50.0)
    runtime = RuntimeOverrides(drained={("TCP 192.0.2.10:80", "10.0.0.1:80")}, out={"FWM 7"})
    counts = {"[192.0.2.10]:tcp:80": {"[10.0.0.1]:80": (3, 4), "[10.0.0.2]:80": (1, 0)}}
    part = checker_part(_status(alive2=False), _table(), quorums={"[192.0.2.10]:tcp:80": 2}, history=history,
                        runtime=runtime, counts=counts, counts_at=60.0, rates={"[192.0.2.10]:tcp:80": 1.5},
                        now=61.0)
    vs, fwm = part["virtual_servers"]
    assert part["dataplane"] == "nftables" and part["counts_at"] == 60.0 and part["dataplane_repairs"] == 2
    assert vs["name"] == "TCP 192.0.2.10:80" and vs["lb_kind"] == "NAT" and vs["quorum"] == 2
    assert vs["stats"] == {"active_connections": 4, "inactive_connections": 4, "connections_per_s": 1.5}
    rs1, rs2 = vs["real_servers"]
    assert rs1["name"] == "10.0.0.1:80" and rs1["stats"] == {"active_connections": 3, "inactive_connections": 4}
    assert rs1["runtime"] == {"drained": True, "weight": None} and rs1["healthy"] is True
    assert rs2["healthy"] is False and rs2["history"] == [
        {"at": 50.0, "healthy": False, "reason": "TCP_CHECK: connection refused"}]
    assert fwm["runtime"] == {"out": True} and fwm["persistence_timeout_s"] == 30 and fwm["quorum_up"] is False
    doc = Path(__file__).parents[2].joinpath("docs/state.md").read_text()
    block = doc[doc.index("# the checker child's part"):doc.index("# the timeline")]
    assert part["bgp"]["announced"] == ["192.0.2.10/32"]  # pykeepalived_bgp's part, as the checker wrote it
    assert _keys(block) <= (set(part) | set(vs) | set(rs1) | set(rs1["checkers"][0]) | set(vs["stats"])
                            | set(part["bgp"])
                            | {"at", "healthy", "reason", "drained", "weight", "out", "events"})
    no_counts = checker_part(_status(), _table(), quorums={}, history=HealthLog(), runtime=RuntimeOverrides(),
                             counts=None, counts_at=None, rates={}, now=1.0)
    assert no_counts["virtual_servers"][0]["stats"] is None
    assert no_counts["virtual_servers"][0]["real_servers"][0]["stats"] is None


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("with_counts", [True, False])
def test_checker_part_pieces_are_the_part_streamed(batch: int, with_counts: bool) -> None:
    """What the checker child sends, built a batch of real servers at a time, is checker_part to the byte."""
    history = HealthLog()
    history.record("[192.0.2.10]:tcp:80", "[10.0.0.2]:tcp:80", False, "TCP_CHECK: connection refused", 50.0)
    runtime = RuntimeOverrides(drained={("TCP 192.0.2.10:80", "10.0.0.1:80")}, out={"FWM 7"})
    counts = {"[192.0.2.10]:tcp:80": {"[10.0.0.1]:80": (3, 4), "[10.0.0.2]:80": (1, 0)}} if with_counts else None
    settings: dict[str, Any] = dict(quorums={"[192.0.2.10]:tcp:80": 2}, history=history, runtime=runtime,
                                    counts=counts, counts_at=60.0 if with_counts else None,
                                    rates={"[192.0.2.10]:tcp:80": 1.5})
    for status in (_status(alive2=False), {**_status(), "bgp": None}, {**_status(), "services": []}):
        part = checker_part(status, _table(), now=61.0, **settings)
        head = {k: v for k, v in status.items() if k != "services"}
        services = [({k: v for k, v in svc.items() if k != "real_servers"}, iter(svc["real_servers"]))
                    for svc in status["services"]]
        text = b"".join(checker_part_pieces(head, iter(services), _table(), batch=batch, **settings))
        del part["updated_at"]
        assert text == json.dumps(part, separators=(",", ":")).encode()


def test_effective_weight_is_the_tables_with_the_runtime_overrides_in() -> None:
    """The status' pool weight ignores a drain; the table entry (CheckService.current_table) has it."""
    table = DesiredTable((
        VirtualService("[192.0.2.10]:tcp:80", "address", "192.0.2.10", 80, "TCP",
                       destinations=(Destination("10.0.0.1", 80, 0), Destination("10.0.0.9", 80, 4, sorry=True))),
    ))
    status = _status(alive2=False)  # 10.0.0.1 drained (weight 0 in the table), 10.0.0.2 down (not in it)
    part = checker_part(status, table, quorums={}, history=HealthLog(),
                        runtime=RuntimeOverrides(drained={("TCP 192.0.2.10:80", "10.0.0.1:80")}),
                        counts=None, counts_at=None, rates={}, now=1.0)
    rs1, rs2 = part["virtual_servers"][0]["real_servers"]
    assert rs1["weight"] == 1 and rs1["effective_weight"] == 0 and rs1["runtime"]["drained"] is True
    assert rs2["effective_weight"] == 0
    assert [r["effective_weight"] for r in checker_part(
        _status(), _table(), quorums={}, history=HealthLog(), runtime=RuntimeOverrides(), counts=None,
        counts_at=None, rates={}, now=1.0)["virtual_servers"][0]["real_servers"]] == [1, 2]


def test_health_reason_and_rates() -> None:
    assert health_reason([("HTTP_GET", True, "status 500"), ("TCP_CHECK", False, "")], False) == \
        "HTTP_GET: status 500"
    assert health_reason([("TCP_CHECK", False, "")], True) == "all checkers succeed"
    rates = Rates()
    rates.update(totals({"a": {"x": (1, 1)}}), 10.0)
    assert rates.rates == {"a": 0.0}
    rates.update(totals({"a": {"x": (5, 3)}}), 12.0)
    assert rates.rates == {"a": 3.0}
    rates.update(totals({"a": {"x": (0, 0)}}), 13.0)
    assert rates.rates == {"a": 0.0}
    rates.update({}, 14.0)
    assert rates.rates == {}


# ------------------------------------------------------------------ timeline
def _vrrp(transitions: list[tuple[float, str, str]], group: str = "BACKUP") -> dict[str, Any]:
    return {"instances": [{"name": "EXT", "transitions": [{"at": at, "from": a, "to": b, "reason": "why"}
                                                          for at, a, b in transitions]}],
            "sync_groups": [{"name": "VG", "state": group}]}


def test_timeline_shows_each_transition_once_also_across_a_respawn() -> None:
    tl = Timeline()
    first = tl.vrrp(_vrrp([(1.0, "INIT", "BACKUP")]), 1.5)
    assert [e["text"] for e in first] == ["INIT -> BACKUP (why)"] and first[0]["kind"] == "vrrp"
    assert tl.vrrp(_vrrp([(1.0, "INIT", "BACKUP")]), 2.0) == []
    later = tl.vrrp(_vrrp([(1.0, "INIT", "BACKUP"), (3.0, "BACKUP", "MASTER")], group="MASTER"), 3.5)
    assert [e["text"] for e in later] == ["BACKUP -> MASTER (why)", "sync group BACKUP -> MASTER"]
    respawned = tl.vrrp(_vrrp([(9.0, "INIT", "BACKUP")]), 9.5)  # a new child: only its own history
    assert [e["text"] for e in respawned] == ["INIT -> BACKUP (why)", "sync group MASTER -> BACKUP"]


def test_timeline_real_servers_quorum_and_data_plane() -> None:
    tl = Timeline()

    def part(history: list[tuple[float, bool]], quorum: bool = True, error: str | None = None) -> dict[str, Any]:
        return {"dataplane_error": error, "virtual_servers": [{"name": "TCP 1.2.3.4:80", "quorum_up": quorum,
                "real_servers": [{"name": "10.0.0.1:80", "history": [
                    {"at": at, "healthy": h, "reason": "r"} for at, h in history]}]}]}

    assert tl.checker(part([]), 1.0) == []
    got = tl.checker(part([(2.0, False)], quorum=False, error="boom"), 2.5)
    assert [(e["kind"], e["text"]) for e in got] == [
        ("real_server", "10.0.0.1:80 of TCP 1.2.3.4:80 DOWN (r)"),
        ("virtual_server", "TCP 1.2.3.4:80 quorum lost"), ("daemon", "data plane failing: boom")]
    assert got[0]["virtual_server"] == "TCP 1.2.3.4:80"
    assert tl.checker(part([(2.0, False)], quorum=False, error="boom"), 3.0) == []
    got = tl.checker(part([(2.0, False), (4.0, True)]), 4.5)
    assert [e["text"] for e in got] == ["10.0.0.1:80 of TCP 1.2.3.4:80 UP (r)", "TCP 1.2.3.4:80 quorum gained",
                                        "data plane works again"]


# ------------------------------------------------------------------ the child's feed and reporter
def test_feed_sends_changes_at_once_and_counters_at_most_each_second() -> None:
    sent: list[dict[str, Any]] = []

    class Reporter(ChildReporter):
        def state_text(self, part: str, updated_at: float | None, body: Sequence[bytes]) -> None:
            sent.append({"updated_at": updated_at, **json.loads(b"".join(body))})

    box = {"fp": 1, "counter": 0}
    feed = state_report.StateFeed(Reporter(), "vrrp", lambda: {"updated_at": 0, "counter": box["counter"],
                                                               "fp": box["fp"]}, lambda: box["fp"])
    assert feed.look(100.0) and len(sent) == 1
    box["counter"] = 1
    assert not feed.look(100.5)  # a counter moved: it waits for the second
    box["fp"] = 2
    assert feed.look(100.6) and sent[-1] == {"updated_at": 0, "counter": 1, "fp": 2}  # a change: at once
    box["counter"] = 2
    assert not feed.look(101.0) and feed.look(101.7) and sent[-1]["counter"] == 2
    assert not feed.look(103.0)  # nothing changed: nothing sent


def test_feed_of_a_costly_part_spaces_counters_and_streams_of_changes_by_its_cost() -> None:
    sent: list[dict[str, Any]] = []

    class Reporter(ChildReporter):
        def state_text(self, part: str, updated_at: float | None, body: Sequence[bytes]) -> None:
            sent.append(json.loads(b"".join(body)))

    clock = {"cpu": 0.0}
    box = {"fp": 1, "counter": 0}

    def build() -> dict[str, Any]:
        clock["cpu"] += 0.05  # a part of thousands of real servers: 50 ms to build
        return {"updated_at": 0, "counter": box["counter"], "fp": box["fp"]}

    feed = state_report.StateFeed(Reporter(), "checker", build, lambda: box["fp"], timer=lambda: clock["cpu"])
    assert feed.look(100.0) and feed.cost_s == pytest.approx(0.05)
    assert feed.counters_interval_s == pytest.approx(state_report.COUNTERS_COST_FACTOR * 0.05)  # 10 s, not 1
    box["counter"] = 1
    assert not feed.look(105.0)  # counters: 10 s after the last part
    assert feed.look(110.1) and sent[-1]["counter"] == 1
    box["fp"] = 2
    assert not feed.look(110.3)  # a change right after a part: 10 x 50 ms after it
    assert feed.look(110.7) and sent[-1]["fp"] == 2
    box["fp"] = 3
    assert feed.look(112.0) and sent[-1]["fp"] == 3  # after a quiet spell a change goes at the next look


def test_reporter_never_blocks_and_keeps_only_the_latest_waiting_state() -> None:
    async def main() -> list[Report]:
        reports = ChildReports("VRRP")
        got: list[Report] = []
        reports.on_state = got.append
        write_fd = reports.new_life()
        reports.close()  # the parent stops reading for a while
        read_fd = os.open(f"/proc/self/fd/{write_fd}", os.O_RDONLY | os.O_NONBLOCK)  # the same pipe, read later
        writer = ChildReporter(write_fd)
        big = {"blob": "x" * 20_000}
        for i in range(20):  # far more than a pipe holds: never blocks
            writer.state("vrrp", {**big, "n": i})
        writer.alive()
        assert writer.pending > 0
        data = b""
        while True:
            await asyncio.sleep(0.01)
            try:
                chunk = os.read(read_fd, 1 << 20)
            except BlockingIOError:
                if writer.pending == 0:
                    break
                continue
            data += chunk
        os.close(read_fd)
        os.close(write_fd)
        return [parse_report(line) for line in data.splitlines()]

    reports = asyncio.run(main())
    states = [json.loads(r.text)["n"] for r in reports if r.event == "state"]
    assert states[-1] == 19 and len(states) < 20 and states == sorted(states)
    assert [r.event for r in reports].count("alive") == 1
    assert all(r.event in ("state", "alive") for r in reports)


def test_state_reports_parse_and_bad_ones_are_refused() -> None:
    r = parse_report(json.dumps({"event": "state", "part": "checker", "data": {"a": 1, "name": "x"}}).encode())
    assert (r.event, r.part, r.data, r.text) == ("state", "checker", {"name": "x"}, '{"a":1,"name":"x"}')
    for bad in ({"event": "state", "part": "x", "data": {}}, {"event": "state", "part": "vrrp", "data": []}):
        try:
            parse_report(json.dumps(bad).encode())
        except ValueError:
            continue
        raise AssertionError(bad)


def test_a_part_sent_as_text_comes_back_with_its_text_cut_out_of_the_line() -> None:
    async def main() -> list[Report]:
        reports = ChildReports("Healthcheck")
        got: list[Report] = []
        reports.on_state = got.append
        write_fd = reports.new_life()
        writer = ChildReporter(write_fd)
        body = json.dumps({"virtual_servers": [{"name": f"vs{i}", "x": "\u00e9" * 50} for i in range(2000)]},
                          separators=(",", ":")).encode()  # ASCII: \u escapes, as json.dumps writes
        writer.state_text("checker", 12.5, [body[:1000], body[1000:]])
        writer.state_text("checker", 13.0, [b"{", b"}"])
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(got) == 2:
                break
        os.close(write_fd)
        reports.close()
        return got

    first, second = asyncio.run(main())
    whole = json.loads(first.text)
    assert first.part == "checker" and whole["updated_at"] == 12.5 and len(whole["virtual_servers"]) == 2000
    assert first.text.startswith('{"updated_at":12.5,"virtual_servers"') and whole["virtual_servers"][0]["x"]
    # parsed, only what the timeline reads: the names, not the rest
    assert first.data == {"virtual_servers": [{"name": f"vs{i}"} for i in range(2000)]}
    assert second.data == {} and second.text == '{"updated_at":13.0}'


@given(st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=8), st.none()), max_size=4),
       st.sampled_from(["", " ", ',"x":1', ',"data":{}']))
def test_any_state_line_gives_the_text_of_its_data(data: dict[str, Any], tail: str) -> None:
    line = ('{"event":"state","part":"vrrp","data":' + json.dumps(data, separators=(",", ":")) + tail + "}").encode()
    r = parse_report(line)
    sent = json.loads(line)["data"]
    assert json.loads(r.text) == sent and r.data == {k: v for k, v in sent.items() if k in READS}


def test_store_keeps_a_part_as_its_text_and_every_reader_sees_the_same_document() -> None:
    store = StateStore()
    store.set_part("daemon", {"pid": 1})
    store.set_part_text("checker", '{"virtual_servers":[{"name":"a"}]}')
    store.add_event({"at": 1.0, "kind": "daemon", "subject": "x", "text": "t"})
    version = store.version
    store.set_part_text("checker", '{"virtual_servers":[{"name":"a"}]}')
    assert store.version == version  # the same text: nothing changed
    doc = json.loads(store.text(written_at=5))
    assert doc == {**store.snapshot(), "written_at": 5} and doc["checker"]["virtual_servers"][0]["name"] == "a"
    part = store.part("checker")
    assert part is not None
    part["virtual_servers"].clear()  # the caller's own copy
    assert store.snapshot()["checker"]["virtual_servers"] == [{"name": "a"}]


def test_a_long_line_in_many_reads_is_cut_once() -> None:
    buf = ReportBuffer()
    line = b'{"event":"state","part":"checker","data":{"blob":"' + b"y" * 300_000 + b'"}}\n{"event":"alive"}\n'
    got: list[Report] = []
    for at in range(0, len(line), 65536):
        got += buf.feed(line[at:at + 65536])
    assert [r.event for r in got] == ["state", "alive"] and len(json.loads(got[0].text)["blob"]) == 300_000
    assert buf.malformed == 0 and not buf.pending


# ------------------------------------------------------------------ the parent
def test_parent_keeps_a_dead_childs_part_drops_a_retired_one_and_writes_the_file(tmp_path: Path) -> None:
    async def main() -> tuple[StateStore, ParentState]:
        store = StateStore()
        path = state_path(str(tmp_path / "k.pid"))
        parent = ParentState(store, config_file="/etc/k.conf", config_digest="d1", router_id="r1",
                             state_file=path)
        parent.start()
        parent.child_started("VRRP", 11)
        parent.child_started("Healthcheck", 12)
        parent.on_state("VRRP", Report("state", part="vrrp", data=_vrrp([(1.0, "INIT", "BACKUP")])))
        parent.on_state("Healthcheck", Report("state", part="checker", data={"virtual_servers": []}))
        parent.child_ended("VRRP", "exited with status -9 (killed by SIGKILL)")
        doc = store.snapshot()
        assert doc["vrrp"]["instances"][0]["name"] == "EXT" and doc["daemon"]["children"]["vrrp"]["running"] is False
        parent.child_started("VRRP", 13)
        assert store.snapshot()["daemon"]["children"]["vrrp"]["restarts"] == 1
        parent.child_retired("Healthcheck")
        await asyncio.sleep(0.3)
        written = json.loads(Path(path).read_text())
        assert "checker" not in written and "checker" not in written["daemon"]["children"]
        assert written["version"] == store.version and os.stat(path).st_mode & 0o777 == 0o600
        result = ReloadResult(generation=1, pid=1, started=5.0, finished=6.0, ok=True, digest="d2", problems=[])
        parent.reloaded(result, "d2")
        parent.stopped()
        return store, parent

    store, parent = asyncio.run(main())
    doc = json.loads(Path(parent.state_file or "").read_text())
    assert doc["daemon"]["running"] is False and doc["daemon"]["config_digest"] == "d2"
    assert doc["daemon"]["last_reload"]["ok"] is True
    kinds = [(e["kind"], e["subject"]) for e in doc["events"]]
    assert ("vrrp", "EXT") in kinds and ("daemon", "vrrp") in kinds and ("reload", "config") in kinds
    assert parent.writes <= 4  # debounced: not one write per change


def test_table_json_is_the_tables_own_json_and_keeps_unchanged_services() -> None:
    from pykeepalived.check.state_view import TableJson
    from pykeepalived.lvs.model import Destination, DesiredTable, GroupEntry, VirtualService

    web = VirtualService("[192.0.2.10]:tcp:80", "address", "192.0.2.10", 80, "TCP", scheduler="mh",
                         sched_flags=("mh-port",), destinations=(
                             Destination("10.0.0.1", 80, 1), Destination("10.0.0.2", 80, 0, alive=False),
                             Destination("10.0.0.3", 80, 2, method="TUN", tunnel={"type": "gue", "port": 6080},
                                         uthreshold=10)))
    group = VirtualService("[grp]:80", "group", port=80, group="grp", group_entries=(
        GroupEntry("range", "192.0.2.20", "192.0.2.25", port=80), GroupEntry("fwmark", fwmark=7, family=6)))
    encoded: list[Any] = []

    def encode(value: Any) -> str:
        encoded.append(value)
        return json.dumps(value, separators=(",", ":"))

    def plain(doc: dict[str, Any]) -> Any:
        return json.loads(json.dumps(doc))  # the JSON document: tuples and lists alike

    view = TableJson(encode)
    table = DesiredTable((web, group))
    assert view(table) == plain(table.to_json())
    assert "".join(view.texts(table, batch=2)) == json.dumps(table.to_json(), separators=(",", ":"))
    tunnelled = asdict(web.destinations[2])  # the one destination written through the encoder, at each write
    encoded.clear()
    changed = DesiredTable((web, VirtualService("[grp]:80", "group", port=80, group="grp", quorum_up=False)))
    assert view(changed) == plain(changed.to_json())
    destinations = [value for value in encoded if "lthreshold" in value]  # only a destination has that field
    assert len(encoded) - len(destinations) == 2  # the changed entry's head and rest; the unchanged one is kept
    assert destinations == [tunnelled]
    encoded.clear()
    alive = replace(web.destinations[1], alive=True)
    moved = DesiredTable((replace(web, destinations=(web.destinations[0], alive, web.destinations[2])),))
    assert view(moved) == plain(moved.to_json())
    assert encoded[2:] == [tunnelled]  # a rebuilt entry's head and rest, then its destinations written out


@given(address=st.one_of(st.ip_addresses().map(str), st.text(max_size=12)),
       port=st.one_of(st.none(), st.integers(0, 65535)), weight=st.integers(0, 65535),
       method=st.sampled_from(["NAT", "DR", "TUN"]), alive=st.booleans(), sorry=st.booleans(),
       uthreshold=st.one_of(st.none(), st.integers(0, 1 << 31)), lthreshold=st.one_of(st.none(), st.integers(0, 9)),
       tunnel=st.one_of(st.none(), st.just({"type": "gue", "port": 6080})))
def test_destination_text_is_the_compact_json_of_the_destination(address: str, port: int | None, weight: int,
                                                                   method: Any, alive: bool, sorry: bool,
                                                                   uthreshold: int | None, lthreshold: int | None,
                                                                   tunnel: dict[str, Any] | None) -> None:
    from pykeepalived.check.state_view import destination_text
    from pykeepalived.lvs.model import Destination

    dest = Destination(address, port, weight, method, alive, sorry, uthreshold, lthreshold, tunnel)
    assert destination_text(dest) == json.dumps(asdict(dest), separators=(",", ":"))
