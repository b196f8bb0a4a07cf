"""Issue 19's ECMP lab (`EcmpLab`): N active balancers announce the VIP over BGP to an upstream FRR router.

The cheap tests (one lab of three balancers for the module, some 10 s) show
the tier works end to end: the upstream's kernel holds one ECMP path per
balancer, client connections through the VIP spread over all three
balancers (counted by each balancer's own nftables counter table), every
balancer holds the same Maglev table, and closing the lab leaves nothing.

The long ones (`soak`: run with `-m soak`, never in CI's hour) are what the
issue must show: 200 long-lived connections through a balancer's crash
(SIGKILL and link down) and through adding a fourth balancer, and how fast
the upstream drops a dead balancer's path with the BGP hold time and with
BFD.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import LabError, Netns, unique_prefix, wait_until
from pykeepalived.lab.ecmp_lab import EcmpLab, Speaker, default_speaker
from pykeepalived.lab.lab_cli import describe_tier
from pykeepalived.lab.netns import FRR_TMP, pid_alive
from pykeepalived.lab.streams import LineStreams

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

CLI = [sys.executable, "-m", "pykeepalived", "lab"]
CONNECTIONS = 60  # three balancers all get some: 3 * (2/3)**60 ~ 1e-10


def _logs(lab: EcmpLab) -> None:
    for b in lab.balancers.values():
        print(f"===== {b.name} ({b.log_path}) =====\n{b.log()[-3000:]}")
    if lab.upstream_frr is not None:
        print(f"===== upstream =====\n{lab.upstream_frr.log()}")


def _leftovers(lab: EcmpLab, pids: list[int]) -> list[str]:
    """What of the lab is still on the machine: namespaces, processes, FRR crash dirs, the state file."""
    found = [f"namespace {n}" for n in lab.namespaces if Netns(n).exists()]
    found += [f"process {p}" for p in pids if pid_alive(p)]
    found += [f"crash dir {d}" for p in pids for d in FRR_TMP.glob(f"*.{p}")]
    if lab.state_path.exists():
        found.append(f"state file {lab.state_path}")
    return found


def _pids(lab: EcmpLab) -> list[int]:
    pids = [b.pid for b in lab.balancers.values() if b.pid is not None]
    pids += [pid for b in lab.balancers.values() if b.control is not None for _, pid in b.control.pids()]
    if lab.upstream_frr is not None:
        pids += [pid for _, pid in lab.upstream_frr.pids()]
    pids += [n.pid for n in lab.nginx.values() if n.running()]
    for ns in lab.namespaces:  # pykeepalived's children, its own bgpd among them
        pids += Netns(ns).pids()
    return sorted(set(pids))


def _open_and_count(lab: EcmpLab, count: int) -> dict[int, str]:
    """`count` connections to the VIP, each answered once: client port -> the real server that answered."""
    streams = lab.streams(count)
    streams.start()
    try:
        ports = {c.sock.getsockname()[1]: c.server for c in streams.current.values() if c.sock is not None}
    finally:
        streams.stop()
    return ports


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EcmpLab]:
    name = unique_prefix("ecmp")
    tier = EcmpLab(balancers=3, name=name, workdir=tmp_path_factory.mktemp("ecmp"))
    try:
        tier.up()
    except LabError:
        _logs(tier)
        raise
    try:
        yield tier
    finally:
        tier.close()


def test_upstream_holds_one_ecmp_path_per_balancer(lab: EcmpLab) -> None:
    assert lab.upstream_paths() == [str(b.address) for b in lab.balancers.values()]
    assert lab.client_get().startswith("rs"), "the VIP answers the client through the upstream"
    # the upstream's FIB hashes on L4: the one client's flows pick different balancers
    assert len({lab.route_choice(sport) for sport in range(40000, 40030)}) == 3


def test_client_connections_spread_over_every_balancer(lab: EcmpLab) -> None:
    lab.reset_counters()
    ports = _open_and_count(lab, CONNECTIONS)
    assert len(ports) == CONNECTIONS
    per_flow = {port: lab.balancers_of_flow(port) for port in ports}
    assert all(len(seen) == 1 for seen in per_flow.values()), per_flow  # no flow crossed two balancers
    counts = lab.flows_per_balancer()
    print(f"flows per balancer for {CONNECTIONS} connections: {counts}; SYNs {lab.syn_counts()}")
    assert sorted(counts) == ["lb1", "lb2", "lb3"] and all(n > 0 for n in counts.values()), counts
    assert sum(counts.values()) == CONNECTIONS
    assert len(set(ports.values())) == 3, "mh with mh-port spreads the connections over the real servers too"
    # each flow went where the upstream's FIB says it goes
    for port, seen in per_flow.items():
        assert lab.balancer_by_address(lab.route_choice(port)) == seen[0]


def test_every_balancer_builds_the_same_maglev_table(lab: EcmpLab) -> None:
    tables = {name: lab.maglev_table(name) for name in lab.balancers}
    first = tables["lb1"]
    assert len(first) > 100 and set(first) == {str(rs) for rs in lab.plan.real_servers}
    assert all(t == first for t in tables.values())


def test_lab_cli_status_shows_paths_and_flows(lab: EcmpLab) -> None:
    text = describe_tier(lab, "")
    assert f"ip netns exec {lab.client.netns.name} curl -s http://{lab.vip}/whoami" in text
    proc = subprocess.run([*CLI, "status", "--json", "--name", lab.name, "--dir", str(lab.workdir)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["kind"] == "ecmp" and status["phase"] == "up"
    assert status["upstream_paths"] == lab.upstream_paths()
    assert all(b["pykeepalived_running"] and b["real_servers_alive"] == 3 for b in status["balancers"].values())
    assert {name: b["syns"] for name, b in status["balancers"].items()} == lab.syn_counts()
    if lab.speaker is Speaker.PYKEEPALIVED:  # its status file's bgp object: what bgpd was told to announce
        assert all(b["announced"] == [f"{lab.vip}/32"] for b in status["balancers"].values()), status


def test_lab_down_from_another_process_leaves_nothing(lab: EcmpLab) -> None:
    pids = _pids(lab)
    assert pids
    proc = subprocess.run([*CLI, "down", "--name", lab.name, "--dir", str(lab.workdir)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "is down" in proc.stdout
    assert _leftovers(lab, pids) == []
    lab.close()  # nothing left to do, and no complaint


# ----------------------------------------------------------------------------------------------
# Long: what issue 19 must show (run with -m soak)


LONG_CONNECTIONS = 200


def _tier(**kwargs: Any) -> EcmpLab:
    tier = EcmpLab(**kwargs)
    try:
        tier.up()
    except LabError:
        _logs(tier)
        raise
    return tier


def _time_path_gone(lab: EcmpLab, address: str, since: float, timeout_s: float = 10.0) -> float:
    wait_until(lambda: address not in lab.upstream_paths(), timeout_s, interval_s=0.005,
               what=f"the upstream dropping {address}")
    return time.monotonic() - since


def _flow_owner(lab: EcmpLab, streams: LineStreams) -> dict[int, str]:
    """Serial of each open connection -> the balancer that carried it (from the counter tables)."""
    seen: dict[tuple[str, int], str] = {}
    for name in lab.balancers:
        for flow in lab.flows_seen(name):
            seen[flow] = name
    client = str(lab.client.ipv4.ip)
    owners = {}
    for c in streams.current.values():
        if c.sock is not None:
            owners[c.serial] = seen.get((client, c.sock.getsockname()[1]), "?")
    return owners


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.parametrize("bfd", [False, True], ids=["hold-time", "bfd"])
def test_a_crashed_balancer_loses_no_connection_ecmp_moves(bfd: bool, tmp_path: Path) -> None:
    """200 long-lived connections; lb2 crashes (link down, SIGKILL pykeepalived and bgpd). The upstream drops its
    path (hold time 3 s, or BFD 100 ms x 3); the flows it carried are re-hashed onto lb1/lb3, which send them to
    the same real servers (stateless DR over the same Maglev table): no connection is lost."""
    lab = _tier(balancers=3, bfd=bfd)
    try:
        lab.reset_counters()
        streams = lab.streams(LONG_CONNECTIONS, stall_s=20.0)
        streams.start(ready_timeout_s=20.0)
        try:
            time.sleep(0.5)
            owners = _flow_owner(lab, streams)
            mark = streams.mark()
            victim = lab.balancer(2)
            t_down = lab.kill_balancer(2)
            gone_s = _time_path_gone(lab, str(victim.address), t_down)
            t_gone = t_down + gone_s
            # every connection answers again after the withdrawal (TCP retransmits what the dead balancer ate)
            wait_until(lambda: streams.all_answering(since=t_gone, fresh_s=2.0), 30.0,
                       what=f"every connection answering again: {streams.summary_line()}")
            until = time.monotonic()
            report = streams.report(mark, until)
        finally:
            streams.stop()
        on_victim = sum(1 for o in owners.values() if o == "lb2")
        figures = {"bfd": bfd, "path_gone_after_s": round(gone_s, 3), "connections": report["connections"],
                   "on_killed_balancer": on_victim, "kept": report["kept"], "lost": report["lost"],
                   "moved_server": report["moved"], "worst_kept_gap_s": report["worst_kept_gap_s"],
                   "paths_after": lab.upstream_paths()}
        print("ECMP crash:", json.dumps(figures))
        (tmp_path / "figures.json").write_text(json.dumps(figures))
        assert report["connections"] == LONG_CONNECTIONS
        assert on_victim > 0
        assert report["lost"] == 0 and report["kept"] == LONG_CONNECTIONS, report
        assert report["moved"] == 0, "every connection stayed with its real server"
        assert str(victim.address) not in lab.upstream_paths()
        if bfd:
            assert gone_s < 1.5, f"BFD (300 ms detection) should beat the 3 s hold time: {gone_s:.3f} s"
    finally:
        lab.close()


@pytest.mark.slow
@pytest.mark.soak
def test_adding_a_balancer_breaks_no_connection() -> None:
    """200 long-lived connections; a fourth balancer joins (no upstream change: listen range). ECMP re-hashes
    some flows onto it and between the others; every one keeps its real server and goes on."""
    lab = _tier(balancers=3)
    try:
        lab.reset_counters()
        streams = lab.streams(LONG_CONNECTIONS, stall_s=20.0)
        streams.start(ready_timeout_s=20.0)
        try:
            time.sleep(0.5)
            mark = streams.mark()
            before = _flow_owner(lab, streams)
            lab.add_balancer()
            lab.wait_paths(n=4)
            lab.reset_counters()
            time.sleep(1.0)
            after = _flow_owner(lab, streams)
            report = streams.report(mark, time.monotonic())
        finally:
            streams.stop()
        moved = [o for s, o in after.items() if s in before and o != before[s]]
        figures = {"connections": report["connections"], "kept": report["kept"], "lost": report["lost"],
                   "flows_moved_to_lb4": sum(1 for o in moved if o == "lb4"),
                   "flows_moved_between_lb1_to_lb3": sum(1 for o in moved if o != "lb4"),
                   "on_new_balancer": sum(1 for o in after.values() if o == "lb4"),
                   "moved_server": report["moved"]}
        print("ECMP add:", json.dumps(figures))
        assert lab.upstream_paths() == [str(b.address) for b in lab.balancers.values()]
        assert report["lost"] == 0 and report["kept"] == LONG_CONNECTIONS, report
        assert report["moved"] == 0
        assert figures["on_new_balancer"] > 0
    finally:
        lab.close()


@pytest.mark.slow
@pytest.mark.soak
def test_a_real_servers_death_converges_every_balancers_table() -> None:
    """rs1's nginx dies: every balancer's checker takes it out and the tables stay identical, without rs1."""
    lab = _tier(balancers=3)
    try:
        before = lab.maglev_table(1)
        t0 = time.monotonic()
        lab.nginx["rs1"].kill()
        rs1 = str(lab.plan.real_servers[0])

        def converged() -> bool:
            tables = [lab.maglev_table(name) for name in lab.balancers]
            return all(rs1 not in t for t in tables) and all(t == tables[0] for t in tables)

        took = wait_until(converged, 15.0, interval_s=0.1, what="every balancer dropping rs1")
        after = lab.maglev_table(1)
        kept = sum(1 for a, b in zip(before, after) if a == b and a != rs1)
        print(f"tables converged {time.monotonic() - t0:.2f} s after rs1 died ({took:.2f} s of polling); "
              f"{kept} of {sum(1 for a in before if a != rs1)} other slots unchanged")
        assert kept == sum(1 for a in before if a != rs1), "only rs1's slots moved (stable table)"
    finally:
        lab.close()


@pytest.mark.slow
@pytest.mark.soak
def test_control_speaker_runs_beside_pykeepalived() -> None:
    """The lab's own bgpd (Speaker.FRR) brings the tier up too: the control for pykeepalived's speaker."""
    lab = _tier(balancers=2, speaker=Speaker.FRR)
    try:
        assert lab.upstream_paths() == [str(b.address) for b in lab.balancers.values()]
        pids = _pids(lab)
    finally:
        lab.close()
    assert _leftovers(lab, pids) == []


BLOCK_CHECKS = "ecmplab_block"


@pytest.mark.slow
@pytest.mark.soak
def test_a_balancer_that_sees_no_real_server_withdraws_its_path() -> None:
    """lb1's checks are dropped on its way out (its own firewall), so its checker loses every real server: it
    withdraws the VIP instead of black-holing its share of the flows, and announces it again once they are back.
    The other balancers, which see the servers, keep theirs; clients keep being served."""
    if default_speaker() is not Speaker.PYKEEPALIVED:
        pytest.skip("the lab's control bgpd announces whatever the service's health")
    lab = _tier(balancers=3)
    try:
        lb1 = lab.balancer(1)
        rules = (f"table inet {BLOCK_CHECKS} {{\n chain out {{\n  type filter hook output priority 0;\n"
                 f"  ip daddr 10.19.0.0/24 tcp dport {lab.plan.port} drop\n }}\n}}\n")
        t0 = time.monotonic()
        lb1.netns.run(["nft", "-f", "-"], input=rules)
        gone_s = _time_path_gone(lab, str(lb1.address), t0, timeout_s=15.0)
        served = [lab.client_get() for _ in range(10)]
        lb1.netns.run(["nft", "delete", "table", "inet", BLOCK_CHECKS])
        t1 = time.monotonic()
        back_s = lab.wait_paths(n=3, timeout_s=15.0)
        print(f"lb1 without real servers: path withdrawn {gone_s:.2f} s after its checks were blocked, back "
              f"{back_s:.2f} s after they were let through ({time.monotonic() - t1:.2f} s)")
        assert all(body.startswith("rs") for body in served)
    finally:
        lab.close()
