"""The checker daemon against real servers in namespaces: keepalived's counts, quorum, notifies, the table.

pykeepalived -C runs in the `lb` namespace; the real servers are processes in
`rs1`/`rs2`. Each test reads the daemon's decisions from its log (the words
keepalived logs) and its desired table from the status file.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.checkers import CheckerDaemon, Decision, PlainServer, stop_all, tcp_listener
from pykeepalived.lab.topology import Host

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]


class CheckLab:
    def __init__(self, lan: Lan, workdir: Path) -> None:
        self.lan = lan
        self.workdir = workdir
        self.lb = lan.add_host("lb", 1)
        self.rs = [lan.add_host(f"rs{i}", 10 + i) for i in (1, 2)]
        self.servers: list[PlainServer] = []
        self.daemons: list[CheckerDaemon] = []

    def ip(self, i: int) -> str:
        return str(self.rs[i].ipv4.ip)

    def listen(self, i: int, port: int = 80, *, hang: bool = False) -> PlainServer:
        server = tcp_listener(self.rs[i], self.ip(i), port, hang=hang)
        self.servers.append(server)
        return server

    def daemon(self, conf: str, host: Host | None = None) -> CheckerDaemon:
        d = CheckerDaemon(host or self.lb, self.workdir, conf, name=f"chk{len(self.daemons)}")
        self.daemons.append(d)
        d.start()
        return d

    def close(self) -> None:
        stop_all(self.servers, self.daemons)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[CheckLab]:
    with Lan(unique_prefix("chk")) as lan:
        lab = CheckLab(lan, tmp_path)
        try:
            yield lab
        finally:
            lab.close()


def vs_conf(lab: CheckLab, rs_blocks: str, vs_extra: str = "", glob: str = "") -> str:
    return f"""
global_defs {{
    router_id lb
    enable_script_security
    script_user root
    {glob}
}}
virtual_server 192.0.2.200 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    {vs_extra}
{rs_blocks}
}}
"""


def tcp_rs(ip: str, extra: str = "", check: str = "connect_timeout 1\n retry 2\n delay_before_retry 0.3") -> str:
    return f"""
    real_server {ip} 80 {{
        weight 1
        {extra}
        TCP_CHECK {{
            {check}
        }}
    }}"""


def up(lab: CheckLab, i: int) -> Decision:
    return Decision(True, f"[{lab.ip(i)}]:tcp:80", "[192.0.2.200]:tcp:80")


def down(lab: CheckLab, i: int) -> Decision:
    return Decision(False, f"[{lab.ip(i)}]:tcp:80", "[192.0.2.200]:tcp:80")


def keys(decisions: list[Decision]) -> list[tuple[bool, str, str]]:
    return [d.key() for d in decisions]


def test_tcp_check_removes_after_retry_plus_one_failures_and_adds_back(lab: CheckLab) -> None:
    s0 = lab.listen(0)
    lab.listen(1)
    d = lab.daemon(vs_conf(lab, tcp_rs(lab.ip(0)) + tcp_rs(lab.ip(1))))
    wait_until(lambda: d.status_path.exists() and len(d.destinations()) == 2, 5, what="both servers in the table")
    time.sleep(1.5)
    assert d.decisions() == []  # servers start in the table without alpha, and stay
    s0.kill()
    killed = time.monotonic()
    assert keys(d.wait_decisions(1, 6)) == keys([down(lab, 0)])
    took = time.monotonic() - killed
    # retry 2: three refused connects 0.3 s apart after at most one delay_loop
    assert 0.5 < took < 1 + 2 * 0.3 + 1.0
    assert "failed after 3 attempt(s)" in d.log()
    # the status file follows within STATUS_INTERVAL_S of the decision (it is rewritten at most once a second)
    wait_until(lambda: set(d.destinations()) == {f"[{lab.ip(1)}]:80"}, 2, what="server out of the table")
    lab.listen(0)
    assert keys(d.wait_decisions(2, 4))[1] == up(lab, 0).key()
    wait_until(lambda: len(d.destinations()) == 2, 3, what="server back in the table")


def test_a_server_that_hangs_is_removed_at_connect_timeout(lab: CheckLab) -> None:
    lab.listen(1)
    # rs0 drops every SYN: the connect hangs until connect_timeout
    lab.rs[0].netns.run(["nft", "add table inet t; add chain inet t in { type filter hook input priority 0; }; "
                         "add rule inet t in tcp dport 80 drop"])
    d = lab.daemon(vs_conf(lab, tcp_rs(lab.ip(0), check="connect_timeout 0.5\n retry 1\n delay_before_retry 0.2")
                           + tcp_rs(lab.ip(1))))
    # first attempt decides at once: one timed-out connect (0.5 s) removes it
    assert keys(d.wait_decisions(1, 4)) == keys([down(lab, 0)])
    assert "timed out" in d.log()
    lab.rs[0].netns.run(["nft", "delete table inet t"])
    lab.listen(0)
    assert keys(d.wait_decisions(2, 4))[1] == up(lab, 0).key()


def test_alpha_waits_for_a_success_and_inhibit_keeps_weight_zero(lab: CheckLab) -> None:
    lab.listen(1)
    d = lab.daemon(vs_conf(lab, tcp_rs(lab.ip(0), "inhibit_on_failure") + tcp_rs(lab.ip(1)), vs_extra="alpha"))
    got = d.wait_decisions(1, 5)
    assert keys(got) == keys([up(lab, 1)])  # rs1 comes in after its first success; rs0 never did
    wait_until(lambda: d.destinations() == {f"[{lab.ip(0)}]:80": (0, False), f"[{lab.ip(1)}]:80": (1, True)}, 3,
               what="inhibited rs0 at weight 0, rs1 at 1")
    lab.listen(0)
    assert keys(d.wait_decisions(2, 4))[1] == up(lab, 0).key()
    assert "Enabling service" in d.log()
    wait_until(lambda: d.destinations()[f"[{lab.ip(0)}]:80"] == (1, True), 3, what="rs0 at weight 1")


def _fifo_reader(path: Path) -> int:
    os.mkfifo(path)
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK)


def test_quorum_sorry_server_scripts_and_fifo(lab: CheckLab, tmp_path: Path) -> None:
    lab.listen(0)
    lab.listen(1)
    events = tmp_path / "events"
    script = tmp_path / "note.sh"
    script.write_text(f"#!/bin/sh\necho \"$*\" >> {events}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    fifo = tmp_path / "fifo"
    fd = _fifo_reader(fifo)
    try:
        rs = lambda i: tcp_rs(lab.ip(i), f'notify_up "{script} up {i}"\n notify_down "{script} down {i}"')  # noqa: E731
        d = lab.daemon(vs_conf(
            lab, rs(0) + rs(1),
            vs_extra=f'quorum 2\n sorry_server 192.0.2.99 80\n quorum_up "{script} quorum up"\n'
                     f' quorum_down "{script} quorum down"',
            glob=f"notify_fifo {fifo}"))
        wait_until(lambda: events.exists() and "quorum up" in events.read_text(), 5, what="quorum_up at start")
        wait_until(lambda: set(d.destinations()) == {f"[{lab.ip(0)}]:80", f"[{lab.ip(1)}]:80"}, 3, what="table")
        lab.servers[0].kill()
        wait_until(lambda: "quorum down" in events.read_text(), 6, what="quorum_down")
        # without quorum the sorry server replaces the alive servers
        wait_until(lambda: set(d.destinations()) == {"[192.0.2.99]:80"}, 3, what="sorry server only")
        assert "down 0" in events.read_text()
        lab.listen(0)
        wait_until(lambda: events.read_text().count("quorum up") == 2, 5, what="quorum_up again")
        wait_until(lambda: set(d.destinations()) == {f"[{lab.ip(0)}]:80", f"[{lab.ip(1)}]:80"}, 3, what="table back")
        lines = os.read(fd, 65536).decode().split("\n")
        rs0 = f"[{lab.ip(0)}]:tcp:80"
        assert f"RS {rs0} [192.0.2.200]:tcp:80 DOWN" in lines
        assert "VS [192.0.2.200]:tcp:80 DOWN" in lines
        assert f"RS {rs0} [192.0.2.200]:tcp:80 UP" in lines
        assert lines.count("VS [192.0.2.200]:tcp:80 UP") == 2
    finally:
        os.close(fd)


def test_omega_runs_down_notifies_at_stop(lab: CheckLab, tmp_path: Path) -> None:
    lab.listen(0)
    events = tmp_path / "events"
    script = tmp_path / "note.sh"
    script.write_text(f"#!/bin/sh\necho \"$*\" >> {events}\n")
    script.chmod(0o755)
    d = lab.daemon(vs_conf(lab, tcp_rs(lab.ip(0), f'notify_down "{script} down 0"'),
                           vs_extra=f'omega\n quorum_down "{script} quorum down"'))
    wait_until(lambda: d.status_path.exists() and len(d.destinations()) == 1, 5, what="table")
    time.sleep(0.5)
    assert d.stop() == 0
    text = events.read_text()
    assert "down 0" in text and "quorum down" in text


def test_status_command_shows_the_table(lab: CheckLab) -> None:
    lab.listen(0)
    d = lab.daemon(vs_conf(lab, tcp_rs(lab.ip(0)) + tcp_rs(lab.ip(1), "inhibit_on_failure")))
    wait_until(lambda: d.status_path.exists() and d.destinations().get(f"[{lab.ip(1)}]:80") == (0, False), 5,
               what="rs1 inhibited")
    out = lab.lb.netns.run([sys.executable, "-m", "pykeepalived", "status", "--status-file",
                            str(d.status_path)], check=False)
    assert out.returncode == 0, out.stderr
    assert "TCP  192.0.2.200:80 rr" in out.stdout
    assert f"-> {lab.ip(0)}:80" in out.stdout and "Masq" in out.stdout
    assert "inhibited" in out.stdout and "Failed real servers" in out.stdout


def test_supervisor_runs_both_subsystems_and_restarts_a_dead_checker(lab: CheckLab, tmp_path: Path) -> None:
    lab.listen(0)
    conf = vs_conf(lab, tcp_rs(lab.ip(0))) + """
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.200/24
    }
}
"""
    d = CheckerDaemon(lab.lb, tmp_path, conf, name="both")
    lab.daemons.append(d)
    cmd = [c for c in d.command() if c != "-C"] + ["-r", str(d.dir / "vrrp.pid")]
    log = open(d.log_path, "ab")
    try:
        proc = lab.lb.netns.popen(cmd, stdout=log)
    finally:
        log.close()
    try:
        def pid(name: str) -> int:
            try:
                return int((d.dir / name).read_text())
            except (OSError, ValueError):
                return 0

        wait_until(lambda: pid("vrrp.pid") and pid("check.pid") and pid("main.pid") == proc.pid, 10,
                   what=f"three pid files\n{d.log()}")
        wait_until(lambda: any(str(a) == "192.0.2.200" for a in lab.lb.addresses()), 6, what="VIP on lb")
        wait_until(lambda: d.status_path.exists() and len(d.destinations()) == 1, 5, what="checker table")
        vrrp_pid, check_pid = pid("vrrp.pid"), pid("check.pid")
        os.kill(check_pid, 9)
        wait_until(lambda: pid("check.pid") not in (0, check_pid), 10, what=f"checker restarted\n{d.log()}")
        assert pid("vrrp.pid") == vrrp_pid  # the VRRP child never noticed
        assert any(str(a) == "192.0.2.200" for a in lab.lb.addresses())
        assert "exited with status -9" in d.log()
        # the dump signals reach every child through the parent and kill none of them
        check_pid = pid("check.pid")
        for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGRTMIN + 2, signal.SIGHUP):
            os.kill(proc.pid, sig)
        time.sleep(1.0)
        assert (pid("vrrp.pid"), pid("check.pid")) == (vrrp_pid, check_pid)
        assert proc.poll() is None and "exited with status" not in d.log().split("-9", 1)[1]
        proc.terminate()
        proc.wait(15)
        assert not any(str(a) == "192.0.2.200" for a in lab.lb.addresses())
        for name in ("main.pid", "vrrp.pid", "check.pid"):
            assert not (d.dir / name).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_checker_workers_share_the_probes_and_a_dead_worker_stops_the_checker(lab: CheckLab) -> None:
    lab.listen(0)
    lab.listen(1)
    servers = "".join(tcp_rs(lab.ip(i % 2)).replace(" 80 {", f" {80 + i // 2} {{", 1) for i in range(2))
    extra = "".join(f"""
    real_server {lab.ip(1)} {81 + i} {{
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}""" for i in range(4))  # nothing listens there: four servers out at once, whoever checks them
    d = CheckerDaemon(lab.lb, lab.workdir, vs_conf(lab, servers + extra), name="workers")
    lab.daemons.append(d)
    d.command = lambda: CheckerDaemon.command(d) + ["--checker-workers", "3"]  # type: ignore[method-assign]
    d.start()
    wait_until(lambda: d.status_path.exists() and len(d.destinations()) == 2, 8,
               what=f"two servers left in the table\n{d.log()}")
    assert "in 3 worker process(es)" in d.log()
    workers = [int(p) for p in lab.lb.netns.run(["pgrep", "-f", "checker-worker [0-9]"], check=False).stdout.split()]
    assert len(workers) == 3
    # every checker reports attempts, wherever it runs
    def all_attempted() -> bool:
        os.kill(d.pid, signal.SIGUSR1)
        time.sleep(0.2)
        return all(c["attempts"] > 0 for s in d.status()["services"] for r in s["real_servers"] for c in r["checkers"])
    wait_until(all_attempted, 5, what="attempts from every checker")
    lab.servers[0].kill()
    wait_until(lambda: set(d.destinations()) == {f"[{lab.ip(1)}]:80"}, 6, what="rs0 removed")
    os.kill(workers[0], signal.SIGKILL)
    wait_until(lambda: not d.alive(), 8, what=f"checker exits after a worker died\n{d.log()}")
    assert d.stop() == 1
    assert "exited with status -9" in d.log()
