"""HTTP_GET / SSL_GET: keepalived's rules on answers (sans-IO), and the probe against loopback servers."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykeepalived.check import http as http_probe
from pykeepalived.check.http import HttpProbe, make_probe, tls_context
from pykeepalived.check.http_response import (
    DEFAULT_STATUS,
    InvalidRule,
    UrlRule,
    host_header,
    judge,
    parse_content_length,
    parse_status,
    regex_found,
    request_bytes,
    split_response,
    status_accepted,
    url_rule,
)
from pykeepalived.check.probe import ProbeResult, Target
from pykeepalived.check.context import ProbeContext
from pykeepalived.config import read_config_text
from pykeepalived.config.model import HttpCheck, SslContext, UrlSpec

WHERE = "[10.0.0.1]:tcp:80 url(1) /"


def answer(body: bytes, status: str = "200 OK", headers: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nServer: test\r\n{headers}\r\n".encode() + body


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --------------------------------------------------------------------------- request
def test_request_is_keepaliveds() -> None:
    assert request_bytes("/h", "10.0.0.1:80") == (
        b"GET /h HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.1:80\r\n\r\n")
    assert request_bytes("/h", "w", "1.0C") == (
        b"GET /h HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: w\r\n\r\n")
    assert request_bytes("/h", "w", "1.1").startswith(
        b"GET /h HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close")


def test_host_header_writes_the_port_but_not_on_a_virtualhost() -> None:
    assert host_header(None, "192.0.2.20", 80) == "192.0.2.20:80"
    assert host_header(None, "2001:db8::20", 443) == "[2001:db8::20]:443"
    assert host_header("www.example", "192.0.2.20", 8080) == "www.example"


CONF = """
virtual_server 10.0.0.1 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  %(vs)s
  real_server 192.0.2.20 8080 {
    %(rs)s
    %(kind)s {
      %(checker)s
      url {
        path /one
        %(url)s
      }
      url {
        path /two
      }
      connect_timeout 2
    }
  }
}
"""


def probe_from(text: str) -> HttpProbe:
    result = read_config_text(text)
    assert not result.errors, [e.format() for e in result.errors]
    vs = result.config.virtual_servers[0]
    rs = vs.real_servers[0]
    checker = rs.checkers[0]
    assert isinstance(checker, HttpCheck)
    from pykeepalived.check.context import target_for

    return make_probe(checker, target_for(checker, rs), ProbeContext(vs, rs, result.config.ssl))


def conf(kind: str = "HTTP_GET", vs: str = "", rs: str = "", checker: str = "", url: str = "") -> str:
    return CONF % {"kind": kind, "vs": vs, "rs": rs, "checker": checker, "url": url}


@pytest.mark.parametrize(("vs", "rs", "checker", "url", "want"), [
    ("", "", "", "", ["192.0.2.20:8080", "192.0.2.20:8080"]),
    ("virtualhost vs.ex", "", "", "", ["vs.ex", "vs.ex"]),
    ("virtualhost vs.ex", "virtualhost rs.ex", "", "", ["rs.ex", "rs.ex"]),
    ("virtualhost vs.ex", "virtualhost rs.ex", "virtualhost ch.ex", "", ["ch.ex", "ch.ex"]),
    ("virtualhost vs.ex", "virtualhost rs.ex", "virtualhost ch.ex", "virtualhost u.ex", ["u.ex", "ch.ex"]),
])
def test_host_header_precedence_url_checker_real_virtual(vs: str, rs: str, checker: str, url: str,
                                                         want: list[str]) -> None:
    probe = probe_from(conf(vs=vs, rs=rs, checker=checker, url=url))
    hosts = [u.request.split(b"Host: ")[1].split(b"\r\n")[0].decode() for u in probe.urls]
    assert hosts == want
    assert [u.where for u in probe.urls] == ["[192.0.2.20]:tcp:8080 url(1) /one", "[192.0.2.20]:tcp:8080 url(2) /two"]


@pytest.mark.parametrize(("checker", "rs", "want"), [
    ("virtualhost ch.ex", "", [None, None]),  # no enable_sni: no SNI
    ("enable_sni\nvirtualhost ch.ex", "", ["u.ex", "ch.ex"]),
    ("enable_sni", "virtualhost rs.ex", ["vs.ex", "vs.ex"]),  # keepalived 2.2.7 skips the real server's
    ("enable_sni\nsni_name sni.ex", "", ["sni.ex", "sni.ex"]),
    ("sni_name sni.ex", "", ["sni.ex", "sni.ex"]),
])
def test_sni_name(checker: str, rs: str, want: list[str | None]) -> None:
    url = "virtualhost u.ex" if "ch.ex" in checker else ""
    probe = probe_from(conf("SSL_GET", vs="virtualhost vs.ex" if rs else "", rs=rs, checker=checker, url=url))
    assert [u.server_name for u in probe.urls] == want
    assert probe.tls is not None and probe.tls.verify_mode == ssl.CERT_NONE


def test_http_get_has_no_tls_and_no_sni() -> None:
    probe = probe_from(conf(checker="enable_sni\nvirtualhost x"))
    assert probe.tls is None and probe.urls[0].server_name is None


def test_bad_regex_gives_a_probe_that_always_fails() -> None:
    probe = probe_from(conf(url='regex "(?<name>x)"'))
    result = asyncio.run(probe.run())
    assert not result.ok and "invalid regex" in result.reason


# --------------------------------------------------------------------------- parsing the answer
@pytest.mark.parametrize(("line", "status"), [
    (b"HTTP/1.1 200 OK", 200),
    (b"HTTP/1.0 503 Service Unavailable", 503),
    (b"HTTP/1.1 404 ", 404),
    (b"ICY 200 OK", 200),  # keepalived does not look at the protocol name
    (b"HTTP/1.1 200", 0),  # keepalived wants a space after the code
    (b"HTTP/1.1 2000 OK", 0),
    (b"HTTP/1.1 20x OK", 0),
    (b"HTTP/1.1  200 OK", 0),
    (b"garbage", 0),
    (b"", 0),
])
def test_status_as_keepalived_reads_it(line: bytes, status: int) -> None:
    assert parse_status(line + b"\r\nX: y\r\n\r\n") == status


def test_content_length() -> None:
    assert parse_content_length(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n") == 12
    assert parse_content_length(b"HTTP/1.1 200 OK\r\ncontent-length:7\r\n\r\n") == 7
    assert parse_content_length(b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n") is None
    assert parse_content_length(b"HTTP/1.1 200 OK\r\nX-Content-Length: 1\r\n\r\n") is None


def test_digest_is_cut_at_content_length() -> None:
    response = split_response(answer(b"hello-trailing", headers="Content-Length: 5\r\n"))
    assert response is not None and response.md5 == md5(b"hello")
    short = split_response(answer(b"hel", headers="Content-Length: 5\r\n"))
    assert short is not None and short.md5 == md5(b"hel")  # keepalived only logs the mismatch


def test_no_end_of_header_is_no_answer() -> None:
    assert split_response(b"HTTP/1.1 200 OK\r\nX: y\r\n") is None
    reason = judge(UrlRule("/"), b"HTTP/1.1 200 OK\n\nbody", WHERE)
    assert reason is not None and reason.startswith("no HTTP answer from [10.0.0.1]:tcp:80 url(1) /")
    assert judge(UrlRule("/"), b"", WHERE) == f"no HTTP answer from {WHERE}: received nothing"


# --------------------------------------------------------------------------- the rules
def test_defaults_are_2xx_even_with_a_digest() -> None:
    assert url_rule(UrlSpec(path="/")).status == DEFAULT_STATUS == ((200, 299),)
    assert url_rule(UrlSpec(path="/", digest="A" * 32)).status == ((200, 299),)
    assert url_rule(UrlSpec(path="/", digest="A" * 32)).digest == "a" * 32
    assert url_rule(UrlSpec(path="/", status_code=[(200, 200), (400, 499)])).status == ((200, 200), (400, 499))


@pytest.mark.parametrize(("status", "ok"), [(200, True), (299, True), (300, False), (199, False), (99, False),
                                            (600, False), (0, False)])
def test_status_ranges(status: int, ok: bool) -> None:
    assert status_accepted(status, DEFAULT_STATUS) is ok
    assert status_accepted(status, ((0, 999),)) is (100 <= status <= 599)


def test_judge_status_then_digest_then_regex() -> None:
    body = b"<html>healthy</html>"
    rule = UrlRule("/", ((200, 200),), md5(body), re.compile(b"sick"))
    assert judge(rule, answer(body, "500 Oops"), WHERE) == (
        f"HTTP status code error to {WHERE}: got 500, expected 200")
    assert judge(rule, answer(b"x"), WHERE) == f"MD5 digest error to {WHERE}: expected {md5(body)}, got {md5(b'x')}"
    assert judge(rule, answer(body), WHERE) == f"regex error to {WHERE}: 'sick' did not match"
    assert judge(UrlRule("/", ((200, 200),), md5(body), re.compile(b"healthy")), answer(body), WHERE) is None
    unreadable = judge(rule, b"HTTP/1.1 200\r\n\r\n", WHERE)
    assert unreadable == f"HTTP status code error to {WHERE}: got b'HTTP/1.1 200', expected 200"


def test_regex_no_match_inverts() -> None:
    rule = url_rule(UrlSpec(path="/", regex="maintenance", regex_no_match=True))
    assert judge(rule, answer(b"all fine"), WHERE) is None
    assert judge(rule, answer(b"in maintenance"), WHERE) == (
        f"regex error to {WHERE}: 'maintenance' matched (regex_no_match)")


def test_regex_sees_the_header_and_offsets_count_from_the_status_line() -> None:
    raw = answer(b"body")  # "HTTP/1.1 200 OK\r\nServer: test\r\n\r\nbody"
    at = raw.index(b"test")
    assert regex_found(url_rule(UrlSpec(path="/", regex="Server: test")), raw)
    assert regex_found(url_rule(UrlSpec(path="/", regex="test", regex_min_offset=at)), raw)
    assert not regex_found(url_rule(UrlSpec(path="/", regex="test", regex_min_offset=at + 1)), raw)
    assert regex_found(url_rule(UrlSpec(path="/", regex="test", regex_max_offset=at)), raw)
    assert not regex_found(url_rule(UrlSpec(path="/", regex="test", regex_max_offset=at - 1)), raw)
    # min beyond max: keepalived drops both offsets
    assert regex_found(url_rule(UrlSpec(path="/", regex="test", regex_min_offset=at + 5, regex_max_offset=at)), raw)


def test_regex_options_and_pcre_only_syntax() -> None:
    assert regex_found(url_rule(UrlSpec(path="/", regex="HEALTHY", regex_options=["caseless", "ungreedy"])),
                       answer(b"healthy"))
    assert not regex_found(url_rule(UrlSpec(path="/", regex="HEALTHY")), answer(b"healthy"))
    with pytest.raises(InvalidRule, match="invalid regex"):
        url_rule(UrlSpec(path="/", regex=r"\Qa.b\E"))


def test_regex_options_without_regex_are_ignored() -> None:
    rule = url_rule(UrlSpec(path="/", regex_no_match=True, regex_min_offset=3))
    assert rule.regex is None and judge(rule, answer(b"x"), WHERE) is None


# --------------------------------------------------------------------------- properties
@given(st.binary(max_size=2000), st.integers(200, 299), st.booleans())
def test_any_body_with_its_digest_passes(body: bytes, status: int, with_length: bool) -> None:
    headers = f"Content-Length: {len(body)}\r\n" if with_length else ""
    rule = UrlRule("/", DEFAULT_STATUS, md5(body))
    assert judge(rule, answer(body, f"{status} X", headers), WHERE) is None


@given(st.binary(max_size=500), st.integers(0, 600))
def test_content_length_bounds_the_digest(body: bytes, length: int) -> None:
    response = split_response(answer(body, headers=f"Content-Length: {length}\r\n"))
    assert response is not None
    assert response.md5 == md5(body[:length])


@given(st.binary(max_size=300))
def test_any_bytes_are_judged_without_raising(raw: bytes) -> None:
    rule = url_rule(UrlSpec(path="/", digest="0" * 32, regex="a+b", regex_min_offset=2, regex_max_offset=50))
    reason = judge(rule, raw, WHERE)
    assert reason is not None  # the zero digest never matches
    status = parse_status(raw)
    assert status == 0 or 0 <= status <= 999
    response = split_response(raw)
    assert (response is None) == (b"\r\n\r\n" not in raw)
    if response is not None:
        assert response.head + response.body == raw and response.head.endswith(b"\r\n\r\n")


@given(st.lists(st.tuples(st.integers(100, 599), st.integers(0, 50)), min_size=1, max_size=4),
       st.integers(0, 700))
def test_status_accepted_is_membership_in_100_599(ranges: list[tuple[int, int]], status: int) -> None:
    spans = tuple((lo, min(lo + width, 599)) for lo, width in ranges)
    expected = any(lo <= status <= hi for lo, hi in spans)
    assert status_accepted(status, spans) is expected
    assert (status in UrlRule("/", spans).accepted) is expected  # what judge() reads


def _status_by_partition(raw: bytes) -> int:
    """parse_status's rule spelled out on the first line: after its first space, three digits, then a space."""
    line = raw.split(b"\r", 1)[0]
    _, sep, rest = line.partition(b" ")
    if not sep or len(rest) < 4 or rest[3:4] != b" " or not rest[:3].isdigit():
        return 0
    return int(rest[:3])


@given(st.one_of(st.binary(max_size=40),
                 st.builds(lambda a, b, c: a + b + c, st.sampled_from([b"HTTP/1.1 ", b"X ", b" ", b""]),
                           st.sampled_from([b"200", b"404 ", b"20", b"2000", b"2x0", b"200 OK"]),
                           st.sampled_from([b" OK\r\n\r\n", b"\r\n", b" ", b"", b"\r"]))))
def test_status_read_by_offsets_as_by_the_first_line(raw: bytes) -> None:
    assert parse_status(raw) == _status_by_partition(raw)


# --------------------------------------------------------------------------- TLS context
def _self_signed(directory: Path, name: str) -> tuple[str, str]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return str(cert), str(key)


def test_tls_context_is_built_once_per_config(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, "rs.example")
    assert tls_context(None) is tls_context(None)
    assert tls_context(None).verify_mode == ssl.CERT_NONE
    with_ca = SslContext(ca=cert, certificate=cert, key=key)
    ctx = tls_context(with_ca)
    assert ctx is tls_context(SslContext(ca=cert, certificate=cert, key=key))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and not ctx.check_hostname
    assert tls_context(SslContext(certificate=cert, key=key)).verify_mode == ssl.CERT_NONE


def test_unloadable_tls_files_give_a_failing_probe(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    text = conf("SSL_GET").replace("virtual_server", f"SSL {{\n  ca {missing}\n}}\nvirtual_server", 1)
    result = asyncio.run(probe_from(text).run())
    assert not result.ok and "cannot set up TLS" in result.reason


# --------------------------------------------------------------------------- the probe on loopback
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls, backlog=4096)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()


def replying(pages: dict[bytes, bytes], seen: list[bytes]) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        seen.append(request)
        path = request.split(b" ")[1]
        writer.write(pages.get(path, answer(b"not found", "404 Not Found")))
        await writer.drain()
        writer.close()

    return handle


def probe(port: int, *urls: UrlSpec, timeout_s: float = 2.0, kind: str = "HTTP_GET",
          ssl_conf: SslContext | None = None) -> HttpProbe:
    from pykeepalived.config.model import RealServer, VirtualServer

    target = Target(ipaddress.ip_address("127.0.0.1"), port, timeout_s)
    checker = HttpCheck(kind=kind, urls=list(urls))
    rs = RealServer(ipaddress.ip_address("127.0.0.1"), port)
    return make_probe(checker, target, ProbeContext(VirtualServer("address"), rs, ssl_conf))


async def timed(p: HttpProbe) -> tuple[ProbeResult, float]:
    start = time.monotonic()
    result = await p.run()
    return result, time.monotonic() - start


def test_every_url_in_order_stops_at_the_first_failure() -> None:
    async def main() -> None:
        seen: list[bytes] = []
        pages = {b"/a": answer(b"A"), b"/b": answer(b"B", "500 Broken"), b"/c": answer(b"C")}
        async with server(replying(pages, seen)) as port:
            urls = [UrlSpec(path=p) for p in ("/a", "/b", "/c")]
            result = await probe(port, *urls).run()
            assert not result.ok
            assert result.reason == (
                f"HTTP status code error to [127.0.0.1]:tcp:{port} url(2) /b: got 500, expected 200-299")
            assert [r.split(b" ")[1] for r in seen] == [b"/a", b"/b"]
            assert seen[0] == request_bytes("/a", f"127.0.0.1:{port}")
            ok = await probe(port, UrlSpec(path="/a", digest=md5(b"A")),
                             UrlSpec(path="/c", regex="^C$", regex_options=["multiline"])).run()
            assert ok.ok, ok.reason

    asyncio.run(main())


def test_server_that_never_answers_fails_within_connect_timeout() -> None:
    async def main() -> None:
        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await asyncio.sleep(10)
            finally:
                writer.close()

        async with server(mute) as port:
            result, elapsed = await timed(probe(port, UrlSpec(path="/"), timeout_s=0.4))
        assert not result.ok and result.reason.startswith("timeout reading the answer from")
        assert 0.4 <= elapsed < 0.7

    asyncio.run(main())


def test_trickling_server_is_cut_after_a_second_connect_timeout() -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"HTTP/1.0 200 OK\r\n")
            for _ in range(40):
                await asyncio.sleep(0.05)
                writer.write(b"X: y\r\n")
        finally:
            writer.close()

    async def main() -> None:
        async with server(trickle) as port:
            result, elapsed = await timed(probe(port, UrlSpec(path="/"), timeout_s=0.3))
        assert not result.ok and "timeout reading" in result.reason
        assert 0.3 <= elapsed < 0.9

    asyncio.run(main())


def test_oversized_answer_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_probe, "MAX_RESPONSE_BYTES", 100_000)

    async def main() -> None:
        async with server(replying({b"/": answer(b"x" * 200_000)}, [])) as port:
            result = await probe(port, UrlSpec(path="/")).run()
        assert not result.ok and "larger than" in result.reason

    asyncio.run(main())


def test_refused_and_no_answer() -> None:
    async def main() -> None:
        async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.close()

        async with server(close_at_once) as port:
            empty = await probe(port, UrlSpec(path="/")).run()
        assert not empty.ok and empty.reason.startswith("no HTTP answer")
        refused = await probe(port, UrlSpec(path="/")).run()
        assert not refused.ok and "ECONNREFUSED" in refused.reason

    asyncio.run(main())


def test_ssl_get_on_loopback(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, "rs.example")
    other, _ = _self_signed(tmp_path, "other.example")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)

    async def main() -> None:
        async with server(replying({b"/": answer(b"secure")}, []), server_tls) as port:
            url = UrlSpec(path="/", digest=md5(b"secure"))
            plain = await probe(port, url, kind="SSL_GET").run()
            assert plain.ok, plain.reason
            right = await probe(port, url, kind="SSL_GET", ssl_conf=SslContext(ca=cert)).run()
            assert right.ok, right.reason
            wrong = await probe(port, url, kind="SSL_GET", ssl_conf=SslContext(ca=other)).run()
            assert not wrong.ok and "CERTIFICATE_VERIFY_FAILED" in wrong.reason

    asyncio.run(main())


def test_thousands_of_probes_share_the_loop() -> None:
    async def main() -> None:
        async with server(replying({b"/": answer(b"ok")}, [])) as port:
            probes = [probe(port, UrlSpec(path="/")) for _ in range(1000)]
            start = time.monotonic()
            results = await asyncio.gather(*(p.run() for p in probes))
            elapsed = time.monotonic() - start
        assert all(r.ok for r in results), {r.reason for r in results if not r.ok}
        assert elapsed < 20

    asyncio.run(main())
