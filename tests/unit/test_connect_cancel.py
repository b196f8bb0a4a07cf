"""A TLS check cancelled just as its handshake completes (a reload replacing it) must not poison the next check.

asyncio throws the cancellation into `open_connection` even when the
handshake has just finished; it then starts a TLS shutdown that keeps the TCP
transport (and its descriptor) for up to 30 s. Had `open_stream` closed the
socket itself, the next socket would get the same number and asyncio would
refuse it ("File descriptor N is used by transport"): every check failed for
30 s (seen in the qemu guest during a reload). The silent-server case checks
the other end: a handshake cancelled half-way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.check.connect import close_writer, open_stream
from pykeepalived.check.probe import Target

LOCAL = ipaddress.ip_address("127.0.0.1")


class TlsServer:
    def __init__(self, port: int, held: list[socket.socket]) -> None:
        self.port = port
        self.held = held

    def drop_all(self) -> None:
        """Close the held connections: the client transports left shutting TLS down can finish."""
        while self.held:
            self.held.pop().close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    """A TLS server thread on loopback: handshakes 0.15 s after accepting, then holds each connection open."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-subj", "/CN=local", "-days", "1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(2.0)
            time.sleep(0.15)  # the client's loop is stalled by then (see the test)
            try:
                held.append(context.wrap_socket(conn, server_side=True))
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield TlsServer(listener.getsockname()[1], held)
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in held:
            conn.close()


async def _abandoned_transports_closed(loop: asyncio.AbstractEventLoop) -> None:
    """Let the transports a cancelled check left behind see the server's EOF and close; abort stragglers.

    Reads the selector loop's fd -> transport map (CPython's `_transports`):
    a transport collected after its loop is gone warns in whichever test runs then.
    """
    transports = loop._transports  # type: ignore[attr-defined]
    for _ in range(40):
        if not any(t is not None and not t.is_closing() for t in transports.values()):
            break
        await asyncio.sleep(0.05)
    for transport in list(transports.values()):
        if transport is not None:
            transport.abort()
    await asyncio.sleep(0)


def _client_context() -> ssl.SSLContext:
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    return tls


async def _next_check_works(port: int) -> None:
    """A plain check right after: its socket most likely gets the cancelled one's descriptor number."""
    _, writer = await open_stream(Target(LOCAL, port, 5.0))
    await close_writer(writer)


def test_a_check_cancelled_as_its_handshake_completes_leaves_the_descriptor_to_asyncio(tls_server: TlsServer) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        plain = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        cancelled = 0
        try:
            for _ in range(3):
                check = asyncio.ensure_future(open_stream(Target(LOCAL, tls_server.port, 5.0), _client_context()))
                await asyncio.sleep(0.05)  # connected, ClientHello sent

                def busy() -> None:  # the loop stalls (a reload's work) while the server's reply arrives ...
                    time.sleep(0.3)
                    # ... and the cancel lands after the handshake completed, before the check resumed
                    loop.call_soon(lambda: loop.call_soon(check.cancel))

                loop.call_soon(busy)
                try:
                    reader_writer = await check
                except asyncio.CancelledError:
                    cancelled += 1
                else:  # the cancel came too late this time: nothing to test, close and go on
                    await close_writer(reader_writer[1])
                await _next_check_works(plain.sockets[0].getsockname()[1])
        finally:
            plain.close()
            await plain.wait_closed()
            tls_server.drop_all()
            await _abandoned_transports_closed(loop)
        assert cancelled, "the cancel never landed in the window this test is about"

    asyncio.run(scenario())


def test_a_check_cancelled_half_way_through_a_handshake_leaves_no_trouble() -> None:
    async def scenario() -> None:
        silent = socket.create_server(("127.0.0.1", 0))  # accepts TCP, never answers the ClientHello
        plain = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        try:
            for _ in range(3):
                check = asyncio.ensure_future(open_stream(Target(LOCAL, silent.getsockname()[1], 5.0),
                                                          _client_context()))
                await asyncio.sleep(0.05)
                check.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await check
                await _next_check_works(plain.sockets[0].getsockname()[1])
        finally:
            silent.close()
            plain.close()
            await plain.wait_closed()

    asyncio.run(scenario())
