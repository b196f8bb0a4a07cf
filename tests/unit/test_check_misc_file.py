"""MISC_CHECK and FILE_CHECK rules: exit status to result, track file text to value, value to result."""

from __future__ import annotations

import asyncio
import ipaddress
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykeepalived.check import file as file_check
from pykeepalived.check import misc
from pykeepalived.check.outcomes import (
    INT32_MAX,
    INT32_MIN,
    file_verdict,
    misc_verdict,
    parse_track_file_value,
)
from pykeepalived.check.probe import ProbeResult, Target
from pykeepalived.check.context import ProbeContext, UnsupportedChecker
from pykeepalived.config.model import FileCheck, GlobalDefs, MiscCheck, RealServer, Script, VirtualServer
from pykeepalived.scripts.runner import default_script_user

TARGET = Target(ipaddress.ip_address("192.0.2.2"), 80, 5.0)


# --------------------------------------------------------------------------- MISC_CHECK verdicts
@pytest.mark.parametrize(
    ("returncode", "dynamic", "expected"),
    [
        (0, False, ProbeResult(True, "succeeded", 0)),
        (0, True, ProbeResult(True, "succeeded", 0)),  # legacy exit 0 with misc_dynamic: weight left alone
        (1, False, ProbeResult(False, "failed (exited with status 1)", 0)),
        (1, True, ProbeResult(False, "failed (exited with status 1)", 0)),
        (2, False, ProbeResult(False, "failed (exited with status 2)", 0)),
        (7, False, ProbeResult(False, "failed (exited with status 7)", 0)),
        (2, True, ProbeResult(True, "succeeded (weight 0)", -3)),
        (7, True, ProbeResult(True, "succeeded (weight 5)", 2)),
        (255, True, ProbeResult(True, "succeeded (weight 253)", 250)),
        (-9, True, ProbeResult(False, "failed (due to signal 9)", 0)),
        (None, False, ProbeResult(False, "did not run", 0)),
    ],
)
def test_misc_verdict_follows_keepalived_exit_rules(returncode: int | None, dynamic: bool,
                                                     expected: ProbeResult) -> None:
    assert misc_verdict(returncode, dynamic=dynamic, rs_weight=3) == expected


def test_misc_verdict_killed_by_our_timeout_is_a_timeout() -> None:
    result = misc_verdict(-15, dynamic=False, rs_weight=1, stopped_by_us=True, timeout_s=2.5)
    assert result == ProbeResult(False, "timed out after 2.5s", 0)


def test_misc_verdict_script_that_exits_0_on_sigterm_passes_like_keepalived() -> None:
    # keepalived looks at how the script ended, not whether it overran
    assert misc_verdict(0, dynamic=False, rs_weight=1, stopped_by_us=True).ok


@settings(deadline=None)
@given(st.integers(2, 255), st.integers(0, 1000))
def test_misc_dynamic_offset_makes_effective_weight_status_minus_2(status: int, rs_weight: int) -> None:
    result = misc_verdict(status, dynamic=True, rs_weight=rs_weight)
    assert result.ok and result.weight_offset is not None
    assert rs_weight + result.weight_offset == status - 2


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/bin/check", "a b", ";", "$(id)"], ["/bin/check", "a b", ";", "$(id)"]),
        (["</etc/hosts"], ["/bin/sh", "-c", "</etc/hosts"]),
        (["</dev/tcp/x", "a b"], ["/bin/sh", "-c", "</dev/tcp/x 'a b'"]),
    ],
)
def test_misc_argv_execs_words_directly_except_file_tests(argv: list[str], expected: list[str]) -> None:
    assert misc.misc_argv(argv) == expected


def _ctx(*, script_user: str | None = None, rs_weight: int | None = None, vs_weight: int = 1) -> ProbeContext:
    vs = VirtualServer(kind="address", delay_loop_s=17.0, weight=vs_weight)
    rs = RealServer(ipaddress.ip_address("192.0.2.2"), 80, weight=rs_weight)
    return ProbeContext(vs, rs, global_defs=GlobalDefs(script_user=script_user, script_group=None),
                        track_file_paths={"tf": "/run/tf"})


def test_misc_probe_defaults_timeout_to_virtual_server_delay_loop_and_weight_to_vs() -> None:
    checker = MiscCheck(kind="MISC_CHECK", misc_path=Script(["/bin/true"]), misc_dynamic=True)
    probe = misc.make_probe(checker, TARGET, _ctx(script_user="nobody", vs_weight=4))
    assert (probe.timeout_s, probe.rs_weight, probe.user, probe.dynamic) == (17.0, 4, "nobody", True)
    checker.misc_timeout_s, checker.user, checker.group = 3.0, "daemon", "adm"
    probe = misc.make_probe(checker, TARGET, _ctx(script_user="nobody", rs_weight=9))
    assert (probe.timeout_s, probe.rs_weight, probe.user, probe.group) == (3.0, 9, "daemon", "adm")


def test_misc_probe_without_path_is_refused() -> None:
    with pytest.raises(UnsupportedChecker, match="no misc_path"):
        misc.make_probe(MiscCheck(kind="MISC_CHECK"), TARGET, _ctx())


def test_default_script_user_is_script_user_then_keepalived_script_then_ourselves() -> None:
    assert default_script_user(GlobalDefs(script_user="u", script_group="g"), user_exists=True) == ("u", "g")
    assert default_script_user(GlobalDefs(), user_exists=True) == ("keepalived_script", None)
    assert default_script_user(GlobalDefs(), user_exists=False) == (None, None)


def test_misc_probe_that_cannot_start_fails_with_reason() -> None:
    probe = misc.MiscProbe(TARGET, ["/nonexistent/check"], 1.0, False, 1)
    result = asyncio.run(probe.run())
    assert not result.ok and "cannot run /nonexistent/check" in result.reason


# --------------------------------------------------------------------------- track file values
@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"", 0),
        (b"7", 7),
        (b"  -12\n", -12),
        (b"+5 apples", 5),
        (b"0x1F", 31),
        (b"0X1f", 31),
        (b"010", 8),  # strtol base 0: octal
        (b"08", 0),  # octal stops at 8
        (b"0x", 0),  # "0" then junk
        (b"abc", 0),
        (b"\t\n 42", 42),
        (b"2147483648", 2147483648),  # keepalived lets INT32_MAX + 1 through
        (b"-2147483648", -2147483648),
        (b"2147483649", None),
        (b"-2147483649", None),
        (b"99999999999999999999", None),  # ERANGE in strtol
        (b"5\x0099", 5),
        (b" " * 126 + b"9", 9),
        (b" " * 127 + b"9", 0),  # keepalived reads 127 bytes at most: here only blanks
    ],
)
def test_track_file_value_is_read_like_strtol_base_0(data: bytes, value: int | None) -> None:
    assert parse_track_file_value(data) == value


@settings(deadline=None)
@given(st.integers(INT32_MIN, INT32_MAX))
def test_track_file_value_round_trips_decimal(value: int) -> None:
    assert parse_track_file_value(f"{value}\n".encode()) == value


# --------------------------------------------------------------------------- FILE_CHECK verdicts
@pytest.mark.parametrize(
    ("value", "weight", "reverse", "ok", "offset"),
    [
        (0, 0, False, True, 0),
        (5, 0, False, False, 0),
        (-1, 0, False, False, 0),
        (0, 0, True, False, 0),
        (5, 0, True, True, 0),
        (3, 2, False, True, 6),
        (3, 2, True, True, -6),
        (-300, 1, False, True, -300),  # the real server side faults only at -2^31 (VRRP's -254 does not apply)
        (INT32_MIN, 1, False, False, 0),
        (-(2**30), 2, False, False, 0),
        (2**30, 2, True, False, 0),
        (2**30, 4, False, True, INT32_MAX),  # clamped
        (-(2**30), 2, True, True, 2**31 - 1),
    ],
)
def test_file_verdict_follows_keepalived_real_server_rules(value: int, weight: int, reverse: bool, ok: bool,
                                                           offset: int) -> None:
    result = file_verdict(value, weight, reverse)
    assert (result.ok, result.weight_offset) == (ok, offset)


def test_file_probe_reads_the_file_every_attempt(tmp_path: Path) -> None:
    path = tmp_path / "value"
    probe = file_check.make_probe(FileCheck(kind="FILE_CHECK", track_file="tf", weight=10), TARGET,
                                  ProbeContext(_ctx().virtual_server, _ctx().real_server,
                                               track_file_paths={"tf": str(path)}))

    def attempt() -> ProbeResult:
        return asyncio.run(probe.run())

    assert attempt() == ProbeResult(True, "track file value 0 (weight offset 0)", 0)  # missing file: 0
    path.write_text("4\n")
    assert attempt().weight_offset == 40
    path.write_text("99999999999999999999")  # keepalived ignores it: the last value stays
    assert attempt().weight_offset == 40
    path.write_text("-214748365")
    assert not attempt().ok
    path.write_text("")
    assert attempt().weight_offset == 0
    path.write_text("3")
    path.chmod(0)  # unreadable (root reads anyway): either way no exception
    assert attempt().ok


def test_file_probe_takes_track_file_default_weight_and_refuses_unknown_names() -> None:
    probe = file_check.make_probe(FileCheck(kind="FILE_CHECK", track_file="tf"), TARGET, _ctx())
    assert (probe.path, probe.weight, probe.reverse) == ("/run/tf", 1, False)
    probe = file_check.make_probe(FileCheck(kind="FILE_CHECK", track_file="tf", weight=0, weight_reverse=True),
                                  TARGET, _ctx())
    assert (probe.weight, probe.reverse) == (0, True)
    with pytest.raises(UnsupportedChecker, match="track_file other not found"):
        file_check.make_probe(FileCheck(kind="FILE_CHECK", track_file="other"), TARGET, _ctx())
    with pytest.raises(UnsupportedChecker, match="no track_file"):
        file_check.make_probe(FileCheck(kind="FILE_CHECK"), TARGET, _ctx())


def test_file_probe_does_not_block_on_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert file_check.read_track_file(str(fifo)) == b""
