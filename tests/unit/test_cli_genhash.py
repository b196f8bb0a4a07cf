"""genhash under keepalived's own flags (`-s -p -u -V -P -v ...`), as `pykeepalived genhash`, `-T` and a `genhash`
link: the same output and the same request as keepalived 2.2.7's genhash, against a local HTTP server."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.cli import _main, main
from pykeepalived.cmdline.genhash import hexdump

from .local_http import PageHandler, serve_local

BODY = b"<html>healthy, and long enough for two dump lines</html>\n"
KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"
needs_keepalived = pytest.mark.skipif(not Path(KEEPALIVED).exists(), reason="keepalived 2.2.7 is not installed")


class _Handler(PageHandler):
    """A page with a fixed header (no Date), so that verbose dumps can be compared byte for byte."""

    body = BODY
    dated = False
    seen: list[str] = []

    def note(self) -> str:
        return (f"{self.requestline}|{self.headers.get('Host')}|{self.headers.get('Connection')}|"
                f"{self.headers.get('User-Agent')}")


@pytest.fixture
def port() -> Iterator[int]:
    yield from serve_local(_Handler)


def keepalived_genhash(*args: str) -> tuple[str, str]:
    """keepalived -T ARGS: its stdout and the request the server saw."""
    done = subprocess.run([KEEPALIVED, "-T", *args], capture_output=True, timeout=30, check=False)
    return done.stdout.decode("latin-1"), _Handler.seen[-1] if _Handler.seen else ""  # CR LF kept as sent


def ours(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    return code, capsys.readouterr().out, _Handler.seen[-1] if _Handler.seen else ""


def _no_time(text: str) -> str:
    """Without the response time, and without the body's banner: keepalived prints that banner only when the
    body came in the same read as the header, which depends on the timing of the server's writes."""
    text = text.replace("-----------------------[        HTML Buffer        ]-----------------------\n", "")
    return re.sub(r"= \d+ usecs", "= N usecs", text)


@needs_keepalived
@pytest.mark.parametrize("extra", [[], ["-V", "www.example"], ["-P", "1.1"], ["-P", "1.0c"], ["-v"],
                                   ["-V", "www.example", "-P", "1.1", "-t", "3", "-v"]],
                         ids=["plain", "vhost", "http11", "http10c", "verbose", "all"])
def test_same_output_and_request_as_keepalived(port: int, capsys: pytest.CaptureFixture[str],
                                               extra: list[str]) -> None:
    args = ["-s", "127.0.0.1", "-p", str(port), "-u", "/page?x=1", *extra]
    theirs, their_request = keepalived_genhash(*args)
    for argv in (["genhash", *args], ["-T", *args], ["--genhash", *args]):
        code, out, request = ours(argv, capsys)
        assert code == 0
        assert _no_time(out) == _no_time(theirs), argv
        assert request == their_request, argv
    assert hashlib.md5(BODY).hexdigest() in theirs


def test_genhash_flag_after_other_options_warns_and_runs(port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-l", "-D", "-T", "-s", "127.0.0.1", "-p", str(port), "-u", "/", "-V", "www.example"]) == 0
    captured = capsys.readouterr()
    assert captured.out == hashlib.md5(BODY).hexdigest() + "\n"
    assert "Warning -- `-T` not used as first option, previous options ignored" in captured.err


def test_called_as_genhash(port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["-s", "127.0.0.1", "-p", str(port), "-u", "/"], "genhash") == 0
    assert capsys.readouterr().out == hashlib.md5(BODY).hexdigest() + "\n"


@pytest.mark.parametrize("args, message", [
    (["-s", "127.0.0.1", "-p", "80"], ""),
    (["-s", "www.example", "-p", "80", "-u", "/"], "server should be an IP, not www.example"),
    (["-s", "127.0.0.1", "-p", "99999", "-u", "/"], "invalid port number '99999'"),
    (["-s", "127.0.0.1", "-p", "80", "-u", "/", "-P", "2"], "invalid HTTP protocol version '2'"),
    (["-s", "127.0.0.1", "-p", "80", "-u", "/", "--bogus"], "unrecognized arguments"),
    (["-h"], ""),
])
def test_refused_command_lines_print_usage_and_exit_1(args: list[str], message: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-T", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Usage: pykeepalived --genhash COMMAND [OPTIONS]" in err and "Traceback" not in err


def test_connection_failed_says_so_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["genhash", "-s", "127.0.0.1", "-p", "1", "-u", "/"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "Connection failed\n" and "Traceback" not in captured.err


def test_hexdump_layout() -> None:
    assert hexdump(b"HTTP/1.0 200 OK\r\nX") == (
        "0000  48 54 54 50 2f 31 2e 30 - 20 32 30 30 20 4f 4b 0d   HTTP/1.0 200 OK.\n"
        "0016  0a 58 " + "   " * 6 + "- " + "   " * 8 + "  " + ".X" + " " * 14)  # keepalived writes "-" always
