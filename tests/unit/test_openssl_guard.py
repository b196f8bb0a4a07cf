"""host/openssl_guard.py: a checker without TLS runs without OpenSSL; the first TLS context lets it in.

Each case runs in a fresh interpreter (this one has ssl loaded already): it
imports what the checker imports, then shows that OpenSSL's libraries are not
mapped, that hashlib's builtin hashes give the same digests, and that after
check/http.py builds its TLS context an asyncio TLS connection to a real TLS
server on loopback works.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pykeepalived.host import openssl_guard

SRC = Path(__file__).resolve().parents[2] / "src"

CHECKER_WITHOUT_TLS = """
    import sys
    from pykeepalived.host import openssl_guard
    assert openssl_guard.keep_out()
    import asyncio, hashlib, hmac, json
    from pykeepalived.check import http, connect, tcp  # the HTTP_GET and TCP_CHECK probes
    from pykeepalived.lvs import sched

    def openssl_mapped():
        with open("/proc/self/maps") as maps:
            return any("libssl" in line or "libcrypto" in line for line in maps)

    assert "ssl" not in sys.modules and "_hashlib" not in sys.modules, sorted(sys.modules)
    assert not openssl_mapped()
    assert not openssl_guard.asyncio_has_ssl()
    assert hashlib.md5(b"abc").hexdigest() == "900150983cd24fb0d6963f7d28e17f72"
    assert hashlib.sha256(b"abc").hexdigest().startswith("ba7816bf8f01cfea")
    assert hmac.compare_digest(b"a", b"a")
    assert len(sched.maglev_table(["a", "b"], [1, 1], size=7)) == 7  # Maglev hashes names with BLAKE2
    print("ok")
"""

TLS_AFTER_ADMIT = """
    import sys
    from pykeepalived.host import openssl_guard
    assert openssl_guard.keep_out()
    import asyncio
    from pykeepalived.check import http
    assert "ssl" not in sys.modules

    client = http.tls_context(None)  # what an SSL_GET probe builds: lets OpenSSL in
    assert openssl_guard.asyncio_has_ssl()
    import ssl
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(sys.argv[1], sys.argv[2])

    async def main():
        async def answer(reader, writer):
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        srv = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server)
        port = srv.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname="")
        writer.write(b"hello\\n")
        line = await reader.readline()
        writer.close()
        srv.close()
        return line

    assert asyncio.run(main()) == b"hello\\n"
    openssl_guard.admit()  # again: nothing changes
    print("ok")
"""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=60, env=env, check=False)


def test_a_checker_without_tls_never_maps_openssl_and_hashes_alike() -> None:
    done = run_python(CHECKER_WITHOUT_TLS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for a certificate")
def test_the_first_tls_context_lets_openssl_in_and_asyncio_speaks_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-subj", "/CN=local", "-days", "1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    done = run_python(TLS_AFTER_ADMIT, str(cert), str(key))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_keep_out_does_nothing_where_ssl_is_loaded_already() -> None:
    import ssl  # noqa: F401 - loaded, as in the parent and the VRRP process

    before = dict(sys.modules)
    assert not openssl_guard.keep_out()
    assert sys.modules == before
    assert openssl_guard.asyncio_has_ssl()


@pytest.mark.parametrize(("argv", "checker_only"), [
    (["-C"], True),  # a checker alone, or the checker child of a parent (-C --child)
    (["-C", "--child", "--dont-fork"], True),
    (["--checker-worker", "1/2"], True),
    ([], False),  # the parent: the API's TLS, SMTP alerts
    (["-P"], False),
    (["-P", "-C"], False),  # both flags: left alone (conservative)
    (["-C", "-t"], False),  # a config test reads only
    (["-C", "--bfd-child"], False),
])
def test_only_a_checker_process_keeps_openssl_out(argv: list[str], checker_only: bool) -> None:
    from pykeepalived.cli import _checker_process, build_parser
    from pykeepalived.cmdline.flags import normalize_argv

    assert _checker_process(build_parser().parse_args(normalize_argv(argv))) is checker_only
