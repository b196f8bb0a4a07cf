"""FIFOs, directories and executables named by `include` or `-f`: skipped at once, as keepalived 2.2.7 does.

keepalived's verdicts (checked with /usr/sbin/keepalived -t): a plain `include`
of such a file is a warning ("not a regular non-executable file - skipping",
exit 0), the variants includer/m/w/b/a make it an error, and `-f` naming one
skips it (an empty configuration, exit 0). Reading a FIFO must never block.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pykeepalived.config import Severity, read_config
from pykeepalived.config.lexer import NotRegularFile
from pykeepalived.config.memfs import MemoryFileSystem
from pykeepalived.host.files import LocalFileSystem

FIFO = "not a regular non-executable file (a FIFO)"
BASE = "global_defs {\n    router_id a\n}\n"


def _load(main: str, special: dict[str, str], path: str = "/k/keepalived.conf") -> list[tuple[Severity, str, str]]:
    fs = MemoryFileSystem({"/k/keepalived.conf": main, "/k/ok.conf": BASE}, special)
    result = read_config(path, fs)
    return [(d.severity, str(d.location or ""), d.message) for d in result.diagnostics]


def test_include_of_a_fifo_is_skipped_with_a_warning_at_the_include_line() -> None:
    diags = _load(BASE + "include fifo\n", {"/k/fifo": FIFO})
    assert diags == [(Severity.WARNING, "/k/keepalived.conf:4", f"/k/fifo is {FIFO} - skipping")]


@pytest.mark.parametrize("variant", ["r", "m", "w", "b", "a"])
def test_include_variants_make_a_skipped_file_an_error(variant: str) -> None:
    diags = _load(BASE + f"include{variant} fifo\n", {"/k/fifo": FIFO})
    assert [(s, loc) for s, loc, _ in diags] == [(Severity.ERROR, "/k/keepalived.conf:4")]


def test_a_glob_lists_special_files_so_that_they_are_reported() -> None:
    diags = _load(BASE + "include [df]*\n", {"/k/dir": "a directory", "/k/fifo": FIFO})
    assert [m for _, _, m in diags] == ["/k/dir is a directory - skipping", f"/k/fifo is {FIFO} - skipping"]


def test_main_file_that_is_a_fifo_is_skipped_with_a_warning() -> None:
    diags = _load("", {"/k/fifo": FIFO}, path="/k/fifo")
    assert diags == [(Severity.WARNING, "", f"configuration file /k/fifo is {FIFO} - skipping")]


def test_memory_file_system_still_reads_plain_files_and_reports_missing_ones() -> None:
    diags = _load(BASE + "include ok.conf\nincludem missing.conf\n", {})
    assert [(s, loc) for s, loc, _ in diags] == [(Severity.ERROR, "/k/keepalived.conf:5")]


# -- the real disk ----------------------------------------------------------------------------------------------
@pytest.mark.timeout(10)
def test_local_file_system_refuses_fifo_directory_and_executable_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    exe = tmp_path / "exe.conf"
    exe.write_text(BASE)
    exe.chmod(0o744)
    plain = tmp_path / "plain.conf"
    plain.write_text(BASE)
    plain.chmod(0o600)
    fs = LocalFileSystem()
    for name, why in (("fifo", "(a FIFO)"), ("dir", "a directory"), ("exe.conf", "is executable")):
        with pytest.raises(NotRegularFile, match=why.replace("(", r"\(").replace(")", r"\)")):
            fs.read_text(str(tmp_path / name))
    assert fs.read_text(str(plain)) == BASE
    assert fs.glob(str(tmp_path / "*")) == [str(tmp_path / n) for n in ("dir", "exe.conf", "fifo", "plain.conf")]


def _config_test(conf: Path) -> subprocess.CompletedProcess[str]:
    """`pykeepalived -t` as a separate process: a hang shows as a timeout, not a stuck test run."""
    return subprocess.run([sys.executable, "-m", "pykeepalived", "-t", "--no-host-checks", "-f", str(conf)],
                          capture_output=True, text=True, timeout=20, check=False)


@pytest.mark.parametrize("variant, verdict", [("", 0), ("m", 6), ("r", 6)])  # keepalived 2.2.7 -t: 0, 6, 6
def test_config_test_with_an_include_of_a_fifo_returns_at_once(tmp_path: Path, variant: str, verdict: int) -> None:
    os.mkfifo(tmp_path / "fifo")
    conf = tmp_path / "keepalived.conf"
    conf.write_text(BASE + f"include{variant} fifo\n")
    try:
        done = _config_test(conf)
    except subprocess.TimeoutExpired:
        pytest.fail("pykeepalived -t hung on an include of a FIFO")
    assert done.returncode == verdict, done.stderr
    assert f"{conf}:4: " in done.stderr and "fifo is not a regular non-executable file (a FIFO)" in done.stderr
    assert "Traceback" not in done.stderr


def test_config_test_with_f_naming_a_fifo_returns_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    try:
        done = _config_test(tmp_path / "fifo")
    except subprocess.TimeoutExpired:
        pytest.fail("pykeepalived -t -f FIFO hung")
    assert done.returncode == 0, done.stderr
    assert "fifo is not a regular non-executable file (a FIFO) - skipping" in done.stderr
