"""notify_priority_changes / vrrp_notify_priority_changes: FIFO lines on priority changes, as keepalived 2.2.7's.

A master whose weighted vrrp_script fails and recovers changes its
effective priority 150 -> 130 -> 150; keepalived writes
`INSTANCE "VI_1" MASTER_PRIORITY 130` then `... 150` to the notify FIFO
(BACKUP_PRIORITY for a backup). Without the keyword: no such line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpSettings, wait_until

from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "pn")


def _priority_lines(lab: Lab, tmp_path: Path, kind: str, where: str) -> list[str]:
    flag = tmp_path / f"{kind}-{where}-ok"
    flag.write_text("ok\n")
    script = tmp_path / f"{kind}-{where}-check.sh"
    script.write_text(f"#!/bin/sh\ntest -e {flag}\n")
    script.chmod(0o755)
    fifo = tmp_path / f"{kind}-{where}.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    glob = f"notify_fifo {fifo}\n" + ("vrrp_notify_priority_changes\n" if where == "global" else "")
    extra = [
        "track_script {", "    chk_weight", "}",
        *(["notify_priority_changes"] if where == "instance" else []),
    ]
    peer = lab.peer(kind, lab.r1, [VrrpSettings(vrid=56, priority=150, vips=[VIP4], version=3, advert_int_s=0.2,
                                                extra=extra)], extra_global=glob)
    conf = peer.conf_path  # type: ignore[attr-defined]
    vrrp_script = (f'vrrp_script chk_weight {{\n    script "{script}"\n    interval 1\n    weight -20\n'
                   "    fall 1\n    rise 1\n}\n\n")  # keepalived wants it before the instance naming it
    conf.write_text(conf.read_text()
                    .replace("global_defs {", "global_defs {\n    enable_script_security\n    script_user root", 1)
                    .replace("vrrp_instance VI_1 {", vrrp_script + "vrrp_instance VI_1 {", 1))
    text = ""
    try:
        peer.start()
        wait_until(lambda: peer.holds(VIP4.ip), 5.0, what="master")
        flag.unlink()
        wait_until(lambda: "(VI_1) Changing effective priority from 150 to 130" in peer.log(), 5.0, what="130")
        flag.write_text("ok\n")
        wait_until(lambda: "(VI_1) Changing effective priority from 130 to 150" in peer.log(), 5.0, what="150")
        peer.stop()
        text = os.read(fd, 65536).decode()
    finally:
        os.close(fd)
    return [line for line in text.splitlines() if "PRIORITY" in line]


@pytest.mark.parametrize("where", ["instance", "global", "off"])
def test_priority_change_fifo_lines_as_keepalived(lab: Lab, tmp_path: Path, where: str) -> None:
    theirs = _priority_lines(lab, tmp_path, "ka", where)
    ours = _priority_lines(lab, tmp_path, "py", where)
    expected = [] if where == "off" else ['INSTANCE "VI_1" MASTER_PRIORITY 130', 'INSTANCE "VI_1" MASTER_PRIORITY 150']
    assert theirs == expected
    assert ours == theirs
