"""The parent reading its children's reports (daemon/reload_reports.py), and the reload result file."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from pykeepalived.daemon.child_report import MAX_LINE_BYTES, ChildReporter
from pykeepalived.daemon.reload_reports import ChildReports, ReportBuffer
from pykeepalived.daemon.reload_result import ReloadResult, read_result, result_path, write_result


def test_lines_are_cut_and_parsed_a_partial_line_waits() -> None:
    buf = ReportBuffer()
    got = buf.feed(b'{"event":"ready"}\n{"event":"reloaded","digest":"ab","ok":false,"prob')
    assert [r.event for r in got] == ["ready"]
    got = buf.feed(b'lems":["f.conf:3: bad"]}\n')
    assert len(got) == 1 and got[0].event == "reloaded" and got[0].digest == "ab"
    assert got[0].ok is False and got[0].problems == ["f.conf:3: bad"]
    assert buf.malformed == 0


def test_malformed_lines_are_counted_and_dropped_the_rest_survive() -> None:
    buf = ReportBuffer()
    got = buf.feed(b'garbage\n{"event":"explode"}\n[1]\n{"event":"alive"}\n'
                   b'{"event":"reloaded","problems":[1]}\n\n{"event":"ready"}\n')
    assert [r.event for r in got] == ["alive", "ready"]
    assert buf.malformed == 4


def test_an_oversized_line_is_dropped_up_to_its_newline() -> None:
    buf = ReportBuffer()
    assert buf.feed(b"x" * (MAX_LINE_BYTES + 10)) == []
    assert buf.feed(b"y" * 100) == []
    got = buf.feed(b'yyy\n{"event":"alive"}\n')
    assert [r.event for r in got] == ["alive"] and buf.malformed == 1


def test_child_reports_over_a_real_pipe_with_the_childs_writer() -> None:
    async def main() -> ChildReports:
        reports = ChildReports("VRRP")
        write_fd = reports.new_life()
        writer = ChildReporter(write_fd)
        started = reports.last_alive
        writer.ready()
        writer.reloaded("d1", True, [])
        writer.alive()
        os.write(write_fd, b"not json\n")
        await asyncio.sleep(0.05)
        assert reports.ready and reports.ever_ready and reports.last_alive >= started
        got = reports.take_reloaded()
        assert [(r.digest, r.ok) for r in got] == [("d1", True)] and reports.take_reloaded() == []
        assert reports.malformed == 1
        os.close(write_fd)  # the child dies: EOF closes this life's pipe
        await asyncio.sleep(0.05)
        assert not reports.open
        write_fd = reports.new_life()  # a respawn: not ready in this life, but it has been
        assert not reports.ready and reports.ever_ready and reports.open
        os.close(write_fd)
        await asyncio.sleep(0.05)
        reports.close()
        return reports

    assert asyncio.run(main()).malformed == 1


def test_result_file_round_trip_beside_the_pid_file(tmp_path: Path) -> None:
    path = result_path(str(tmp_path / "keepalived.pid"))
    assert path == str(tmp_path / "keepalived.reload.json")
    assert read_result(path) is None
    now = time.time()
    result = ReloadResult(generation=2, pid=42, started=now, finished=now + 0.1, ok=False, digest="abc",
                          problems=["k.conf:3: priority: invalid number"], children={"VRRP": "refused"},
                          offered="def", child_digests={"VRRP": "def"})
    write_result(path, result)
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert read_result(path) == result
    Path(path).write_text("{not json")
    assert read_result(path) is None
