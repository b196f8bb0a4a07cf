"""keepalived 2.2.7's command line: every flag it lists is accepted, and the ones with a value mean what they mean.

The list of flags is read from /usr/sbin/keepalived --help itself (when it is
installed), so a flag keepalived has and we lack fails here.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.cli import _facility, build_parser, main
from pykeepalived.cmdline.facility import LOG_DAEMON, LOG_USER, facility_name, parse_facility
from pykeepalived.cmdline.flags import SIGNUMS, normalize_argv, parse_umask
from pykeepalived.daemon.run import DaemonOptions, set_umask, setup_logging

KEEPALIVED = shutil.which("keepalived") or ("/usr/sbin/keepalived" if Path("/usr/sbin/keepalived").exists() else None)
needs_keepalived = pytest.mark.skipif(KEEPALIVED is None, reason="keepalived 2.2.7 is not installed")
# flags another part of issue 14 adds (-s/--namespace: net_namespace support)
ELSEWHERE = {"-s", "--namespace"}
OPTIONAL_VALUE = {"-M", "--core-dump-pattern"}  # getopt "M::": the value only attached, help shows =PATN


def keepalived_help_flags() -> list[tuple[str, str | None, bool]]:
    """(short, long, takes a value) for every option keepalived --help lists."""
    assert KEEPALIVED is not None
    done = subprocess.run([KEEPALIVED, "--help"], capture_output=True, text=True, timeout=30, check=False)
    flags = []
    for line in (done.stdout + done.stderr).splitlines():
        m = re.match(r"^\s+(?:(-\w),\s+)?\s*(--[\w-]+)(=\S+|\[=\S+\]| \S+)?", line)
        if m:
            flags.append((m.group(1) or "", m.group(2), bool(m.group(3)) and not m.group(3).startswith("[")))
    return flags


@needs_keepalived
def test_every_keepalived_flag_is_accepted() -> None:
    flags = keepalived_help_flags()
    assert len(flags) >= 30, flags
    parser = build_parser()
    for short, long, takes_value in flags:
        for spelling in filter(None, (short, long)):
            if spelling in ELSEWHERE:
                continue
            argv = [spelling, "1" if spelling in ("-u", "--umask") else "x"] \
                if takes_value and spelling not in OPTIONAL_VALUE else [spelling]
            try:
                parser.parse_args(normalize_argv(argv))
            except SystemExit as exc:  # -h/--help print the help and exit 0
                if exc.code:
                    pytest.fail(f"keepalived's {spelling} is refused")


@pytest.mark.parametrize("text, code", [
    ("0", 16), ("3", 19), ("7", 23), ("local0", 16), ("local3", 19), ("local7", 23), ("user", LOG_USER),
    ("daemon", LOG_DAEMON), ("8", None), ("local8", None), ("local", None), ("LOCAL3", None), ("-1", None),
    ("kern", None),
])
def test_log_facility_parse_as_keepalived(text: str, code: int | None) -> None:
    assert parse_facility(text) == code


def test_log_facility_flag_chooses_the_facility_and_reports_a_bad_one(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert _facility(parser.parse_args(["-S", "0"])) == 16  # LOG_LOCAL0, not daemon
    assert _facility(parser.parse_args(["-S", "local3"])) == 19
    assert _facility(parser.parse_args([])) == LOG_DAEMON
    assert _facility(parser.parse_args(["-S", "local9"])) == LOG_DAEMON
    assert "Invalid log facility 'local9'" in capsys.readouterr().err
    assert [facility_name(c) for c in (16, 19, 23, LOG_USER, LOG_DAEMON)] == \
        ["local0", "local3", "local7", "user", "daemon"]


@pytest.fixture
def syslog_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A unix datagram socket standing in for /dev/log; the root logger is restored after."""
    path = str(tmp_path / "log")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        yield sock, path
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        sock.close()


@pytest.mark.parametrize("flag, pri_facility", [("0", 16), ("local3", 19), ("user", 1), ("daemon", 3), (None, 3)])
def test_syslog_lines_carry_the_chosen_facility(syslog_socket: tuple[socket.socket, str], flag: str | None,
                                                pri_facility: int) -> None:
    sock, path = syslog_socket
    args = build_parser().parse_args(["-S", flag] if flag else [])
    setup_logging(DaemonOptions(log_facility=_facility(args)), ident="Keepalived_vrrp", syslog_address=path)
    logging.getLogger("pykeepalived").info("hello")
    data = sock.recv(4096).decode()
    m = re.match(r"<(\d+)>Keepalived_vrrp\[\d+\]: hello", data)
    assert m, data
    assert divmod(int(m.group(1)), 8) == (pri_facility, 6)  # facility, LOG_INFO


@needs_keepalived
def test_signum_prints_keepalived_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert KEEPALIVED is not None
    for name in ("STOP", "RELOAD", "DATA", "STATS", "STATS_CLEAR", "JSON"):
        theirs = subprocess.run([KEEPALIVED, f"--signum={name}"], capture_output=True, text=True, timeout=30)
        assert main([f"--signum={name}"]) == 0
        assert capsys.readouterr().out == theirs.stdout, name
        assert SIGNUMS[name] == int(theirs.stdout)
    assert main(["--signum", "BOGUS"]) == 1
    assert "Unknown sigfunc BOGUS" in capsys.readouterr().err


def test_version_reads_like_keepalived_first_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-v"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    # what configuration tools read from `keepalived -v 2>&1 | head -1`
    assert re.match(r"Keepalived v(\d+\.\d+\.\d+) .+", first), first
    assert "pykeepalived" in first


def test_optional_arguments_attach_as_in_getopt() -> None:
    assert normalize_argv(["-t/tmp/x.log", "-f", "k.conf"]) == ["-t", "--config-test-log=/tmp/x.log", "-f", "k.conf"]
    assert normalize_argv(["--config-test=/tmp/x.log"]) == ["-t", "--config-test-log=/tmp/x.log"]
    assert normalize_argv(["-t=/tmp/x.log"]) == ["-t", "--config-test-log=/tmp/x.log"]
    assert normalize_argv(["-t", "-f", "k"]) == ["-t", "-f", "k"]
    assert normalize_argv(["-Mcore.%p"]) == ["-M", "--core-dump-pattern-value=core.%p"]
    args = build_parser().parse_args(normalize_argv(["-DD", "-t", "-R", "-I"]))
    assert (args.log_detail, args.config_test, args.dont_respawn, args.dont_release_ipvs) == (2, True, True, True)


def test_config_test_log_file_gets_the_verdict(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n  bogus_keyword 1\n}\n")
    log = tmp_path / "verdict.log"
    log.write_text("earlier\n")
    done = subprocess.run([sys.executable, "-m", "pykeepalived", f"--config-test={log}", "--no-host-checks",
                           "-f", str(conf)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 5, done.stderr
    assert done.stderr == ""
    text = log.read_text()
    assert text.startswith("earlier\n") and f"{conf}:2: unknown keyword 'bogus_keyword'" in text
    fresh = tmp_path / "fresh.log"
    subprocess.run([sys.executable, "-m", "pykeepalived", f"-t{fresh}", "--no-host-checks", "-f", str(conf)],
                   capture_output=True, timeout=60, check=False)
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o644 & ~umask  # keepalived: 0644, through the umask


def test_config_test_log_file_is_never_followed_through_a_link(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("")
    target = tmp_path / "target"
    (tmp_path / "link").symlink_to(target)
    done = subprocess.run([sys.executable, "-m", "pykeepalived", f"-t{tmp_path / 'link'}", "-f", str(conf)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "Unable to open config-test log file" in done.stderr and not target.exists()


@pytest.mark.parametrize("text, mask", [("0177", 0o177), ("022", 0o022), ("0x1ff", 0o777), ("18", 0o022),
                                        ("0", 0), ("bad", None), ("01000", None), ("-1", None), ("", None)])
def test_umask_flag_reads_numbers_as_c_does(text: str, mask: int | None) -> None:
    assert parse_umask(text) == mask


def test_umask_flag_wins_over_the_default() -> None:
    saved = os.umask(0o077)
    try:
        assert set_umask(None, 0o022) == 0o022
        assert os.umask(0o077) == 0o022
        assert set_umask(None) == 0o177
    finally:
        os.umask(saved)


def test_flags_without_a_subsystem_are_named_not_refused() -> None:
    from pykeepalived.cmdline.flags import not_done

    args = build_parser().parse_args(["-P", "-x", "-A", "/run/agentx", "-a", "-X", "-b", "/run/bfd.pid"])
    notes = not_done(args)
    assert any("SNMP" in n for n in notes) and any("-a" in n for n in notes) and any("-b" in n for n in notes)
    assert not not_done(build_parser().parse_args([]))


def test_all_runs_every_subsystem() -> None:
    from pykeepalived.cli import _subsystems
    from pykeepalived.config.model import KeepalivedConfig

    parser = build_parser()
    assert _subsystems(parser.parse_args(["--all"]), KeepalivedConfig()) == (True, True)
    assert _subsystems(parser.parse_args([]), KeepalivedConfig()) == (True, False)


def test_unknown_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-such-flag"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_parser_is_an_argparse_parser() -> None:
    assert isinstance(build_parser(), argparse.ArgumentParser)
