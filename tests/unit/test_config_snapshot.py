"""The configuration snapshot children parse instead of the disk (config/snapshot.py, host/recording.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pykeepalived.cli import load_recorded, load_snapshot
from pykeepalived.config.dump import dump_json
from pykeepalived.config.snapshot import Snapshot, SnapshotError
from pykeepalived.daemon.supervisor import respawn_delay_s
from pykeepalived.host.recording import read_snapshot_fd, snapshot_memfd

MAIN = """
global_defs {
    router_id snap
}
include conf.d/*.conf
include missing/*.conf
includem nothere.conf
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 9
    priority 100
    bogus_keyword
    virtual_ipaddress {
        192.0.2.9
    }
}
"""


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text("vrrp_script chk {\n    script /bin/true\n}\n")
    (tmp_path / "conf.d" / "b.conf").write_text("static_ipaddress {\n    192.0.2.77/32 dev lo\n}\n")
    main = tmp_path / "keepalived.conf"
    main.write_text(MAIN)
    return main


def test_replay_gives_the_same_model_and_messages_after_the_files_change(tmp_path: Path) -> None:
    main = _tree(tmp_path)
    first, snapshot = load_recorded(str(main), "snap", host_checks=False)
    # the disk changes (or breaks) after the daemon read it
    main.write_text("vrrp_instance {\n")
    (tmp_path / "conf.d" / "a.conf").unlink()
    (tmp_path / "conf.d" / "c.conf").write_text("garbage here\n")
    again = load_snapshot(Snapshot.decode(snapshot.encode()), host_checks=False)
    assert dump_json(again.config) == dump_json(first.config)
    assert [d.format() for d in again.diagnostics] == [d.format() for d in first.diagnostics]
    assert any("keepalived.conf:" in d.format() and "bogus_keyword" in d.format() for d in again.diagnostics)
    assert any("nothere.conf" in d.format() for d in again.errors)


def test_a_skipped_fifo_is_skipped_again_on_replay_not_an_error(tmp_path: Path) -> None:
    """An include of a FIFO is a warning for the parent: a child replaying the snapshot must not refuse it."""
    main = _tree(tmp_path)
    os.mkfifo(tmp_path / "conf.d" / "pipe.conf")
    first, snapshot = load_recorded(str(main), "snap", host_checks=False)
    assert any("pipe.conf" in d.format() for d in first.diagnostics)
    assert not any("pipe.conf" in d.format() for d in first.errors)
    again = load_snapshot(Snapshot.decode(snapshot.encode()), host_checks=False)
    assert [d.format() for d in again.diagnostics] == [d.format() for d in first.diagnostics]
    assert [d.format() for d in again.errors] == [d.format() for d in first.errors]


def test_memfd_is_sealed_and_read_back(tmp_path: Path) -> None:
    _, snapshot = load_recorded(str(_tree(tmp_path)), "snap", host_checks=False)
    fd = snapshot_memfd(snapshot)
    try:
        assert not os.get_inheritable(fd)
        with pytest.raises(PermissionError):
            os.pwrite(fd, b"x", 0)
        assert read_snapshot_fd(fd) == snapshot
        assert read_snapshot_fd(fd, os.getpid()) == snapshot
    finally:
        os.close(fd)


def test_a_file_that_is_not_a_snapshot_is_refused() -> None:
    with pytest.raises(SnapshotError, match="not a pykeepalived configuration snapshot"):
        Snapshot.decode(b'{"a": 1}')
    with pytest.raises(SnapshotError, match="damaged"):
        Snapshot.decode(b"\x00garbage")


def test_respawn_at_once_then_back_off() -> None:
    assert [respawn_delay_s(n) for n in range(1, 9)] == [0.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
