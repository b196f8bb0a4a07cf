"""host/private_files.py and the FIFO checks of scripts/notify.py on a real (temporary) file system."""

from __future__ import annotations

import logging
import os
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.scripts.notify import NotifyFifo
from pykeepalived.host.private_files import (
    DEFAULT_UMASK,
    UnsafeFileError,
    daemon_umask,
    make_dirs,
    parse_umask,
    read_own_small,
    write_private,
    write_private_parts,
)


@pytest.fixture
def strict_umask() -> Iterator[None]:
    old = os.umask(DEFAULT_UMASK)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize(("words", "value"), [
    (["0177"], 0o177), (["0x3f"], 0o77), (["18"], 0o22), (["0"], 0),
    (["IWGRP|IWOTH"], 0o22), (["IWGRP", "|", "IWOTH"], 0o22), (["irgrp|IROTH"], 0o44),
])
def test_umask_accepts_keepalived_numbers_and_bits(words: list[str], value: int) -> None:
    assert parse_umask(words) == value


@pytest.mark.parametrize("words", [["0999"], ["01000"], ["IWHAT"], ["IWGRP|"], [""], ["12x"]])
def test_umask_rejects_nonsense_naming_it(words: list[str]) -> None:
    with pytest.raises(ValueError, match="umask"):
        parse_umask(words)


def test_daemon_umask_defaults_to_keepalived_and_explains_a_bad_value() -> None:
    assert daemon_umask(None) == (0o177, None)
    assert daemon_umask(["IWOTH"]) == (0o2, None)
    mask, problem = daemon_umask(["bogus"])
    assert mask == 0o177 and problem is not None and "bogus" in problem


def test_write_private_replaces_a_symlink_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    link = tmp_path / "dump"
    link.symlink_to(victim)
    write_private(str(link), "ours\n")
    assert victim.read_text() == "keep me\n"
    assert not link.is_symlink() and link.read_text() == "ours\n"
    assert stat.S_IMODE(link.stat().st_mode) == 0o600


def test_write_private_never_writes_into_an_existing_file(tmp_path: Path) -> None:
    theirs = tmp_path / "dump"
    theirs.write_text("theirs\n")
    theirs.chmod(0o666)
    kept = tmp_path / "kept"
    os.link(theirs, kept)
    write_private(str(theirs), "ours\n", 0o644)
    assert kept.read_text() == "theirs\n" and theirs.read_text() == "ours\n"
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dump", "kept"]


def test_write_private_refuses_a_directory_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(UnsafeFileError, match="is a directory"):
        write_private(str(tmp_path / "d"), "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_read_own_small_does_not_follow_links(tmp_path: Path) -> None:
    (tmp_path / "pid").write_text("123\n")
    (tmp_path / "link").symlink_to(tmp_path / "pid")
    assert read_own_small(str(tmp_path / "pid")) == "123\n"
    assert read_own_small(str(tmp_path / "missing")) is None
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        read_own_small(str(tmp_path / "link"))
    with pytest.raises(UnsafeFileError, match="not a regular file"):
        read_own_small(str(tmp_path))


def test_make_dirs_gives_an_explicit_mode_under_the_daemon_umask(tmp_path: Path, strict_umask: None) -> None:
    make_dirs(str(tmp_path / "a" / "b"))
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o755


def test_fifo_made_by_us_is_private(tmp_path: Path, strict_umask: None) -> None:
    fifo = NotifyFifo(str(tmp_path / "f"))
    fifo.open()
    try:
        st = (tmp_path / "f").lstat()
        assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        fifo.write("line")
    finally:
        fifo.close()


@pytest.mark.parametrize(("mode", "reason"), [(0o666, "writable by others"), (0o620, "writable by group")])
def test_fifo_writable_by_others_is_refused(tmp_path: Path, mode: int, reason: str,
                                            caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "f"
    os.mkfifo(path)
    path.chmod(mode)
    fifo = NotifyFifo(str(path))
    with caplog.at_level(logging.ERROR, "pykeepalived.notify"):
        fifo.open()
    assert fifo._fd is None
    assert reason in caplog.text and "refusing" in caplog.text


def test_fifo_symlink_and_plain_file_are_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    os.mkfifo(tmp_path / "real", 0o600)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "plain").write_text("")
    with caplog.at_level(logging.ERROR, "pykeepalived.notify"):
        for name in ("link", "plain"):
            fifo = NotifyFifo(str(tmp_path / name))
            fifo.open()
            assert fifo._fd is None
    assert "is a symbolic link" in caplog.text and "is not a FIFO" in caplog.text


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_fifo_for_a_configured_user_is_theirs_and_theirs_is_accepted(tmp_path: Path) -> None:
    fifo = NotifyFifo(str(tmp_path / "f"), "nobody")
    fifo.open()
    try:
        st = (tmp_path / "f").lstat()
        assert st.st_uid == pwd.getpwnam("nobody").pw_uid and stat.S_IMODE(st.st_mode) == 0o600
    finally:
        fifo.close()
    again = NotifyFifo(str(tmp_path / "f"), "nobody")
    again.open()
    assert again._fd is not None
    again.close()
    unnamed = NotifyFifo(str(tmp_path / "f"))
    unnamed.open()
    assert unnamed._fd is None  # nobody's FIFO, and the config does not name nobody


def test_a_file_written_in_parts_is_whole_and_a_failing_source_leaves_nothing(tmp_path: Path) -> None:
    """write_private_parts (the checker's data dump): pieces joined in order; a source that raises leaves
    neither a temporary file nor a change to the old file."""
    path = tmp_path / "dump"
    write_private_parts(str(path), (f"line {i}\n" if i % 2 else f"line {i}\n".encode() for i in range(20000)))
    assert path.read_text() == "".join(f"line {i}\n" for i in range(20000))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pieces = ["head,", "b" * 200_000, "mid,", b"c" * 70_000, *("x" for _ in range(100)), "tail"]  # big ones as they are
    mixed = tmp_path / "mixed"
    write_private_parts(str(mixed), iter(pieces))
    assert mixed.read_bytes() == b"".join(p.encode() if isinstance(p, str) else p for p in pieces)
    mixed.unlink()

    def broken() -> Iterator[str]:
        yield "x" * 100000
        raise RuntimeError("view failed")

    with pytest.raises(RuntimeError):
        write_private_parts(str(path), broken())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dump"]
    assert path.read_text().startswith("line 0\n")
