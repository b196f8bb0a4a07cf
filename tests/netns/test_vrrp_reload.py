"""SIGHUP reload of the VRRP process beside a real keepalived 2.2.7 backup: only the difference is applied.

pykeepalived runs alone (-P: it reads -f itself on SIGHUP) as the master of
VI_1 and VI_2 (priority 150), keepalived 2.2.7 as their backup (100). Under a
packet capture we reload 20 times with the same file, then lower VI_1's
priority (still above the backup: no preemption), add a VIP, remove it, add
an instance, remove one, and load a broken file. The capture must show VI_1's
adverts keeping their 1 s interval all along (a keepalived 2.2.7 master sends
two extra adverts on every reload, 0.5 s and 0 s apart: this check fails it) and no gratuitous ARP for a
VIP that did not change; keepalived never becomes master of VI_1; the VIPs
are right after each step; the broken file changes nothing.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from ipaddress import IPv4Interface, ip_interface
from pathlib import Path

import pytest

from pykeepalived.lab import PyKeepalivedPeer, VrrpSettings, wait_until
from pykeepalived.lab.peers import KeepalivedPeer, render_keepalived_conf

from .vrrp_capture import capture, fields, needs_tshark
from .vrrp_helpers import Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived, needs_tshark]

VIP1 = ip_interface("192.0.2.100/24")
VIP1_EXTRA = ip_interface("192.0.2.101/24")
VIP2 = ip_interface("192.0.2.52/24")
VIP3 = ip_interface("192.0.2.53/24")
# one GARP burst when becoming master (no second one 5 s later), so the capture sees reload effects only
OUR_GLOBALS = "vrrp_garp_master_delay 0\n"
_DONE = re.compile(r"VRRP reload (finished|refused)")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "vrl")


def _instances(vi1_priority: int = 150, vi1_vips: tuple[IPv4Interface, ...] = (VIP1,), vi2: bool = True,
               vi3: bool = False, priority: int = 150) -> list[VrrpSettings]:
    out = [VrrpSettings(vrid=51, priority=vi1_priority, vips=list(vi1_vips), name="VI_1")]
    if vi2:
        out.append(VrrpSettings(vrid=52, priority=priority, vips=[VIP2], name="VI_2"))
    if vi3:
        out.append(VrrpSettings(vrid=53, priority=priority, vips=[VIP3], name="VI_3"))
    return out


class Reloader:
    """Rewrite our keepalived.conf and SIGHUP the daemon; wait for its log to say the reload is over."""

    def __init__(self, ours: PyKeepalivedPeer, lab: Lab) -> None:
        self.ours = ours
        self.lab = lab
        self.done = 0
        self.dumps = f"json_dump_file {ours.json_path}\nstats_dump_file {ours.dir / 'state.stats'}\n"

    def write(self, settings: list[VrrpSettings]) -> None:
        self.ours.conf_path.write_text(render_keepalived_conf(self.lab.r1, settings, self.dumps + OUR_GLOBALS))

    def reload(self, settings: list[VrrpSettings] | None = None, *, text: str | None = None,
               timeout_s: float = 8.0) -> str:
        if text is not None:
            self.ours.conf_path.write_text(text)
        elif settings is not None:
            self.write(settings)
        self.ours.signal(signal.SIGHUP)
        self.done += 1
        wait_until(lambda: len(_DONE.findall(self.ours.log())) >= self.done, timeout_s,
                   what=f"reload {self.done} finished")
        return _DONE.findall(self.ours.log())[self.done - 1]


def _holds(peer: KeepalivedPeer, vip: IPv4Interface) -> bool:
    return peer.holds(vip.ip)


def test_reload_applies_only_the_difference(lab: Lab, tmp_path: Path) -> None:
    ka = lab.peer("ka", lab.r2, _instances(100, priority=100))
    ours = lab.peer("py", lab.r1, _instances(), extra_global=OUR_GLOBALS)
    assert isinstance(ours, PyKeepalivedPeer)
    ka.start()
    ours.start()
    wait_until(lambda: _holds(ours, VIP1) and _holds(ours, VIP2) and not _holds(ka, VIP1) and not _holds(ka, VIP2),
               8.0, what="pykeepalived master of VI_1 and VI_2")
    time.sleep(1.5)  # the takeover's GARP burst is over
    ka_log_start = len(ka.log())  # keepalived was master alone before we started
    reloader = Reloader(ours, lab)
    pcap = tmp_path / "reload.pcap"
    with capture(lab.r1, pcap, "ip proto 112 or arp"):
        started = time.monotonic()
        for _ in range(20):
            assert reloader.reload(_instances()) == "finished"
            time.sleep(0.2)
        # a lower priority, still above the backup's: no election, the next adverts say 140
        assert reloader.reload(_instances(140)) == "finished"
        time.sleep(1.5)
        # a VIP added: it appears (and is announced); the others stay
        assert reloader.reload(_instances(140, (VIP1, VIP1_EXTRA))) == "finished"
        wait_until(lambda: _holds(ours, VIP1_EXTRA), 3.0, what="the added VIP")
        time.sleep(1.0)
        # and removed again
        assert reloader.reload(_instances(140)) == "finished"
        wait_until(lambda: not _holds(ours, VIP1_EXTRA), 3.0, what="the removed VIP gone")
        assert _holds(ours, VIP1)
        # a new instance starts as at boot (nobody else has VRID 53: master after its down timer)
        assert reloader.reload(_instances(140, vi3=True)) == "finished"
        wait_until(lambda: _holds(ours, VIP3), 6.0, what="the new instance's VIP")
        # a removed instance gives its VIP up as a clean stop does: keepalived takes VRID 52 over
        assert reloader.reload(_instances(140, vi2=False, vi3=True)) == "finished"
        wait_until(lambda: _holds(ka, VIP2) and not _holds(ours, VIP2), 5.0, what="VI_2 handed to keepalived")
        # a broken file: refused, nothing changes
        broken = ours.conf_path.read_text().replace("virtual_router_id 53", "virtual_router_id 53\n    priority")
        assert reloader.reload(text=broken) == "refused"
        time.sleep(2.5)
        elapsed = time.monotonic() - started
    assert _holds(ours, VIP1) and _holds(ours, VIP3) and not _holds(ours, VIP2) and not _holds(ours, VIP1_EXTRA)
    assert not _holds(ka, VIP1) and not _holds(ka, VIP3)
    assert ours.running() and ka.running()
    log = ours.log()
    assert "(VI_1) Entering" not in log.split("VRRP reload finished", 1)[1], "VI_1 changed state on a reload"
    ka_vi1 = [line for line in ka.log()[ka_log_start:].splitlines() if "(VI_1)" in line]
    assert not [line for line in ka_vi1 if "Entering MASTER STATE" in line], "keepalived became master of VI_1"

    ours_ip = str(lab.r1.ipv4.ip)
    rows = fields(pcap, "vrrp", ["frame.time_relative", "ip.src", "vrrp.virt_rtr_id", "vrrp.prio"])
    vi1 = [(float(t), int(prio)) for t, src, vrid, prio in rows if src == ours_ip and vrid == "51"]
    assert not [r for r in rows if r[1] != ours_ip and r[2] == "51"], "keepalived sent adverts for VI_1"
    times = [t for t, _ in vi1]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(vi1) >= elapsed - 2, f"adverts missing: {len(vi1)} in {elapsed:.1f}s"
    assert min(gaps) > 0.75, f"an extra advert (gap {min(gaps):.3f}s): {gaps}"
    assert max(gaps) < 1.3, f"an advert missing (gap {max(gaps):.3f}s): {gaps}"
    prios = [p for _, p in vi1]
    assert prios[0] == 150 and prios[-1] == 140 and sorted(set(prios)) == [140, 150]
    vi2 = [int(prio) for t, src, vrid, prio in rows if src == ours_ip and vrid == "52"]
    assert vi2 and vi2[-1] == 0, "VI_2 did not leave with a priority-0 advert"

    arps = fields(pcap, "arp", ["arp.src.proto_ipv4", "arp.dst.proto_ipv4", "eth.src"])
    garps = [src for src, dst, _ in arps if src == dst]
    assert str(VIP1.ip) not in garps, "a gratuitous ARP for the unchanged VIP"
    assert str(VIP1_EXTRA.ip) in garps, "no gratuitous ARP for the added VIP"
    assert str(VIP3.ip) in garps


@pytest.mark.parametrize("kind", ["py", "ka"])
def test_removed_instances_notify_deleted_or_fault(lab: Lab, tmp_path: Path, kind: str) -> None:
    """keepalived 2.2.7's words for instances a reload removed: DELETED with notify_deleted, else FAULT (FIFO
    line and generic notify script); with fifo_write_vrrp_states_on_reload the remaining states are written
    again. Run against keepalived itself too, to hold us to its words."""
    fifo = tmp_path / f"{kind}.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    notify_log = tmp_path / f"{kind}-notify.log"
    script = tmp_path / f"{kind}-notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {notify_log}\n')
    script.chmod(0o755)
    glob = f"enable_script_security\nscript_user root\nnotify_fifo {fifo}\nfifo_write_vrrp_states_on_reload\n"
    notify = [f'notify "{script}"']

    def instances(all_: bool) -> list[VrrpSettings]:
        out = [VrrpSettings(vrid=61, priority=150, vips=[VIP1], name="VI_1", version=3, advert_int_s=0.2,
                            extra=notify)]
        if all_:
            out += [VrrpSettings(vrid=62, priority=150, vips=[VIP2], name="VI_2", version=3, advert_int_s=0.2,
                                 extra=[*notify, "notify_deleted"]),
                    VrrpSettings(vrid=63, priority=150, vips=[VIP3], name="VI_3", version=3, advert_int_s=0.2,
                                 extra=notify)]
        return out

    peer = lab.peer(kind, lab.r1, instances(True), extra_global=glob)
    assert isinstance(peer, KeepalivedPeer)
    try:
        peer.start()
        wait_until(lambda: all(peer.holds(v.ip) for v in (VIP1, VIP2, VIP3)), 5.0, what="master of all three")
        time.sleep(0.5)
        os.read(fd, 65536)
        text = peer.conf_path.read_text()
        start = text.index("vrrp_instance VI_2")
        peer.conf_path.write_text(text[:start] + "\n")
        assert peer._daemon is not None
        os.kill(peer._daemon.pid, signal.SIGHUP)
        wait_until(lambda: not peer.holds(VIP2.ip) and not peer.holds(VIP3.ip), 5.0, what="VI_2 and VI_3 gone")
        time.sleep(1.0)
        assert peer.holds(VIP1.ip)
        lines = os.read(fd, 65536).decode().splitlines()
    finally:
        os.close(fd)
    assert 'INSTANCE "VI_2" DELETED 150' in lines or 'INSTANCE "VI_2" DELETED 0' in lines, lines
    assert any(line.startswith('INSTANCE "VI_3" FAULT') for line in lines), lines
    if kind == "py":
        # keepalived 2.2.7 writes the states of backup and fault instances only: a master kept over the reload
        # takes another path (vrrp_scheduler.c vrrp_init_state); we write every instance's, masters' too
        assert 'INSTANCE "VI_1" MASTER 150' in lines, lines
    assert not any("VI_2" in line and "MASTER" in line for line in lines)
    scripts = notify_log.read_text().splitlines()
    assert any(line.startswith("INSTANCE VI_2 DELETED") for line in scripts), scripts
    assert any(line.startswith("INSTANCE VI_3 FAULT") for line in scripts), scripts


def test_trackers_and_advert_interval_change_in_place(lab: Lab, tmp_path: Path) -> None:
    """A tracked script added by a reload moves the priority (weight), a changed vrrp_script keeps its status
    until its next run, a new advert interval takes effect, a weight-0 script added runs once before it
    counts (no FAULT while it would be in INIT): the master stays master throughout."""
    failing = tmp_path / "fail.sh"
    failing.write_text("#!/bin/sh\nexit 1\n")
    failing.chmod(0o755)
    passing = tmp_path / "pass.sh"
    passing.write_text("#!/bin/sh\nexit 0\n")
    passing.chmod(0o755)
    glob = "enable_script_security\nscript_user root\n"

    def conf(peer: PyKeepalivedPeer, script: Path | None, advert: float, tracked: bool, zero: bool = False) -> str:
        track = ["track_script {", *(["    chk"] if tracked else []), *(["    chk0"] if zero else []), "}"]
        s = [VrrpSettings(vrid=71, priority=150, vips=[VIP1], name="VI_1", version=3, advert_int_s=advert,
                          extra=track if tracked or zero else [])]
        text = render_keepalived_conf(lab.r1, s, f"json_dump_file {peer.json_path}\n" + glob)
        vs = f'vrrp_script chk {{\n    script "{script or passing}"\n    interval 1\n    weight -20\n}}\n\n'
        vs += f'vrrp_script chk0 {{\n    script "{passing}"\n    interval 5\n    weight 0\n}}\n\n'
        return text.replace("vrrp_instance VI_1 {", vs + "vrrp_instance VI_1 {", 1)

    ours = lab.peer("py", lab.r1, [VrrpSettings(vrid=71, priority=150, vips=[VIP1], version=3, advert_int_s=0.5)],
                    extra_global=glob)
    assert isinstance(ours, PyKeepalivedPeer)
    ours.conf_path.write_text(conf(ours, None, 0.5, False))
    ours.start()
    wait_until(lambda: ours.holds(VIP1.ip), 5.0, what="master")
    reloader = Reloader(ours, lab)

    def dump() -> dict[str, object]:
        data: dict[str, object] = ours.snapshot()[0]["data"]
        return data

    assert reloader.reload(text=conf(ours, failing, 0.5, True)) == "finished"
    wait_until(lambda: dump()["effective_priority"] == 130, 5.0, what="priority 130 from the failing script")
    assert reloader.reload(text=conf(ours, passing, 1.0, True)) == "finished"
    wait_until(lambda: dump()["effective_priority"] == 150, 5.0, what="priority 150 from the passing script")
    assert dump()["adver_int"] == 1 and dump()["master_adver_int"] == 1, dump()
    assert reloader.reload(text=conf(ours, passing, 1.0, False)) == "finished"
    assert dump()["effective_priority"] == 150
    assert reloader.reload(text=conf(ours, passing, 1.0, False, zero=True)) == "finished"
    time.sleep(0.5)
    assert dump()["state"] == 2 and not dump()["faults"], dump()
    log = ours.log()
    assert log.count("(VI_1) Entering MASTER STATE") == 1, "VI_1 left MASTER during the reloads"
    assert "(VI_1) Entering BACKUP" not in log.split("Entering MASTER STATE", 1)[1]
    assert "(VI_1) Entering FAULT" not in log
    assert ours.holds(VIP1.ip)
