"""conntrackd keeps NAT connections through a failover on the nftables data plane (issue 17).

The NAT lab with `sync_daemon=True` (both routers run pykeepalived with
`lvs_sync_daemon eth1 RH_INT`, conntrackd under each parent, and conntrack's
mid-stream pickup off: net.netfilter.nf_conntrack_tcp_loose=0). For each
event that takes the master away (SIGKILL of its whole process group, a
clean stop, its public link down), 50 long-lived connections (a request
every 100 ms, answers read on the same socket) and a kept-alive wrk run go
through the VIP: every connection must keep being answered, by the same
real server, through the backup; wrk must see no socket error. The control
lab has no sync (same sysctl): the same SIGKILL breaks the connections.

Entries before the first forwarded packet: with pickup off, a mid-stream
packet without an entry is `ct state invalid`; no NAT rule sees it, so it
cannot be forwarded to a real server (ctsync/guard.py drops it instead of
letting the router's stack answer RST). A connection that goes on being
answered by the same real server after the takeover was therefore forwarded
through a synced entry; the new master's log shows the commit done before
its VIPs were added (one action queue: commit, then VIPs), `conntrack -L`
there lists the connections, and the guard's drop counter for packets to
the VIPs without an entry is still 0 after the takeover: not one packet
arrived before its entry.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pykeepalived.lab import unique_prefix, wait_until
from pykeepalived.lab.lvs_lab import VIP, LvsLab
from pykeepalived.lab.netns import kill_process_group
from pykeepalived.lab.streams import Conn, LineStreams, describe

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.slow]

STREAMS = 50
READ_TIMEOUT_S = 20.0  # no answer for this long ends a connection: longer than a failover with TCP's back-off
WRK_SECONDS = 14
TAKEOVER_S = 15.0
AFTER_TAKEOVER_S = 8.0  # long enough for TCP's back-off to retransmit through the new master


@dataclass
class Outcome:
    streams: list[Conn]  # the long-lived connections open at the event (lab/streams.py), as they ended up
    stopped: float  # when the observation ended (monotonic)
    wrk: str
    entries: int  # client flows to the VIP in the new master's conntrack table after the takeover
    early: int | None  # packets to the services the new master dropped for want of an entry (None: no guard table)

    @property
    def broken(self) -> list[Conn]:
        return [c for c in self.streams if c.end_reason]

    def stale(self) -> list[Conn]:
        """Connections alive but not answered in the last 2 s before the stop."""
        return [c for c in self.streams if not c.end_reason and self.stopped - (c.last_answer or 0) > 2.0]

    def wrk_errors(self) -> list[str]:
        return re.findall(r"Socket errors:.*|Non-2xx or 3xx responses:.*", self.wrk)


def _show_logs(lab: LvsLab) -> None:
    for router in lab.routers.values():
        print(f"===== {router.name} ({router.log_path}) =====\n{router.log()[-6000:]}")


def _make_lab(tmp: Path, *, sync: bool) -> Iterator[LvsLab]:
    lab = LvsLab("nat", prefix=unique_prefix("ctsy" if sync else "ctno"), name="ctsync" if sync else "ctnosync",
                 workdir=tmp, dataplane="nftables", sync_daemon=sync)
    try:
        lab.up()
        if not sync:  # the control runs with the same conntrack setting as the synced lab
            for router in lab.routers.values():
                router.netns.run(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_loose=0"])
        yield lab
    finally:
        _show_logs(lab)
        lab.close()


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LvsLab]:
    yield from _make_lab(tmp_path_factory.mktemp("ctsync"), sync=True)


@pytest.fixture(scope="module")
def unsynced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LvsLab]:
    yield from _make_lab(tmp_path_factory.mktemp("ctnosync"), sync=False)


def _router1_master(lab: LvsLab) -> None:
    """Every event starts with router1 (priority 150) as master and router2's conntrackd fed."""
    router1 = lab.router("router1")
    if not router1.running():
        lab.start_router("router1")
    lab.wait_for_master(TAKEOVER_S, "router1")


def _client_entries(lab: LvsLab, router: str) -> int:
    out = lab.router(router).netns.run(["conntrack", "-L", "-p", "tcp", "--orig-dst", str(VIP), "--dport", "80",
                                        "--state", "ESTABLISHED"], check=False).stdout
    return sum(1 for line in out.splitlines() if line.startswith("tcp"))


def _through_event(lab: LvsLab, event: Callable[[], object]) -> Outcome:
    """Streams and wrk through the VIP, `event` once they run, router2 takes over, then a few seconds more."""
    streams = LineStreams(lab.client.netns.name, str(VIP), 80, count=STREAMS, stall_s=READ_TIMEOUT_S)
    streams.start()
    wrk = lab.client.netns.popen(["wrk", "-t1", "-c8", f"-d{WRK_SECONDS}s", "--timeout", "12s",
                                  f"http://{VIP}/whoami"], stdout=subprocess.PIPE)
    try:
        time.sleep(1.5)  # conntrackd sends every new entry at once; leave it a moment
        mark = streams.mark()
        event()
        lab.wait_for_master(TAKEOVER_S, "router2")
        time.sleep(AFTER_TAKEOVER_S)
        entries = _client_entries(lab, "router2")
        guard = lab.router("router2").netns.run(["nft", "list", "table", "inet", "pykeepalived_ctsync"],
                                                check=False).stdout
        stopped = time.monotonic()
        streams.stop()
        wrk_out = wrk.communicate(timeout=WRK_SECONDS + 20)[0].decode(errors="replace")
    finally:
        streams.stop()
        kill_process_group(wrk, 10)
    found = re.search(r"ip daddr @services4 counter packets (\d+)", guard)
    outcome = Outcome(streams.marked(mark), stopped, wrk_out, entries, int(found.group(1)) if found else None)
    assert len(outcome.streams) == STREAMS, streams.summary_line()
    print(f"broken {len(outcome.broken)}/{STREAMS}, stale {len(outcome.stale())}, entries {entries}, "
          f"dropped without an entry {outcome.early}, "
          f"max gap {max(c.max_gap_s for c in outcome.streams):.2f} s\n{wrk_out}")
    return outcome


def _assert_all_kept(lab: LvsLab, outcome: Outcome) -> None:
    assert not outcome.broken, f"{len(outcome.broken)} connections broke: {describe(outcome.broken[:3])}"
    stale = outcome.stale()
    assert not stale, f"{len(stale)} connections stopped being answered: {describe(stale[:3])}"
    moved = [c for c in outcome.streams if len(c.servers) != 1]
    assert not moved, f"connections answered by another real server after the takeover: {describe(moved[:3])}"
    assert not outcome.wrk_errors(), outcome.wrk_errors()
    assert outcome.entries >= STREAMS, f"router2's table has {outcome.entries} client flows"
    # no packet to a VIP reached router2 before its entry: the guard's drop counter (ctsync/guard.py) is still 0
    assert outcome.early == 0, f"router2 dropped {outcome.early} packets to the VIPs that had no conntrack entry yet"
    log = lab.router("router2").log()
    commit = log.rfind("committed to the kernel")
    master = log.rfind("(RH_EXT) Entering MASTER STATE")
    assert 0 <= commit < master, "router2 did not commit the peer's connections before it added its VIPs"


def test_sigkill_of_the_master_keeps_every_connection(synced: LvsLab) -> None:
    _router1_master(synced)
    conf = str(synced.router("router1").dir)

    def crash() -> None:
        synced.kill_router("router1")  # the whole process group: pykeepalived and its conntrackd
        ps = subprocess.run(["pgrep", "-af", "conntrackd"], capture_output=True, text=True, check=False).stdout
        assert conf + "/router1.conntrackd" not in ps, ps

    _assert_all_kept(synced, _through_event(synced, crash))


def test_clean_stop_of_the_master_keeps_every_connection(synced: LvsLab) -> None:
    _router1_master(synced)
    outcome = _through_event(synced, lambda: synced.stop_router("router1"))
    _assert_all_kept(synced, outcome)
    assert "conntrack sync: conntrackd" in synced.router("router1").log()


def test_public_link_down_on_the_master_keeps_every_connection(synced: LvsLab) -> None:
    _router1_master(synced)
    router1 = synced.router("router1")
    try:
        _assert_all_kept(synced, _through_event(
            synced, lambda: router1.public.netns.ip("link", "set", router1.public.ifname, "down")))
    finally:
        router1.public.netns.ip("link", "set", router1.public.ifname, "up")


def _conntrackd_daemons(config: str) -> list[str]:
    """The pids of the conntrackd daemon on CONFIG: not the short-lived `conntrackd -C CONFIG -s` clients the
    parent runs every few seconds to see that it answers (CI once counted one of them)."""
    return subprocess.run(["pgrep", "-f", f"conntrackd -C {re.escape(config)}$"],
                          capture_output=True, text=True, check=False).stdout.split()


def test_a_crashed_conntrackd_is_restarted_and_resyncs(synced: LvsLab) -> None:
    """The parent restarts conntrackd after a crash, says so in its log, and the new one asks the peer to resync."""
    _router1_master(synced)
    router = synced.router("router1")
    marker = f"{router.dir}/router1.conntrackd/conntrackd.conf"
    pids = _conntrackd_daemons(marker)
    assert len(pids) == 1, pids
    offset = len(router.log())
    os.kill(int(pids[0]), signal.SIGKILL)
    wait_until(lambda: "conntrack sync: conntrackd was killed by SIGKILL; restarting it" in router.log()[offset:],
               10, what="the parent noticing conntrackd's death")
    wait_until(lambda: re.search(r"conntrackd \d+ started", router.log()[offset:]) is not None, 10,
               what="conntrackd started again")
    new = _conntrackd_daemons(marker)
    assert len(new) == 1 and new != pids, new


def test_conntrackd_outlives_a_vrrp_child_respawn(synced: LvsLab) -> None:
    """The parent owns conntrackd: the VRRP child killed and respawned finds the same conntrackd (and its caches)."""
    _router1_master(synced)
    router = synced.router("router1")
    marker = f"{router.dir}/router1.conntrackd/conntrackd.conf"
    before = _conntrackd_daemons(marker)
    vrrp_pid_file = router.pid_files[1]
    old = int(vrrp_pid_file.read_text().split()[0])
    offset = len(router.log())
    os.kill(old, signal.SIGKILL)

    def respawned() -> bool:
        try:
            pid = int(vrrp_pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        return pid != old and Path(f"/proc/{pid}").exists()

    wait_until(respawned, 15, what="the VRRP child respawned")
    after = _conntrackd_daemons(marker)
    assert before == after and len(after) == 1, (before, after)
    # the next test starts from router1 as master: the killed child's VIPs stay until the new child removes them,
    # router2 takes over meanwhile, and router1 preempts it; wait for that rather than for the leftover VIP
    wait_until(lambda: "(RH_EXT) Entering MASTER STATE" in router.log()[offset:], TAKEOVER_S,
               what="router1's new VRRP child back as master")


def test_a_reload_with_a_new_virtual_server_restarts_conntrackd_with_its_addresses(synced: LvsLab) -> None:
    """conntrackd's filter and the guard follow a reload that adds a virtual server (its flows are synced too)."""
    _router1_master(synced)
    router = synced.router("router1")
    conf = router.dir / "router1.conntrackd" / "conntrackd.conf"
    assert "203.0.113.12" not in conf.read_text()
    offset = len(router.log())
    router.conf_path.write_text(router.conf_path.read_text() + (
        "\nvirtual_server 203.0.113.12 8080 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n"
        "    real_server 10.11.12.1 8080 {\n        TCP_CHECK {\n        }\n    }\n}\n"))
    assert router.proc is not None
    os.kill(router.proc.pid, signal.SIGHUP)
    wait_until(lambda: "changes what conntrackd syncs; restarting it" in router.log()[offset:], 15,
               what="conntrackd following the reload")
    wait_until(lambda: "IPv4_address 203.0.113.12" in conf.read_text()
               and re.search(r"conntrackd \d+ started", router.log()[offset:]) is not None, 10,
               what="conntrackd restarted with the new address")
    guard = router.netns.run(["nft", "list", "set", "inet", "pykeepalived_ctsync", "services4"]).stdout
    assert "203.0.113.12" in guard, guard


def test_without_sync_the_connections_break(unsynced: LvsLab) -> None:
    """The control: no conntrackd, same pickup setting; the backup has no entry, so the connections die."""
    _router1_master(unsynced)
    outcome = _through_event(unsynced, lambda: unsynced.kill_router("router1"))
    assert len(outcome.broken) + len(outcome.stale()) == STREAMS, describe(outcome.streams[:3])
    assert outcome.wrk_errors(), outcome.wrk
