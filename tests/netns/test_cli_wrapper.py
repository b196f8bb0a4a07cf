"""An operator's keepalived start-up, unchanged but for the binary's name, starts pykeepalived.

Debian's keepalived.service runs `/usr/sbin/keepalived --dont-fork $DAEMON_ARGS`
with /etc/default/keepalived as its EnvironmentFile. This test takes that
ExecStart line from the installed unit file (or Debian's text when it is not
installed), puts a `keepalived`-like wrapper that execs pykeepalived in the
binary's place, writes an environment file with typical DAEMON_ARGS
(`-D -S 3 --vrrp`; `-D -S local0 -u 0022 -x --vrrp` of an
operator who also runs SNMP; each with the pid and config paths) and runs the line through
`sh -c` with the file sourced, as systemd would expand it, in a lab host.

It shows: the instance becomes master (the VIP is on the host's eth0 and the
other host hears its adverts), the log lines reach syslog with facility
local3 (`-S 3`) or local0 and keepalived's ident, `-x` names SNMP as not done, and SIGTERM (systemd's stop) ends the
daemon with status 0, its VIP and pid files gone. Syslog is a unix datagram
socket of the test, mounted over /dev/log in a mount namespace of the
daemon's own: nothing of the machine's /dev changes.

Type=notify (sd_notify READY=1) is issue 15's; systemd would wait for it, this
test does not.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.topology import Host

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.slow]

UNIT_FILE = Path("/lib/systemd/system/keepalived.service")
DEBIAN_EXEC_START = "/usr/sbin/keepalived --dont-fork $DAEMON_ARGS"
VIP = "192.0.2.100"
LOCAL3 = 19

CONF = f"""global_defs {{
    router_id wrapper_test
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 61
    priority 150
    advert_int 1
    virtual_ipaddress {{
        {VIP}/24
    }}
}}
"""

# the daemon's mount namespace: a /dev of its own holding the real null/zero/random devices and our syslog socket
DEV_SCRIPT = """set -e
mount --make-rprivate /
dev="$1"; log="$2"; shift 2
mount -t tmpfs -o mode=755 pyka-dev "$dev"
for node in null zero random urandom tty full; do
    touch "$dev/$node"
    mount --bind "/dev/$node" "$dev/$node"
done
touch "$dev/log"
mount --bind "$log" "$dev/log"
mount --rbind "$dev" /dev
exec sh -c "$@"
"""


def exec_start() -> str:
    """The ExecStart line of the installed unit (Debian's), without systemd's prefixes."""
    if UNIT_FILE.exists():
        for line in UNIT_FILE.read_text().splitlines():
            if line.startswith("ExecStart="):
                return line.split("=", 1)[1].lstrip("-@:+!")
    return DEBIAN_EXEC_START


@pytest.fixture
def lan() -> Iterator[Lan]:
    with Lan(unique_prefix("wrap")) as lan:
        yield lan


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "syslog.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    try:
        yield sock, path
    finally:
        sock.close()


def read_syslog(sock: socket.socket) -> list[str]:
    lines = []
    while True:
        try:
            lines.append(sock.recv(65536).decode(errors="replace"))
        except BlockingIOError:
            return lines


def has_vip(host: Host) -> bool:
    return VIP in host.netns.ip("-4", "addr", "show", "dev", "eth0")


@pytest.mark.parametrize("daemon_args, facility", [("-D -S 3 --vrrp", LOCAL3), ("-D -S local0 -u 0022 -x --vrrp", 16)],
                         ids=["debian-typical", "snmp-and-umask"])
def test_debian_exec_start_runs_pykeepalived(lan: Lan, tmp_path: Path, syslog: tuple[socket.socket, Path],
                                             daemon_args: str, facility: int) -> None:
    sock, sock_path = syslog
    router = lan.add_host("r1", 11)
    lan.add_host("obs", 12)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    pid_file, vrrp_pid_file = tmp_path / "keepalived.pid", tmp_path / "keepalived_vrrp.pid"
    wrapper = tmp_path / "bin" / "keepalived"  # the operator's only change: the binary
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m pykeepalived \"$@\"\n")
    wrapper.chmod(0o755)
    defaults = tmp_path / "default-keepalived"
    defaults.write_text("# Options to pass to keepalived\n\n# DAEMON_ARGS are appended to the keepalived command-line\n"
                        f'DAEMON_ARGS="{daemon_args} -f {conf} -p {pid_file} -r {vrrp_pid_file} '
                        f'-c {tmp_path / "keepalived_checkers.pid"}"\n')
    line = exec_start().replace("/usr/sbin/keepalived", str(wrapper), 1)
    assert line.startswith(str(wrapper)) and "$DAEMON_ARGS" in line
    service = f"set -a; . {shlex.quote(str(defaults))}; set +a; exec {line}"
    dev = tmp_path / "dev"
    dev.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p.endswith("src"))
           or os.environ.get("PYTHONPATH", "")}
    proc = router.netns.popen(["unshare", "-m", "sh", "-c", DEV_SCRIPT, "dev-setup", str(dev), str(sock_path),
                               service], env=env, stdout=subprocess.PIPE)
    try:
        wait_until(lambda: has_vip(router), 15, what="the VIP on r1 (VRRP master)")
        assert proc.poll() is None
        wait_until(lambda: pid_file.exists() and vrrp_pid_file.exists(), 5, what="the pid files")
        assert int(pid_file.read_text()) == proc.pid  # exec all the way: systemd's MainPID is the daemon
        time.sleep(0.3)
        lines = read_syslog(sock)
        master = [line for line in lines if "(VI_1) Entering MASTER STATE" in line]
        assert master, lines
        m = re.match(r"<(\d+)>(\w+)\[(\d+)\]: ", master[0])
        assert m, master[0]
        assert divmod(int(m.group(1)), 8) == (facility, 6)  # -S 3: LOG_LOCAL3, -S local0: LOG_LOCAL0; LOG_INFO
        assert (m.group(2), int(m.group(3))) == ("Keepalived_vrrp", proc.pid)
        assert ("-x" in daemon_args) == any("SNMP" in line for line in lines)
        os.kill(proc.pid, signal.SIGTERM)  # systemctl stop
        assert proc.wait(15) == 0
        assert not has_vip(router)
        assert not pid_file.exists() and not vrrp_pid_file.exists()
        assert any("Stopped" in line for line in read_syslog(sock))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
