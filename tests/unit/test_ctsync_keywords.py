"""`pykeepalived_conntrackd` and `pykeepalived_conntrackd_peer`: -t takes good values and names file:line for bad ones;
a conntrackd that is not there is one clear log line, not a failure of the daemon."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from pykeepalived.config import read_config
from pykeepalived.config.memfs import MemoryFileSystem
from pykeepalived.ctsync.keeper import ConntrackdKeeper

BASE = """global_defs {
    lvs_sync_daemon eth1 VI_1
%s
}
vrrp_instance VI_1 {
    interface eth1
    virtual_router_id 51
    virtual_ipaddress { 10.11.12.10/32 }
}
virtual_server 203.0.113.10 80 {
    real_server 10.11.12.1 80 { TCP_CHECK { } }
}
"""


def _check(tmp_path: Path, lines: str) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(BASE % lines)
    return subprocess.run([sys.executable, "-m", "pykeepalived", "-t", "-f", str(conf)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_good_values_are_accepted(tmp_path: Path) -> None:
    for lines in ("    pykeepalived_conntrackd auto", "    pykeepalived_conntrackd off",
                  "    pykeepalived_conntrackd /usr/sbin/conntrackd\n    pykeepalived_conntrackd_peer 10.11.12.9"):
        proc = _check(tmp_path, lines)
        assert "pykeepalived_conntrackd" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize("line, message", [
    ("pykeepalived_conntrackd sometimes", "'sometimes' is not auto, off or an absolute path to conntrackd"),
    ("pykeepalived_conntrackd_peer 2001:db8::9", "'2001:db8::9' is not an IPv4 address"),
    ("pykeepalived_conntrackd_peer router2", "router2"),
])
def test_bad_values_name_file_line_and_keyword(tmp_path: Path, line: str, message: str) -> None:
    proc = _check(tmp_path, f"    {line}")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert f"{tmp_path / 'keepalived.conf'}:3: {line.split()[0]}:" in out, out
    assert message in out, out
    assert "Traceback" not in out


def test_a_missing_conntrackd_is_logged_and_the_keeper_ends(caplog: pytest.LogCaptureFixture,
                                                             tmp_path: Path) -> None:
    fs = MemoryFileSystem({"/k.conf": BASE % "    pykeepalived_conntrackd /nonexistent/conntrackd"})
    config = read_config("/k.conf", fs).config
    keeper = ConntrackdKeeper.for_parent(config, "nftables", str(tmp_path / "k.pid"))
    assert keeper is not None

    async def run() -> None:
        keeper.start()
        await asyncio.sleep(0.2)
        await keeper.stop()

    with caplog.at_level(logging.INFO, logger="pykeepalived.ctsync"):
        asyncio.run(run())
    assert "conntrackd (/nonexistent/conntrackd) not found or not executable" in caplog.text
    assert not (tmp_path / "k.conntrackd").exists()


def test_no_keeper_on_ipvs_or_when_off(tmp_path: Path) -> None:
    fs = MemoryFileSystem({"/k.conf": BASE % "", "/off.conf": BASE % "    pykeepalived_conntrackd off"})
    assert ConntrackdKeeper.for_parent(read_config("/k.conf", fs).config, "ipvs", str(tmp_path / "k.pid")) is None
    assert ConntrackdKeeper.for_parent(read_config("/off.conf", fs).config, "nftables",
                                       str(tmp_path / "k.pid")) is None
