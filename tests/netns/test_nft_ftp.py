"""FTP through a NAT virtual service: the kernel's FTP helper does what ip_vs_ftp does for IPVS.

The guide's NAT routers need ip_vs_ftp for FTP: the real server's PASV reply
names its private address, and its data connections use ports no service
lists. A client (curl), a router running the nftables backend, and vsftpd on
a real server behind it: a port-21 service and the guide's fwmark set-up (mark
21 on port 21 and the passive range, persistence) both carry passive (EPSV and
PASV) and active transfers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix
from pykeepalived.lab.topology import Host
from tests.scripts import script

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root,
              pytest.mark.skipif(not (shutil.which("vsftpd") and shutil.which("curl")),
                                 reason="needs vsftpd and curl (bootstrap.sh installs them)")]

VIP = "203.0.113.10"
MARK_VIP = "203.0.113.11"
SERVER = "10.11.12.1"
PAYLOAD = "hello from the real server\n"

VSFTPD_CONF = """\
listen=YES
listen_ipv6=NO
background=NO
anonymous_enable=YES
local_enable=NO
write_enable=NO
anon_root={root}
no_anon_password=YES
secure_chroot_dir={empty}
ftp_username=daemon
nopriv_user=daemon
pasv_enable=YES
pasv_min_port=10000
pasv_max_port=10100
connect_from_port_20=YES
seccomp_sandbox=NO
xferlog_enable=NO
syslog_enable=NO
vsftpd_log_file={log}
"""


MARKS = f"""\
table ip ftp_marks {{
  chain prerouting {{ type filter hook prerouting priority mangle; policy accept;
    ip daddr {MARK_VIP} tcp dport {{ 21, 10000-10100 }} meta mark set 21
  }}
}}
"""


@pytest.fixture(scope="module")
def network() -> Iterator[tuple[Host, Host]]:
    prefix = unique_prefix("ftp")
    public = Lan(f"{prefix}-pub", ipv4_net="203.0.113.0/24", ipv6_net="2001:db8:203::/64")
    private: Lan | None = None
    root = Path(tempfile.mkdtemp(prefix="pk-ftp-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        private = Lan(f"{prefix}-prv", ipv4_net="10.11.12.0/24", ipv6_net="2001:db8:10::/64")
        client, router = public.add_host("c", 100), public.add_host("r", 2)
        private.attach(router, "eth1", 9)
        real = private.add_host("s", 1)
        router.netns.sysctl("net.ipv4.ip_forward", "1")
        for vip in (VIP, MARK_VIP):
            router.netns.ip("addr", "add", f"{vip}/32", "dev", "eth0")
        real.netns.ip("route", "add", "default", "via", "10.11.12.9")
        router.netns.run(["nft", "-f", "-"], input=MARKS)
        apply = router.netns.run([sys.executable, script("nft_ftp_apply.py"), VIP, SERVER], check=False,
                                 timeout_s=30)
        assert apply.returncode == 0, apply.stderr
        (root / "pub").mkdir()
        (root / "empty").mkdir()
        (root / "pub" / "hello.txt").write_text(PAYLOAD)
        for path in (root, root / "pub", root / "empty"):
            path.chmod(0o755)
        conf = root / "vsftpd.conf"
        conf.write_text(VSFTPD_CONF.format(root=root / "pub", empty=root / "empty", log=root / "vsftpd.log"))
        server = real.netns.popen(["vsftpd", str(conf)])
        yield client, router
    finally:
        if server is not None:
            server.kill()
            server.wait(timeout=5)
        if private is not None:
            private.close()
        public.close()
        shutil.rmtree(root, ignore_errors=True)


def fetch(client: Host, vip: str, *mode: str) -> str:
    for _ in range(20):  # vsftpd may still be starting
        proc = client.netns.run(["curl", "-sS", "--max-time", "5", *mode, f"ftp://{vip}/hello.txt"],
                                check=False, timeout_s=15)
        if proc.returncode != 7:  # 7: could not connect
            break
    assert proc.returncode == 0, f"curl {' '.join(mode)} ftp://{vip}: {proc.returncode} {proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("vip", [VIP, MARK_VIP], ids=["port-21 service", "fwmark service"])
@pytest.mark.parametrize("mode", [(), ("--disable-epsv", "--no-ftp-skip-pasv-ip"), ("--ftp-port", "-")],
                         ids=["EPSV", "PASV to the address in the reply", "active"])
def test_ftp_transfers_through_the_vip(network: tuple[Host, Host], vip: str, mode: tuple[str, ...]) -> None:
    client, _ = network
    assert fetch(client, vip, *mode) == PAYLOAD
