"""The checker's command-line edges: -t refuses checkers we cannot run, probe and status read clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pykeepalived.cli import main

VS = """
virtual_server 192.0.2.10 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 9 {{
        {checker}
    }}
}}
"""


def test_config_test_accepts_bfd_check_and_probe_says_it_cannot_run_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("bfd_instance x {\n neighbor_ip 127.0.0.1\n}" + VS.format(checker="BFD_CHECK {\n name x\n }"))
    assert main(["-t", "--no-host-checks", "-f", str(conf)]) == 0  # BFD_CHECK runs (bfd/, check/bfd_check.py)
    assert "not supported" not in capsys.readouterr().err
    assert main(["probe", "-f", str(conf), "--json"]) == 4
    results = json.loads(capsys.readouterr().out)
    assert [(r["checker"], r["ok"]) for r in results] == [("BFD_CHECK", False)]
    assert "cannot be probed once" in results[0]["reason"]


def test_probe_reports_a_refused_tcp_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(VS.format(checker="TCP_CHECK {\n connect_timeout 1\n }"))
    assert main(["probe", "-f", str(conf), "--json"]) == 4
    results = json.loads(capsys.readouterr().out)
    assert [(r["checker"], r["ok"]) for r in results] == [("TCP_CHECK", False)]
    assert "ECONNREFUSED" in results[0]["reason"]


def test_status_without_a_running_checker_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--status-file", str(tmp_path / "none.json")]) == 1
    assert "is the checker (pykeepalived -C) running?" in capsys.readouterr().err


def test_status_refuses_a_file_of_another_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for text in ("[1, 2]", '{"services": [{"name": "x"}]}', '{"table": {"services": [{"kind": "address"}]}}'):
        path = tmp_path / "s.json"
        path.write_text(text)
        assert main(["status", "--status-file", str(path)]) == 1
        assert "is not a checker status file" in capsys.readouterr().err
