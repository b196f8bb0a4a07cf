"""`pykeepalived status` never signals a process that is not the checker, and says when the checker is not running.

The status file names the checker's pid. Once the checker is gone the kernel
hands that number to any other process, and SIGUSR1 (which the command sends
for fresh counters) kills a process that does not catch it. These tests put
unrelated processes behind status files, stale files, files others may write,
and a real checker in a namespace, and check what `status` signals, prints and
returns (0 running, 3 not running, 4 untrusted file).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.checkers import tcp_listener
from pykeepalived.lab.netns import signal_pid
from pykeepalived.lab.topology import Host

from .router_fixtures import CHECKED_SERVER
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

SLEEP = shutil.which("sleep") or "/bin/sleep"


def run_status(status_file: Path, *extra: str, host: Host | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pykeepalived", "status", "--status-file", str(status_file), *extra]
    if host is not None:
        return host.netns.run(argv, check=False)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def start_ticks(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rfind(")") + 1 :].split()[19])


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def status_doc(pid: int, **extra: Any) -> dict[str, Any]:
    """A status file as a checker writes it (the shape `status` renders), naming `pid`."""
    return {"pid": pid, "time": time.time() - 100, "dataplane": "none", "applied": True,
            "table": {"services": []}, "counts": {}, "services": [], **extra}


def write_status(path: Path, doc: dict[str, Any], mode: int = 0o644, uid: int = 0) -> Path:
    path.write_text(json.dumps(doc))
    os.chown(path, uid, 0)
    path.chmod(mode)
    return path


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process that SIGUSR1 would kill (sleep does not catch it)."""
    proc = subprocess.Popen([SLEEP, "60"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)


@pytest.fixture
def lookalike() -> Iterator[subprocess.Popen[bytes]]:
    """A sleep whose command line says `pykeepalived`: it passes the identity checks, so only the file's owner
    and mode can keep `status` from signalling it (and SIGUSR1 kills it, which shows when it was signalled)."""
    proc = subprocess.Popen(["pykeepalived", "60"], executable=SLEEP)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)


@pytest.mark.parametrize("identity", ["none recorded", "its own", "another start time"])
def test_status_does_not_signal_an_unrelated_process_behind_a_stale_file(
        tmp_path: Path, bystander: subprocess.Popen[bytes], identity: str) -> None:
    ticks = start_ticks(bystander.pid)
    extra = {"none recorded": {}, "its own": {"pid_start_ticks": ticks, "boot_id": boot_id()},
             "another start time": {"pid_start_ticks": ticks - 1, "boot_id": boot_id()}}[identity]
    path = write_status(tmp_path / "status.json", status_doc(bystander.pid, **extra))
    out = run_status(path)
    time.sleep(0.3)
    assert bystander.poll() is None, f"status killed the unrelated pid {bystander.pid}"
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert "NOT RUNNING" in out.stdout
    assert "the checker is not running" in out.stderr and "Traceback" not in out.stderr


def test_status_of_a_dead_checker_is_not_running_in_text_and_json(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait(5)
    path = write_status(tmp_path / "status.json", status_doc(gone.pid, pid_start_ticks=1, boot_id=boot_id()))
    text = run_status(path)
    assert text.returncode == 3, (text.stdout, text.stderr)
    assert "NOT RUNNING" in text.stdout and f"pid {gone.pid} is gone" in text.stdout
    js = run_status(path, "--json")
    assert js.returncode == 3, js.stderr
    doc = json.loads(js.stdout)
    assert doc["running"] is False and doc["trusted"] is True
    assert 95 <= doc["age_s"] <= 200 and f"pid {gone.pid}" in doc["problem"]


@pytest.mark.parametrize("mode, uid", [(0o666, 0), (0o664, 0), (0o644, 65534)])
def test_status_file_others_could_write_is_not_trusted_for_signalling(
        tmp_path: Path, lookalike: subprocess.Popen[bytes], mode: int, uid: int) -> None:
    doc = status_doc(lookalike.pid, pid_start_ticks=start_ticks(lookalike.pid), boot_id=boot_id())
    path = write_status(tmp_path / "status.json", doc, mode, uid)
    out = run_status(path, "--json")
    time.sleep(0.3)
    assert lookalike.poll() is None, "status signalled the pid of a file others could write"
    assert out.returncode == 4, (out.stdout, out.stderr)
    assert "not trusted" in out.stderr
    marked = json.loads(out.stdout)
    assert marked["trusted"] is False and marked["running"] is False
    # the same file, root's and 0644: now it is trusted, and the lookalike gets the signal (and dies of it)
    write_status(path, doc)
    run_status(path)
    assert lookalike.wait(5) == -signal.SIGUSR1


def test_status_ignores_a_broken_pipe(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait(5)
    services = [{"name": f"vs{i}", "kind": "address", "protocol": "TCP", "address": "192.0.2.1", "port": i,
                 "scheduler": "rr", "destinations": []} for i in range(3000)]
    path = write_status(tmp_path / "status.json", status_doc(gone.pid, table={"services": services}))
    for extra in ((), ("--json",)):
        proc = subprocess.Popen([sys.executable, "-m", "pykeepalived", "status", "--status-file", str(path), *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader goes away at once, as `| head` does after its lines
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(30) == 3, err
        assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_status_file_that_is_a_fifo_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "status.json")
    out = run_status(tmp_path / "status.json")
    assert out.returncode == 1 and "not a regular file" in out.stderr


# -- a real checker ------------------------------------------------------------------------------------------------
CONF = """
global_defs {{
    router_id lb
}}
""" + CHECKED_SERVER


@pytest.fixture
def lb() -> Iterator[Host]:
    with Lan(unique_prefix("sts")) as lan:
        yield lan.add_host("lb", 1)


def test_status_of_a_real_checker_then_of_the_stopped_one(lb: Host, tmp_path: Path) -> None:
    rs = str(lb.ipv4.ip)
    listener = tcp_listener(lb, rs, 8080)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.format(rs=rs))
    status_file = tmp_path / "status.json"
    log = open(tmp_path / "log", "wb")
    checker = lb.netns.popen([sys.executable, "-m", "pykeepalived", "-C", "-n", "-l", "-G", "--dataplane", "none",
                              "-f", str(conf), "--status-file", str(status_file), "-p", str(tmp_path / "p.pid"),
                              "-c", str(tmp_path / "c.pid")], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        def up() -> bool:
            try:
                services = json.loads(status_file.read_text())["services"]
            except (OSError, ValueError, KeyError):
                return False
            return any(rs_["alive"] for s in services for rs_ in s["real_servers"])

        wait_until(up, 15, what=f"the real server up in {status_file}:\n{(tmp_path / 'log').read_text()[-2000:]}")
        text = run_status(status_file, host=lb)
        assert text.returncode == 0, (text.stdout, text.stderr)
        assert "NOT RUNNING" not in text.stdout and f"{rs}:8080" in text.stdout
        js = run_status(status_file, "--json", host=lb)
        assert js.returncode == 0, js.stderr
        doc = json.loads(js.stdout)
        assert doc["running"] is True and doc["pid"] == checker.pid and doc["problem"] is None
        assert doc["age_s"] < 3  # SIGUSR1 made the checker write it anew
        assert checker.poll() is None, "the checker died of status's SIGUSR1"
        signal_pid(checker.pid, signal.SIGTERM)
        checker.wait(15)
        after = run_status(status_file, "--json", host=lb)
        assert after.returncode == 3, (after.stdout, after.stderr)
        assert json.loads(after.stdout)["running"] is False
    finally:
        if checker.poll() is None:
            checker.kill()
        checker.wait(10)
        listener.kill()
