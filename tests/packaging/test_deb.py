"""The Debian package installs on a clean root, gives a working command and leaves when purged.

packaging/build-deb.sh builds the .deb from this repository; it is installed
with `dpkg -i` in a throw-away copy of this Debian 12 machine (fresh_root.py:
an overlay over / in a private mount namespace), so its Depends are resolved
against this machine's dpkg database and nothing of the real root changes. In
the copy: the files are where Debian's keepalived puts its own, the installed
`pykeepalived --version` and `pykeepalived -t` (no -f: it reads
/etc/keepalived/keepalived.conf) work with Debian's python3 and no virtualenv,
the man page and the MIT copyright are there, and `dpkg --purge` removes all of
it, byte-compiled files included.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .fresh_root import FreshRoot, can_overlay_root

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
              pytest.mark.skipif(not can_overlay_root(), reason="needs root, unshare, chroot and dpkg")]

CONFIG = """global_defs {
    router_id pkg_test
}
virtual_server 192.0.2.10 80 {
    delay_loop 5
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
"""

FILES = [
    "/usr/sbin/pykeepalived",
    "/usr/lib/python3/dist-packages/pykeepalived/__init__.py",
    "/usr/lib/python3/dist-packages/pykeepalived/cli.py",
    "/usr/lib/pykeepalived/vendor/pyroute2/__init__.py",
    "/usr/lib/pykeepalived/vendor/dns/__init__.py",
    "/lib/systemd/system/pykeepalived.service",
    "/etc/default/pykeepalived",
    "/usr/share/man/man8/pykeepalived.8.gz",
    "/usr/share/doc/pykeepalived/copyright",
    "/usr/share/doc/pykeepalived/changelog.Debian.gz",
]


def build_deb(out: Path) -> Path:
    """The package, built by the repo's script with this interpreter's pinned pyroute2 and dnspython."""
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop("PYTHONPATH", None)  # build-deb.sh reads this repo's src itself
    done = subprocess.run([str(REPO / "packaging" / "build-deb.sh"), str(out)], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    deb = Path(done.stdout.strip().splitlines()[-1])
    assert deb.is_file() and deb.name.endswith("_all.deb"), done.stdout
    return deb


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_deb(tmp_path_factory.mktemp("deb"))


@pytest.fixture
def fresh_root(tmp_path: Path) -> Iterator[FreshRoot]:
    root = FreshRoot(tmp_path / f"root-{uuid.uuid4().hex[:8]}")
    try:
        yield root
    finally:
        root.remove()


def real_root_has_package() -> bool:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "pykeepalived"], capture_output=True, text=True,
                          check=False)
    return "install ok installed" in done.stdout


def test_package_metadata(deb: Path) -> None:
    """Depends names the one system dependency pip cannot bring; the unit is shipped, /etc/default is a conffile."""
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Architecture", "Depends"], capture_output=True,
                            text=True, check=True).stdout
    assert "Package: pykeepalived" in fields and "Architecture: all" in fields
    assert "python3-nftables" in fields and "python3 (>= 3.11)" in fields
    conffiles = subprocess.run(["dpkg-deb", "-I", str(deb), "conffiles"], capture_output=True, text=True,
                               check=True).stdout
    assert conffiles.split() == ["/etc/default/pykeepalived"]


def test_installs_runs_and_purges_on_a_fresh_root(deb: Path, fresh_root: FreshRoot) -> None:
    assert not real_root_has_package(), "pykeepalived is installed on this machine: the test needs it absent"
    fresh_root.write("/root/pykeepalived.deb", "")  # makes the directory in the copy
    fresh_root.path("/root/pykeepalived.deb").write_bytes(deb.read_bytes())

    installed = fresh_root.run("dpkg -i /root/pykeepalived.deb")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    for name in FILES:
        assert fresh_root.path(name).exists(), f"{name} is not installed"
    # byte-compiled by postinst, so that running it as root writes nothing unowned under /usr
    assert list(fresh_root.path("/usr/lib/python3/dist-packages/pykeepalived").glob("__pycache__/cli.*.pyc"))

    unit = fresh_root.path("/lib/systemd/system/pykeepalived.service").read_text()
    assert "ExecStart=/usr/sbin/pykeepalived --dont-fork $DAEMON_ARGS" in unit
    assert "EnvironmentFile=-/etc/default/pykeepalived" in unit
    assert 'DAEMON_ARGS=""' in fresh_root.path("/etc/default/pykeepalived").read_text()
    copyright_text = fresh_root.path("/usr/share/doc/pykeepalived/copyright").read_text()
    assert "License: MIT" in copyright_text and "the pykeepalived authors" in copyright_text
    man = gzip.decompress(fresh_root.path("/usr/share/man/man8/pykeepalived.8.gz").read_bytes()).decode()
    assert man.startswith(".TH PYKEEPALIVED 8") and "\\-\\-dont\\-fork" in man

    assert "Conflicts=keepalived.service" in unit and "Type=notify" in unit
    verify = fresh_root.run("systemd-analyze verify /lib/systemd/system/pykeepalived.service")
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr  # man:pykeepalived(8) resolves too

    version = fresh_root.run("pykeepalived --version")
    assert version.returncode == 0, version.stderr
    assert "pykeepalived 0." in version.stdout + version.stderr

    fresh_root.write("/etc/keepalived/keepalived.conf", CONFIG)
    test = fresh_root.run("cd / && pykeepalived -t")  # no -f: keepalived's default path
    assert test.returncode == 0, test.stdout + test.stderr
    fresh_root.write("/etc/keepalived/keepalived.conf", CONFIG.replace("lb_algo rr", "lb_algo nonsense"))
    refused = fresh_root.run("pykeepalived -t")
    assert refused.returncode != 0 and "/etc/keepalived/keepalived.conf:6" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr

    man_page = fresh_root.run("MANWIDTH=80 man pykeepalived 2>&1")  # man-db (bootstrap.sh) finds and formats it
    assert man_page.returncode == 0 and "PYKEEPALIVED(8)" in man_page.stdout, man_page.stdout[:500]
    assert "/etc/default/pykeepalived" in man_page.stdout

    purged = fresh_root.run("dpkg --purge pykeepalived && dpkg-query -W -f='${Status}' pykeepalived; "
                            "ls /usr/lib/python3/dist-packages/pykeepalived /usr/lib/pykeepalived "
                            "/usr/sbin/pykeepalived 2>&1; true")
    assert purged.returncode == 0, purged.stderr
    assert "No such file" in purged.stdout and "dist-packages/pykeepalived:" not in purged.stdout, purged.stdout
    assert "install ok installed" not in purged.stdout

    # the real root never saw any of it
    assert not Path("/usr/sbin/pykeepalived").exists()
    assert not Path("/usr/lib/python3/dist-packages/pykeepalived").exists()
    assert not real_root_has_package()
