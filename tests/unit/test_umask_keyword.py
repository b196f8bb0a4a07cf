"""global_defs `umask`: the same -t verdict as keepalived 2.2.7 (a bad value is a configuration error)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pykeepalived.config.values import parse_umask

VALUES = ["foo", "0777", "IWGRP|IWOTH", "01000", "IWGRP | IWOTH", "0x1ff", "18", "0177"]
KEEPALIVED = shutil.which("keepalived")


def _verdict(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, timeout=60).returncode == 0


@pytest.mark.parametrize("value", VALUES)
def test_umask_verdict_matches_keepalived(tmp_path: Path, value: str) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(f"global_defs {{\n    umask {value}\n}}\n")
    ours = _verdict([sys.executable, "-m", "pykeepalived", "-t", "-f", str(conf)])
    expected = value not in ("foo", "01000")
    assert ours is expected
    if KEEPALIVED is not None:
        assert _verdict([KEEPALIVED, "-t", "-f", str(conf)]) is expected


def test_parse_umask_forms() -> None:
    assert parse_umask(["0177"]) == 0o177
    assert parse_umask(["IWGRP|IWOTH"]) == 0o022
    assert parse_umask(["IWGRP", "|", "IWOTH"]) == 0o022
    assert parse_umask(["0x1ff"]) == 0o777
    assert parse_umask(["18"]) == 0o022
    with pytest.raises(ValueError, match="foo"):
        parse_umask(["foo"])
