"""genhash against a local HTTP server: the digest is the MD5 of the body, fetched as keepalived does."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from pykeepalived.check.genhash import GenhashError, parse_response, request_bytes
from pykeepalived.cli import main

from .local_http import PageHandler, serve_local

BODY = b"<html>healthy</html>\n"


class _Handler(PageHandler):
    body = BODY
    seen: list[str] = []

    def note(self) -> str:
        return f"{self.path} {self.headers.get('User-Agent')} {self.headers.get('Host')}"


@pytest.fixture
def server() -> Iterator[int]:
    yield from serve_local(_Handler)


def test_genhash_prints_the_md5_of_the_body(server: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["genhash", "--url", f"http://127.0.0.1:{server}/health?x=1", "--virtualhost", "www"]) == 0
    assert capsys.readouterr().out.strip() == hashlib.md5(BODY).hexdigest()
    assert _Handler.seen[-1] == f"/health?x=1 KeepAliveClient www:{server}"


def test_genhash_unreachable_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["genhash", "--url", "http://127.0.0.1:1/"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pykeepalived genhash: http://127.0.0.1:1/:") and "Traceback" not in err


def test_request_matches_keepalived_checker() -> None:
    assert request_bytes("/", "10.0.0.1") == b"GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.1\r\n\r\n"
    assert b"Connection: close" in request_bytes("/", "h", "1.1")


def test_bad_answers_are_errors() -> None:
    with pytest.raises(GenhashError):
        parse_response(b"garbage")
    with pytest.raises(GenhashError):
        parse_response(b"SSH-2.0\r\n\r\n")
    assert parse_response(b"HTTP/1.0 404 Not Found\r\nX: y\r\n\r\nbody").status == 404


@pytest.mark.keepalived
@pytest.mark.skipif(shutil.which("genhash") is None, reason="keepalived's genhash not installed")
def test_same_digest_as_keepalived_genhash(server: int, capsys: pytest.CaptureFixture[str]) -> None:
    theirs = subprocess.run(["genhash", "-s", "127.0.0.1", "-p", str(server), "-u", "/page"],
                            capture_output=True, text=True, timeout=10).stdout.split()
    assert main(["genhash", "--url", f"http://127.0.0.1:{server}/page"]) == 0
    assert capsys.readouterr().out.strip() in theirs
